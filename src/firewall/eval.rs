//! The packet-path evaluator: answers "is a new connection from S to address A, port P,
//! protocol X delivered, and where (a local socket, or forwarded to a container or another
//! machine)?" over a [`Firewall`] model, the way netfilter walks it:
//!
//! 1. the prerouting base chains of every table (raw, mangle, nat, nft filter/nat chains),
//!    in priority order: any can drop the packet; the first DNAT or REDIRECT translates it;
//! 2. the routing decision: a (translated) destination among the host's own addresses is
//!    delivered locally, anything else is forwarded on the interface the host's routes give;
//! 3. the INPUT or FORWARD base chains (DOCKER-USER and the like are ordinary jumps).
//!
//! It never drops a condition it does not understand. A rule the question leaves undecided
//! (an unknown interface or destination, an unmodelled match) is an open branch: the
//! evaluator reads it both ways and the packet counts as admitted if any reading delivers
//! it. Past [`MAX_READINGS`] readings it stops and says "admitted", so the model never
//! answers a false "not exposed". Pure: no I/O.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::*;
use crate::state::Facts;

/// How deep jumps may nest before evaluation stops (loops are impossible in a loaded
/// ruleset, but a parsed one can hold anything).
const MAX_JUMP_DEPTH: usize = 32;

/// How many readings of the open branches one question may take before the evaluator
/// gives up and answers "admitted".
pub const MAX_READINGS: usize = 64;

/// What the evaluator knows of the host's own network: its addresses and routes, for the
/// routing decision after prerouting. [`HostNet::unknown`] when facts were not collected:
/// then a DNAT target may be local or not, and both are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNet {
    local: Vec<IpAddr>,
    /// (destination, device), connected networks first.
    routes: Vec<(IpNet, Option<String>)>,
    known: bool,
}

impl HostNet {
    /// Nothing known: every non-loopback destination may or may not be the host's.
    pub fn unknown() -> Self {
        HostNet::default()
    }

    /// The host's addresses and routes from its collected facts (`ip -j addr`, `ip -j
    /// route`). Routes the model cannot read ("unreachable" types, odd names) are skipped.
    pub fn from_facts(facts: &Facts) -> Self {
        let mut net = HostNet::default();
        for i in &facts.interfaces {
            for a in &i.addresses {
                net.local.push(a.addr());
                net.routes.push((a.trunc(), Some(i.name.clone())));
            }
        }
        for r in &facts.routes {
            let dests: Vec<IpNet> = if r.destination == "default" {
                match r.gateway {
                    Some(IpAddr::V6(_)) => vec![IpNet::V6(Default::default())],
                    Some(IpAddr::V4(_)) => vec![IpNet::V4(Default::default())],
                    None => vec![IpNet::V4(Default::default()), IpNet::V6(Default::default())],
                }
            } else if let Ok(n) = r.destination.parse::<IpNet>() {
                vec![n]
            } else if let Ok(a) = r.destination.parse::<IpAddr>() {
                vec![IpNet::from(a)]
            } else {
                continue;
            };
            for d in dests {
                net.routes.push((d, r.device.clone()));
            }
        }
        net.known = !net.local.is_empty();
        net
    }

    /// Whether `ip` is one of the host's addresses; `None` when the host's addresses are
    /// unknown.
    pub fn is_local(&self, ip: IpAddr) -> Option<bool> {
        if ip.is_loopback() {
            return Some(true);
        }
        if !self.known {
            return None;
        }
        Some(self.local.contains(&ip))
    }

    /// The interface the host routes `ip` out of (longest prefix), if known.
    pub fn out_iface(&self, ip: IpAddr) -> Option<&str> {
        self.routes
            .iter()
            .filter(|(n, _)| n.contains(&ip))
            .max_by_key(|(n, _)| n.prefix_len())
            .and_then(|(_, d)| d.as_deref())
    }

    /// For a packet addressed to "one of the host's addresses, unknown which": whether
    /// `nets` holds all of them (`Some(true)`), none (`Some(false)`), or some.
    fn locals_in(&self, nets: &[IpNet], family_of: IpAddr) -> Option<bool> {
        if !self.known {
            return None;
        }
        let same: Vec<&IpAddr> = self
            .local
            .iter()
            .filter(|a| a.is_ipv4() == family_of.is_ipv4() && !a.is_loopback())
            .collect();
        if same.is_empty() {
            return None;
        }
        let inside = same
            .iter()
            .filter(|a| nets.iter().any(|n| n.contains(**a)))
            .count();
        if inside == 0 {
            Some(false)
        } else if inside == same.len() {
            Some(true)
        } else {
            None
        }
    }
}

