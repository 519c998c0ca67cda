//! firewalld's own view of a host: its zones (bound by interface or by source), their
//! services resolved to ports from the host's own service definitions, ports, rich rules,
//! masquerade and forward-ports, as `firewall-cmd` prints them. Pure: the probe's text in,
//! plain data out.
//!
//! This is evidence, not the verdict. The verdict comes from firewalld's nft table (`table
//! inet firewalld`, read by [`super::nft`] like any other nftables ruleset), because that is
//! what the kernel runs: it includes runtime changes, the order in which overlapping source
//! zones are tried (by zone name in firewalld 1.3, by priority in later releases: nothing
//! in `--list-all-zones` says which wins), the default zone's implicit hold on every
//! interface no zone names, `ct status dnat` for forward-ports, and rich-rule priorities.
//! `firewall-cmd` also needs root (or a polkit grant) and a D-Bus connection; `nft -j list
//! ruleset` needs neither. What this module adds is the *why*: which zone a rule belongs to,
//! and which service put a port there.

use serde::{Deserialize, Serialize};

use crate::collect::{ParseError, check_size, clean};

/// What `firewall-cmd` says about the host's zones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firewalld {
    /// `--get-default-zone`: the zone of every interface no zone names.
    pub default_zone: String,
    /// `--list-all-zones`, in its order.
    pub zones: Vec<Zone>,
    /// The services the zones name, as the host's own definitions say
    /// (`/etc/firewalld/services` before `/usr/lib/firewalld/services`).
    pub services: Vec<Service>,
    /// What could not be read or resolved, in words.
    pub notes: Vec<String>,
}

/// One zone, as `firewall-cmd --list-all-zones` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    /// Bound to an interface or a source (firewall-cmd's "(active)").
    pub active: bool,
    pub target: String,
    pub interfaces: Vec<String>,
    /// Source addresses, networks, MACs or `ipset:NAME`, verbatim.
    pub sources: Vec<String>,
    pub services: Vec<String>,
    /// `PORT[-PORT]/PROTO`.
    pub ports: Vec<String>,
    pub protocols: Vec<String>,
    pub forward: bool,
    pub masquerade: bool,
    /// `port=..:proto=..:toport=..:toaddr=..`.
    pub forward_ports: Vec<String>,
    pub source_ports: Vec<String>,
    pub rich_rules: Vec<String>,
}

/// A service definition: the ports it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// `PORT[-PORT]/PROTO`.
    pub ports: Vec<String>,
    pub protocols: Vec<String>,
    /// Services it includes (their ports are opened too).
    pub includes: Vec<String>,
}

impl Firewalld {
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The ports a service opens, through its includes (bounded), with the name of the
    /// service each comes from; `None` where a definition was not read.
    pub fn service_ports(&self, name: &str) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut todo = vec![name.to_string()];
        let mut seen: Vec<String> = Vec::new();
        while let Some(n) = todo.pop() {
            if seen.contains(&n) || seen.len() > 32 {
                continue;
            }
            seen.push(n.clone());
            match self.service(&n) {
                Some(s) => {
                    out.extend(s.ports.iter().map(|p| (n.clone(), Some(p.clone()))));
                    todo.extend(s.includes.iter().cloned());
                }
                None => out.push((n.clone(), None)),
            }
        }
        out
    }

    /// The zone whose chains a firewalld nft chain belongs to (`filter_IN_labapp_allow` →
    /// `labapp`), if it names a known zone.
    pub fn zone_of_chain(&self, chain: &str) -> Option<&Zone> {
        let rest = ZONE_CHAIN_PREFIXES
            .iter()
            .find_map(|p| chain.strip_prefix(p))?;
        // Zone names may contain '_': take the longest known zone the chain starts with.
        self.zones
            .iter()
            .filter(|z| {
                rest == z.name
                    || rest
                        .strip_prefix(z.name.as_str())
                        .is_some_and(|t| t.starts_with('_'))
            })
            .max_by_key(|z| z.name.len())
    }

    /// One line of evidence for a port admitted by a zone: what in the zone admits it.
    pub fn explain(&self, zone: &Zone, port: u16, proto: &str) -> String {
        let mut why: Vec<String> = Vec::new();
        for s in &zone.services {
            for (from, p) in self.service_ports(s) {
                match p {
                    Some(p) if port_spec_has(&p, port, proto) => {
                        why.push(if &from == s {
                            format!("service {s} ({p})")
                        } else {
                            format!("service {s} (includes {from}: {p})")
                        });
                    }
                    None => why.push(format!("service {s} (definition of {from} not read)")),
                    _ => {}
                }
            }
        }
        for p in &zone.ports {
            if port_spec_has(p, port, proto) {
                why.push(format!("port {p}"));
            }
        }
        for r in &zone.rich_rules {
            let by_port = r.contains(&format!("port=\"{port}\""));
            let by_service = attr(r, "name").is_some_and(|svc| {
                r.contains("service name=")
                    && self
                        .service_ports(svc)
                        .iter()
                        .any(|(_, p)| p.as_deref().is_some_and(|p| port_spec_has(p, port, proto)))
            });
            if by_port || by_service {
                why.push(format!("rich rule {r}"));
            }
        }
        let bound = match (zone.sources.is_empty(), zone.interfaces.is_empty()) {
            (false, _) => format!("sources {}", zone.sources.join(" ")),
            (true, false) => format!("interfaces {}", zone.interfaces.join(" ")),
            (true, true) if zone.name == self.default_zone => {
                "the default zone: every interface no zone names".to_string()
            }
            (true, true) => "bound to nothing".to_string(),
        };
        let what = if why.is_empty() {
            format!("target {}", zone.target)
        } else {
            why.join(", ")
        };
        format!("firewalld zone {} ({bound}): {what}", zone.name)
    }
}

