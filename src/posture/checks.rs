//! The checks: pure functions from the fleet's typed state and the inventory's policy to
//! findings. Exposure reasoning combines the listeners, the normalized firewall model and the
//! segments; fleet checks see every host at once.
//!
//! How exposure is decided. For every non-loopback listener, the firewall model is asked
//! whether a new connection is let in from a set of sample sources: a public address of each
//! family (documentation ranges, used only as values in the model, never contacted), the
//! first and last address of every segment, and an address inside every source CIDR that an
//! allow rule names. A port is *exposed* when some admitted sample lies outside the segments
//! allowed to reach it: the role's `reachable_from` segments when it names the port, anywhere
//! when a role lists the port in `allow_ports` without restricting it, and otherwise only the
//! administrators' segments (`admin`, `monitoring`, `vpn`), so an agent port opened to the
//! admin segment alone is not a finding.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::{FLEET, Finding, Severity};
use crate::inventory::{Host, Inventory};
use crate::state::{
    Action, Container, Firewall, FleetState, HostState, KnownService, Listener, Manager,
    PermitRootLogin, PortSet, Probed, Protocol, PublishedPort, Rule, Sshd, Verdict,
};

/// Segments whose members are administrators: any port may be open to them.
pub const ADMIN_SEGMENTS: &[&str] = &["admin", "monitoring", "vpn"];

/// Sample public sources: documentation addresses (RFC 5737, RFC 3849).
const WORLD_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
const WORLD_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77));

/// Knobs of the checks, with the documented defaults.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Now, seconds since the Unix epoch (injected so checks are pure).
    pub now: i64,
    /// TLS-CERT-EXPIRING fires this many days before expiry.
    pub cert_days: i64,
    /// VPN-PEER-STALE fires for a handshake older than this.
    pub vpn_stale_secs: u64,
    /// Whether a configured Alertmanager answered (`None`: not checked).
    pub alertmanager_ok: Option<bool>,
    /// Cloud security groups, already parsed.
    pub cloud: Vec<super::cloud::SecurityGroup>,
}

impl CheckOptions {
    pub fn new(now: i64) -> Self {
        CheckOptions {
            now,
            cert_days: 21,
            vpn_stale_secs: 24 * 3600,
            alertmanager_ok: None,
            cloud: Vec::new(),
        }
    }

    /// Thresholds from the inventory's `[alerting.thresholds]`: `cert_days`,
    /// `vpn_stale_secs`.
    pub fn with_thresholds(mut self, t: &BTreeMap<String, f64>) -> Self {
        if let Some(v) = t.get("cert_days") {
            self.cert_days = *v as i64;
        }
        if let Some(v) = t.get("vpn_stale_secs") {
            self.vpn_stale_secs = *v as u64;
        }
        self
    }
}

/// Runs every check on every collected host and on the fleet. Hosts that were not reached
/// produce no findings (they are reported as unreachable instead). Most severe first.
pub fn evaluate(inv: &Inventory, fleet: &FleetState, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for host in &inv.hosts {
        let Some(state) = fleet.host(&host.name) else {
            continue;
        };
        if state.is_unreachable() {
            continue;
        }
        check_host(inv, host, state, opts, &mut out);
    }
    super::stack::stack_checks(inv, fleet, &mut out);
    check_fleet(inv, opts, &mut out);
    sort(&mut out);
    out
}

/// Most severe first, then host, check and title: a stable order for reports and diffs.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.title.cmp(&b.title))
    });
}

/// The checks of one host.
pub fn check_host(
    inv: &Inventory,
    host: &Host,
    state: &HostState,
    opts: &CheckOptions,
    out: &mut Vec<Finding>,
) {
    let policy = HostPolicy::of(inv, host);
    firewall_checks(inv, host, &policy, state, out);
    segment_placement(inv, host, out);
    sshd_checks(host, &policy, state, out);
    web_checks(&policy, host, state, opts, out);
    vpn_checks(&policy, host, state, opts, out);
    service_checks(&policy, host, state, out);
    defences::checks(&policy, host, state, out);
    cloud_checks(host, opts, out);
    super::stack::host_checks(inv, host, state, out);
}

/// What a host's roles, taken together, allow and require.
struct HostPolicy {
    /// Port → segments allowed to reach it (`None` = anywhere).
    allowed: BTreeMap<u16, Option<BTreeSet<String>>>,
    data_ports: BTreeSet<u16>,
    bastion: bool,
    require_https: bool,
    require_rate_limit: bool,
    require_fail2ban: bool,
    require_ids: bool,
    require_monitoring: bool,
    require_vpn: bool,
}

impl HostPolicy {
    fn of(inv: &Inventory, host: &Host) -> HostPolicy {
        let mut p = HostPolicy {
            allowed: BTreeMap::new(),
            data_ports: BTreeSet::new(),
            bastion: host.roles.iter().any(|r| r == "bastion"),
            require_https: false,
            require_rate_limit: false,
            require_fail2ban: false,
            require_ids: false,
            require_monitoring: false,
            require_vpn: false,
        };
        for (_, role) in inv.roles_of(host) {
            for port in &role.allow_ports {
                let entry = role
                    .reachable_from
                    .get(port)
                    .map(|segs| segs.iter().cloned().collect::<BTreeSet<_>>());
                // Several roles: the most permissive wins.
                match (p.allowed.get_mut(port), entry) {
                    (Some(existing), Some(new)) => {
                        if let Some(e) = existing {
                            e.extend(new);
                        }
                    }
                    (Some(existing), None) => *existing = None,
                    (None, e) => {
                        p.allowed.insert(*port, e);
                    }
                }
                if role.data_tier && role.reachable_from.contains_key(port) && *port != 22 {
                    p.data_ports.insert(*port);
                }
            }
            p.require_https |= role.require_https;
            p.require_rate_limit |= role.require_rate_limit;
            p.require_fail2ban |= role.require_fail2ban;
            p.require_ids |= role.require_ids;
            p.require_monitoring |= role.require_monitoring;
            p.require_vpn |= role.require_vpn;
        }
        p
    }
}

