//! The detectors: pure functions from what was observed (a baseline and a new state, a
//! connection state, a flow snapshot, rates) to the *conditions* that hold now. The engine
//! turns conditions into alerts (dedupe, first/last seen, resolve). No I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::posture::{Finding, Severity};
use crate::state::{Firewall, Listener};
use crate::traffic::FlowSnapshot;

use super::thresholds::Thresholds;

/// Alert names (the `alertname` label in Alertmanager).
pub mod kind {
    pub const DRIFT_NEW_PORT: &str = "DRIFT-NEW-PORT";
    pub const DRIFT_FIREWALL_CHANGED: &str = "DRIFT-FIREWALL-CHANGED";
    pub const DRIFT_FIREWALL_DISABLED: &str = "DRIFT-FIREWALL-DISABLED";
    pub const NEW_FINDING: &str = "NEW-FINDING";
    pub const HOST_UNREACHABLE: &str = "HOST-UNREACHABLE";
    pub const HOSTKEY_REFUSED: &str = "HOSTKEY-REFUSED";
    pub const F2B_BAN_SPIKE: &str = "F2B-BAN-SPIKE";
    pub const F2B_BANNED_STILL_SEEN: &str = "F2B-BANNED-STILL-SEEN";
    pub const VPN_PEER_STALE: &str = "VPN-PEER-STALE";
    pub const TLS_CERT_EXPIRING: &str = "TLS-CERT-EXPIRING";
    pub const LIVE_PORT_SCAN: &str = "LIVE-PORT-SCAN";
    pub const LIVE_SYN_FLOOD: &str = "LIVE-SYN-FLOOD";
    pub const LIVE_TRAFFIC_SPIKE: &str = "LIVE-TRAFFIC-SPIKE";
    pub const IDS_ALERT: &str = "IDS-ALERT";
}

/// Something that holds now on a host. Same kind and key on the same host = same alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: &'static str,
    /// What distinguishes two alerts of one kind on one host (a port, an address); may be
    /// empty.
    pub key: String,
    pub severity: Severity,
    /// The posture check or collector it comes from (the `check` label).
    pub check: String,
    pub summary: String,
    pub evidence: Vec<String>,
}

impl Condition {
    fn new(kind: &'static str, key: impl Into<String>, severity: Severity) -> Self {
        Condition {
            kind,
            key: key.into(),
            severity,
            check: kind.to_string(),
            summary: String::new(),
            evidence: Vec::new(),
        }
    }
    fn summary(mut self, s: impl Into<String>) -> Self {
        self.summary = s.into();
        self
    }
    fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    fn check(mut self, c: impl Into<String>) -> Self {
        self.check = c.into();
        self
    }
}

/// Whether a host can be reached, as the transport says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    Reachable,
    Unreachable {
        reason: String,
    },
    HostKeyRefused {
        reason: String,
    },
    /// Connecting, reconnecting, not tried: no change.
    Unknown,
}

impl From<&crate::ssh::ConnState> for Reachability {
    fn from(s: &crate::ssh::ConnState) -> Self {
        use crate::ssh::ConnState as C;
        match s {
            C::Ready { .. } => Reachability::Reachable,
            C::Failed { reason } => Reachability::Unreachable {
                reason: reason.clone(),
            },
            C::HostKeyRefused {
                fingerprint,
                location,
                reason,
            } => Reachability::HostKeyRefused {
                reason: match location {
                    Some(l) => format!("{reason} key {fingerprint} ({l})"),
                    None => format!("{reason} key {fingerprint}"),
                },
            },
            _ => Reachability::Unknown,
        }
    }
}

/// HOST-UNREACHABLE / HOSTKEY-REFUSED.
pub fn reachability(host: &str, r: &Reachability) -> Vec<Condition> {
    match r {
        Reachability::Unreachable { reason } => vec![
            Condition::new(kind::HOST_UNREACHABLE, "", Severity::High)
                .check("transport")
                .summary(format!("{host} cannot be reached"))
                .evidence(reason.clone()),
        ],
        Reachability::HostKeyRefused { reason } => vec![
            Condition::new(kind::HOSTKEY_REFUSED, "", Severity::Critical)
                .check("transport")
                .summary(format!(
                    "{host}'s host key was refused: nothing was sent (check known_hosts)"
                ))
                .evidence(reason.clone()),
        ],
        Reachability::Reachable | Reachability::Unknown => Vec::new(),
    }
}