/// How firewalld 1.x names a zone's chains in its nft table (`filter_IN_public`,
/// `nat_PRE_public_allow`...).
pub const ZONE_CHAIN_PREFIXES: [&str; 5] = [
    "filter_IN_",
    "filter_FWD_",
    "nat_PRE_",
    "mangle_PRE_",
    "nat_POST_",
];

/// True when `PORT[-PORT]/PROTO` covers `port`/`proto`.
fn port_spec_has(spec: &str, port: u16, proto: &str) -> bool {
    let Some((ports, p)) = spec.split_once('/') else {
        return false;
    };
    if p != proto {
        return false;
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    match (a.parse::<u16>(), b.parse::<u16>()) {
        (Ok(a), Ok(b)) => (a..=b).contains(&port),
        _ => false,
    }
}

/// The probe's first line when firewalld runs in the host's network namespace.
pub const RUNNING: &str = "running";

/// Whether `firewall-cmd` refused for lack of privileges (its own words).
pub fn is_permission_problem(text: &str) -> bool {
    text.contains("Authorization failed") || text.contains("Not authorized")
}

/// Parses the `firewalld-zones` probe's output: `### default ZONE`, then `### zones` and
/// `firewall-cmd --list-all-zones`, then `### service NAME FILE` and each service file.
/// `Ok(None)` when firewalld does not run in the host's network namespace.
pub fn parse(text: &str) -> Result<Option<Firewalld>, ParseError> {
    check_size("firewalld", text)?;
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some(RUNNING) => {}
        Some("not running") | None => return Ok(None),
        Some(other) => {
            return Err(ParseError::new(
                "firewalld",
                1,
                format!("unexpected first line {:?}", clean(other)),
            ));
        }
    }
    let mut fwd = Firewalld::default();
    // Sections: (kind, argument, body).
    let mut section: Option<(String, String, String)> = None;
    let mut sections = Vec::new();
    for l in lines {
        if let Some(h) = l.strip_prefix("### ") {
            if let Some(s) = section.take() {
                sections.push(s);
            }
            let (kind, arg) = h.split_once(' ').unwrap_or((h, ""));
            section = Some((kind.to_string(), arg.trim().to_string(), String::new()));
        } else if let Some((_, _, body)) = section.as_mut() {
            body.push_str(l);
            body.push('\n');
        }
    }
    sections.extend(section);
    let mut saw_zones = false;
    for (kind, arg, body) in sections {
        match kind.as_str() {
            "default" => fwd.default_zone = clean(&arg),
            "zones" => {
                saw_zones = true;
                fwd.zones = parse_zones(&body);
            }
            "service" => {
                let (name, file) = arg.split_once(' ').unwrap_or((arg.as_str(), ""));
                fwd.services.push(parse_service(name, file, &body));
            }
            "error" => fwd.notes.push(format!(
                "firewall-cmd {}: {}",
                clean(&arg),
                clean(body.lines().next().unwrap_or_default())
            )),
            _ => {}
        }
    }
    if !saw_zones {
        return Err(ParseError::new(
            "firewalld",
            0,
            "no zone list in the output",
        ));
    }
    for z in &fwd.zones {
        for s in &z.services {
            if fwd.service(s).is_none() {
                let n = format!("service {s} (zone {}): no definition read", z.name);
                if !fwd.notes.contains(&n) {
                    fwd.notes.push(n);
                }
            }
        }
    }
    Ok(Some(fwd))
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(clean).collect()
}

