//! nftables: `nft -j list ruleset` (JSON schema 1, with named and anonymous sets, verdict
//! maps and service names), normalized into `crate::state` chains and rules. Pure: no I/O.
//!
//! Only chains of type `filter` are kept (nat and route chains decide no admission).
//! Matches the model cannot express are kept verbatim in `Rule::unmodelled`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::model::{
    Action, AddrType, Backend, Chain, CtState, Direction, Family, Hook, InterfaceMatch, Manager,
    NatTo, Negatable, Origin, PortRange, PortSet, Protocol, Rule,
};
use crate::collect::{ParseError, check_size, clean, service_port};

const WHAT: &str = "nft -j list ruleset";

/// The most elements of one set copied into a rule's conditions.
const MAX_SET_ELEMENTS: usize = 65_536;

/// A parsed ruleset: tables, chains, sets and rules in output order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub version: Option<String>,
    pub tables: Vec<(String, String)>,
    pub chains: Vec<NftChain>,
    pub sets: Vec<NftSet>,
    pub rules: Vec<NftRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NftChain {
    pub family: String,
    pub table: String,
    pub name: String,
    pub kind: Option<String>,
    pub hook: Option<String>,
    pub prio: i32,
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NftSet {
    pub family: String,
    pub table: String,
    pub name: String,
    pub elements: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NftRule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub comment: Option<String>,
    pub expr: Vec<Value>,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(clean)
        .unwrap_or_default()
}

/// Parses the JSON printed by `nft -j list ruleset`.
pub fn parse(text: &str) -> Result<Ruleset, ParseError> {
    check_size(WHAT, text)?;
    if text.trim().is_empty() {
        return Ok(Ruleset::default());
    }
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| ParseError::new(WHAT, e.line(), format!("not JSON: {e}")))?;
    let items = v
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::new(WHAT, 0, "no top-level \"nftables\" array"))?;
    let mut rs = Ruleset::default();
    for item in items {
        if let Some(m) = item.get("metainfo") {
            rs.version = m.get("version").and_then(Value::as_str).map(clean);
        } else if let Some(t) = item.get("table") {
            rs.tables.push((s(t, "family"), s(t, "name")));
        } else if let Some(c) = item.get("chain") {
            rs.chains.push(NftChain {
                family: s(c, "family"),
                table: s(c, "table"),
                name: s(c, "name"),
                kind: c.get("type").and_then(Value::as_str).map(clean),
                hook: c.get("hook").and_then(Value::as_str).map(clean),
                prio: c
                    .get("prio")
                    .and_then(Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(0),
                policy: c.get("policy").and_then(Value::as_str).map(clean),
            });
        } else if let Some(st) = item.get("set").or_else(|| item.get("map")) {
            rs.sets.push(NftSet {
                family: s(st, "family"),
                table: s(st, "table"),
                name: s(st, "name"),
                elements: st
                    .get("elem")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            });
        } else if let Some(r) = item.get("rule") {
            rs.rules.push(NftRule {
                family: s(r, "family"),
                table: s(r, "table"),
                chain: s(r, "chain"),
                handle: r.get("handle").and_then(Value::as_u64),
                comment: r.get("comment").and_then(Value::as_str).map(clean),
                expr: r
                    .get("expr")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
    }
    Ok(rs)
}

fn family_of(f: &str) -> Family {
    match f {
        "ip" => Family::V4,
        "ip6" => Family::V6,
        _ => Family::Any,
    }
}

fn hook_of(h: &str) -> Option<Hook> {
    Some(match h {
        "ingress" => Hook::Ingress,
        "prerouting" => Hook::Prerouting,
        "input" => Hook::Input,
        "forward" => Hook::Forward,
        "output" => Hook::Output,
        "postrouting" => Hook::Postrouting,
        _ => return None,
    })
}

/// "inet filter": how a table is named in origins and chains.
pub fn table_label(family: &str, table: &str) -> String {
    format!("{family} {table}")
}

/// Unwraps `{"elem": {"val": X, ...}}` set elements.
fn elem_value(v: &Value) -> &Value {
    v.get("elem").and_then(|e| e.get("val")).unwrap_or(v)
}

struct Ctx<'a> {
    rs: &'a Ruleset,
    family: &'a str,
    table: &'a str,
}

impl Ctx<'_> {
    /// The values a match's right side stands for: set references resolved, anonymous
    /// sets flattened. Empty when a named set is larger than the model keeps (the match
    /// is then unmodelled), so many rules naming one huge set cannot multiply memory.
    fn values(&self, right: &Value) -> Vec<Value> {
        let v = self.values_unbounded(right);
        if v.len() > MAX_SET_ELEMENTS {
            Vec::new()
        } else {
            v
        }
    }

    fn values_unbounded(&self, right: &Value) -> Vec<Value> {
        match right {
            Value::String(name) if name.starts_with('@') => {
                let name = &name[1..];
                self.rs
                    .sets
                    .iter()
                    .find(|s| s.family == self.family && s.table == self.table && s.name == name)
                    .map(|s| s.elements.iter().map(|e| elem_value(e).clone()).collect())
                    .unwrap_or_default()
            }
            Value::Object(o) if o.contains_key("set") => o
                .get("set")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|e| elem_value(e).clone()).collect())
                .unwrap_or_default(),
            other => vec![other.clone()],
        }
    }

    fn is_empty_set(&self, right: &Value) -> bool {
        match right {
            Value::String(name) if name.starts_with('@') => self.rs.sets.iter().any(|s| {
                s.family == self.family
                    && s.table == self.table
                    && s.name == name[1..]
                    && s.elements.is_empty()
            }),
            _ => false,
        }
    }

    fn is_missing_set(&self, right: &Value) -> bool {
        match right {
            Value::String(name) if name.starts_with('@') => {
                !self.rs.sets.iter().any(|s| {
                    s.family == self.family && s.table == self.table && s.name == name[1..]
                })
            }
            _ => false,
        }
    }
}