/// Which segments the host's roles allow `port` from: `Some(Some(segments))`, `Some(None)`
/// for anywhere, `None` when no role names the port (then only the admin segments).
pub fn allowed_segments(
    inv: &Inventory,
    host: &Host,
    port: u16,
) -> Option<Option<BTreeSet<String>>> {
    HostPolicy::of(inv, host).allowed.get(&port).cloned()
}

/// One admitted sample source that lies outside what the policy allows.
struct Exposure {
    listener: Listener,
    source: IpAddr,
    evidence: Vec<String>,
    /// Some source reached the port through prerouting NAT to another address (a
    /// container's publish), not through the host's INPUT path.
    forwarded: bool,
}

/// "anywhere" for the world samples, else the address.
fn source_label(ip: IpAddr) -> String {
    if ip == WORLD_V4 || ip == WORLD_V6 {
        "anywhere".to_string()
    } else {
        ip.to_string()
    }
}

fn in_segments(inv: &Inventory, segs: &BTreeSet<String>, ip: IpAddr) -> bool {
    segs.iter().any(|s| {
        inv.segments
            .get(s)
            .is_some_and(|nets| nets.iter().any(|n| n.contains(&ip)))
    })
}

fn sample_sources(inv: &Inventory, fw: &Firewall) -> Vec<IpAddr> {
    let mut v = vec![WORLD_V4, WORLD_V6];
    let mut nets: Vec<IpNet> = inv.segments.values().flatten().copied().collect();
    for (_, r) in fw.allow_rules() {
        nets.extend(r.sources.iter().copied());
    }
    for n in nets {
        let mut hosts = n.hosts();
        if let Some(first) = hosts.next() {
            v.push(first);
        }
        if let Some(last) = n.hosts().last() {
            v.push(last);
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Describes a rule the way an operator reads it, with where it came from.
pub fn describe_rule(r: &Rule) -> String {
    let action = match &r.action {
        Action::Accept => "accept".to_string(),
        Action::Drop => "drop".to_string(),
        Action::Reject => "reject".to_string(),
        Action::Limit => "limit".to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    let proto = r.protocol.as_ref().map_or("any", Protocol::label);
    let ports = if r.dports.is_any() {
        String::new()
    } else {
        format!(" dport {}", r.dports.label())
    };
    let from = if r.sources.is_empty() {
        "anywhere".to_string()
    } else {
        let s: Vec<String> = r.sources.iter().map(ToString::to_string).collect();
        format!(
            "{}{}",
            if r.sources_negated { "not " } else { "" },
            s.join(",")
        )
    };
    let iface = r
        .interface
        .as_ref()
        .map(|i| format!(" in {}{}", if i.negated { "!" } else { "" }, i.name))
        .unwrap_or_default();
    let comment = r
        .comment
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    format!(
        "{action} {proto}{ports} from {from}{iface}{comment} [{}]",
        r.origin.label()
    )
}

fn describe_listener(l: &Listener) -> String {
    let addr = match l.address {
        Some(IpAddr::V6(a)) => format!("[{a}]"),
        Some(a) => a.to_string(),
        None => "*".to_string(),
    };
    let procs: Vec<String> = l
        .processes
        .iter()
        .map(|p| format!("{}[{}]", p.name, p.pid))
        .collect();
    let procs = if procs.is_empty() {
        String::new()
    } else {
        format!(" by {}", procs.join(","))
    };
    format!(
        "listening {} {addr}:{}{procs} (ss)",
        l.protocol.label(),
        l.port
    )
}

/// Every port a running container publishes on the host, with its container.
fn published_ports(state: &HostState) -> Vec<(&PublishedPort, &Container)> {
    let Probed::Ok(cs) = &state.containers else {
        return Vec::new();
    };
    cs.iter()
        .filter(|c| c.running)
        .flat_map(|c| c.published.iter().map(move |p| (p, c)))
        .collect()
}

fn describe_publish(p: &PublishedPort, c: &Container) -> String {
    let to = match c.address() {
        Some(a) => format!(" at {a}:{}", p.container_port),
        None => String::new(),
    };
    format!(
        "published by container {}{to}: {} ({} inspect)",
        c.label(),
        p.label(),
        c.engine
    )
}

/// FW-CONTAINER-BYPASS: a published container port that a source reaches although the
/// host firewall's own rules for that port would refuse it. The "own rules" are the same
/// ruleset with prerouting NAT taken out: the packet then meets INPUT, as the person who
/// wrote `ufw allow from APP to any port 5432` expected it to.
fn container_bypass(
    inv: &Inventory,
    name: &str,
    policy: &HostPolicy,
    fw: &Firewall,
    published: &[(&PublishedPort, &Container)],
    samples: &[IpAddr],
    out: &mut Vec<Finding>,
) {
    if published.is_empty() {
        return;
    }
    let own = fw.without_nat();
    let mut seen: BTreeSet<(String, u16)> = BTreeSet::new();
    for (p, c) in published {
        if p.host_ip.is_some_and(|a| a.is_loopback())
            || !seen.insert((p.protocol.label().to_string(), p.host_port))
        {
            continue;
        }
        let mut bypassed: Vec<(IpAddr, Verdict, Verdict)> = Vec::new();
        for src in samples {
            if p.host_ip.is_some_and(|a| a.is_ipv4() != src.is_ipv4()) {
                continue;
            }
            let full = fw.admits(*src, p.protocol.clone(), p.host_port);
            if !full.admitted() {
                continue;
            }
            let host_only = own.admits(*src, p.protocol.clone(), p.host_port);
            if host_only.admitted() {
                continue;
            }
            bypassed.push((*src, full, host_only));
        }
        // The widest source first: the world, then addresses outside the allowed segments.
        let allowed = policy.allowed.get(&p.host_port).cloned().flatten();
        bypassed.sort_by_key(|(src, _, _)| {
            let world = *src == WORLD_V4 || *src == WORLD_V6;
            let inside = allowed
                .as_ref()
                .is_some_and(|segs| in_segments(inv, segs, *src));
            (!world, inside)
        });
        let Some((src, full, host_only)) = bypassed.first() else {
            continue;
        };
        let mut f = Finding::new(
            "FW-CONTAINER-BYPASS",
            name,
            format!(
                "container {} publishes {}/{} to {}, which the host firewall's own rules refuse",
                c.name,
                p.host_port,
                p.protocol.label(),
                source_label(*src)
            ),
        )
        .param("port", p.host_port.to_string())
        .param("proto", p.protocol.label().to_string())
        .evidence(describe_publish(p, c))
        .evidence(format!(
            "from {}: {}",
            source_label(*src),
            full.path_label()
        ));
        f = match own.rule_of(host_only) {
            Some(rule) => f.evidence(format!(
                "without Docker's NAT the host's own rules refuse it: {}",
                describe_rule(rule)
            )),
            None => f.evidence(format!(
                "without Docker's NAT the host refuses it by {:?}",
                host_only.decided_by
            )),
        };
        let others: Vec<String> = bypassed
            .iter()
            .skip(1)
            .take(4)
            .map(|(s, _, _)| source_label(*s))
            .collect();
        if !others.is_empty() {
            f = f.evidence(format!("also from {}", others.join(", ")));
        }
        out.push(f);
    }
}

fn verdict_evidence(fw: &Firewall, src: IpAddr, proto: &Protocol, port: u16) -> String {
    let v = fw.admits(src, proto.clone(), port);
    if v.forwarded.is_some() {
        // Sent on by prerouting NAT (a published container port): the whole path.
        return format!("from {src}: {}", v.path_label());
    }
    match fw.rule_of(&v) {
        Some(rule) => {
            let mut s = format!("from {src}: {}", describe_rule(rule));
            // firewalld's own words for the zone the rule belongs to.
            if let Some(fwd) = &fw.firewalld
                && rule.origin.table.ends_with(" firewalld")
                && let Some(zone) = fwd.zone_of_chain(&rule.origin.chain)
            {
                s.push_str(&format!("; {}", fwd.explain(zone, port, proto.label())));
            }
            s
        }
        None => format!("from {src}: admitted by {:?}", v.decided_by),
    }
}

/// How many ports named by prerouting NAT rules the exposure checks try besides each
/// listener's own (kube-proxy hosts name thousands; the first ones are tried).
const MAX_NAT_ENTRY_PORTS: usize = 64;

/// Ports prerouting DNAT/REDIRECT rules name one by one: a connection to one of them may
/// land on a local listener on another port, past INPUT rules written for that port.
fn nat_entry_ports(fw: &Firewall) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    for r in &fw.rules {
        if !matches!(r.action, Action::Dnat(_) | Action::Redirect(_)) {
            continue;
        }
        let PortSet::Only(ranges) = &r.dports else {
            continue;
        };
        for p in ranges
            .iter()
            .filter(|p| p.last.saturating_sub(p.first) < 16)
            .flat_map(|p| p.first..=p.last)
        {
            if !ports.contains(&p) && ports.len() < MAX_NAT_ENTRY_PORTS {
                ports.push(p);
            }
        }
    }
    ports
}

/// The port through which a new connection from `src` reaches listener `l`: its own
/// port when admitted there, else a NAT entry port whose translation lands on it.
/// The port by which `src` reaches the listener (its own, or one NAT'ed to it), and whether
/// the packet was sent on to another address by prerouting NAT (a container's publish).
fn entry_port(fw: &Firewall, src: IpAddr, l: &Listener, nat_ports: &[u16]) -> Option<(u16, bool)> {
    let v = fw.admits(src, l.protocol.clone(), l.port);
    if v.admitted() {
        return Some((l.port, v.forwarded.is_some()));
    }
    nat_ports
        .iter()
        .copied()
        .find(|&q| {
            q != l.port && {
                let v = fw.admits(src, l.protocol.clone(), q);
                v.admitted() && v.forwarded.is_none() && v.local_port == Some(l.port)
            }
        })
        .map(|q| (q, false))
}

fn firewall_checks(
    inv: &Inventory,
    host: &Host,
    policy: &HostPolicy,
    state: &HostState,
    out: &mut Vec<Finding>,
) {
    let name = host.name.as_str();
    let Probed::Ok(fw) = &state.firewall else {
        return;
    };
    let mut listeners: Vec<Listener> = match &state.listeners {
        Probed::Ok(l) => l.iter().filter(|l| !l.is_loopback()).cloned().collect(),
        _ => Vec::new(),
    };
    // A published container port with no socket on the host (Docker without its userland
    // proxy, Podman's netavark) is still a way in: judged like any listener.
    let published = published_ports(state);
    for (p, _) in &published {
        let shown = listeners
            .iter()
            .any(|l| l.protocol == p.protocol && l.port == p.host_port);
        if !shown && !p.host_ip.is_some_and(|a| a.is_loopback()) {
            listeners.push(Listener {
                protocol: p.protocol.clone(),
                address: p.host_ip,
                interface: None,
                port: p.host_port,
                processes: Vec::new(),
            });
        }
    }

    // FW-NONE / FW-DEFAULT-ALLOW.
    let ufw_active = fw.ufw.as_ref().is_some_and(|u| u.active);
    let no_firewall = !ufw_active && !fw.filters_incoming();
    // An arbitrary closed port from the world, both families: decided by no rule. The
    // family that is let in is the one the evidence quotes.
    let default_allow = if no_firewall {
        None
    } else {
        [WORLD_V4, WORLD_V6].into_iter().find_map(|src| {
            let v = fw.admits(src, Protocol::Tcp, 1);
            (v.admitted() && fw.rule_of(&v).is_none()).then_some((src, v))
        })
    };

    // Exposures.
    let samples = sample_sources(inv, fw);
    let admin: BTreeSet<String> = ADMIN_SEGMENTS.iter().map(|s| s.to_string()).collect();
    let bastion_addrs: Vec<IpAddr> = inv
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| r == "bastion"))
        .filter_map(|h| h.address.ip())
        .collect();
    let mut exposures: BTreeMap<(String, u16), Exposure> = BTreeMap::new();
    let nat_ports = nat_entry_ports(fw);
    for l in &listeners {
        if !matches!(l.protocol, Protocol::Tcp | Protocol::Udp) {
            continue;
        }
        let allowed = policy.allowed.get(&l.port);
        let allowed_segs: Option<&BTreeSet<String>> = match allowed {
            Some(None) => continue, // allowed from anywhere
            Some(Some(segs)) => Some(segs),
            None => Some(&admin),
        };
        for src in &samples {
            if !l.accepts_family_of(*src) {
                continue;
            }
            if allowed_segs.is_some_and(|segs| in_segments(inv, segs, *src)) {
                continue;
            }
            let Some((entry, forwarded)) = entry_port(fw, *src, l, &nat_ports) else {
                continue;
            };
            let key = (l.protocol.label().to_string(), l.port);
            // Name the widest exposure: the world beats any one segment's address.
            if (*src == WORLD_V4 || *src == WORLD_V6)
                && let Some(e) = exposures.get_mut(&key)
                && e.source != WORLD_V4
                && e.source != WORLD_V6
            {
                e.source = *src;
            }
            let e = exposures.entry(key).or_insert_with(|| {
                let mut evidence = vec![describe_listener(l)];
                evidence.extend(
                    published
                        .iter()
                        .filter(|(p, _)| p.protocol == l.protocol && p.host_port == l.port)
                        .map(|(p, c)| describe_publish(p, c)),
                );
                Exposure {
                    listener: l.clone(),
                    source: *src,
                    evidence,
                    forwarded: false,
                }
            });
            e.forwarded |= forwarded;
            if e.evidence.len() < 4 {
                e.evidence.push(if entry == l.port {
                    verdict_evidence(fw, *src, &l.protocol, l.port)
                } else {
                    // In by another port: the whole path, NAT first.
                    let v = fw.admits(*src, l.protocol.clone(), entry);
                    format!(
                        "from {src} to port {entry}: {} (accepted by {})",
                        v.path_label(),
                        fw.rule_of(&v)
                            .map_or_else(|| format!("{:?}", v.decided_by), describe_rule)
                    )
                });
            }
        }
    }

    container_bypass(inv, name, policy, fw, &published, &samples, out);

    if no_firewall {
        let mut f = Finding::new(
            "FW-NONE",
            name,
            "no host firewall filters incoming traffic",
        )
        .evidence(match &fw.ufw {
            Some(u) if !u.active => "ufw status: inactive".to_string(),
            Some(_) => "ufw active".to_string(),
            None => "ufw: not installed".to_string(),
        })
        .evidence("no nftables/iptables chain on an incoming hook drops or filters (nft -j list ruleset, iptables-save)");
        for e in exposures.values().take(6) {
            f = f.evidence(format!("exposed: {}", describe_listener(&e.listener)));
        }
        out.push(f);
    } else if let Some((src, v)) = &default_allow {
        out.push(
            Finding::new(
                "FW-DEFAULT-ALLOW",
                name,
                "incoming traffic is accepted by default",
            )
            .evidence(format!(
                "a new TCP connection from {src} to a closed port is admitted by {:?}",
                v.decided_by
            ))
            .evidence(format!("policies: incoming {:?}", fw.policies.incoming)),
        );
    }

    let private = host.bastion.is_some();
    for ((proto, port), e) in &exposures {
        let ssh = *port == ssh_port(state, host) && proto == "tcp";
        let data = policy.data_ports.contains(port) && !ssh;
        if data {
            let segs = policy
                .allowed
                .get(port)
                .and_then(|s| s.clone())
                .unwrap_or_default();
            let segs: Vec<String> = segs.into_iter().collect();
            let mut f = Finding::new(
                "SEG-DB-EXPOSED",
                name,
                format!(
                    "{port}/{proto} is reachable from {} (allowed only from {})",
                    source_label(e.source),
                    if segs.is_empty() {
                        "nowhere".to_string()
                    } else {
                        segs.join(", ")
                    }
                ),
            )
            .param("port", port.to_string());
            if let Some(seg) = segs.first() {
                f = f.param("segment", seg.clone());
            }
            f.evidence = e.evidence.clone();
            // Let in past the firewall by a container's publish: the host's own rules are
            // not what to change (Docker's NAT comes first), DOCKER-USER is.
            let via_container = e.forwarded
                && published
                    .iter()
                    .any(|(p, _)| p.host_port == *port && p.protocol.label() == proto);
            if via_container {
                f.fix = Some("docker-user-restrict".to_string());
                f = f.param("proto", proto.clone());
            }
            out.push(f);
            continue;
        }
        if no_firewall {
            continue; // FW-NONE already lists it.
        }
        if ssh {
            let from_bastion_only = bastion_addrs.contains(&e.source);
            if private && !from_bastion_only {
                let mut f = Finding::new(
                    "SEG-SSH-OPEN",
                    name,
                    format!(
                        "SSH ({port}/tcp) accepts connections from {}",
                        source_label(e.source)
                    ),
                )
                .param("port", port.to_string())
                .param("segment", "admin");
                f.evidence = e.evidence.clone();
                out.push(f);
            }
            continue;
        }
        if policy.allowed.contains_key(port)
            && !policy.allowed.get(port).is_some_and(|s| s.is_some())
        {
            continue;
        }
        let mut f = Finding::new(
            "FW-EXPOSED-PORT",
            name,
            format!(
                "{port}/{proto} is let in from {} and no role allows it",
                e.source
            ),
        )
        .param("port", port.to_string())
        .param("proto", proto.clone());
        f.evidence = e.evidence.clone();
        out.push(f);
    }

    // FW-STALE-RULE: an allow rule for a port nothing listens on.
    let listening: BTreeSet<(String, u16)> = match &state.listeners {
        Probed::Ok(l) => l
            .iter()
            .map(|l| (l.protocol.label().to_string(), l.port))
            .collect(),
        _ => return multiple(fw, name, out),
    };
    let mut stale: BTreeMap<(String, u16), &Rule> = BTreeMap::new();
    for (_, r) in fw.allow_rules() {
        if !stale_candidate(r) {
            continue;
        }
        let Some(proto) = &r.protocol else { continue };
        let PortSet::Only(ranges) = &r.dports else {
            continue;
        };
        for range in ranges {
            if range.last - range.first > 16 {
                continue; // a wide range is a deliberate choice, not a stale rule
            }
            for port in range.first..=range.last {
                let key = (proto.label().to_string(), port);
                if !listening.contains(&key) {
                    stale.entry(key).or_insert(r);
                }
            }
        }
    }
    for ((proto, port), r) in stale {
        out.push(
            Finding::new(
                "FW-STALE-RULE",
                name,
                format!("allow rule for {port}/{proto}, but nothing listens there"),
            )
            .evidence(describe_rule(r))
            .evidence(format!("no socket on {port}/{proto} (ss -tulpn)"))
            .param("port", port.to_string())
            .param("proto", proto),
        );
    }
    multiple(fw, name, out);
}

/// Rules a person wrote to let a service in: not ufw's built-in plumbing (DHCP replies,
/// mDNS, UPnP), not loopback, not reply traffic.
fn stale_candidate(r: &Rule) -> bool {
    let chain = r.origin.chain.as_str();
    let ufw_builtin = (chain.starts_with("ufw-") || chain.starts_with("ufw6-"))
        && !chain.contains("user-input")
        && !chain.contains("user-limit");
    !ufw_builtin
        && r.sports.is_any()
        && r.destinations.is_empty()
        && !r.interface.as_ref().is_some_and(|i| i.is_loopback())
        && r.ct_states.as_ref().is_none_or(|c| {
            c.negated
                || c.values
                    .iter()
                    .any(|s| matches!(s, crate::state::CtState::New))
        })
}

fn multiple(fw: &Firewall, name: &str, out: &mut Vec<Finding>) {
    // ufw drives iptables (legacy or nft) and iptables-nft shows up in nft's ruleset: one
    // manager each, not two.
    let mut m: BTreeSet<Manager> = fw.managers.iter().copied().collect();
    if m.contains(&Manager::Ufw) {
        m.remove(&Manager::IptablesNft);
        m.remove(&Manager::IptablesLegacy);
    }
    if m.contains(&Manager::IptablesNft) && !fw.rules.iter().any(|r| r.manager == Manager::Nftables)
    {
        m.remove(&Manager::Nftables);
    }
    if m.len() > 1 {
        let names: Vec<&str> = m.iter().map(|m| m.label()).collect();
        out.push(
            Finding::new(
                "FW-MULTIPLE",
                name,
                format!(
                    "{} firewall managers hold rules: {}",
                    m.len(),
                    names.join(", ")
                ),
            )
            .evidence(format!("active managers: {}", names.join(", "))),
        );
    }
}

fn ssh_port(state: &HostState, host: &Host) -> u16 {
    match &state.sshd {
        Probed::Ok(s) => s.ports.first().copied().unwrap_or(host.port),
        _ => host.port,
    }
}

fn segment_placement(inv: &Inventory, host: &Host, out: &mut Vec<Finding>) {
    let Some(ip) = host.address.ip() else { return };
    for (rname, role) in inv.roles_of(host) {
        if role.segments.is_empty() {
            continue;
        }
        let segs: BTreeSet<String> = role.segments.iter().cloned().collect();
        // Only segments the inventory defines can be checked.
        if !segs.iter().any(|s| inv.segments.contains_key(s)) {
            continue;
        }
        if !in_segments(inv, &segs, ip) {
            let actual = inv.segments_of(ip);
            out.push(
                Finding::new(
                    "SEG-WRONG-SEGMENT",
                    &host.name,
                    format!(
                        "{ip} is outside the segments of role {rname} ({})",
                        role.segments.join(", ")
                    ),
                )
                .evidence(format!(
                    "address {ip} (inventory line {}) lies in: {}",
                    host.line,
                    if actual.is_empty() {
                        "no segment".to_string()
                    } else {
                        actual.join(", ")
                    }
                )),
            );
        }
    }
}

const WEAK_CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "blowfish-cbc",
    "cast128-cbc",
    "arcfour",
    "arcfour128",
    "arcfour256",
    "rijndael-cbc@lysator.liu.se",
];
const WEAK_KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
];
const WEAK_MACS: &[&str] = &[
    "hmac-md5",
    "hmac-md5-96",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "hmac-sha1-96",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-ripemd160",
    "umac-32@openssh.com",
];

