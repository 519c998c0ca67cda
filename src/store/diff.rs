//! Drift between two snapshots: findings new and resolved, and per host the listening ports
//! opened and closed, firewall rules added and removed, and fail2ban bans added and removed.
//!
//! States are compared as JSON, walked by the key names `crate::state::HostState` serializes
//! (`listeners`, `firewall.rules`, `fail2ban.jails[].banned`, each part wrapped as
//! `{"status": "ok", "value": ...}`), so old history stays readable when the types grow. A part
//! that was not collected in either snapshot is not compared (a host that could not be read is
//! not a host whose ports all closed); the diff says so in its notes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{HostSnapshot, Snapshot, SnapshotMeta, rfc3339};
use crate::posture::Finding;
use crate::sanitize::clean_line;

/// Which snapshot to compare the latest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The one before the latest.
    Previous,
    /// The newest snapshot taken at least this many seconds ago.
    Ago(u64),
    /// A snapshot by ID.
    Snapshot(i64),
}

/// A `--since` value that is neither a duration nor a snapshot ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--since {value:?}: {reason}; give a duration such as 30m, 1h, 2d, 1w or 1h30m, or a snapshot ID such as 42 or #42"
)]
pub struct SinceError {
    pub value: String,
    pub reason: String,
}

/// Parses `--since`: a duration (`45s`, `30m`, `1h`, `2d`, `1w`, combinable as `1h30m`) or a
/// snapshot ID (`42`, `#42`).
pub fn parse_since(s: &str) -> Result<Since, SinceError> {
    let err = |reason: &str| SinceError {
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err("empty"));
    }
    let id = t.strip_prefix('#').unwrap_or(t);
    if id.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = id.parse().map_err(|_| err("snapshot ID too large"))?;
        return Ok(Since::Snapshot(n));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(err(&format!("unknown unit {c:?}"))),
        };
        if digits.is_empty() {
            return Err(err(&format!("unit {c:?} without a number")));
        }
        let n: u64 = digits.parse().map_err(|_| err("number too large"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("duration too large"))?;
    }
    if !digits.is_empty() {
        return Err(err("a number needs a unit (s, m, h, d, w)"));
    }
    if total == 0 {
        return Err(err("the duration is zero"));
    }
    Ok(Since::Ago(total))
}

/// What changed on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostDiff {
    pub host: String,
    pub ports_opened: Vec<String>,
    pub ports_closed: Vec<String>,
    pub rules_added: Vec<String>,
    pub rules_removed: Vec<String>,
    pub bans_added: Vec<String>,
    pub bans_removed: Vec<String>,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

impl HostDiff {
    /// True when nothing changed and nothing needs saying.
    pub fn is_empty(&self) -> bool {
        self.ports_opened.is_empty()
            && self.ports_closed.is_empty()
            && self.rules_added.is_empty()
            && self.rules_removed.is_empty()
            && self.bans_added.is_empty()
            && self.bans_removed.is_empty()
            && self.notes.is_empty()
    }
}

/// Everything that changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub from: SnapshotMeta,
    pub to: SnapshotMeta,
    pub findings_new: Vec<Finding>,
    pub findings_resolved: Vec<Finding>,
    pub hosts_added: Vec<String>,
    pub hosts_removed: Vec<String>,
    /// Only hosts with a change or a note.
    pub hosts: Vec<HostDiff>,
}