fn port_range(v: &Value) -> Option<PortRange> {
    let one = |v: &Value| -> Option<u16> {
        match v {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.parse().ok().or_else(|| service_port(s)),
            _ => None,
        }
    };
    match v.get("range").and_then(Value::as_array) {
        Some(r) if r.len() == 2 => Some(PortRange::new(one(&r[0])?, one(&r[1])?)),
        Some(_) => None,
        None => one(v).map(PortRange::single),
    }
}

fn net(v: &Value) -> Option<IpNet> {
    match v {
        Value::String(s) => s.parse::<IpAddr>().ok().map(IpNet::from),
        Value::Object(o) => {
            let p = o.get("prefix")?;
            let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
            let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
            IpNet::new(addr, len).ok()
        }
        _ => None,
    }
}

fn ct_state(v: &Value) -> Option<CtState> {
    Some(match v.as_str()? {
        "new" => CtState::New,
        "established" => CtState::Established,
        "related" => CtState::Related,
        "invalid" => CtState::Invalid,
        "untracked" => CtState::Untracked,
        _ => return None,
    })
}

fn addr_type(v: &Value) -> AddrType {
    match v.as_str().unwrap_or_default() {
        "local" => AddrType::Local,
        "unicast" => AddrType::Unicast,
        "broadcast" => AddrType::Broadcast,
        "multicast" => AddrType::Multicast,
        "anycast" => AddrType::Anycast,
        _ => AddrType::Other,
    }
}

/// Short text of an expression for `unmodelled`, bounded.
fn expr_text(v: &Value) -> String {
    let mut t = clean(&v.to_string());
    if t.len() > 200 {
        let mut cut = 200;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push('…');
    }
    t
}

/// A verdict map of one rule: its key, (element keys, verdict) pairs, and its text.
type VerdictMap = (Key, Vec<(Vec<Value>, Action)>, String);

/// What a match's left side refers to.
enum Key {
    Dport(Protocol),
    Sport(Protocol),
    Saddr(Family),
    Daddr(Family),
    L4proto,
    Nfproto,
    Iif,
    Oif,
    CtState,
    /// `ct original proto-dst`: the port before any DNAT.
    CtOrigDport,
    /// `ct status`: only its `dnat`/`snat` bits are modelled (conntrack's DNAT/SNAT
    /// states, as iptables' `--ctstate DNAT` reads them).
    CtStatus,
    FibDaddrType,
    TcpFlags,
    Other,
}

