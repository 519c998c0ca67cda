//! `rampart init --from-ansible`: an Ansible inventory in INI, YAML, or the JSON that
//! `ansible-inventory --list` prints (the most faithful: Ansible itself has resolved plugins,
//! ranges and variable precedence).
//!
//! Groups become roles: through `--role-map`, else by name (`webservers` → web); every group a
//! host is in (parents included) is kept in its `ansible_groups` tag. `ansible_host`,
//! `ansible_user`, `ansible_port` and `ansible_ssh_private_key_file` are honoured (and their
//! old `ansible_ssh_*` spellings); a `ProxyJump` (`-J`, `-o ProxyJump=`, or a
//! `ProxyCommand="ssh -W %h:%p ..."`) in `ansible_ssh_common_args` / `ansible_ssh_extra_args`
//! becomes the bastion. Variables are merged as Ansible does: `all`, then parent groups before
//! children (by depth, then name), then the host's own. Pure: text in, [`Imported`] out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{ImportError, Imported, ImportedHost, Jump, RoleMap, guess_role, parse_jumps};

/// The most hosts one inventory may expand to (a range like `[1:99999999]` is refused).
const MAX_HOSTS: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Group {
    hosts: Vec<String>,
    children: Vec<String>,
    vars: BTreeMap<String, String>,
}

/// Groups, host variables and hosts in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    groups: BTreeMap<String, Group>,
    hostvars: BTreeMap<String, BTreeMap<String, String>>,
    order: Vec<String>,
}

impl Model {
    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_default()
    }

    fn add_host(&mut self, group: &str, host: &str) -> Result<(), String> {
        if !self.hostvars.contains_key(host) {
            if self.order.len() >= MAX_HOSTS {
                return Err(format!("more than {MAX_HOSTS} hosts"));
            }
            self.order.push(host.to_string());
            self.hostvars.insert(host.to_string(), BTreeMap::new());
        }
        let g = self.group(group);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
        Ok(())
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        self.group(child);
        let g = self.group(parent);
        if !g.children.iter().any(|c| c == child) {
            g.children.push(child.to_string());
        }
    }
}

/// Which syntax a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ini,
    Yaml,
    /// `ansible-inventory --list`.
    Json,
}

/// Guesses the syntax from the name and the first meaningful line.
pub fn detect(text: &str, file: &Path) -> Format {
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => return Format::Json,
        "yml" | "yaml" => return Format::Yaml,
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .unwrap_or("");
    if first.starts_with('{') {
        Format::Json
    } else if first == "---" || (first.ends_with(':') && !first.starts_with('[')) {
        Format::Yaml
    } else {
        Format::Ini
    }
}

/// Imports an Ansible inventory in any of the three syntaxes. Pure.
pub fn import(text: &str, file: &Path, roles: &RoleMap) -> Result<Imported, ImportError> {
    let model = match detect(text, file) {
        Format::Json => parse_json(text, file)?,
        Format::Yaml => parse_yaml(text, file)?,
        Format::Ini => parse_ini(text, file)?,
    };
    Ok(convert(&model, roles))
}