/// What one `Match` block turns on for sources that can reach sshd.
struct MatchExposure {
    passwords: bool,
    root: bool,
    evidence: String,
}

/// The `Match` blocks that turn passwords (or root login with a password) on for a
/// connection that the firewall lets reach sshd's port. A block sshd could be asked about
/// is judged by `sshd -T -C`'s answer for a matching source; a block it could not (Group,
/// Host, LocalPort... criteria) is judged by the settings written in it and assumed to apply
/// to someone who can connect, so an unmodelled block leans towards "exposed".
fn match_exposures(s: &Sshd, state: &HostState, port: u16) -> Vec<MatchExposure> {
    let reachable = |addr: Option<IpAddr>| -> (bool, String) {
        match (&state.firewall, addr) {
            (Probed::Ok(fw), Some(a)) => {
                let v = fw.admits(a, Protocol::Tcp, port);
                if v.admitted() {
                    (true, format!("{a} reaches port {port}"))
                } else {
                    (false, String::new())
                }
            }
            (_, Some(a)) => (
                true,
                format!("{a}: firewall unknown, assumed to reach port {port}"),
            ),
            (_, None) => (true, "any source that reaches sshd".to_string()),
        }
    };
    let mut out = Vec::new();
    for m in &s.matches {
        if m.probes.is_empty() {
            let says = |key: &str, val: &str| {
                m.body
                    .iter()
                    .any(|(k, v, _)| k == key && v.eq_ignore_ascii_case(val))
            };
            let passwords = says("passwordauthentication", "yes");
            let root = passwords && says("permitrootlogin", "yes");
            if passwords || root {
                out.push(MatchExposure {
                    passwords,
                    root,
                    evidence: format!(
                        "Match {} ({}): sets passwordauthentication yes; sshd cannot be asked \
                         which connections it covers, assumed to cover some",
                        m.criteria, m.origin
                    ),
                });
            }
            continue;
        }
        for p in &m.probes {
            let passwords = p.effective.passwords_possible();
            let root = passwords && p.effective.permit_root_login == Some(PermitRootLogin::Yes);
            if !passwords {
                continue;
            }
            let (reaches, how) = reachable(p.addr);
            if !reaches {
                continue;
            }
            let who = match (&p.addr, &p.user) {
                (Some(a), Some(u)) => format!("addr={a},user={u}"),
                (Some(a), None) => format!("addr={a}"),
                (None, Some(u)) => format!("user={u}"),
                (None, None) => String::new(),
            };
            out.push(MatchExposure {
                passwords,
                root,
                evidence: format!(
                    "Match {} ({}): sshd -T -C {who}: passwordauthentication {}{}; {how}",
                    m.criteria,
                    m.origin,
                    if p.effective.password_authentication == Some(true) {
                        "yes"
                    } else {
                        "no (keyboard-interactive with PAM)"
                    },
                    if root { ", permitrootlogin yes" } else { "" }
                ),
            });
        }
    }
    out
}