/// The stage of the packet path a chain is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Prerouting,
    Input,
    Forward,
}

/// The result of evaluating one chain.
enum ChainOutcome {
    Final(Decision, usize),
    /// A DNAT or REDIRECT rule matched (prerouting only).
    Nat(usize),
    /// Fell off the end or hit `return`.
    Continue,
}

/// Whether a condition holds for the packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tri {
    Yes,
    No,
    /// Cannot tell from the packet's description.
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

fn is_loopback_net(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.network().is_loopback() && n.prefix_len() >= 8,
        IpNet::V6(n) => n.prefix_len() == 128 && n.network().is_loopback(),
    }
}

/// A firewall made ready for many questions: chains indexed by name, base chains sorted
/// per stage. Build it once per host and ask it every question.
#[derive(Debug)]
pub struct Evaluator<'a> {
    fw: &'a Firewall,
    net: HostNet,
    index: HashMap<(Backend, &'a str, &'a str), usize>,
    pre: Vec<usize>,
    input: Vec<usize>,
    forward: Vec<usize>,
}

impl<'a> Evaluator<'a> {
    pub fn new(fw: &'a Firewall, net: HostNet) -> Self {
        let mut index = HashMap::with_capacity(fw.chains.len());
        for (i, c) in fw.chains.iter().enumerate() {
            index
                .entry((c.backend, c.table.as_str(), c.name.as_str()))
                .or_insert(i);
        }
        let bases = |hooks: &[Hook]| {
            let mut v: Vec<usize> = (0..fw.chains.len())
                .filter(|&i| fw.chains[i].hook.is_some_and(|h| hooks.contains(&h)))
                .collect();
            v.sort_by_key(|&i| (fw.chains[i].hook, fw.chains[i].priority));
            v
        };
        Evaluator {
            fw,
            net,
            index,
            pre: bases(&[Hook::Ingress, Hook::Prerouting]),
            input: bases(&[Hook::Input]),
            forward: bases(&[Hook::Forward]),
        }
    }

    /// The whole path for one new connection. Open branches are read both ways; the first
    /// reading that delivers the packet is the answer, else the first reading's refusal.
    pub fn evaluate(&self, packet: &Packet) -> Verdict {
        let mut stack: Vec<Vec<bool>> = vec![Vec::new()];
        let mut first: Option<Verdict> = None;
        let mut readings = 0;
        while let Some(prefix) = stack.pop() {
            readings += 1;
            let mut run = Run::new(self, packet, &prefix);
            let mut v = run.go();
            if v.admitted() {
                if readings > 1 {
                    v.assumptions.push(format!(
                        "delivered on reading {readings} of the open branches (the rules \
                         the question leaves undecided, read both ways)"
                    ));
                }
                return v;
            }
            for i in (prefix.len()..run.choices.len()).rev() {
                let mut p = run.choices[..i].to_vec();
                p.push(!run.choices[i]);
                stack.push(p);
            }
            first.get_or_insert(v);
            if readings >= MAX_READINGS && !stack.is_empty() {
                let mut v = first.unwrap_or_else(no_filter);
                v.decision = Decision::Accept;
                v.assumptions.push(format!(
                    "gave up after {MAX_READINGS} readings of the open branches; leaning \
                     towards admitted"
                ));
                return v;
            }
        }
        first.unwrap_or_else(no_filter)
    }
}

fn no_filter() -> Verdict {
    Verdict {
        decision: Decision::Accept,
        decided_by: DecidedBy::NoFilter,
        path: Vec::new(),
        assumptions: Vec::new(),
        route: Vec::new(),
        forwarded: None,
        local_port: None,
    }
}

/// One reading of the path: a fixed choice for each open branch met so far.
struct Run<'e, 'a> {
    ev: &'e Evaluator<'a>,
    pkt: Packet,
    stage: Stage,
    /// Outgoing interface in FORWARD: `None` = not known.
    out_iface: Option<String>,
    /// The packet was sent to the host itself by REDIRECT or a DNAT to a local address.
    local_after_nat: bool,
    /// The destination port the connection was opened to, before any translation.
    orig_port: u16,
    /// Whether conntrack marks the connection DNAT: a prerouting DNAT or REDIRECT changed
    /// its destination (`Unknown`: a REDIRECT without a port, to an address not known).
    dnat: Tri,
    path: Vec<usize>,
    assumptions: Vec<String>,
    /// A rate-limit rule was passed over; an accept after it is a [`Decision::Limit`].
    limited: bool,
    prefix: &'e [bool],
    choices: Vec<bool>,
    /// Chain names entered in the current base chain, for the route text.
    trail: Vec<&'a str>,
}