fn scalar_json(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_json(text: &str, file: &Path) -> Result<Model, ImportError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_path_buf(),
        line: e.line(),
        message: format!("not JSON: {e}"),
    })?;
    let invalid = |message: &str| ImportError::Invalid {
        file: file.to_path_buf(),
        message: message.to_string(),
    };
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("expected an object (the output of `ansible-inventory --list`)"))?;
    let mut m = Model::default();
    let empty = serde_json::Map::new();
    let hostvars = obj
        .get("_meta")
        .and_then(|meta| meta.get("hostvars"))
        .and_then(|h| h.as_object())
        .unwrap_or(&empty);
    for (gname, g) in obj {
        if gname == "_meta" {
            continue;
        }
        m.group(gname);
        if let Some(hosts) = g.get("hosts").and_then(|h| h.as_array()) {
            for h in hosts.iter().filter_map(|h| h.as_str()) {
                m.add_host(gname, h).map_err(|e| invalid(&e))?;
            }
        }
        if let Some(children) = g.get("children").and_then(|c| c.as_array()) {
            for c in children.iter().filter_map(|c| c.as_str()) {
                m.add_child(gname, c);
            }
        }
        if let Some(vars) = g.get("vars").and_then(|v| v.as_object()) {
            for (k, v) in vars {
                if let Some(s) = scalar_json(v) {
                    m.group(gname).vars.insert(k.clone(), s);
                }
            }
        }
    }
    for (host, vars) in hostvars {
        let Some(vars) = vars.as_object() else {
            continue;
        };
        if !m.hostvars.contains_key(host) {
            m.add_host("ungrouped", host).map_err(|e| invalid(&e))?;
        }
        let hv = m.hostvars.entry(host.clone()).or_default();
        for (k, v) in vars {
            if let Some(s) = scalar_json(v) {
                hv.insert(k.clone(), s);
            }
        }
    }
    Ok(m)
}

fn scalar_yaml(v: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_yaml(text: &str, file: &Path) -> Result<Model, ImportError> {
    use serde_yaml_ng::Value;
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_path_buf(),
        line: e.location().map(|l| l.line()).unwrap_or(0),
        message: format!("not YAML: {e}"),
    })?;
    let mut m = Model::default();
    let Value::Mapping(top) = v else {
        return Err(ImportError::Invalid {
            file: file.to_path_buf(),
            message: "expected a mapping of groups (e.g. `all:`)".into(),
        });
    };
    fn walk(
        m: &mut Model,
        name: &str,
        g: &Value,
        depth: usize,
        file: &Path,
    ) -> Result<(), ImportError> {
        if depth > 64 {
            return Err(ImportError::Invalid {
                file: file.to_path_buf(),
                message: format!("group {name}: groups nested more than 64 deep"),
            });
        }
        m.group(name);
        if let Some(Value::Mapping(hosts)) = g.get("hosts") {
            for (h, vars) in hosts {
                let Some(h) = scalar_yaml(h) else { continue };
                for h in expand_range(&h).map_err(|message| ImportError::Invalid {
                    file: file.to_path_buf(),
                    message: format!("group {name}: host {h}: {message}"),
                })? {
                    m.add_host(name, &h)
                        .map_err(|message| ImportError::Invalid {
                            file: file.to_path_buf(),
                            message,
                        })?;
                    if let Value::Mapping(vars) = vars {
                        let hv = m.hostvars.entry(h.clone()).or_default();
                        for (k, v) in vars {
                            if let (Some(k), Some(v)) = (scalar_yaml(k), scalar_yaml(v)) {
                                hv.insert(k, v);
                            }
                        }
                    }
                }
            }
        }
        if let Some(Value::Mapping(vars)) = g.get("vars") {
            for (k, v) in vars {
                if let (Some(k), Some(v)) = (scalar_yaml(k), scalar_yaml(v)) {
                    m.group(name).vars.insert(k, v);
                }
            }
        }
        if let Some(Value::Mapping(children)) = g.get("children") {
            for (c, cg) in children {
                let Some(c) = scalar_yaml(c) else { continue };
                m.add_child(name, &c);
                walk(m, &c, cg, depth + 1, file)?;
            }
        }
        Ok(())
    }
    for (name, g) in &top {
        let Some(name) = scalar_yaml(name) else {
            continue;
        };
        walk(&mut m, &name, g, 0, file)?;
        if name != "all" {
            m.add_child("all", &name);
        }
    }
    Ok(m)
}