/// Listening sockets reachable from outside the host, by `port/proto`.
pub fn exposed_ports(listeners: &[Listener]) -> BTreeMap<String, Vec<&Listener>> {
    let mut m: BTreeMap<String, Vec<&Listener>> = BTreeMap::new();
    for l in listeners.iter().filter(|l| !l.is_loopback()) {
        m.entry(format!("{}/{}", l.port, l.protocol.label()))
            .or_default()
            .push(l);
    }
    m
}

/// DRIFT-NEW-PORT: a port listens now that did not in the baseline.
pub fn new_ports(baseline: &[Listener], now: &[Listener]) -> Vec<Condition> {
    let before = exposed_ports(baseline);
    exposed_ports(now)
        .into_iter()
        .filter(|(k, _)| !before.contains_key(k))
        .map(|(k, ls)| {
            let mut c = Condition::new(kind::DRIFT_NEW_PORT, k.clone(), Severity::Medium)
                .check("listeners")
                .summary(format!("{k} started listening"));
            for l in ls {
                let addr = l.address.map_or_else(|| "*".to_string(), |a| a.to_string());
                let procs: Vec<String> = l
                    .processes
                    .iter()
                    .map(|p| format!("{}[{}]", p.name, p.pid))
                    .collect();
                c = c.evidence(format!("ss: {addr}:{} {}", l.port, procs.join(",")));
            }
            c
        })
        .collect()
}

/// A firewall's rules and policies, without positions (line numbers and handles move when
/// a rule is inserted above).
pub fn firewall_signature(fw: &Firewall) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in &fw.rules {
        if let Ok(mut v) = serde_json::to_value(r) {
            if let Some(o) = v.as_object_mut() {
                o.remove("origin");
            }
            out.insert(format!("rule {v}"));
        }
    }
    for c in fw.chains.iter().filter(|c| c.hook.is_some()) {
        out.insert(format!(
            "chain {:?} {} {} policy {:?}",
            c.backend, c.table, c.name, c.policy
        ));
    }
    if let Some(u) = &fw.ufw {
        out.insert(format!("ufw active {}", u.active));
    }
    out
}

fn rule_label(sig: &str) -> String {
    // "rule {json}" → a short human line: action, protocol, ports, sources.
    let Some(json) = sig.strip_prefix("rule ") else {
        return sig.to_string();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return sig.to_string();
    };
    let g = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    format!(
        "{} {} proto {} dports {} from {}",
        g("direction"),
        g("action"),
        g("protocol"),
        g("dports"),
        g("sources")
    )
}

/// DRIFT-FIREWALL-DISABLED (filtered before, not now) or DRIFT-FIREWALL-CHANGED (rules or
/// policies differ from the baseline).
pub fn firewall_drift(baseline: &Firewall, now: &Firewall) -> Vec<Condition> {
    if baseline.filters_incoming() && !now.filters_incoming() {
        let mut c = Condition::new(kind::DRIFT_FIREWALL_DISABLED, "", Severity::Critical)
            .check("firewall")
            .summary("the firewall no longer filters incoming traffic");
        c = c.evidence(format!(
            "before: managers {:?}, {} rules; now: managers {:?}, {} rules",
            baseline.managers,
            baseline.rules.len(),
            now.managers,
            now.rules.len()
        ));
        if let Some(u) = &now.ufw {
            c = c.evidence(format!("ufw active: {}", u.active));
        }
        return vec![c];
    }
    let a = firewall_signature(baseline);
    let b = firewall_signature(now);
    if a == b {
        return Vec::new();
    }
    let added: Vec<&String> = b.difference(&a).collect();
    let removed: Vec<&String> = a.difference(&b).collect();
    let mut c = Condition::new(kind::DRIFT_FIREWALL_CHANGED, "", Severity::Medium)
        .check("firewall")
        .summary(format!(
            "firewall changed: {} rule(s)/policies added, {} removed",
            added.len(),
            removed.len()
        ));
    for s in added.iter().take(5) {
        c = c.evidence(format!("+ {}", rule_label(s)));
    }
    for s in removed.iter().take(5) {
        c = c.evidence(format!("- {}", rule_label(s)));
    }
    vec![c]
}