fn sshd_checks(host: &Host, policy: &HostPolicy, state: &HostState, out: &mut Vec<Finding>) {
    let Probed::Ok(s) = &state.sshd else { return };
    let name = host.name.as_str();
    let global = s.auth();
    let passwords = global.passwords_possible();
    let per_source = match_exposures(s, state, ssh_port(state, host));
    let from_some = per_source.iter().any(|e| e.passwords);
    if passwords || from_some {
        let title = if passwords {
            "sshd accepts passwords"
        } else {
            "sshd accepts passwords from some sources (Match)"
        };
        let mut f = Finding::new("SSH-PASSWORD-AUTH", name, title);
        if passwords {
            if s.password_authentication == Some(true) {
                f = f.evidence("sshd -T: passwordauthentication yes");
            } else {
                f = f.evidence("sshd -T: kbdinteractiveauthentication yes, usepam yes");
            }
        }
        for e in per_source.iter().filter(|e| e.passwords) {
            f = f.evidence(e.evidence.clone());
        }
        out.push(f);
    }
    let root_global = global.permit_root_login == Some(PermitRootLogin::Yes) && passwords;
    let root_some: Vec<&MatchExposure> = per_source.iter().filter(|e| e.root).collect();
    if root_global || !root_some.is_empty() {
        let mut f = Finding::new(
            "SSH-ROOT-LOGIN",
            name,
            "sshd permits root login with a password",
        );
        if root_global {
            f = f
                .evidence("sshd -T: permitrootlogin yes")
                .evidence("sshd -T: password authentication enabled");
        }
        for e in root_some {
            f = f.evidence(e.evidence.clone());
        }
        out.push(f);
    }
    let weak = |list: &[String], bad: &[&str]| -> Vec<String> {
        list.iter()
            .filter(|a| {
                bad.iter()
                    .any(|b| a.as_str() == *b || (b.ends_with('-') && a.starts_with(b)))
            })
            .cloned()
            .collect()
    };
    let wc = weak(&s.ciphers, WEAK_CIPHERS);
    let wk = weak(&s.kex_algorithms, WEAK_KEX);
    let wm = weak(&s.macs, WEAK_MACS);
    if !wc.is_empty() || !wk.is_empty() || !wm.is_empty() {
        let mut f = Finding::new(
            "SSH-WEAK-CRYPTO",
            name,
            format!(
                "sshd offers {} weak algorithm(s)",
                wc.len() + wk.len() + wm.len()
            ),
        );
        for (what, list) in [("ciphers", wc), ("kexalgorithms", wk), ("macs", wm)] {
            if !list.is_empty() {
                f = f.evidence(format!("sshd -T: {what} includes {}", list.join(",")));
            }
        }
        out.push(f);
    }
    if policy.bastion {
        let mut ev = Vec::new();
        if s.allow_agent_forwarding != Some(false) {
            ev.push("sshd -T: allowagentforwarding yes");
        }
        if s.x11_forwarding == Some(true) {
            ev.push("sshd -T: x11forwarding yes");
        }
        if !ev.is_empty() {
            let mut f = Finding::new(
                "SSH-FORWARDING",
                name,
                "agent or X11 forwarding allowed on a bastion",
            );
            for e in ev {
                f = f.evidence(e);
            }
            out.push(f);
        }
    }
}