/// `firewall-cmd --list-all-zones` (also `--list-all`): a header line per zone, `  key:
/// value` lines, and forward-ports and rich rules continued on tab-indented lines.
pub fn parse_zones(text: &str) -> Vec<Zone> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut last_key = String::new();
    for l in text.lines() {
        if l.trim().is_empty() {
            continue;
        }
        if let Some(cont) = l.strip_prefix('\t') {
            let Some(z) = zones.last_mut() else { continue };
            let v = clean(cont.trim());
            match last_key.as_str() {
                "rich rules" => z.rich_rules.push(v),
                "forward-ports" => z.forward_ports.push(v),
                _ => {}
            }
            continue;
        }
        if !l.starts_with(' ') {
            let (name, attrs) = match l.split_once(" (") {
                Some((n, a)) => (n, a.trim_end_matches(')')),
                None => (l, ""),
            };
            zones.push(Zone {
                name: clean(name.trim()),
                active: attrs.split(", ").any(|a| a == "active"),
                ..Zone::default()
            });
            last_key.clear();
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let Some((k, v)) = l.trim().split_once(':') else {
            continue;
        };
        let v = v.trim();
        last_key = k.to_string();
        match k {
            "target" => z.target = clean(v),
            "interfaces" => z.interfaces = words(v),
            "sources" => z.sources = words(v),
            "services" => z.services = words(v),
            "ports" => z.ports = words(v),
            "protocols" => z.protocols = words(v),
            "forward" => z.forward = v == "yes",
            "masquerade" => z.masquerade = v == "yes",
            "forward-ports" => z.forward_ports = words(v),
            "source-ports" => z.source_ports = words(v),
            "rich rules" if !v.is_empty() => z.rich_rules.push(clean(v)),
            _ => {}
        }
    }
    zones
}

/// The value of `attr="..."` in one XML tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    let mut rest = tag;
    while let Some(i) = rest.find(&key) {
        // Not the tail of a longer attribute name.
        let before = rest[..i].chars().last();
        let after = &rest[i + key.len()..];
        if before.is_none_or(char::is_whitespace) {
            let q = after.chars().next()?;
            if q == '"' || q == '\'' {
                let v = &after[1..];
                return v.find(q).map(|e| &v[..e]);
            }
        }
        rest = after;
    }
    None
}