fn key_of(left: &Value) -> Key {
    if let Some(p) = left.get("payload") {
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let field = p.get("field").and_then(Value::as_str).unwrap_or_default();
        return match (proto, field) {
            ("tcp" | "udp" | "sctp" | "dccp" | "th", "dport") => {
                Key::Dport(Protocol::from_name(proto))
            }
            ("tcp" | "udp" | "sctp" | "dccp" | "th", "sport") => {
                Key::Sport(Protocol::from_name(proto))
            }
            ("ip", "saddr") => Key::Saddr(Family::V4),
            ("ip6", "saddr") => Key::Saddr(Family::V6),
            ("ip", "daddr") => Key::Daddr(Family::V4),
            ("ip6", "daddr") => Key::Daddr(Family::V6),
            ("ip", "protocol") | ("ip6", "nexthdr") => Key::L4proto,
            ("tcp", "flags") => Key::TcpFlags,
            _ => Key::Other,
        };
    }
    if let Some(m) = left.get("meta") {
        return match m.get("key").and_then(Value::as_str).unwrap_or_default() {
            "l4proto" => Key::L4proto,
            "nfproto" => Key::Nfproto,
            "iif" | "iifname" => Key::Iif,
            "oif" | "oifname" => Key::Oif,
            _ => Key::Other,
        };
    }
    if let Some(ct) = left.get("ct") {
        let key = ct.get("key").and_then(Value::as_str);
        if key == Some("proto-dst") && ct.get("dir").and_then(Value::as_str) == Some("original") {
            return Key::CtOrigDport;
        }
        return match key {
            Some("state") => Key::CtState,
            Some("status") => Key::CtStatus,
            _ => Key::Other,
        };
    }
    if let Some(f) = left.get("fib") {
        let result = f.get("result").and_then(Value::as_str);
        let daddr = f
            .get("flags")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("daddr")));
        // `fib daddr . iif type local` asks about the arrival interface only: not modelled.
        let iif = f
            .get("flags")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some("iif")));
        if result == Some("type") && daddr && !iif {
            return Key::FibDaddrType;
        }
    }
    Key::Other
}