fn web_checks(
    policy: &HostPolicy,
    host: &Host,
    state: &HostState,
    opts: &CheckOptions,
    out: &mut Vec<Finding>,
) {
    let name = host.name.as_str();
    let listens_on = |port: u16| match &state.listeners {
        Probed::Ok(l) => l
            .iter()
            .any(|l| l.port == port && l.protocol == Protocol::Tcp && !l.is_loopback()),
        _ => false,
    };
    if policy.require_https {
        match &state.nginx {
            Probed::Ok(n) => {
                let tls = n.servers.iter().any(|s| s.serves_tls());
                if !tls && !listens_on(443) {
                    out.push(
                        Finding::new("TLS-MISSING", name, "no server block serves HTTPS").evidence(
                            format!(
                                "nginx -T: {} server block(s), none with `listen ... ssl`",
                                n.servers.len()
                            ),
                        ),
                    );
                }
                for s in n
                    .servers
                    .iter()
                    .filter(|s| s.serves_plain() && !s.serves_tls() && !s.redirects_to_https)
                {
                    let names = if s.server_names.is_empty() {
                        "_".to_string()
                    } else {
                        s.server_names.join(" ")
                    };
                    out.push(
                        Finding::new("TLS-NO-REDIRECT", name, format!("plain HTTP server {names} does not redirect to HTTPS"))
                            .evidence(format!("nginx -T: server at {}:{} listens without ssl and has no `return 301 https://`", s.file, s.line)),
                    );
                }
            }
            Probed::NotInstalled { .. } if !listens_on(443) => out.push(
                Finding::new("TLS-MISSING", name, "no web server serves HTTPS")
                    .evidence("nginx: not installed; nothing listens on 443/tcp"),
            ),
            _ => {}
        }
    }
    if let Probed::Ok(n) = &state.nginx {
        // TLS-OLD-PROTOCOL: the protocols of every TLS server (its own, else the http block's,
        // else nginx's built-in default, which before 1.23.4 includes TLS 1.0 and 1.1).
        for s in n.servers.iter().filter(|s| s.serves_tls()) {
            let protos: Vec<String> = s
                .ssl_protocols
                .clone()
                .or_else(|| n.ssl_protocols.clone())
                .unwrap_or_else(|| {
                    vec![
                        "TLSv1".into(),
                        "TLSv1.1".into(),
                        "TLSv1.2".into(),
                        "TLSv1.3".into(),
                    ]
                });
            let old: Vec<&String> = protos
                .iter()
                .filter(|p| matches!(p.as_str(), "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2"))
                .collect();
            if !old.is_empty() {
                let names = if s.server_names.is_empty() {
                    "_".to_string()
                } else {
                    s.server_names.join(" ")
                };
                let olds: Vec<&str> = old.iter().map(|s| s.as_str()).collect();
                out.push(
                    Finding::new(
                        "TLS-OLD-PROTOCOL",
                        name,
                        format!("server {names} enables {}", olds.join(", ")),
                    )
                    .evidence(format!(
                        "nginx -T: ssl_protocols {} (server at {}:{})",
                        protos.join(" "),
                        s.file,
                        s.line
                    )),
                );
            }
        }
        if policy.require_rate_limit {
            let content: Vec<_> = n
                .servers
                .iter()
                .filter(|s| !s.redirects_to_https || s.serves_tls())
                .collect();
            let unlimited: Vec<_> = content.iter().filter(|s| s.limit_req.is_empty()).collect();
            if !content.is_empty() && !unlimited.is_empty() {
                let mut f = Finding::new(
                    "RATE-LIMIT-MISSING",
                    name,
                    format!(
                        "{} of {} nginx server block(s) apply no limit_req",
                        unlimited.len(),
                        content.len()
                    ),
                );
                for s in unlimited.iter().take(4) {
                    f = f.evidence(format!(
                        "nginx -T: server {} at {}:{} has no limit_req",
                        s.server_names.join(" "),
                        s.file,
                        s.line
                    ));
                }
                if n.limit_req_zones.is_empty() {
                    f = f.evidence("nginx -T: no limit_req_zone defined");
                }
                out.push(f);
            }
        }
    }
    if let Probed::Ok(certs) = &state.tls {
        let mut seen = BTreeSet::new();
        for c in certs {
            if !seen.insert((c.subject.clone(), c.serial.clone())) {
                continue;
            }
            let days = c.days_left(opts.now);
            if days < opts.cert_days {
                let (sev, title) = if days < 0 {
                    (
                        Severity::Critical,
                        format!("certificate {} expired {} day(s) ago", c.subject, -days),
                    )
                } else {
                    (
                        Severity::High,
                        format!("certificate {} expires in {days} day(s)", c.subject),
                    )
                };
                out.push(
                    Finding::new("TLS-CERT-EXPIRING", name, title)
                        .severity(sev)
                        .evidence(format!(
                            "{} (#{}): notAfter {} ({})",
                            c.path,
                            c.index,
                            c.not_after,
                            crate::posture::fmt_time(c.not_after)
                        ))
                        .evidence(format!("issuer {}; SANs {}", c.issuer, c.sans.join(","))),
                );
            }
        }
    }
}