/// A firewalld service file (`<service><port protocol="tcp" port="6379"/>...`): ports,
/// protocols and includes. Only those elements are read.
pub fn parse_service(name: &str, file: &str, xml: &str) -> Service {
    let mut s = Service {
        name: clean(name),
        file: clean(file),
        ..Service::default()
    };
    for tag in xml.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let (el, rest) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
        match el {
            "port" => {
                if let (Some(p), Some(proto)) = (attr(rest, "port"), attr(rest, "protocol")) {
                    s.ports.push(clean(&format!("{p}/{proto}")));
                }
            }
            "protocol" => {
                if let Some(v) = attr(rest, "value") {
                    s.protocols.push(clean(v));
                }
            }
            "include" => {
                if let Some(v) = attr(rest, "service") {
                    s.includes.push(clean(v));
                }
            }
            _ => {}
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/firewall/firewalld/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    const REDIS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service>\n  <short>redis</short>\n  <description>Redis is an open source (BSD licensed), in-memory data structure store.</description>\n  <port protocol=\"tcp\" port=\"6379\"/>\n</service>\n";

    #[test]
    fn reads_the_lab_zones_and_resolves_services() {
        let text = format!(
            "running\n### default public\n### zones\n{}### service redis /usr/lib/firewalld/services/redis.xml\n{REDIS}",
            fixture("zones.txt")
        );
        let f = parse(&text).unwrap().unwrap();
        assert_eq!(f.default_zone, "public");
        let lab = f.zone("labapp").unwrap();
        assert!(lab.active);
        assert_eq!(lab.sources, vec!["10.77.0.0/16"]);
        assert_eq!(lab.services, vec!["redis"]);
        assert_eq!(lab.target, "default");
        let admin = f.zone("admin").unwrap();
        assert_eq!(admin.services, vec!["prometheus-node-exporter", "ssh"]);
        assert!(!f.zone("public").unwrap().active);
        assert_eq!(f.service("redis").unwrap().ports, vec!["6379/tcp"]);
        // ssh's definition was not in the output: said, not guessed.
        assert!(
            f.notes.iter().any(|n| n.contains("service ssh")),
            "{:?}",
            f.notes
        );
        assert_eq!(
            f.explain(lab, 6379, "tcp"),
            "firewalld zone labapp (sources 10.77.0.0/16): service redis (6379/tcp)"
        );
        assert_eq!(
            f.zone_of_chain("filter_IN_labapp_allow")
                .map(|z| z.name.as_str()),
            Some("labapp")
        );
        assert!(f.zone_of_chain("filter_INPUT").is_none());
    }

    #[test]
    fn the_probe_fixture_explains_ssh_in_the_admin_zone() {
        let f = parse(&fixture("probe.txt")).unwrap().unwrap();
        // Only the unused zones' services (home, internal, work) were left out of it.
        assert!(
            f.notes
                .iter()
                .all(|n| !n.contains("zone admin") && !n.contains("zone labapp")),
            "{:?}",
            f.notes
        );
        let admin = f.zone_of_chain("filter_IN_admin_allow").unwrap();
        assert_eq!(
            f.explain(admin, 22, "tcp"),
            "firewalld zone admin (sources 10.77.9.0/24): service ssh (22/tcp)"
        );
        let public = f.zone("public").unwrap();
        assert_eq!(
            f.explain(public, 22, "tcp"),
            "firewalld zone public (the default zone: every interface no zone names): target default"
        );
    }

    #[test]
    fn rich_rules_and_forward_ports_continue_on_tab_lines() {
        let f = parse_zones(&fixture("zones-forward-port.txt"));
        let lab = f.iter().find(|z| z.name == "labapp").unwrap();
        assert_eq!(lab.rich_rules.len(), 1, "{lab:?}");
        assert!(lab.rich_rules[0].contains("forward-port port=\"16379\""));
        let text = "public (default, active)\n  target: default\n  interfaces: eth0\n  \
                    forward-ports: \n\tport=80:proto=tcp:toport=8080:toaddr=\n  \
                    rich rules: \n";
        let z = &parse_zones(text)[0];
        let f = Firewalld {
            zones: vec![Zone {
                name: "z".into(),
                rich_rules: vec![
                    "rule family=\"ipv4\" source address=\"10.0.0.0/8\" service name=\"redis\" accept".into(),
                    "rule family=\"ipv4\" service name=\"http\" accept".into(),
                ],
                ..Zone::default()
            }],
            services: vec![parse_service("redis", "f", REDIS)],
            ..Firewalld::default()
        };
        let line = f.explain(&f.zones[0], 6379, "tcp");
        assert!(line.contains("service name=\"redis\""), "{line}");
        assert!(!line.contains("http"), "{line}");
        assert!(z.active);
        assert_eq!(z.interfaces, vec!["eth0"]);
        assert_eq!(
            z.forward_ports,
            vec!["port=80:proto=tcp:toport=8080:toaddr="]
        );
    }

    #[test]
    fn not_running_garbage_and_includes() {
        assert_eq!(parse("not running\n").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        assert!(parse("\u{1b}[31mhello\n").is_err());
        assert!(parse("running\n### default public\n").is_err());
        let s = parse_service(
            "x",
            "/etc/firewalld/services/x.xml",
            "<service><port port='80' protocol='tcp'/><port protocol=\"udp\" port=\"1000-1010\"/>\
             <protocol value=\"gre\"/><include service=\"https\"/><port/><port protocol=\"tcp\"",
        );
        assert_eq!(s.ports, vec!["80/tcp", "1000-1010/udp"]);
        assert_eq!(s.protocols, vec!["gre"]);
        assert_eq!(s.includes, vec!["https"]);
        assert!(port_spec_has("1000-1010/udp", 1005, "udp"));
        assert!(!port_spec_has("1000-1010/udp", 1005, "tcp"));
        assert!(!port_spec_has("x/tcp", 1, "tcp"));
        let f = Firewalld {
            services: vec![s],
            ..Firewalld::default()
        };
        assert_eq!(
            f.service_ports("x"),
            vec![
                ("x".to_string(), Some("80/tcp".to_string())),
                ("x".to_string(), Some("1000-1010/udp".to_string())),
                ("https".to_string(), None),
            ]
        );
    }
}