/// Applies one `key op values` condition to a rule; false when not expressible.
fn apply_match(rule: &mut Rule, key: &Key, negated: bool, values: &[Value]) -> bool {
    if values.is_empty() {
        return false;
    }
    match key {
        Key::Dport(p) | Key::Sport(p) => {
            let ranges: Option<Vec<PortRange>> = values.iter().map(port_range).collect();
            let Some(ranges) = ranges else { return false };
            if *p != Protocol::Other("th".into()) {
                rule.protocol = Some(p.clone());
            }
            let set = if negated {
                PortSet::Except(ranges)
            } else {
                PortSet::Only(ranges)
            };
            if matches!(key, Key::Dport(_)) {
                rule.dports = set;
            } else {
                rule.sports = set;
            }
            true
        }
        Key::CtOrigDport => {
            let ranges: Option<Vec<PortRange>> = values.iter().map(port_range).collect();
            let Some(ranges) = ranges else { return false };
            rule.ct_orig_dports = if negated {
                PortSet::Except(ranges)
            } else {
                PortSet::Only(ranges)
            };
            true
        }
        Key::Saddr(f) | Key::Daddr(f) => {
            let nets: Option<Vec<IpNet>> = values.iter().map(net).collect();
            let Some(nets) = nets else { return false };
            rule.family = *f;
            if matches!(key, Key::Saddr(_)) {
                rule.sources = nets;
                rule.sources_negated = negated;
            } else {
                rule.destinations = nets;
                rule.destinations_negated = negated;
            }
            true
        }
        Key::L4proto => {
            if negated || values.len() != 1 {
                // A set of protocols: keep as unmodelled unless all are ICMP-ish, which
                // never matter to TCP/UDP questions.
                let icmp_only = !negated
                    && values.iter().all(|v| {
                        matches!(v.as_str(), Some("icmp" | "ipv6-icmp" | "icmpv6"))
                            || v.as_u64().is_some_and(|n| n == 1 || n == 58)
                    });
                if icmp_only {
                    rule.protocol = Some(Protocol::Icmp);
                    return true;
                }
                return false;
            }
            let name = match &values[0] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return false,
            };
            rule.protocol = Some(Protocol::from_name(&name));
            true
        }
        Key::Nfproto => match values.first().and_then(Value::as_str) {
            Some("ipv4") if !negated => {
                rule.family = Family::V4;
                true
            }
            Some("ipv6") if !negated => {
                rule.family = Family::V6;
                true
            }
            _ => false,
        },
        Key::Iif | Key::Oif => {
            let Some(name) = values.first().and_then(Value::as_str) else {
                return false;
            };
            if values.len() != 1 {
                return false;
            }
            let m = InterfaceMatch {
                name: clean(name),
                negated,
            };
            if matches!(key, Key::Iif) {
                rule.interface = Some(m);
            } else {
                rule.out_interface = Some(m);
            }
            true
        }
        Key::CtState => {
            let states: Vec<CtState> = values
                .iter()
                .flat_map(|v| match v {
                    Value::Array(a) => a.iter().filter_map(ct_state).collect::<Vec<_>>(),
                    other => ct_state(other).into_iter().collect(),
                })
                .collect();
            if states.is_empty() {
                return false;
            }
            rule.ct_states = Some(Negatable::new(states, negated));
            true
        }
        Key::CtStatus => {
            // One condition on conntrack's state already: the model holds one.
            if rule.ct_states.is_some() {
                return false;
            }
            let mut states = Vec::new();
            for v in values {
                let flags: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for f in flags {
                    match f.as_str() {
                        Some("dnat") => states.push(CtState::Dnat),
                        Some("snat") => states.push(CtState::Snat),
                        _ => return false,
                    }
                }
            }
            if states.is_empty() {
                return false;
            }
            rule.ct_states = Some(Negatable::new(states, negated));
            true
        }
        Key::FibDaddrType => {
            rule.dst_types = Some(Negatable::new(
                values.iter().map(addr_type).collect(),
                negated,
            ));
            true
        }
        Key::TcpFlags => {
            // "tcp flags syn" / "tcp flags & (syn|ack) == syn": a new connection is a SYN.
            let syn_only = values.len() == 1 && values[0].as_str() == Some("syn");
            if syn_only && !negated {
                rule.protocol = Some(Protocol::Tcp);
                return true;
            }
            false
        }
        Key::Other => false,
    }
}

fn verdict(e: &Value) -> Option<Action> {
    let o = e.as_object()?;
    if o.contains_key("accept") {
        Some(Action::Accept)
    } else if o.contains_key("drop") {
        Some(Action::Drop)
    } else if o.contains_key("reject") {
        Some(Action::Reject)
    } else if o.contains_key("return") {
        Some(Action::Return)
    } else if let Some(j) = o.get("jump") {
        Some(Action::Jump(clean(j.get("target")?.as_str()?)))
    } else if let Some(g) = o.get("goto") {
        Some(Action::Goto(clean(g.get("target")?.as_str()?)))
    } else if o.contains_key("continue") {
        Some(Action::Continue)
    } else if o.contains_key("queue") {
        // Userspace decides; from here it looks like acceptance.
        Some(Action::Accept)
    } else if let Some(xt) = o.get("xt") {
        if xt.get("type").and_then(Value::as_str) != Some("target") {
            return None;
        }
        Some(
            match xt.get("name").and_then(Value::as_str).unwrap_or_default() {
                "REJECT" => Action::Reject,
                "LOG" | "NFLOG" => Action::Log,
                _ => Action::Continue,
            },
        )
    } else {
        None
    }
}