fn vpn_checks(
    policy: &HostPolicy,
    host: &Host,
    state: &HostState,
    opts: &CheckOptions,
    out: &mut Vec<Finding>,
) {
    let name = host.name.as_str();
    let Probed::Ok(vpn) = &state.vpn else {
        if policy.require_vpn && matches!(state.vpn, Probed::NotInstalled { .. }) {
            out.push(
                Finding::new("VPN-DOWN", name, "no VPN software is installed")
                    .evidence("wg, openvpn: not installed"),
            );
        }
        return;
    };
    let wg_up: Vec<&crate::state::WgInterface> = match &vpn.wireguard {
        Probed::Ok(ifs) => ifs.iter().filter(|i| i.up != Some(false)).collect(),
        _ => Vec::new(),
    };
    let ovpn_up = matches!(&vpn.openvpn, Probed::Ok(v) if !v.is_empty());
    if policy.require_vpn && wg_up.is_empty() && !ovpn_up {
        out.push(
            Finding::new("VPN-DOWN", name, "no VPN interface is up")
                .evidence(format!(
                    "wg show all dump: {}",
                    vpn.wireguard.status_label()
                ))
                .evidence(format!("openvpn status: {}", vpn.openvpn.status_label())),
        );
    }
    if let Probed::Ok(ifs) = &vpn.wireguard {
        for i in ifs {
            for p in &i.peers {
                let key: String = p.public_key.chars().take(12).collect();
                let stale = match p.latest_handshake {
                    None | Some(0) => Some("never completed a handshake".to_string()),
                    Some(t) => {
                        // WireGuard prints a Unix time; boringtun prints seconds since the
                        // handshake (cloudflare/boringtun#447). No real handshake predates
                        // 2001, so a smaller number is an age.
                        let age = if t < 1_000_000_000 {
                            t
                        } else {
                            (opts.now.max(0) as u64).saturating_sub(t)
                        };
                        (age > opts.vpn_stale_secs).then(|| format!("last handshake {age} s ago"))
                    }
                };
                if let Some(why) = stale {
                    out.push(
                        Finding::new("VPN-PEER-STALE", name, format!("WireGuard peer {key}… on {} {why}", i.name))
                            .evidence(format!(
                                "wg show {} dump: peer {} endpoint {} allowed-ips {} latest-handshake {}",
                                i.name,
                                p.public_key,
                                p.endpoint.as_deref().unwrap_or("(none)"),
                                p.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                                p.latest_handshake.unwrap_or(0)
                            )),
                    );
                }
            }
        }
    }
}