impl<'e, 'a> Run<'e, 'a> {
    fn new(ev: &'e Evaluator<'a>, packet: &Packet, prefix: &'e [bool]) -> Self {
        let mut pkt = packet.clone();
        let mut assumptions = Vec::new();
        if pkt.iface.is_none()
            && !pkt.src.is_loopback()
            && let Some(i) = ev.net.out_iface(pkt.src)
        {
            // Reverse path: the packet arrives where the host routes its source.
            assumptions.push(format!(
                "assumed the packet arrives on {i}, the interface the host routes {} through",
                pkt.src
            ));
            pkt.iface = Some(i.to_string());
        }
        Run {
            ev,
            pkt,
            stage: Stage::Prerouting,
            out_iface: None,
            local_after_nat: false,
            orig_port: packet.port,
            dnat: Tri::No,
            path: Vec::new(),
            assumptions,
            limited: false,
            prefix,
            choices: Vec::new(),
            trail: Vec::new(),
        }
    }

    fn note(&mut self, s: String) {
        if !self.assumptions.contains(&s) {
            self.assumptions.push(s);
        }
    }

    /// The next open branch: taken from the prefix when replaying, else `default`.
    fn choose(&mut self, default: bool) -> bool {
        let c = self
            .prefix
            .get(self.choices.len())
            .copied()
            .unwrap_or(default);
        self.choices.push(c);
        c
    }

    fn iface_is_loopback(&self) -> bool {
        match &self.pkt.iface {
            Some(i) => i == "lo",
            None => self.pkt.src.is_loopback(),
        }
    }

    fn matches(&mut self, rule: &Rule) -> Tri {
        let p = &self.pkt;
        if !rule.family.covers(p.src) {
            return Tri::No;
        }
        if let Some(proto) = &rule.protocol
            && *proto != p.protocol
        {
            return Tri::No;
        }
        if !rule.dports.is_any() {
            let ported = match &p.protocol {
                Protocol::Tcp | Protocol::Udp | Protocol::Sctp => true,
                Protocol::Other(o) => matches!(o.as_str(), "dccp" | "udplite"),
                _ => false,
            };
            if !(ported && rule.dports.contains(p.port)) {
                return Tri::No;
            }
        }
        let mut unknown = false;
        if !rule.sports.is_any() {
            // The client's source port is unknown (ephemeral).
            unknown = true;
        }
        if !rule.sources.is_empty() {
            let inside = rule.sources.iter().any(|n| n.contains(&p.src));
            if inside == rule.sources_negated {
                return Tri::No;
            }
        }
        if !rule.destinations.is_empty() {
            let d = match p.dst {
                Some(dst) => {
                    let inside = rule.destinations.iter().any(|n| n.contains(&dst));
                    Tri::from_bool(inside != rule.destinations_negated)
                }
                None => {
                    // Outside traffic never targets a loopback address.
                    let all_lo = rule.destinations.iter().all(is_loopback_net);
                    if all_lo && !p.src.is_loopback() {
                        Tri::from_bool(rule.destinations_negated)
                    } else {
                        match self.ev.net.locals_in(&rule.destinations, p.src) {
                            Some(inside) => Tri::from_bool(inside != rule.destinations_negated),
                            None => Tri::Unknown,
                        }
                    }
                }
            };
            match d {
                Tri::No => return Tri::No,
                Tri::Unknown => unknown = true,
                Tri::Yes => {}
            }
        }
        if let Some(m) = &rule.interface {
            let d = match &p.iface {
                Some(i) => Tri::from_bool(m.names(i) != m.negated),
                None if m.is_loopback() => Tri::from_bool(self.iface_is_loopback() != m.negated),
                None if self.iface_is_loopback() => Tri::from_bool(m.names("lo") != m.negated),
                None => Tri::Unknown,
            };
            match d {
                Tri::No => return Tri::No,
                Tri::Unknown => unknown = true,
                Tri::Yes => {}
            }
        }
        if let Some(m) = &rule.out_interface {
            match (self.stage, &self.out_iface) {
                // Before routing and in INPUT there is no output interface; a rule that
                // needs one never matches.
                (Stage::Prerouting | Stage::Input, _) => return Tri::No,
                (Stage::Forward, Some(o)) => {
                    if m.names(o) == m.negated {
                        return Tri::No;
                    }
                }
                (Stage::Forward, None) => unknown = true,
            }
        }
        if let Some(ct) = &rule.ct_states {
            // A new connection is NEW, and DNAT too once prerouting translated it: the
            // condition holds when any of the connection's states is listed.
            let has = |s: CtState| ct.values.contains(&s);
            let listed = if has(CtState::New) {
                Tri::Yes
            } else if has(CtState::Dnat) {
                self.dnat
            } else {
                Tri::No
            };
            match listed {
                Tri::Yes if ct.negated => return Tri::No,
                Tri::No if !ct.negated => return Tri::No,
                Tri::Unknown => unknown = true,
                _ => {}
            }
        }
        if !rule.ct_orig_dports.is_any() {
            let ported = matches!(p.protocol, Protocol::Tcp | Protocol::Udp | Protocol::Sctp);
            if !(ported && rule.ct_orig_dports.contains(self.orig_port)) {
                return Tri::No;
            }
        }
        if let Some(types) = &rule.dst_types {
            let local = match (self.stage, p.dst) {
                (Stage::Forward, _) => Some(false),
                (_, _) if self.local_after_nat => Some(true),
                (_, Some(d)) => self.ev.net.is_local(d),
                // A new connection to the host is addressed to one of its own addresses.
                (_, None) => Some(true),
            };
            let hit = local.map(|local| {
                types.values.iter().any(|v| match v {
                    AddrType::Local => local,
                    AddrType::Unicast => true,
                    _ => false,
                })
            });
            match hit {
                Some(h) if h == types.negated => return Tri::No,
                Some(_) => {}
                None => unknown = true,
            }
        }
        if !rule.unmodelled.is_empty() {
            unknown = true;
        }
        if rule.over_rate_only {
            // A single new connection is under any rate; note that a limit exists.
            if !matches!(rule.action, Action::Accept | Action::Log | Action::Continue) {
                self.limited = true;
            }
            return Tri::No;
        }
        if unknown { Tri::Unknown } else { Tri::Yes }
    }

