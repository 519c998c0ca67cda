//! `rampart init`: an inventory from what the user already has: an ssh_config
//! ([`ssh_config`]), an Ansible inventory in INI, YAML or `ansible-inventory --list` JSON
//! ([`ansible`]), or `aws ec2 describe-instances` JSON ([`ec2`]).
//!
//! Owns: turning those into an [`Imported`] (hosts, segments, notes), guessing roles from
//! names, mapping groups and tags to roles ([`RoleMap`]), rendering the result as
//! `inventory.toml` text ([`render`]) and writing it without overwriting ([`write_new`]).
//!
//! The parsers are pure (text in, [`Imported`] or [`ImportError`] out) and never trust their
//! input: a name, address or user the inventory loader would refuse is not written but
//! reported as needing a human. What was guessed is said, never silently assumed. Nothing here
//! opens a connection or runs a command.

pub mod ansible;
pub mod ec2;
pub mod ssh_config;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{is_valid_dns_name, is_valid_host_name, is_valid_user};

/// An input that cannot be imported at all. Names the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}:{line}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("--role-map {0:?}: expected GROUP=ROLE (ROLE: letters, digits, '-', '_', '.')")]
    RoleMap(String),
}

/// What a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// rampart chose a value; a person should check it.
    Guessed,
    /// Something rampart could not decide or could not import.
    NeedsHuman,
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Note {
    pub kind: NoteKind,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.kind {
            NoteKind::Guessed => "guessed",
            NoteKind::NeedsHuman => "needs a human",
        };
        write!(f, "{word}: {}", self.message)
    }
}

/// One host as imported, before rendering. Values are checked by [`Imported::push_host`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedHost {
    pub name: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// The name of the host to jump through.
    pub bastion: Option<String>,
    pub roles: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub identity_files: Vec<String>,
    pub known_hosts: Vec<String>,
}

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub hosts: Vec<ImportedHost>,
    /// Segment name → CIDRs.
    pub segments: BTreeMap<String, Vec<String>>,
    pub notes: Vec<Note>,
}

impl Imported {
    pub fn guessed(&mut self, message: impl Into<String>) {
        self.notes.push(Note {
            kind: NoteKind::Guessed,
            message: message.into(),
        });
    }

    pub fn needs_human(&mut self, message: impl Into<String>) {
        self.notes.push(Note {
            kind: NoteKind::NeedsHuman,
            message: message.into(),
        });
    }

    pub fn host_mut(&mut self, name: &str) -> Option<&mut ImportedHost> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    /// Adds a host after checking every value the loader checks; a host that would not load
    /// is skipped with a note, an invalid optional value is dropped with a note.
    pub fn push_host(&mut self, mut h: ImportedHost) {
        if !is_valid_host_name(&h.name) {
            let fixed = sanitize_name(&h.name);
            match fixed {
                Some(n) if !self.hosts.iter().any(|x| x.name == n) => {
                    self.guessed(format!(
                        "host {:?} is named {n} (names are letters, digits, '-', '_', '.')",
                        h.name
                    ));
                    if h.address.is_none() && is_address(&h.name) {
                        h.address = Some(h.name.clone());
                    }
                    h.name = n;
                }
                _ => {
                    self.needs_human(format!(
                        "skipped host {:?}: not a usable name",
                        clip(&h.name)
                    ));
                    return;
                }
            }
        }
        if h.address.is_none() && !is_valid_dns_name(&h.name) {
            self.needs_human(format!(
                "skipped host {}: no address, and its name is not a host name to connect to",
                h.name
            ));
            return;
        }
        if self.hosts.iter().any(|x| x.name == h.name) {
            self.needs_human(format!(
                "skipped a second host named {}: names must be unique",
                h.name
            ));
            return;
        }
        if let Some(a) = &h.address
            && !is_address(a)
        {
            self.needs_human(format!(
                "skipped host {}: address {:?} is not an IP address or a host name",
                h.name,
                clip(a)
            ));
            return;
        }
        if let Some(u) = &h.user
            && !is_valid_user(u)
        {
            self.needs_human(format!(
                "host {}: user {:?} is not a login name; the default user is used",
                h.name,
                clip(u)
            ));
            h.user = None;
        }
        if h.port == Some(0) {
            h.port = None;
        }
        h.roles.retain(|r| is_valid_host_name(r));
        h.roles.dedup();
        h.tags
            .retain(|k, v| !k.chars().any(char::is_control) && !v.chars().any(char::is_control));
        h.identity_files.retain(|p| usable_path(p));
        h.known_hosts.retain(|p| usable_path(p));
        self.hosts.push(h);
    }