/// The layer-4 protocol a payload expression's header implies, if any.
fn header_protocol(left: &Value, family: Family) -> Option<Protocol> {
    if left.get("tcp option").is_some() {
        return Some(Protocol::Tcp);
    }
    let p = left
        .get("payload")
        .or_else(|| left.get("&")?.as_array()?.first()?.get("payload"))
        .or_else(|| left.get("concat")?.as_array()?.first()?.get("payload"))?;
    let name = p.get("protocol")?.as_str()?;
    match name {
        "tcp" | "udp" | "sctp" | "dccp" | "icmp" | "icmpv6" | "udplite" => {
            Some(Protocol::from_name(name))
        }
        // In IPv6 these are extension headers ip6tables finds in front of any upper
        // protocol; only in IPv4 do they name the protocol.
        "ah" | "esp" if family == Family::V4 => Some(Protocol::from_name(name)),
        // iptables names protocol 108 "ipcomp", nft's header is "comp".
        "comp" if family == Family::V4 => Some(Protocol::from_name("ipcomp")),
        _ => None,
    }
}

/// TCP flag names in an nft expression: "syn", ["syn", "ack"] or {"|": [...]}.
fn flag_names(v: &Value, out: &mut Vec<String>) -> Option<()> {
    match v {
        Value::String(f) => out.push(f.to_ascii_lowercase()),
        Value::Array(a) => {
            for x in a {
                flag_names(x, out)?;
            }
        }
        Value::Object(o) => flag_names(o.get("|")?, out)?,
        _ => return None,
    }
    Some(())
}

/// `tcp flags & MASK == COMP` (iptables' `--syn` and `--tcp-flags`), read on a packet
/// carrying SYN alone: whether `(SYN & MASK) == COMP`. `None` when `left` is not a masked
/// tcp flags expression or a flag is unknown.
fn tcp_flags_on_syn(left: &Value, right: &Value) -> Option<bool> {
    let and = left.get("&")?.as_array()?;
    let payload = and.first()?.get("payload")?;
    if payload.get("protocol")?.as_str()? != "tcp" || payload.get("field")?.as_str()? != "flags" {
        return None;
    }
    const KNOWN: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"];
    let mut mask = Vec::new();
    flag_names(and.get(1)?, &mut mask)?;
    let mut comp = Vec::new();
    flag_names(right, &mut comp)?;
    if mask
        .iter()
        .chain(&comp)
        .any(|f| !KNOWN.contains(&f.as_str()))
    {
        return None;
    }
    let seen: Vec<&str> = mask
        .iter()
        .map(String::as_str)
        .filter(|f| *f == "syn")
        .collect();
    let mut want: Vec<&str> = comp
        .iter()
        .map(String::as_str)
        .filter(|f| mask.iter().any(|m| m == f))
        .collect();
    want.dedup();
    Some(seen == want)
}

/// The target of an nft `dnat` statement: `{"addr": "172.17.0.2", "port": 5432}`; `None`
/// when the address is not a plain one (a map, a set, a range the model does not read).
fn nat_to(d: &Value) -> Option<NatTo> {
    let addr = match d.get("addr") {
        None => None,
        Some(Value::String(a)) => Some(a.parse::<IpAddr>().ok()?),
        Some(Value::Object(o)) => {
            let r = o.get("range")?.as_array()?;
            Some(r.first()?.as_str()?.parse::<IpAddr>().ok()?)
        }
        Some(_) => return None,
    };
    let ports = match d.get("port") {
        None => None,
        Some(p) => Some(port_range(p)?),
    };
    Some(NatTo { addr, ports })
}