/// A finding's identity across snapshots: check, host and title with numbers blanked (titles
/// carry ages and day counts that change every refresh).
pub fn finding_identity(f: &Finding) -> String {
    let mut t = String::with_capacity(f.title.len());
    let mut in_digits = false;
    for ch in f.title.chars() {
        if ch.is_ascii_digit() {
            if !in_digits {
                t.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            t.push(ch);
        }
    }
    format!("{}|{}|{t}", f.check, f.host)
}

/// Findings present now and not in the baseline: VPN-PEER-STALE and TLS-CERT-EXPIRING under
/// their own names (whatever their severity), other high or critical ones as NEW-FINDING.
/// Waived findings never alert.
pub fn new_findings(baseline: &BTreeSet<String>, now: &[Finding]) -> Vec<Condition> {
    let mut out = Vec::new();
    for f in now.iter().filter(|f| !f.is_waived()) {
        let id = finding_identity(f);
        if baseline.contains(&id) {
            continue;
        }
        let k = match f.check.as_str() {
            "VPN-PEER-STALE" => kind::VPN_PEER_STALE,
            "TLS-CERT-EXPIRING" => kind::TLS_CERT_EXPIRING,
            _ if f.severity >= Severity::High => kind::NEW_FINDING,
            _ => continue,
        };
        let mut c = Condition::new(k, id, f.severity)
            .check(f.check.clone())
            .summary(f.title.clone());
        c.evidence = f.evidence.clone();
        out.push(c);
    }
    out
}

/// F2B-BAN-SPIKE: bans in the last minute at or above the threshold.
pub fn ban_spike(
    bans_last_minute: u64,
    new_ips: &[IpAddr],
    jails: &[String],
    t: &Thresholds,
) -> Vec<Condition> {
    if (bans_last_minute as f64) < t.ban_spike_per_minute {
        return Vec::new();
    }
    let mut c = Condition::new(kind::F2B_BAN_SPIKE, "", Severity::Medium)
        .check("fail2ban")
        .summary(format!(
            "fail2ban banned {bans_last_minute} address(es) in the last minute (threshold {})",
            t.ban_spike_per_minute
        ));
    if !jails.is_empty() {
        c = c.evidence(format!("jails: {}", jails.join(", ")));
    }
    if !new_ips.is_empty() {
        let ips: Vec<String> = new_ips.iter().take(20).map(ToString::to_string).collect();
        c = c.evidence(format!("newly banned: {}", ips.join(", ")));
    }
    vec![c]
}

/// F2B-BANNED-STILL-SEEN: a banned address is a source in the captured traffic.
pub fn banned_still_seen(banned: &[IpAddr], snap: &FlowSnapshot) -> Vec<Condition> {
    banned
        .iter()
        .filter(|ip| snap.active_sources.contains(ip))
        .map(|ip| {
            Condition::new(
                kind::F2B_BANNED_STILL_SEEN,
                ip.to_string(),
                Severity::Medium,
            )
            .check("fail2ban")
            .summary(format!("banned {ip} is still sending traffic"))
            .evidence(format!(
                "source in the last {:.0} s of captured traffic",
                snap.window_secs
            ))
        })
        .collect()
}

/// LIVE-PORT-SCAN: one source trying many ports or many hosts in the window. `ignore` holds
/// addresses that legitimately fan out (the bastion rampart itself connects through).
pub fn port_scan(snap: &FlowSnapshot, t: &Thresholds, ignore: &[IpAddr]) -> Vec<Condition> {
    snap.fan_out
        .iter()
        .filter(|f| {
            (f.ports >= t.scan_ports || f.hosts >= t.scan_hosts) && !ignore.contains(&f.source)
        })
        .map(|f| {
            let ports: Vec<String> = f.sample_ports.iter().map(ToString::to_string).collect();
            Condition::new(kind::LIVE_PORT_SCAN, f.source.to_string(), Severity::High)
                .check("traffic")
                .summary(format!(
                    "port scan from {}: {} port(s) on {} host(s) in {:.0} s",
                    f.source, f.ports, f.hosts, snap.window_secs
                ))
                .evidence(format!(
                    "{} connection attempts; ports include {}",
                    f.attempts,
                    ports.join(",")
                ))
        })
        .collect()
}

/// LIVE-SYN-FLOOD: SYNs neither completed nor refused, per second, above the threshold.
pub fn syn_flood(snap: &FlowSnapshot, t: &Thresholds) -> Vec<Condition> {
    if snap.unanswered_syn_per_sec < t.syn_flood_per_sec {
        return Vec::new();
    }
    let mut c = Condition::new(kind::LIVE_SYN_FLOOD, "", Severity::High)
        .check("traffic")
        .summary(format!(
            "{:.0} unanswered SYN/s (threshold {:.0}); {} SYN vs {} SYN-ACK in {:.0} s",
            snap.unanswered_syn_per_sec,
            t.syn_flood_per_sec,
            snap.syn,
            snap.syn_ack,
            snap.window_secs
        ));
    for (ip, pkts, _) in snap.top_sources.iter().take(3) {
        c = c.evidence(format!("top source {ip}: {pkts} packets"));
    }
    for (proto, port, n) in snap.top_dst_ports.iter().take(3) {
        c = c.evidence(format!("top destination {port}/{proto}: {n} new flows"));
    }
    vec![c]
}

/// LIVE-TRAFFIC-SPIKE: a rate `factor` times above the moving baseline (and above a floor).
pub fn traffic_spike(rate: f64, baseline: f64, t: &Thresholds) -> Vec<Condition> {
    if rate < t.traffic_spike_min_bytes_per_sec || rate < baseline * t.traffic_spike_factor {
        return Vec::new();
    }
    vec![
        Condition::new(kind::LIVE_TRAFFIC_SPIKE, "", Severity::Medium)
            .check("counters")
            .summary(format!(
                "traffic {:.1} MB/s is {:.0}x its moving baseline",
                rate / 1e6,
                rate / baseline.max(1.0)
            ))
            .evidence(format!(
                "rx+tx of non-loopback interfaces {rate:.0} B/s; baseline {baseline:.0} B/s; factor {}",
                t.traffic_spike_factor
            )),
    ]
}

/// An IDS's priority (Suricata severity, Snort priority: 1 is the most severe) as ours.
pub fn ids_severity(priority: Option<u32>) -> Severity {
    match priority {
        Some(1) => Severity::High,
        Some(2) => Severity::Medium,
        Some(p) if p >= 3 => Severity::Low,
        // Unknown (or 0, which Snort uses for "none"): lean towards attention.
        _ => Severity::Medium,
    }
}

/// IDS-ALERT: one condition per (IDS, rule, source, destination) among the alerts seen in
/// the hold window, `(seen at, alert, file)`; repeats are counted, not raised again.
pub fn ids_alerts(recent: &[(i64, crate::state::IdsAlert, String)]) -> Vec<Condition> {
    let mut groups: BTreeMap<String, Vec<&(i64, crate::state::IdsAlert, String)>> = BTreeMap::new();
    for r in recent {
        let a = &r.1;
        let key = format!(
            "{}:{}:{}:{}>{}",
            a.engine.label(),
            a.gid,
            a.sid,
            a.src.map_or_else(|| "?".to_string(), |x| x.to_string()),
            a.dst.map_or_else(|| "?".to_string(), |x| x.to_string()),
        );
        groups.entry(key).or_default().push(r);
    }
    groups
        .into_iter()
        .filter_map(|(key, rs)| {
            let last = rs.iter().max_by_key(|r| r.0)?;
            let a = &last.1;
            let best = rs
                .iter()
                .filter_map(|r| r.1.priority)
                .filter(|p| *p > 0)
                .min();
            let port = a.dst_port.map(|p| format!(":{p}")).unwrap_or_default();
            let mut c = Condition::new(kind::IDS_ALERT, key, ids_severity(best.or(a.priority)))
                .check(format!("ids/{}", a.engine.label()))
                .summary(format!(
                    "{} [{}:{}:{}] {}: {} -> {}{port} ({} in the last hour)",
                    a.engine.label(),
                    a.gid,
                    a.sid,
                    a.rev,
                    a.signature,
                    a.src.map_or_else(|| "?".to_string(), |x| x.to_string()),
                    a.dst.map_or_else(|| "?".to_string(), |x| x.to_string()),
                    rs.len()
                ))
                .evidence(format!("{}: last at {}", last.2, a.timestamp));
            if let Some(cat) = &a.category {
                c = c.evidence(format!("classification: {cat}"));
            }
            if let Some(p) = best {
                c = c.evidence(format!("priority {p}"));
            }
            if let Some(act) = &a.action {
                c = c.evidence(format!("action: {act}"));
            }
            Some(c)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{Protocol, SocketProcess};
    use crate::traffic::flows::FanOut;

    fn listener(port: u16, addr: &str) -> Listener {
        Listener {
            protocol: Protocol::Tcp,
            address: Some(addr.parse().unwrap()),
            interface: None,
            port,
            processes: vec![SocketProcess {
                name: "python3".into(),
                pid: 42,
            }],
        }
    }

    #[test]
    fn new_ports_ignore_loopback_and_known_ports() {
        let base = vec![listener(22, "0.0.0.0")];
        let now = vec![
            listener(22, "0.0.0.0"),
            listener(8080, "0.0.0.0"),
            listener(9999, "127.0.0.1"),
        ];
        let c = new_ports(&base, &now);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key, "8080/tcp");
        assert!(c[0].evidence[0].contains("python3[42]"));
        assert!(new_ports(&now, &now).is_empty());
    }

    #[test]
    fn finding_identity_ignores_changing_numbers() {
        let a = Finding::new(
            "TLS-CERT-EXPIRING",
            "web2",
            "certificate CN=web2 expires in 10 day(s)",
        );
        let b = Finding::new(
            "TLS-CERT-EXPIRING",
            "web2",
            "certificate CN=web2 expires in 9 day(s)",
        );
        assert_eq!(finding_identity(&a), finding_identity(&b));
        let base: BTreeSet<String> = [finding_identity(&a)].into();
        assert!(new_findings(&base, std::slice::from_ref(&b)).is_empty());
        let c = new_findings(&BTreeSet::new(), &[b]);
        assert_eq!(c[0].kind, kind::TLS_CERT_EXPIRING);
        // A new medium finding of another check does not alert; a high one does.
        let m = Finding::new("SSH-X", "web2", "x").severity(Severity::Medium);
        assert!(new_findings(&BTreeSet::new(), std::slice::from_ref(&m)).is_empty());
        let h = m.severity(Severity::High);
        assert_eq!(
            new_findings(&BTreeSet::new(), &[h])[0].kind,
            kind::NEW_FINDING
        );
    }

    #[test]
    fn scans_need_the_threshold_and_skip_ignored_sources() {
        let t = Thresholds {
            scan_ports: 10,
            ..Thresholds::default()
        };
        let src: IpAddr = "10.77.10.11".parse().unwrap();
        let mut snap = FlowSnapshot {
            window_secs: 10.0,
            ..FlowSnapshot::default()
        };
        snap.fan_out.push(FanOut {
            source: src,
            ports: 9,
            hosts: 1,
            attempts: 9,
            sample_ports: vec![1, 2, 3],
        });
        assert!(port_scan(&snap, &t, &[]).is_empty());
        snap.fan_out[0].ports = 10;
        let c = port_scan(&snap, &t, &[]);
        assert_eq!(c[0].key, "10.77.10.11");
        assert!(c[0].summary.contains("10.77.10.11"));
        assert!(port_scan(&snap, &t, &[src]).is_empty());
    }

    #[test]
    fn syn_flood_needs_unanswered_syns_above_the_threshold() {
        let t = Thresholds {
            syn_flood_per_sec: 50.0,
            ..Thresholds::default()
        };
        let mut snap = FlowSnapshot {
            window_secs: 10.0,
            syn: 600,
            syn_ack: 590,
            unanswered_syn_per_sec: 49.0,
            ..FlowSnapshot::default()
        };
        assert!(syn_flood(&snap, &t).is_empty());
        snap.unanswered_syn_per_sec = 60.0;
        snap.top_sources = vec![("10.77.10.11".parse().unwrap(), 600, 36000)];
        let c = syn_flood(&snap, &t);
        assert_eq!(c[0].kind, kind::LIVE_SYN_FLOOD);
        assert!(
            c[0].summary.contains("600 SYN vs 590 SYN-ACK"),
            "{}",
            c[0].summary
        );
        assert!(c[0].evidence[0].contains("10.77.10.11"));
    }

    #[test]
    fn spikes_need_factor_and_floor() {
        let t = Thresholds::default();
        assert!(traffic_spike(2e6, 1e6, &t).is_empty());
        assert_eq!(traffic_spike(6e6, 1e6, &t).len(), 1);
        assert!(traffic_spike(5e5, 1e3, &t).is_empty(), "under the floor");
    }
}