    /// Points `host` at the jump hosts of a ProxyJump list (outermost first): the last becomes
    /// its bastion, each earlier one the bastion of the next. A jump host not among the
    /// imported hosts is added with the bastion role.
    pub fn set_jumps(&mut self, host: &str, jumps: &[Jump]) {
        let mut outer: Option<String> = None;
        for j in jumps {
            let name = self.jump_host(j);
            if let (Some(name), Some(o)) = (&name, &outer)
                && name != o
                && let Some(h) = self.host_mut(name)
                && h.bastion.is_none()
            {
                h.bastion = Some(o.clone());
            }
            match name {
                Some(n) => outer = Some(n),
                None => return,
            }
        }
        if let Some(b) = outer
            && b != host
            && let Some(h) = self.host_mut(host)
        {
            h.bastion = Some(b);
        }
    }

    /// The imported host a jump names (by name, then by address), added when missing.
    fn jump_host(&mut self, j: &Jump) -> Option<String> {
        if let Some(h) = self.hosts.iter().find(|h| h.name == j.host).or_else(|| {
            self.hosts
                .iter()
                .find(|h| h.address.as_deref() == Some(j.host.as_str()))
        }) {
            return Some(h.name.clone());
        }
        let before = self.hosts.len();
        self.push_host(ImportedHost {
            name: j.host.clone(),
            address: None,
            port: j.port,
            user: j.user.clone(),
            roles: vec!["bastion".into()],
            ..ImportedHost::default()
        });
        let added = self.hosts.get(before)?.name.clone();
        self.guessed(format!(
            "added jump host {added} (from a ProxyJump) with role bastion"
        ));
        Some(added)
    }

    /// Bastion chains that loop (A through B, B through A) cannot be loaded: the host where
    /// the loop closes is left to connect directly, with a note.
    pub fn break_bastion_loops(&mut self) {
        for i in 0..self.hosts.len() {
            let start = self.hosts[i].name.clone();
            let mut seen = vec![start.clone()];
            let mut cur = self.hosts[i].bastion.clone();
            while let Some(b) = cur {
                if seen.contains(&b) {
                    let last = seen.last().cloned().unwrap_or_default();
                    if let Some(h) = self.host_mut(&last) {
                        h.bastion = None;
                    }
                    self.needs_human(format!(
                        "bastion loop through {last} and {b}: {last} now connects directly; set its bastion"
                    ));
                    break;
                }
                seen.push(b.clone());
                cur = self
                    .hosts
                    .iter()
                    .find(|h| h.name == b)
                    .and_then(|h| h.bastion.clone());
            }
        }
    }

    /// Hosts that others jump through and have no role get the bastion role.
    pub fn bastions_get_role(&mut self) {
        self.break_bastion_loops();
        let targets: BTreeSet<String> = self
            .hosts
            .iter()
            .filter_map(|h| h.bastion.clone())
            .collect();
        let mut notes = Vec::new();
        for h in &mut self.hosts {
            if targets.contains(&h.name) && h.roles.is_empty() {
                h.roles.push("bastion".into());
                notes.push(format!(
                    "{} has role bastion: other hosts jump through it",
                    h.name
                ));
            }
        }
        for n in notes {
            self.guessed(n);
        }
    }

    /// A note for each host left without a role.
    pub fn report_roleless(&mut self) {
        let names: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.roles.is_empty())
            .map(|h| h.name.clone())
            .collect();
        if !names.is_empty() {
            self.needs_human(format!(
                "no role for {}: give each its roles (web, app, db, cache, bastion, vpn, monitoring or your own)",
                names.join(", ")
            ));
        }
    }
}