/// Normalizes every filter chain of the ruleset, except the tables named in `skip`
/// (`(family, table)`, e.g. the ones iptables-nft-save already covered).
pub fn normalize(rs: &Ruleset, skip: &[(String, String)], base: usize) -> (Vec<Chain>, Vec<Rule>) {
    let skipped = |f: &str, t: &str| skip.iter().any(|(sf, st)| sf == f && st == t);
    let mut chains: Vec<Chain> = Vec::new();
    let mut key: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for c in &rs.chains {
        if skipped(&c.family, &c.table) || matches!(c.family.as_str(), "arp" | "bridge") {
            continue;
        }
        // Route chains and nat chains off prerouting are left out (they decide no
        // admission); nat prerouting chains carry DNAT and REDIRECT; user chains are kept.
        let nat_pre = c.kind.as_deref() == Some("nat") && c.hook.as_deref() == Some("prerouting");
        if c.kind.as_deref().is_some_and(|k| k != "filter") && !nat_pre {
            continue;
        }
        key.insert(
            (c.family.clone(), c.table.clone(), c.name.clone()),
            chains.len(),
        );
        chains.push(Chain {
            backend: Backend::Nftables,
            family: family_of(&c.family),
            table: table_label(&c.family, &c.table),
            name: c.name.clone(),
            hook: c.hook.as_deref().and_then(hook_of),
            priority: c.prio,
            policy: c.policy.as_deref().map(|p| match p {
                "drop" => Action::Drop,
                _ => Action::Accept,
            }),
            rules: Vec::new(),
        });
    }
    let mut rules: Vec<Rule> = Vec::new();
    for r in &rs.rules {
        let Some(&ci) = key.get(&(r.family.clone(), r.table.clone(), r.chain.clone())) else {
            continue;
        };
        let table_name = table_label(&r.family, &r.table);
        let ufw_owned = super::iptables::is_ufw_chain(&r.chain)
            || r.expr.iter().any(|e| {
                ["jump", "goto"].iter().any(|k| {
                    e.get(*k)
                        .and_then(|j| j.get("target"))
                        .and_then(Value::as_str)
                        .is_some_and(super::iptables::is_ufw_chain)
                })
            });
        let manager = if r.table == "firewalld" {
            Manager::Firewalld
        } else if ufw_owned {
            Manager::Ufw
        } else {
            Manager::Nftables
        };
        let origin = Origin {
            backend: Backend::Nftables,
            table: table_name,
            chain: r.chain.clone(),
            line: None,
            handle: r.handle,
        };
        let mut rule = Rule::new(Direction::In, Action::Continue, manager, origin);
        rule.family = family_of(&r.family);
        rule.comment = r.comment.clone();
        let ctx = Ctx {
            rs,
            family: &r.family,
            table: &r.table,
        };
        let mut action: Option<Action> = None;
        let mut logs = false;
        // A verdict map expands into one rule per element.
        let mut vmap: Option<VerdictMap> = None;
        for e in &r.expr {
            if let Some(m) = e.get("match") {
                let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
                let left = m.get("left").unwrap_or(&Value::Null);
                if rule.protocol.is_none()
                    && let Some(p) = header_protocol(left, rule.family)
                {
                    // A transport header field implies its protocol (nft adds the
                    // dependency itself), whether or not the field's test is modelled.
                    rule.protocol = Some(p);
                }
                let right = m.get("right").unwrap_or(&Value::Null);
                let k = key_of(left);
                // `ct state ! invalid`: none of these flags.
                let negated =
                    op == "!=" || (op == "!" && matches!(k, Key::CtState | Key::CtStatus));
                let values = ctx.values(right);
                let known_op = match k {
                    // `ct status dnat` tests a bit ("in"); "==" compares the whole status
                    // word, which also holds bits the model does not know.
                    Key::CtStatus => matches!(op, "in" | "!="),
                    Key::CtState => matches!(op, "==" | "!=" | "in" | "!"),
                    _ => matches!(op, "==" | "!=" | "in"),
                };
                if let Some(hit) = tcp_flags_on_syn(left, right) {
                    // Read on the first packet of a new connection (SYN alone).
                    rule.protocol = Some(Protocol::Tcp);
                    let hit = match op {
                        "==" => Some(hit),
                        "!=" => Some(!hit),
                        _ => None,
                    };
                    match hit {
                        Some(true) => {}
                        Some(false) => rule.ct_states = Some(Negatable::new(Vec::new(), false)),
                        None => rule.unmodelled.push(expr_text(e)),
                    }
                } else if ctx.is_empty_set(right) {
                    // Membership of an empty set never holds ("!=" always does). An empty
                    // state set is how the model says "never matches".
                    if !negated {
                        rule.ct_states = Some(Negatable::new(Vec::new(), false));
                    }
                } else if ctx.is_missing_set(right)
                    || !known_op
                    || !apply_match(&mut rule, &k, negated, &values)
                {
                    rule.unmodelled.push(expr_text(e));
                }
            } else if let Some(l) = e.get("limit") {
                if l.get("inv").and_then(Value::as_bool) == Some(true) {
                    rule.over_rate_only = true;
                } else {
                    rule.under_rate_only = true;
                }
            } else if let Some(v) = e.get("vmap") {
                let k = key_of(v.get("key").unwrap_or(&Value::Null));
                let mut items = Vec::new();
                if let Some(arr) = v
                    .get("data")
                    .and_then(|d| d.get("set"))
                    .and_then(Value::as_array)
                {
                    for pair in arr {
                        let Some(p) = pair.as_array() else { continue };
                        let (Some(k), Some(a)) = (p.first(), p.get(1).and_then(verdict)) else {
                            continue;
                        };
                        let keys = match k {
                            Value::Object(o) if o.contains_key("set") => ctx.values(k),
                            other => vec![other.clone()],
                        };
                        items.push((keys, a));
                    }
                }
                vmap = Some((k, items, expr_text(e)));
            } else if let Some(a) = verdict(e) {
                action = Some(a);
            } else if e.get("log").is_some() {
                logs = true;
            } else if e.get("quota").is_some()
                || e.get("ct count").is_some()
                || ["set", "meter"]
                    .iter()
                    .any(|k| e.get(*k).is_some_and(|s| s.get("stmt").is_some()))
            {
                // Conditions on what came before (bytes so far, connections per source);
                // a set or meter statement with statements of its own (`add @s { ip
                // saddr ct count over 10 }`) is one.
                rule.unmodelled.push(expr_text(e));
            } else if let Some(d) = e.get("dnat") {
                match nat_to(d) {
                    Some(to) => action = Some(Action::Dnat(to)),
                    None => {
                        action = Some(Action::Dnat(NatTo {
                            addr: None,
                            ports: None,
                        }));
                        rule.unmodelled.push(expr_text(e));
                    }
                }
            } else if let Some(d) = e.get("redirect") {
                let port = d.get("port").and_then(port_range);
                action = Some(Action::Redirect(port));
            } else if let Some(xt) = e.get("xt") {
                rule.unmodelled.push(format!(
                    "xt {} {}",
                    xt.get("type").and_then(Value::as_str).unwrap_or("?"),
                    clean(xt.get("name").and_then(Value::as_str).unwrap_or("?"))
                ));
            }
            // counter, meta set, mangle, notrack, nat statements do not decide.
        }
        rule.action = action.unwrap_or(if logs { Action::Log } else { Action::Continue });
        match vmap {
            Some((k, items, text)) => {
                for (keys, a) in items {
                    let mut one = rule.clone();
                    one.action = a;
                    if !apply_match(&mut one, &k, false, &keys) {
                        one.unmodelled.push(text.clone());
                    }
                    chains[ci].rules.push(base + rules.len());
                    rules.push(one);
                }
            }
            None => {
                chains[ci].rules.push(base + rules.len());
                rules.push(rule);
            }
        }
    }
    // Directions: from each base chain's hook through jumps.
    let mut dir: BTreeMap<usize, Direction> = BTreeMap::new();
    let mut order: Vec<usize> = (0..chains.len())
        .filter(|&i| chains[i].hook.is_some())
        .collect();
    order.sort_by_key(|&i| chains[i].hook.map(|h| h.direction()));
    for start in order {
        let d = chains[start].hook.map_or(Direction::In, Hook::direction);
        let mut stack = vec![start];
        while let Some(ci) = stack.pop() {
            if dir.contains_key(&ci) {
                continue;
            }
            dir.insert(ci, d);
            for &ri in &chains[ci].rules {
                if let Some(Action::Jump(t) | Action::Goto(t)) =
                    rules.get(ri - base).map(|r| &r.action)
                    && let Some(ti) = chains
                        .iter()
                        .position(|c| c.table == chains[ci].table && &c.name == t)
                {
                    stack.push(ti);
                }
            }
        }
    }
    for (ci, c) in chains.iter().enumerate() {
        let d = dir.get(&ci).copied().unwrap_or(Direction::In);
        for &ri in &c.rules {
            if let Some(r) = rules.get_mut(ri - base) {
                r.direction = d;
            }
        }
    }
    (chains, rules)
}