/// Expands Ansible's host ranges: `web[01:03]`, `db-[a:c]`, `n[0:10:5]`.
pub fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let (Some(open), Some(close)) = (pattern.find('['), pattern.find(']')) else {
        return Ok(vec![pattern.to_string()]);
    };
    if close < open {
        return Err("unbalanced [ ]".into());
    }
    let (head, inner, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = inner.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "range [{inner}] is not [start:end] or [start:end:step]"
        ));
    }
    let step: usize = match parts.get(2) {
        Some(s) => s.parse().map_err(|_| format!("bad step in [{inner}]"))?,
        None => 1,
    };
    if step == 0 {
        return Err(format!("step 0 in [{inner}]"));
    }
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (parts[0].parse::<u64>(), parts[1].parse::<u64>()) {
        if b < a || (b - a) / step as u64 >= MAX_HOSTS as u64 {
            return Err(format!("range [{inner}] is empty or too large"));
        }
        let width = if parts[0].len() > 1 && parts[0].starts_with('0') {
            parts[0].len()
        } else {
            0
        };
        let mut i = a;
        while i <= b {
            items.push(format!("{i:0width$}"));
            i += step as u64;
        }
    } else {
        let (a, b) = (parts[0].as_bytes(), parts[1].as_bytes());
        if a.len() != 1 || b.len() != 1 || !a[0].is_ascii_alphabetic() || b[0] < a[0] {
            return Err(format!("range [{inner}] is not numeric or a:z"));
        }
        for c in (a[0]..=b[0]).step_by(step) {
            items.push((c as char).to_string());
        }
    }
    let mut out = Vec::new();
    for it in items {
        for rest in expand_range(tail)? {
            if out.len() >= MAX_HOSTS {
                return Err(format!("expands to more than {MAX_HOSTS} hosts"));
            }
            out.push(format!("{head}{it}{rest}"));
        }
    }
    Ok(out)
}

/// Splits a line shell-style: whitespace separates, single and double quotes group.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                has = true;
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_ini(text: &str, file: &Path) -> Result<Model, ImportError> {
    #[derive(PartialEq)]
    enum Section {
        Hosts(String),
        Vars(String),
        Children(String),
    }
    let mut m = Model::default();
    let mut section = Section::Hosts("ungrouped".into());
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String| ImportError::Parse {
            file: file.to_path_buf(),
            line: line_no,
            message,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let inner = inner
                .split_once(']')
                .map(|(a, _)| a)
                .ok_or_else(|| err(format!("section {line:?} has no closing ]")))?;
            section = match inner.split_once(':') {
                Some((g, "vars")) => Section::Vars(g.to_string()),
                Some((g, "children")) => Section::Children(g.to_string()),
                Some((_, other)) => {
                    return Err(err(format!(
                        "section [{inner}]: unknown kind {other:?} (vars or children)"
                    )));
                }
                None => Section::Hosts(inner.to_string()),
            };
            let g = match &section {
                Section::Hosts(g) | Section::Vars(g) | Section::Children(g) => g.clone(),
            };
            if g.is_empty() {
                return Err(err("a section without a group name".into()));
            }
            m.group(&g);
            continue;
        }
        match &section {
            Section::Hosts(g) => {
                let w = words(line);
                let Some((pattern, vars)) = w.split_first() else {
                    continue;
                };
                let hosts = expand_range(pattern).map_err(|e| err(format!("{pattern}: {e}")))?;
                for h in hosts {
                    m.add_host(g, &h).map_err(&err)?;
                    let hv = m.hostvars.entry(h.clone()).or_default();
                    for kv in vars {
                        if kv.starts_with('#') {
                            break;
                        }
                        let (k, v) = kv
                            .split_once('=')
                            .ok_or_else(|| err(format!("{kv:?}: host variables are key=value")))?;
                        hv.insert(k.to_string(), v.to_string());
                    }
                }
            }
            Section::Vars(g) => {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| err(format!("{line:?}: group variables are key=value")))?;
                let v = v.trim();
                let v = words(v).join(" ");
                m.group(g).vars.insert(k.trim().to_string(), v);
            }
            Section::Children(g) => {
                let child = line.split_whitespace().next().unwrap_or(line).to_string();
                let g = g.clone();
                m.add_child(&g, &child);
            }
        }
    }
    // Every top-level group belongs to `all`, as Ansible makes it.
    let children: BTreeSet<String> = m
        .groups
        .values()
        .flat_map(|g| g.children.iter().cloned())
        .collect();
    let tops: Vec<String> = m
        .groups
        .keys()
        .filter(|g| *g != "all" && !children.contains(*g))
        .cloned()
        .collect();
    for t in tops {
        m.add_child("all", &t);
    }
    Ok(m)
}