/// One hop of a ProxyJump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses a ProxyJump value: `[user@]host[:port][,...]`, IPv6 in brackets.
pub fn parse_jumps(value: &str) -> Vec<Jump> {
    value
        .split(',')
        .filter_map(|hop| {
            let hop = hop.trim();
            let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
            let (user, rest) = match hop.rsplit_once('@') {
                Some((u, r)) => (Some(u.to_string()), r),
                None => (None, hop),
            };
            let (host, port) = if let Some(r) = rest.strip_prefix('[') {
                let (h, after) = r.split_once(']')?;
                (
                    h.to_string(),
                    after.strip_prefix(':').and_then(|p| p.parse().ok()),
                )
            } else {
                match rest.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
                    _ => (rest.to_string(), None),
                }
            };
            (!host.is_empty()).then_some(Jump { user, host, port })
        })
        .collect()
}

fn is_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok() || is_valid_dns_name(s)
}

fn usable_path(p: &str) -> bool {
    !p.is_empty() && !p.chars().any(char::is_control)
}

/// Text cut to 60 characters for a message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A usable host name made from `s`: other characters become `-`, at most 63 long.
fn sanitize_name(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out
        .trim_start_matches(['-', '_', '.'])
        .trim_end_matches('-');
    let out: String = out.chars().take(63).collect();
    is_valid_host_name(&out).then_some(out)
}

/// Group (or tag value, or name stem) → role, from `--role-map`. An empty role ignores the
/// group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    map: BTreeMap<String, String>,
}

impl RoleMap {
    pub fn parse(items: &[String]) -> Result<RoleMap, ImportError> {
        let mut map = BTreeMap::new();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| ImportError::RoleMap(item.clone()))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || (!v.is_empty() && !is_valid_host_name(v)) {
                return Err(ImportError::RoleMap(item.clone()));
            }
            map.insert(k.to_ascii_lowercase(), v.to_string());
        }
        Ok(RoleMap { map })
    }

    /// The role for a group name: `Some(Some(role))` mapped, `Some(None)` ignored on purpose,
    /// `None` not in the map.
    pub fn get(&self, group: &str) -> Option<Option<&str>> {
        self.map
            .get(&group.to_ascii_lowercase())
            .map(|r| (!r.is_empty()).then_some(r.as_str()))
    }
}