impl Diff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.findings_new.is_empty()
            && self.findings_resolved.is_empty()
            && self.hosts_added.is_empty()
            && self.hosts_removed.is_empty()
            && self.hosts.iter().all(|h| h.is_empty())
    }

    /// The diff as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|mut s| {
            s.push('\n');
            s
        })
    }

    /// The diff for a terminal (no colour; every value is one sanitized line).
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let head = |m: &SnapshotMeta| {
            format!(
                "snapshot {} ({}, {})",
                m.id,
                rfc3339(m.taken_at),
                m.source.as_str()
            )
        };
        o.push_str(&format!(
            "Changes from {} to {}\n",
            head(&self.from),
            head(&self.to)
        ));
        if self.is_empty() {
            o.push_str("No changes.\n");
            return o;
        }
        let list = |o: &mut String, title: &str, mark: char, items: &[String]| {
            if !items.is_empty() {
                o.push_str(&format!("  {title} ({}):\n", items.len()));
                for i in items {
                    o.push_str(&format!("    {mark} {}\n", clean_line(i)));
                }
            }
        };
        let finding = |f: &Finding| {
            format!(
                "{} {} {}: {}{}",
                f.severity.as_str().to_ascii_uppercase(),
                f.check,
                f.host,
                f.title,
                if f.is_waived() { " (waived)" } else { "" }
            )
        };
        if !self.findings_new.is_empty() || !self.findings_resolved.is_empty() {
            o.push_str("findings:\n");
            let new: Vec<String> = self.findings_new.iter().map(finding).collect();
            let gone: Vec<String> = self.findings_resolved.iter().map(finding).collect();
            list(&mut o, "new", '+', &new);
            list(&mut o, "resolved", '-', &gone);
        }
        if !self.hosts_added.is_empty() || !self.hosts_removed.is_empty() {
            o.push_str("hosts:\n");
            list(&mut o, "added", '+', &self.hosts_added);
            list(&mut o, "removed", '-', &self.hosts_removed);
        }
        for h in self.hosts.iter().filter(|h| !h.is_empty()) {
            o.push_str(&format!("{}:\n", clean_line(&h.host)));
            list(&mut o, "ports opened", '+', &h.ports_opened);
            list(&mut o, "ports closed", '-', &h.ports_closed);
            list(&mut o, "firewall rules added", '+', &h.rules_added);
            list(&mut o, "firewall rules removed", '-', &h.rules_removed);
            list(&mut o, "bans added", '+', &h.bans_added);
            list(&mut o, "bans removed", '-', &h.bans_removed);
            for n in &h.notes {
                o.push_str(&format!("  note: {}\n", clean_line(n)));
            }
        }
        o
    }
}

/// Compares two snapshots (`a` older, `b` newer).
pub fn diff_snapshots(a: &Snapshot, b: &Snapshot) -> Diff {
    fn keys(s: &Snapshot) -> BTreeMap<String, &Finding> {
        s.findings.iter().map(|f| (f.key(), f)).collect()
    }
    let (ka, kb) = (keys(a), keys(b));
    let findings_new = kb
        .iter()
        .filter(|(k, _)| !ka.contains_key(*k))
        .map(|(_, f)| (*f).clone())
        .collect();
    let findings_resolved = ka
        .iter()
        .filter(|(k, _)| !kb.contains_key(*k))
        .map(|(_, f)| (*f).clone())
        .collect();

    let ha: BTreeMap<&str, &HostSnapshot> = a.hosts.iter().map(|h| (h.host.as_str(), h)).collect();
    let hb: BTreeMap<&str, &HostSnapshot> = b.hosts.iter().map(|h| (h.host.as_str(), h)).collect();
    let hosts_added = hb
        .keys()
        .filter(|h| !ha.contains_key(*h))
        .map(|h| h.to_string())
        .collect();
    let hosts_removed = ha
        .keys()
        .filter(|h| !hb.contains_key(*h))
        .map(|h| h.to_string())
        .collect();
    let mut hosts = Vec::new();
    for (name, old) in &ha {
        let Some(new) = hb.get(name) else { continue };
        let d = host_diff(name, old, new, a.meta.id, b.meta.id);
        if !d.is_empty() {
            hosts.push(d);
        }
    }
    Diff {
        from: a.meta.clone(),
        to: b.meta.clone(),
        findings_new,
        findings_resolved,
        hosts_added,
        hosts_removed,
        hosts,
    }
}

/// A part of the state if it was collected: `{"status": "ok", "value": V}` gives `V`; a value
/// without a status wrapper is taken as it is; anything else is why it cannot be compared.
fn part<'a>(state: &'a Value, key: &str) -> Result<&'a Value, String> {
    let Some(v) = state.get(key) else {
        return Err("absent".to_string());
    };
    match v.get("status").and_then(Value::as_str) {
        Some("ok") => v.get("value").ok_or_else(|| "no value".to_string()),
        Some(other) => {
            let detail = v
                .get("value")
                .and_then(|x| x.get("message").or_else(|| x.get("tool")))
                .and_then(Value::as_str)
                .unwrap_or("");
            Err(if detail.is_empty() {
                other.replace('_', " ")
            } else {
                format!("{}: {detail}", other.replace('_', " "))
            })
        }
        None if v.is_null() => Err("absent".to_string()),
        None => Ok(v),
    }
}