/// Each group's distance from `all` (the smallest), for variable precedence.
fn depths(m: &Model) -> BTreeMap<String, usize> {
    let mut d = BTreeMap::new();
    let mut frontier = vec![("all".to_string(), 0usize)];
    while let Some((g, n)) = frontier.pop() {
        if d.get(&g).is_some_and(|old| *old <= n) || n > m.groups.len() {
            continue;
        }
        d.insert(g.clone(), n);
        if let Some(grp) = m.groups.get(&g) {
            for c in &grp.children {
                frontier.push((c.clone(), n + 1));
            }
        }
    }
    d
}

/// The groups `host` is in, parents included.
fn groups_of(m: &Model, host: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = m
        .groups
        .iter()
        .filter(|(_, g)| g.hosts.iter().any(|h| h == host))
        .map(|(n, _)| n.clone())
        .collect();
    loop {
        let parents: Vec<String> = m
            .groups
            .iter()
            .filter(|(n, g)| !out.contains(*n) && g.children.iter().any(|c| out.contains(c)))
            .map(|(n, _)| n.clone())
            .collect();
        if parents.is_empty() {
            return out;
        }
        out.extend(parents);
    }
}

/// The jump hosts an `ansible_ssh_common_args` / `ansible_ssh_extra_args` value asks for.
pub fn jumps_in_args(args: &str) -> Option<Vec<Jump>> {
    let w = words(args);
    let mut i = 0;
    while i < w.len() {
        let word = &w[i];
        let option = if word == "-o" {
            i += 1;
            w.get(i).cloned()
        } else {
            word.strip_prefix("-o").map(str::to_string)
        };
        if word == "-J" {
            return w.get(i + 1).map(|v| parse_jumps(v));
        }
        if let Some(v) = word.strip_prefix("-J") {
            return Some(parse_jumps(v));
        }
        if let Some(opt) = option {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => match opt.split_once(char::is_whitespace) {
                    Some((k, v)) => (k.to_string(), v.trim().to_string()),
                    None => (opt.clone(), String::new()),
                },
            };
            if k.eq_ignore_ascii_case("proxyjump") && !v.eq_ignore_ascii_case("none") {
                return Some(parse_jumps(&v));
            }
            if k.eq_ignore_ascii_case("proxycommand") {
                return proxy_command_jump(&v);
            }
        }
        i += 1;
    }
    None
}

/// `ssh -W %h:%p [-q] [-p PORT] [-l USER] [user@]bastion`: the bastion it reaches.
fn proxy_command_jump(cmd: &str) -> Option<Vec<Jump>> {
    let w = words(cmd);
    if w.first().map(|s| s.rsplit('/').next().unwrap_or(s)) != Some("ssh")
        || !w.iter().any(|x| x == "-W")
    {
        return None;
    }
    let (mut port, mut user, mut host) = (None, None, None);
    let mut i = 1;
    while i < w.len() {
        match w[i].as_str() {
            "-W" | "-i" | "-F" | "-o" => i += 1,
            "-p" => {
                port = w.get(i + 1).and_then(|p| p.parse().ok());
                i += 1;
            }
            "-l" => {
                user = w.get(i + 1).cloned();
                i += 1;
            }
            s if s.starts_with('-') => {}
            s => host = Some(s.to_string()),
        }
        i += 1;
    }
    let mut j = parse_jumps(&host?);
    if let Some(first) = j.first_mut() {
        first.port = first.port.or(port);
        first.user = first.user.take().or(user);
    }
    Some(j)
}