    /// Resolves an unknown match as an open branch. The first reading leans towards
    /// exposure: allowing, jumping and translating rules match, denying rules do not.
    fn resolve(&mut self, idx: usize, rule: &Rule, t: Tri) -> bool {
        match t {
            Tri::Yes => true,
            Tri::No => false,
            Tri::Unknown => {
                let lean = !matches!(rule.action, Action::Drop | Action::Reject);
                let assume = self.choose(lean);
                let what = if assume { "matches" } else { "does not match" };
                let why = if rule.unmodelled.is_empty() {
                    String::new()
                } else {
                    format!("; unmodelled: {}", rule.unmodelled.join(", "))
                };
                self.note(format!(
                    "assumed rule #{idx} ({}) {what}: its conditions depend on what the \
                     question leaves open (interface, destination, source port or an \
                     unmodelled match){why}",
                    rule.origin.label()
                ));
                assume
            }
        }
    }

    fn chain(&self, backend: Backend, table: &str, name: &str) -> Option<&'a Chain> {
        let fw: &'a Firewall = self.ev.fw;
        self.ev
            .index
            .get(&(backend, table, name))
            .and_then(|&i| fw.chains.get(i))
    }

    fn run_chain(&mut self, chain: &'a Chain, depth: usize) -> ChainOutcome {
        if depth > MAX_JUMP_DEPTH {
            self.note(format!(
                "stopped following jumps at {} (nested deeper than {MAX_JUMP_DEPTH})",
                chain.name
            ));
            return ChainOutcome::Continue;
        }
        self.trail.push(chain.name.as_str());
        let fw: &'a Firewall = self.ev.fw;
        for &idx in &chain.rules {
            let Some(rule) = fw.rules.get(idx) else {
                continue;
            };
            let t = self.matches(rule);
            if !self.resolve(idx, rule, t) {
                continue;
            }
            match &rule.action {
                Action::Accept => {
                    let d = if self.limited || rule.under_rate_only {
                        Decision::Limit
                    } else {
                        Decision::Accept
                    };
                    return ChainOutcome::Final(d, idx);
                }
                Action::Limit => return ChainOutcome::Final(Decision::Limit, idx),
                Action::Drop => return ChainOutcome::Final(Decision::Drop, idx),
                Action::Reject => return ChainOutcome::Final(Decision::Reject, idx),
                Action::Return => break,
                Action::Dnat(_) | Action::Redirect(_) => {
                    if self.stage == Stage::Prerouting {
                        return ChainOutcome::Nat(idx);
                    }
                }
                Action::Log | Action::Continue => self.path.push(idx),
                Action::Jump(target) | Action::Goto(target) => {
                    self.path.push(idx);
                    let Some(next) = self.chain(chain.backend, &chain.table, target) else {
                        self.note(format!(
                            "rule #{idx} jumps to chain {target}, which was not found"
                        ));
                        continue;
                    };
                    match self.run_chain(next, depth + 1) {
                        ChainOutcome::Continue => {
                            if matches!(rule.action, Action::Goto(_)) {
                                break;
                            }
                        }
                        decided => return decided,
                    }
                }
            }
        }
        self.trail.pop();
        ChainOutcome::Continue
    }

    /// "nat/PREROUTING → DOCKER → dnat to 172.17.0.2:5432" for the chains entered.
    fn step(&mut self, base: &Chain, end: &str) -> String {
        let mut s = format!("{}/{}", base.table, base.name);
        for name in self.trail.iter().skip(1) {
            s.push_str(" → ");
            s.push_str(name);
        }
        s.push_str(" → ");
        s.push_str(end);
        self.trail.clear();
        s
    }

    /// Runs the base chains of one stage. `Err` carries a refusal; `Ok` the most telling
    /// acceptance (a rule beats a policy) and whether a NAT rule fired.
    fn stage(
        &mut self,
        bases: &[usize],
        route: &mut Vec<String>,
        accepted: &mut Option<(Decision, DecidedBy)>,
    ) -> Result<(), (Decision, DecidedBy)> {
        let fw: &'a Firewall = self.ev.fw;
        let mut natted = false;
        for &bi in bases {
            let Some(base) = fw.chains.get(bi) else {
                continue;
            };
            if !base.family.covers(self.pkt.src) {
                continue;
            }
            self.limited = false;
            self.trail.clear();
            let (decision, by) = match self.run_chain(base, 0) {
                ChainOutcome::Nat(idx) => {
                    let action = fw.rules.get(idx).map(|r| r.action.clone());
                    if natted {
                        // Only the first NAT binding of a connection counts.
                        self.trail.clear();
                        continue;
                    }
                    natted = true;
                    let text = match action {
                        Some(Action::Dnat(to)) => {
                            let before = (self.pkt.dst, self.pkt.port);
                            if let Some(a) = to.addr {
                                self.pkt.dst = Some(a);
                            }
                            if let Some(p) = to.ports {
                                self.pkt.port = p.first;
                            }
                            self.dnat = match (before.0, to.addr) {
                                _ if before.1 != self.pkt.port => Tri::Yes,
                                (_, None) => Tri::No,
                                (Some(d), Some(a)) => Tri::from_bool(d != a),
                                // To one of the host's addresses, unknown which.
                                (None, Some(_)) => Tri::Unknown,
                            };
                            format!("dnat to {}", to.label())
                        }
                        Some(Action::Redirect(p)) => {
                            self.local_after_nat = true;
                            let before = self.pkt.port;
                            if let Some(p) = p {
                                self.pkt.port = p.first;
                            }
                            // REDIRECT also rewrites the address to the arrival interface's
                            // first one, which may or may not be the one it was sent to.
                            self.dnat = if before != self.pkt.port {
                                Tri::Yes
                            } else {
                                Tri::Unknown
                            };
                            format!("redirect to local port {}", self.pkt.port)
                        }
                        _ => "nat".to_string(),
                    };
                    let s = self.step(base, &text);
                    route.push(s);
                    continue;
                }
                ChainOutcome::Final(d, idx) => {
                    let word = match d {
                        Decision::Accept => "accept",
                        Decision::Limit => "accept (rate-limited)",
                        Decision::Drop => "drop",
                        Decision::Reject => "reject",
                    };
                    let s = self.step(base, word);
                    route.push(s);
                    (d, DecidedBy::Rule { index: idx })
                }
                ChainOutcome::Continue => {
                    let d = match base.policy {
                        Some(Action::Drop) => Decision::Drop,
                        Some(Action::Reject) => Decision::Reject,
                        _ if self.limited => Decision::Limit,
                        _ => Decision::Accept,
                    };
                    if !d.admitted() {
                        let s = self.step(base, "policy drop");
                        route.push(s);
                    }
                    self.trail.clear();
                    (
                        d,
                        DecidedBy::Policy {
                            backend: base.backend,
                            table: base.table.clone(),
                            chain: base.name.clone(),
                        },
                    )
                }
            };
            if !decision.admitted() {
                return Err((decision, by));
            }
            // In prerouting an accept only ends that chain; it is remembered as evidence
            // when no later stage has a filter.
            let better = match (&*accepted, &by) {
                (None, _) => true,
                (Some((_, DecidedBy::Policy { .. })), DecidedBy::Rule { .. }) => true,
                (Some((Decision::Accept, _)), _) if decision == Decision::Limit => true,
                _ => false,
            };
            if better {
                *accepted = Some((decision, by));
            }
        }
        Ok(())
    }

    fn go(&mut self) -> Verdict {
        let ev = self.ev;
        let mut route = Vec::new();
        let mut accepted: Option<(Decision, DecidedBy)> = None;
        let original = (self.pkt.dst, self.pkt.port);
        self.stage = Stage::Prerouting;
        let pre = self.stage(&ev.pre, &mut route, &mut accepted);
        let refusal = match pre {
            Err(r) => Some(r),
            Ok(()) => {
                // The routing decision.
                let translated = (self.pkt.dst, self.pkt.port) != original;
                let forwarded = match self.pkt.dst {
                    Some(d) if translated && !self.local_after_nat => match ev.net.is_local(d) {
                        Some(local) => !local,
                        None => {
                            // Unknown addresses: read both; first as forwarded (the
                            // container case, whose path is the one the INPUT rules miss).
                            let f = self.choose(true);
                            self.note(format!(
                                "assumed {d} is {} (the host's addresses were not known)",
                                if f {
                                    "not the host's own address"
                                } else {
                                    "one of the host's own addresses"
                                }
                            ));
                            f
                        }
                    },
                    _ => false,
                };
                if forwarded {
                    let dst = self.pkt.dst.unwrap_or(self.pkt.src);
                    self.out_iface = ev.net.out_iface(dst).map(str::to_string);
                    route.push(match &self.out_iface {
                        Some(o) => format!("routed to {dst} via {o}"),
                        None => format!("routed to {dst} (outgoing interface unknown)"),
                    });
                    self.stage = Stage::Forward;
                    self.stage(&ev.forward, &mut route, &mut accepted).err()
                } else {
                    route.push(if translated {
                        format!("delivered locally to port {}", self.pkt.port)
                    } else {
                        "delivered locally".to_string()
                    });
                    self.stage = Stage::Input;
                    self.stage(&ev.input, &mut route, &mut accepted).err()
                }
            }
        };
        let forwarded = (self.stage == Stage::Forward).then(|| Forwarded {
            addr: self.pkt.dst.unwrap_or(self.pkt.src),
            port: self.pkt.port,
            iface: self.out_iface.clone(),
        });
        let local_port =
            (self.stage == Stage::Input && self.pkt.port != original.1).then_some(self.pkt.port);
        let (decision, decided_by) = match refusal {
            Some(r) => r,
            None => accepted.unwrap_or((Decision::Accept, DecidedBy::NoFilter)),
        };
        Verdict {
            decision,
            decided_by,
            path: std::mem::take(&mut self.path),
            assumptions: std::mem::take(&mut self.assumptions),
            route,
            forwarded,
            local_port,
        }
    }
}