/// Compares one kind of item set between two states; notes when it cannot.
#[allow(clippy::too_many_arguments)]
fn compare(
    notes: &mut Vec<String>,
    what: &str,
    key: &str,
    old: &Value,
    new: &Value,
    ids: (i64, i64),
    items: fn(&Value) -> BTreeMap<String, String>,
    added: &mut Vec<String>,
    removed: &mut Vec<String>,
) {
    match (part(old, key), part(new, key)) {
        (Ok(a), Ok(b)) => {
            let (a, b) = (items(a), items(b));
            added.extend(
                b.iter()
                    .filter(|(k, _)| !a.contains_key(*k))
                    .map(|(_, v)| v.clone()),
            );
            removed.extend(
                a.iter()
                    .filter(|(k, _)| !b.contains_key(*k))
                    .map(|(_, v)| v.clone()),
            );
        }
        (Err(e), _) => notes.push(format!(
            "{what} not compared: not collected in snapshot {} ({e})",
            ids.0
        )),
        (_, Err(e)) => notes.push(format!(
            "{what} not compared: not collected in snapshot {} ({e})",
            ids.1
        )),
    }
}

fn host_diff(name: &str, a: &HostSnapshot, b: &HostSnapshot, ida: i64, idb: i64) -> HostDiff {
    let mut d = HostDiff {
        host: name.to_string(),
        ..HostDiff::default()
    };
    if !a.reachable || !b.reachable {
        let which = match (a.reachable, b.reachable) {
            (false, false) => format!("snapshots {ida} and {idb}"),
            (false, true) => format!("snapshot {ida}"),
            _ => format!("snapshot {idb}"),
        };
        d.notes
            .push(format!("not compared: the host was unreachable in {which}"));
        return d;
    }
    let ids = (ida, idb);
    compare(
        &mut d.notes,
        "listening ports",
        "listeners",
        &a.state,
        &b.state,
        ids,
        listeners,
        &mut d.ports_opened,
        &mut d.ports_closed,
    );
    compare(
        &mut d.notes,
        "firewall rules",
        "firewall",
        &a.state,
        &b.state,
        ids,
        rules,
        &mut d.rules_added,
        &mut d.rules_removed,
    );
    compare(
        &mut d.notes,
        "bans",
        "fail2ban",
        &a.state,
        &b.state,
        ids,
        bans,
        &mut d.bans_added,
        &mut d.bans_removed,
    );
    d
}

/// A JSON scalar as text; a one-key object (`{"other": "gre"}`) as its value.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.len() == 1 => o.values().next().map(scalar).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Listening sockets keyed by protocol, address, interface and port (not by process: a
/// restarted daemon has a new pid but opened nothing).
fn listeners(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in v.as_array().into_iter().flatten() {
        let proto = l.get("protocol").map(scalar).unwrap_or_default();
        let addr = match l.get("address").map(scalar) {
            Some(a) if !a.is_empty() => a,
            _ => "*".to_string(),
        };
        let addr = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr
        };
        let iface = l
            .get("interface")
            .map(scalar)
            .filter(|i| !i.is_empty())
            .map(|i| format!("%{i}"))
            .unwrap_or_default();
        let port = l.get("port").map(scalar).unwrap_or_default();
        let key = format!("{port}/{proto} {addr}{iface}");
        let procs: BTreeSet<String> = l
            .get("processes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        let label = if procs.is_empty() {
            key.clone()
        } else {
            format!(
                "{key} ({})",
                procs.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        out.insert(key, label);
    }
    out
}

/// Firewall rules keyed by everything but their position (line, handle): inserting a rule
/// above others moves them without changing them.
fn rules(fw: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in fw
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut ident = r.clone();
        if let Some(origin) = ident.get_mut("origin").and_then(Value::as_object_mut) {
            origin.remove("line");
            origin.remove("handle");
        }
        let key = ident.to_string();
        out.insert(key, rule_label(r));
    }
    out
}

fn ports(v: Option<&Value>) -> Option<String> {
    let v = v?;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("any");
    if kind == "any" {
        return None;
    }
    let ranges: Vec<String> = v
        .get("ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let first = r.get("first").map(scalar).unwrap_or_default();
            let last = r.get("last").map(scalar).unwrap_or_default();
            if first == last {
                first
            } else {
                format!("{first}-{last}")
            }
        })
        .collect();
    let neg = if kind == "except" { "!" } else { "" };
    Some(format!("{neg}{}", ranges.join(",")))
}