fn service_checks(policy: &HostPolicy, host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let name = host.name.as_str();
    // CrowdSec running on the host is an IPS too: fail2ban being down is then no finding.
    if policy.require_fail2ban && !defences::crowdsec_protects(state) {
        match &state.fail2ban {
            Probed::Ok(f) if !f.running => out.push(
                Finding::new(
                    "IPS-FAIL2BAN-DOWN",
                    name,
                    "fail2ban is installed but not running",
                )
                .evidence("fail2ban-client ping: no server answers"),
            ),
            Probed::NotInstalled { tool } => out.push(
                Finding::new("IPS-FAIL2BAN-DOWN", name, "fail2ban is not installed")
                    .evidence(format!("{tool}: not installed"))
                    .no_fix(),
            ),
            Probed::Ok(f) => {
                let covers_sshd = f.jails.iter().any(|j| j.name.contains("ssh"));
                if !covers_sshd {
                    let names: Vec<&str> = f.jails.iter().map(|j| j.name.as_str()).collect();
                    out.push(
                        Finding::new(
                            "IPS-NO-SSHD-JAIL",
                            name,
                            "fail2ban runs but no jail covers sshd",
                        )
                        .evidence(format!(
                            "fail2ban-client status: jails [{}]",
                            names.join(", ")
                        )),
                    );
                }
            }
            _ => {}
        }
    }
    if let Probed::Ok(s) = &state.services {
        if policy.require_ids
            && !s.running(KnownService::Snort)
            && !s.running(KnownService::Suricata)
        {
            out.push(
                Finding::new(
                    "IDS-MISSING",
                    name,
                    "no IDS (Snort, Suricata) runs on this host",
                )
                .evidence("processes: no snort, no suricata"),
            );
        }
        if policy.require_monitoring
            && !s.running(KnownService::NodeExporter)
            && !s.running(KnownService::ZabbixAgent)
            && !s.running(KnownService::Nrpe)
        {
            out.push(
                Finding::new("MON-AGENT-MISSING", name, "no monitoring agent runs")
                    .evidence("processes: no node_exporter, zabbix_agentd, nrpe"),
            );
        }
    }
}