impl Firewall {
    /// Is a new connection from `src` to `port`/`protocol` on one of the host's addresses
    /// delivered, arriving on some non-loopback interface (loopback when `src` is a
    /// loopback address)? Follows the whole path (prerouting NAT, INPUT or FORWARD).
    pub fn admits(&self, src: IpAddr, protocol: Protocol, port: u16) -> Verdict {
        self.evaluate(&Packet {
            src,
            dst: None,
            iface: None,
            protocol,
            port,
        })
    }

    /// Evaluates a new incoming connection along the whole packet path without knowing
    /// the host's addresses (see [`Evaluator`]). A packet gets in only if no base chain on
    /// its way drops it, as netfilter does; conditions the packet leaves open are read
    /// both ways and listed in [`Verdict::assumptions`].
    pub fn evaluate(&self, packet: &Packet) -> Verdict {
        Evaluator::new(self, HostNet::unknown()).evaluate(packet)
    }

    /// [`Firewall::evaluate`] with the host's addresses and routes known.
    pub fn evaluate_on(&self, net: &HostNet, packet: &Packet) -> Verdict {
        Evaluator::new(self, net.clone()).evaluate(packet)
    }

    /// The same ruleset with every prerouting translation (DNAT, REDIRECT) taken out: what
    /// the host's own filter rules say about a connection to its port, had nothing sent it
    /// elsewhere (FW-CONTAINER-BYPASS compares the two).
    pub fn without_nat(&self) -> Firewall {
        let mut fw = self.clone();
        for r in &mut fw.rules {
            if matches!(r.action, Action::Dnat(_) | Action::Redirect(_)) {
                r.action = Action::Continue;
            }
        }
        fw
    }