fn convert(m: &Model, roles: &RoleMap) -> Imported {
    let mut imp = Imported::default();
    let depth = depths(m);
    let mut jumps = Vec::new();
    let mut role_notes: BTreeSet<String> = BTreeSet::new();
    for host in &m.order {
        let mut groups: Vec<String> = groups_of(m, host).into_iter().collect();
        groups.sort_by_key(|g| (depth.get(g).copied().unwrap_or(usize::MAX), g.clone()));
        let mut vars: BTreeMap<String, String> = m
            .groups
            .get("all")
            .map(|g| g.vars.clone())
            .unwrap_or_default();
        for g in &groups {
            if let Some(grp) = m.groups.get(g) {
                vars.extend(grp.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        if let Some(hv) = m.hostvars.get(host) {
            vars.extend(hv.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let get = |a: &str, b: &str| vars.get(a).or_else(|| vars.get(b)).cloned();
        let mut h = ImportedHost {
            name: host.clone(),
            address: get("ansible_host", "ansible_ssh_host").filter(|a| a != host),
            user: get("ansible_user", "ansible_ssh_user"),
            ..ImportedHost::default()
        };
        if let Some(p) = get("ansible_port", "ansible_ssh_port") {
            match p.parse::<u16>() {
                Ok(p) if p != 22 => h.port = Some(p),
                Ok(_) => {}
                Err(_) => imp.needs_human(format!("{host}: ansible_port {p:?} is not a port")),
            }
        }
        if let Some(k) = get("ansible_ssh_private_key_file", "ansible_private_key_file") {
            h.identity_files.push(k);
        }
        let named: Vec<&String> = groups
            .iter()
            .filter(|g| *g != "all" && *g != "ungrouped")
            .collect();
        for g in &named {
            match roles.get(g) {
                Some(Some(r)) => h.roles.push(r.to_string()),
                Some(None) => {}
                None => {
                    if let Some(r) = guess_role(g) {
                        h.roles.push(r.to_string());
                        role_notes.insert(format!("group {g} is role {r} (from its name)"));
                    }
                }
            }
        }
        if h.roles.is_empty()
            && roles.get(host).is_none()
            && let Some(r) = guess_role(host)
        {
            h.roles.push(r.to_string());
            role_notes.insert(format!("{host} has role {r} (from its name)"));
        }
        h.roles.sort();
        h.roles.dedup();
        if !named.is_empty() {
            let list: Vec<&str> = named.iter().map(|g| g.as_str()).collect();
            h.tags.insert("ansible_groups".into(), list.join(","));
        }
        let args = [
            get("ansible_ssh_common_args", "ansible_ssh_common_args"),
            get("ansible_ssh_extra_args", "ansible_ssh_extra_args"),
        ];
        let hops = args.iter().flatten().find_map(|a| jumps_in_args(a));
        if get("ansible_connection", "ansible_connection")
            .is_some_and(|c| c != "ssh" && c != "paramiko" && c != "smart")
        {
            imp.needs_human(format!(
                "{host}: ansible_connection is not ssh; imported, but rampart only speaks SSH"
            ));
        }
        let before = imp.hosts.len();
        imp.push_host(h);
        if let (Some(added), Some(hops)) = (imp.hosts.get(before), hops) {
            jumps.push((added.name.clone(), hops));
        }
    }
    for (name, hops) in jumps {
        imp.set_jumps(&name, &hops);
    }
    for n in role_notes {
        imp.guessed(n);
    }
    imp.bastions_get_role();
    imp.report_roleless();
    if imp.hosts.is_empty() {
        imp.needs_human("the inventory has no hosts");
    }
    imp.needs_human(
        "[segments]: an Ansible inventory says nothing about networks; add your segments (name = CIDRs) for the segmentation checks",
    );
    imp
}