fn cloud_checks(host: &Host, opts: &CheckOptions, out: &mut Vec<Finding>) {
    for sg in opts.cloud.iter().filter(|sg| sg.applies_to(host)) {
        for open in sg.world_open() {
            out.push(
                Finding::new(
                    "FW-CLOUD-OPEN",
                    &host.name,
                    format!(
                        "security group {} opens {} to {}",
                        sg.id, open.ports, open.cidr
                    ),
                )
                .evidence(format!(
                    "{}: {} ({}) {} from {}",
                    sg.source, sg.id, sg.name, open.ports, open.cidr
                )),
            );
        }
    }
}

fn check_fleet(inv: &Inventory, opts: &CheckOptions, out: &mut Vec<Finding>) {
    if inv.alerting.alertmanager.is_empty() {
        out.push(
            Finding::new(
                "MON-ALERTING-MISSING",
                FLEET,
                "no Alertmanager is configured",
            )
            .evidence(format!(
                "{}: [alerting] alertmanager is empty",
                inv.path.display()
            )),
        );
    } else if opts.alertmanager_ok == Some(false) {
        out.push(
            Finding::new(
                "MON-ALERTING-MISSING",
                FLEET,
                "the configured Alertmanager does not answer",
            )
            .evidence(format!(
                "GET {}/-/healthy failed",
                inv.alerting.alertmanager.join(", ")
            )),
        );
    }
    // Security groups mapped to no host are still worth a word.
    for sg in opts
        .cloud
        .iter()
        .filter(|sg| !inv.hosts.iter().any(|h| sg.applies_to(h)))
    {
        for open in sg.world_open() {
            out.push(
                Finding::new(
                    "FW-CLOUD-OPEN",
                    FLEET,
                    format!(
                        "security group {} opens {} to {}",
                        sg.id, open.ports, open.cidr
                    ),
                )
                .evidence(format!(
                    "{}: {} ({}), attached to no inventory host",
                    sg.source, sg.id, sg.name
                )),
            );
        }
    }
}

mod defences;

#[cfg(test)]
mod tests;