/// Tables that look made by iptables-nft (they hold `xt` expressions or carry its names).
pub fn xt_tables(rs: &Ruleset) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &rs.rules {
        if r.expr.iter().any(|e| e.get("xt").is_some()) {
            let k = (r.family.clone(), r.table.clone());
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_and_empty_is_empty() {
        assert!(parse("{").is_err());
        assert!(parse("{\"x\":1}").is_err());
        assert_eq!(parse("").unwrap(), Ruleset::default());
    }

    #[test]
    fn vmap_expands_per_element() {
        let rs = parse(
            r#"{"nftables":[{"table":{"family":"inet","name":"t"}},
            {"chain":{"family":"inet","table":"t","name":"in","type":"filter","hook":"input","prio":0,"policy":"drop"}},
            {"rule":{"family":"inet","table":"t","chain":"in","handle":3,"expr":[{"vmap":{"key":{"payload":{"protocol":"tcp","field":"dport"}},"data":{"set":[[22,{"accept":null}],[{"range":[8000,8080]},{"drop":null}]]}}}]}}]}"#,
        )
        .unwrap();
        let (chains, rules) = normalize(&rs, &[], 0);
        assert_eq!(chains[0].rules.len(), 2);
        assert_eq!(rules[0].action, Action::Accept);
        assert!(rules[1].dports.contains(8042));
    }

    #[test]
    fn ct_status_dnat_is_modelled_and_other_bits_are_not() {
        // firewalld's INPUT: `ct status dnat accept` (from `nft -j list ruleset`, fwd1).
        let rs = parse(
            r#"{"nftables":[{"chain":{"family":"inet","table":"firewalld","name":"filter_INPUT","type":"filter","hook":"input","prio":10,"policy":"accept"}},
            {"rule":{"family":"inet","table":"firewalld","chain":"filter_INPUT","handle":27,"expr":[{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"dnat"}},{"accept":null}]}},
            {"rule":{"family":"inet","table":"firewalld","chain":"filter_INPUT","handle":28,"expr":[{"match":{"op":"in","left":{"ct":{"key":"status"}},"right":"assured"}},{"accept":null}]}}]}"#,
        )
        .unwrap();
        let (_, rules) = normalize(&rs, &[], 0);
        let st = rules[0].ct_states.as_ref().unwrap();
        assert_eq!(
            (st.values.clone(), st.negated),
            (vec![CtState::Dnat], false)
        );
        assert!(rules[0].unmodelled.is_empty());
        assert!(rules[1].ct_states.is_none());
        assert_eq!(rules[1].unmodelled.len(), 1);
    }

    #[test]
    fn empty_named_set_never_matches_and_huge_sets_are_unmodelled() {
        let rs = parse(
            r#"{"nftables":[{"set":{"family":"inet","table":"t","name":"none","type":"ipv4_addr"}},
            {"chain":{"family":"inet","table":"t","name":"in","type":"filter","hook":"input","prio":0,"policy":"accept"}},
            {"rule":{"family":"inet","table":"t","chain":"in","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":"@none"}},{"drop":null}]}}]}"#,
        )
        .unwrap();
        let (_, rules) = normalize(&rs, &[], 0);
        assert!(!rules[0].ct_states.as_ref().unwrap().matches(&CtState::New));
        let big: Vec<Value> = (0..70_000u32).map(|i| Value::from(i % 65536)).collect();
        let ctx_rs = Ruleset {
            sets: vec![NftSet {
                family: "inet".into(),
                table: "t".into(),
                name: "big".into(),
                elements: big,
            }],
            ..Ruleset::default()
        };
        let ctx = Ctx {
            rs: &ctx_rs,
            family: "inet",
            table: "t",
        };
        assert!(ctx.values(&Value::from("@big")).is_empty());
    }
}