/// The built-in role a name suggests (`web1` → web, `dbservers` → db, `jump-01` → bastion).
pub fn guess_role(name: &str) -> Option<&'static str> {
    let first = name.split('.').next().unwrap_or(name).to_ascii_lowercase();
    let stem = first.trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '-' | '_'));
    let words: Vec<&str> = stem.split(['-', '_']).filter(|w| !w.is_empty()).collect();
    // The most specific word wins: `prod-web` is web, `db-cache` is db.
    for w in words.iter().rev().chain(std::iter::once(&stem)) {
        let w = w.trim_end_matches(|c: char| c.is_ascii_digit());
        let plural = ["servers", "server", "hosts", "nodes", "s"]
            .iter()
            .find_map(|suf| w.strip_suffix(suf).filter(|r| r.len() >= 2));
        for w in std::iter::once(w).chain(plural) {
            let role = match w {
                "web" | "www" | "nginx" | "frontend" | "http" | "proxy" | "lb" => "web",
                "app" | "application" | "api" | "backend" | "worker" => "app",
                "db" | "database" | "postgres" | "postgresql" | "pg" | "mysql" | "mariadb"
                | "sql" => "db",
                "cache" | "redis" | "memcache" | "memcached" => "cache",
                "bastion" | "jump" | "jumphost" | "edge" | "gateway" | "gw" => "bastion",
                "vpn" | "wireguard" | "wg" | "openvpn" => "vpn",
                "monitoring" | "mon" | "prometheus" | "grafana" | "metric" | "metrics" => {
                    "monitoring"
                }
                _ => continue,
            };
            return Some(role);
        }
    }
    None
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn q_list(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

/// Renders the import as `inventory.toml`, with the notes as comments at the top. Values
/// every host shares (user, key files) go to `[defaults]`.
pub fn render(imp: &Imported, source: &Path) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Written by `rampart init` ({}) from {}.",
        env!("RAMPART_VERSION"),
        clip(&source.display().to_string())
    );
    o.push_str(
        "# Check the notes below, then `rampart audit --connect-only`. Format: README.md.\n",
    );
    let mut notes = imp.notes.clone();
    notes.sort();
    notes.dedup();
    for n in &notes {
        let _ = writeln!(o, "# {}", clip_line(&n.to_string()));
    }
    let all_same = |f: &dyn Fn(&ImportedHost) -> Option<String>| -> Option<String> {
        let first = imp.hosts.first().map(f)??;
        imp.hosts
            .iter()
            .all(|h| f(h).as_deref() == Some(first.as_str()))
            .then_some(first)
    };
    let user = all_same(&|h: &ImportedHost| h.user.clone());
    let ids = all_same(&|h: &ImportedHost| {
        (!h.identity_files.is_empty()).then(|| q_list(&h.identity_files))
    });
    let kh =
        all_same(&|h: &ImportedHost| (!h.known_hosts.is_empty()).then(|| q_list(&h.known_hosts)));
    o.push_str("\n[defaults]\n");
    if let Some(u) = &user {
        let _ = writeln!(o, "user = {}", q(u));
    }
    if let Some(i) = &ids {
        let _ = writeln!(o, "identity_files = {i}");
    }
    if let Some(k) = &kh {
        let _ = writeln!(o, "known_hosts = {k}");
    }
    if !imp.segments.is_empty() {
        o.push_str("\n[segments]\n");
        for (name, cidrs) in &imp.segments {
            let _ = writeln!(o, "{} = {}", q(name), q_list(cidrs));
        }
    }
    let builtin = super::builtin_roles();
    let custom: BTreeSet<&String> = imp
        .hosts
        .iter()
        .flat_map(|h| h.roles.iter())
        .filter(|r| !builtin.contains_key(r.as_str()))
        .collect();
    for r in custom {
        let _ = writeln!(
            o,
            "\n[roles.{}]   # imported; say what it may expose\nallow_ports = [22]",
            q(r)
        );
    }
    for h in &imp.hosts {
        o.push_str("\n[[host]]\n");
        let _ = writeln!(o, "name = {}", q(&h.name));
        if let Some(a) = &h.address {
            let _ = writeln!(o, "address = {}", q(a));
        }
        if let Some(p) = h.port {
            let _ = writeln!(o, "port = {p}");
        }
        if user.is_none()
            && let Some(u) = &h.user
        {
            let _ = writeln!(o, "user = {}", q(u));
        }
        match &h.bastion {
            Some(b) => {
                let _ = writeln!(o, "bastion = {}", q(b));
            }
            None => o.push_str("bastion = \"none\"\n"),
        }
        let _ = writeln!(o, "roles = {}", q_list(&h.roles));
        if ids.is_none() && !h.identity_files.is_empty() {
            let _ = writeln!(o, "identity_files = {}", q_list(&h.identity_files));
        }
        if kh.is_none() && !h.known_hosts.is_empty() {
            let _ = writeln!(o, "known_hosts = {}", q_list(&h.known_hosts));
        }
        if !h.tags.is_empty() {
            let tags: Vec<String> = h
                .tags
                .iter()
                .map(|(k, v)| format!("{} = {}", q(k), q(v)))
                .collect();
            let _ = writeln!(o, "tags = {{ {} }}", tags.join(", "));
        }
    }
    o
}

/// A note as one comment line: no line breaks.
fn clip_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Writes `text` to `path`; an existing file is kept unless `force`. The file is written
/// beside the target and renamed into place, so a failure never leaves half a file.
pub fn write_new(path: &Path, text: &str, force: bool) -> Result<(), ImportError> {
    let err = |message: String| ImportError::Write {
        path: path.to_path_buf(),
        message,
    };
    if path.exists() && !force {
        return Err(err(
            "exists; pass --force to overwrite it, or -i to write another file".into(),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rampart-init.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if force {
            std::fs::rename(&tmp, path)
        } else {
            // Never replace a file that appeared meanwhile.
            std::fs::hard_link(&tmp, path)?;
            std::fs::remove_file(&tmp)
        }
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(format!("cannot write: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