/// `in accept tcp dport 22 from 10.77.9.0/24 iif eth0 (ufw: iptables-nft filter/ufw-user-input)`.
fn rule_label(r: &Value) -> String {
    let mut parts = Vec::new();
    let field = |k: &str| r.get(k).map(scalar).filter(|s| !s.is_empty());
    if let Some(d) = field("direction") {
        parts.push(d);
    }
    let action = r.get("action");
    let kind = action
        .and_then(|a| a.get("kind"))
        .map(scalar)
        .or_else(|| action.map(scalar))
        .unwrap_or_default();
    match action.and_then(|a| a.get("chain")).map(scalar) {
        Some(chain) if !chain.is_empty() => parts.push(format!("{kind} {chain}")),
        _ => parts.push(kind),
    }
    if let Some(p) = field("protocol") {
        parts.push(p);
    }
    if let Some(p) = ports(r.get("dports")) {
        parts.push(format!("dport {p}"));
    }
    let list = |k: &str| -> Vec<String> {
        r.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(scalar)
            .collect()
    };
    let sources = list("sources");
    if !sources.is_empty() {
        let neg = if r.get("sources_negated").and_then(Value::as_bool) == Some(true) {
            "!"
        } else {
            ""
        };
        parts.push(format!("from {neg}{}", sources.join(",")));
    }
    if let Some(i) = r.get("interface").filter(|i| !i.is_null()) {
        let neg = if i.get("negated").and_then(Value::as_bool) == Some(true) {
            "!"
        } else {
            ""
        };
        parts.push(format!(
            "iif {neg}{}",
            i.get("name").map(scalar).unwrap_or_default()
        ));
    }
    if let Some(c) = field("comment") {
        parts.push(format!("\"{c}\""));
    }
    let origin = r.get("origin");
    let o = |k: &str| {
        origin
            .and_then(|x| x.get(k))
            .map(scalar)
            .unwrap_or_default()
    };
    let manager = field("manager").unwrap_or_default();
    parts.push(format!(
        "({manager}: {} {}/{})",
        o("backend"),
        o("table"),
        o("chain")
    ));
    parts.join(" ")
}

/// Banned addresses per jail, as `jail: address`.
fn bans(f2b: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for j in f2b
        .get("jails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let jail = j.get("name").map(scalar).unwrap_or_default();
        for ip in j
            .get("banned")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let s = format!("{jail}: {}", scalar(ip));
            out.insert(s.clone(), s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values() {
        assert_eq!(parse_since("30m"), Ok(Since::Ago(1800)));
        assert_eq!(parse_since("1h"), Ok(Since::Ago(3600)));
        assert_eq!(parse_since("2d"), Ok(Since::Ago(172_800)));
        assert_eq!(parse_since("1w"), Ok(Since::Ago(604_800)));
        assert_eq!(parse_since("1h30m"), Ok(Since::Ago(5400)));
        assert_eq!(parse_since("45s"), Ok(Since::Ago(45)));
        assert_eq!(parse_since("42"), Ok(Since::Snapshot(42)));
        assert_eq!(parse_since("#7"), Ok(Since::Snapshot(7)));
        for bad in [
            "",
            "h",
            "1x",
            "30",
            "1h30",
            "0m",
            "-1h",
            "1.5h",
            "99999999999999999999d",
            "#",
        ] {
            let r = parse_since(bad);
            // "30" is a snapshot ID, not an error.
            if bad == "30" {
                assert_eq!(r, Ok(Since::Snapshot(30)));
                continue;
            }
            let e = r.expect_err(bad);
            assert!(e.to_string().contains("give a duration"), "{e}");
        }
    }

    #[test]
    fn rule_labels_read_well() {
        let r = serde_json::json!({
            "direction": "in", "action": {"kind": "accept"}, "protocol": "tcp",
            "dports": {"kind": "only", "ranges": [{"first": 22, "last": 22}, {"first": 8000, "last": 8100}]},
            "sources": ["10.77.9.0/24"], "sources_negated": false,
            "interface": {"name": "eth0", "negated": true}, "comment": "admin",
            "manager": "ufw",
            "origin": {"backend": "iptables_nft", "table": "filter", "chain": "ufw-user-input", "line": 12, "handle": null}
        });
        assert_eq!(
            rule_label(&r),
            "in accept tcp dport 22,8000-8100 from 10.77.9.0/24 iif !eth0 \"admin\" (ufw: iptables_nft filter/ufw-user-input)"
        );
    }
}