    /// The rule a verdict names, if a rule decided it.
    pub fn rule_of(&self, verdict: &Verdict) -> Option<&Rule> {
        match verdict.decided_by {
            DecidedBy::Rule { index } => self.rules.get(index),
            _ => None,
        }
    }

    /// True when something can keep incoming traffic out: a drop or reject policy on an
    /// incoming hook, or a rule that drops, rejects or rate-limits in a chain that incoming
    /// traffic reaches (the hook's chains and the chains they jump to). Rules alone do not
    /// make a filter: `ufw disable` leaves INPUT jumping to empty ufw chains under an accept
    /// policy, which lets everything in.
    pub fn filters_incoming(&self) -> bool {
        let incoming =
            |c: &Chain| matches!(c.hook, Some(Hook::Ingress | Hook::Prerouting | Hook::Input));
        let mut seen: Vec<bool> = self.chains.iter().map(incoming).collect();
        let mut queue: Vec<usize> = (0..self.chains.len()).filter(|&i| seen[i]).collect();
        if queue
            .iter()
            .any(|&i| matches!(self.chains[i].policy, Some(Action::Drop | Action::Reject)))
        {
            return true;
        }
        while let Some(ci) = queue.pop() {
            let chain = &self.chains[ci];
            for rule in chain.rules.iter().filter_map(|&i| self.rules.get(i)) {
                match &rule.action {
                    Action::Drop | Action::Reject | Action::Limit => return true,
                    Action::Jump(target) | Action::Goto(target) => {
                        let next = self.chains.iter().position(|c| {
                            c.backend == chain.backend
                                && c.table == chain.table
                                && c.name == *target
                        });
                        if let Some(n) = next
                            && !seen[n]
                        {
                            seen[n] = true;
                            queue.push(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        false
    }

    /// The allowing rules for incoming traffic (accept or limit), for stale-rule checks.
    pub fn allow_rules(&self) -> impl Iterator<Item = (usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.direction == Direction::In && r.allows())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn origin(chain: &str, line: usize) -> Origin {
        Origin {
            backend: Backend::IptablesNft,
            table: "filter".into(),
            chain: chain.into(),
            line: Some(line),
            handle: None,
        }
    }

    fn rule(chain: &str, line: usize, action: Action) -> Rule {
        Rule::new(
            Direction::In,
            action,
            Manager::IptablesNft,
            origin(chain, line),
        )
    }

    fn chain(name: &str, hook: Option<Hook>, policy: Option<Action>, rules: Vec<usize>) -> Chain {
        Chain {
            backend: Backend::IptablesNft,
            family: Family::V4,
            table: "filter".into(),
            name: name.into(),
            hook,
            priority: 0,
            policy,
            rules,
        }
    }

    fn tcp_port(r: &mut Rule, port: u16) {
        r.protocol = Some(Protocol::Tcp);
        r.dports = PortSet::Only(vec![PortRange::single(port)]);
    }

    /// INPUT (drop): lo accept, established accept, jump user; user: 22 from admin, 443 any.
    fn sample() -> Firewall {
        let mut lo = rule("INPUT", 1, Action::Accept);
        lo.interface = Some(InterfaceMatch {
            name: "lo".into(),
            negated: false,
        });
        let mut est = rule("INPUT", 2, Action::Accept);
        est.ct_states = Some(Negatable::new(
            vec![CtState::Established, CtState::Related],
            false,
        ));
        let jump = rule("INPUT", 3, Action::Jump("user".into()));
        let mut ssh = rule("user", 4, Action::Accept);
        tcp_port(&mut ssh, 22);
        ssh.sources = vec!["10.77.9.0/24".parse().unwrap()];
        let mut https = rule("user", 5, Action::Accept);
        tcp_port(&mut https, 443);
        let ret = rule("user", 6, Action::Return);
        let mut never = rule("user", 7, Action::Accept);
        tcp_port(&mut never, 8080);
        Firewall {
            managers: vec![Manager::IptablesNft],
            installed: vec![Manager::IptablesNft],
            policies: Policies::default(),
            rules: vec![lo, est, jump, ssh, https, ret, never],
            chains: vec![
                chain(
                    "INPUT",
                    Some(Hook::Input),
                    Some(Action::Drop),
                    vec![0, 1, 2],
                ),
                chain("user", None, None, vec![3, 4, 5, 6]),
            ],
            ufw: None,
            firewalld: None,
            notes: vec![],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn admits_follows_jumps_and_sources() {
        let fw = sample();
        let v = fw.admits(ip("10.77.9.5"), Protocol::Tcp, 22);
        assert_eq!(v.decision, Decision::Accept);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 3 });
        assert_eq!(v.path, vec![2]);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 22);
        assert_eq!(v.decision, Decision::Drop);
        assert!(matches!(v.decided_by, DecidedBy::Policy { ref chain, .. } if chain == "INPUT"));
        assert!(fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443).admitted());
    }

    #[test]
    fn return_stops_user_chain_and_established_does_not_admit_new() {
        let fw = sample();
        // 8080 is after RETURN: not reached; the established rule must not admit it.
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 8080);
        assert_eq!(v.decision, Decision::Drop);
        assert!(v.assumptions.is_empty(), "{:?}", v.assumptions);
    }

    #[test]
    fn loopback_source_takes_the_lo_rule() {
        let fw = sample();
        let v = fw.admits(ip("127.0.0.1"), Protocol::Tcp, 5432);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 0 });
        // IPv6 traffic is not covered by an IPv4 chain: no filter.
        let v = fw.admits(ip("2001:db8::1"), Protocol::Tcp, 5432);
        assert_eq!(v.decided_by, DecidedBy::NoFilter);
    }

    #[test]
    fn unknown_interface_leans_towards_admitted_and_says_so() {
        let mut fw = sample();
        let mut wg = rule("INPUT", 8, Action::Accept);
        wg.interface = Some(InterfaceMatch {
            name: "wg0".into(),
            negated: false,
        });
        fw.rules.push(wg);
        fw.chains[0].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 9999);
        assert!(v.admitted());
        assert_eq!(v.assumptions.len(), 1);
        let v = fw.evaluate(&Packet {
            src: ip("203.0.113.9"),
            dst: None,
            iface: Some("eth0".into()),
            protocol: Protocol::Tcp,
            port: 9999,
        });
        assert_eq!(v.decision, Decision::Drop);
    }

    #[test]
    fn any_dropping_base_chain_wins_across_backends() {
        let mut fw = sample();
        let mut nft_drop = rule("input", 1, Action::Drop);
        tcp_port(&mut nft_drop, 443);
        fw.rules.push(nft_drop);
        fw.chains.push(Chain {
            backend: Backend::Nftables,
            family: Family::Any,
            table: "inet extra".into(),
            name: "input".into(),
            hook: Some(Hook::Input),
            priority: 10,
            policy: Some(Action::Accept),
            rules: vec![7],
        });
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443);
        assert_eq!(v.decision, Decision::Drop);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 7 });
    }

    #[test]
    fn rate_limit_rule_turns_accept_into_limit() {
        let mut fw = sample();
        let mut over = rule("user", 9, Action::Reject);
        tcp_port(&mut over, 443);
        over.over_rate_only = true;
        fw.rules.push(over);
        fw.chains[1].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443);
        assert_eq!(v.decision, Decision::Limit);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 4 });
    }

    #[test]
    fn jump_loops_terminate() {
        let mut fw = sample();
        fw.rules.push(rule("user", 10, Action::Jump("user".into())));
        fw.chains[1].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 1);
        assert_eq!(v.decision, Decision::Drop);
        assert!(!v.assumptions.is_empty());
    }

    #[test]
    fn rules_that_only_accept_under_an_accept_policy_do_not_filter() {
        let mut fw = sample();
        assert!(fw.filters_incoming(), "INPUT drops by policy");
        // What `ufw disable` leaves: INPUT under ACCEPT, jumping to chains that decide nothing.
        fw.chains[0].policy = Some(Action::Accept);
        assert!(!fw.filters_incoming());
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 5432);
        assert!(v.admitted());
        // A dropping rule in a chain INPUT jumps to is a filter again.
        fw.rules[4].action = Action::Drop;
        assert!(fw.filters_incoming());
        // One in a chain nothing on the way in reaches is not.
        fw.rules[2].action = Action::Jump("elsewhere".into());
        assert!(
            !fw.filters_incoming(),
            "the user chain is no longer reached"
        );
        fw.rules[2].action = Action::Jump("user".into());
        assert!(fw.filters_incoming());
    }

    #[test]
    fn no_chains_means_no_filter() {
        let fw = Firewall::default();
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 22);
        assert_eq!(v.decided_by, DecidedBy::NoFilter);
        assert!(v.admitted());
        assert!(!fw.filters_incoming());
    }
}
