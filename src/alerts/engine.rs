//! The alert engine: keeps per-host baselines and histories, runs the detectors on each
//! observation, and turns their conditions into alerts — deduplicated by ID, with first and
//! last seen and a count, resolved when their condition no longer holds, acknowledged and
//! silenced on request. Pure state: time is passed in (Unix seconds), no I/O.
//!
//! Each detector reports the full set of conditions of its *group* on a host; an alert of
//! that group and host whose condition is not in the set resolves. A group whose data is
//! missing (a probe failed, the host is unreachable) is not reported, so its alerts stay as
//! they are: no data is not "cleared".

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use serde::Serialize;

use super::detect::{self, Condition, Reachability};
use super::thresholds::Thresholds;
use crate::posture::{Finding, Severity};
use crate::state::{Counters, Firewall, HostState, Listener, Probed};
use crate::traffic::FlowSnapshot;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// An alert: something happening now on a host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `KIND:host` or `KIND:host:key`: stable while the condition holds.
    pub id: String,
    /// The alert's name, e.g. `LIVE-PORT-SCAN`.
    pub alert: String,
    pub host: String,
    pub severity: Severity,
    /// The check or collector it comes from.
    pub check: String,
    pub state: AlertState,
    pub summary: String,
    pub evidence: Vec<String>,
    /// Unix seconds.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Observations while firing.
    pub count: u32,
    pub acknowledged: bool,
    pub silenced_until: Option<i64>,
    pub resolved_at: Option<i64>,
    #[serde(skip)]
    group: &'static str,
}

impl Alert {
    pub fn is_silenced(&self, now: i64) -> bool {
        self.silenced_until.is_some_and(|t| now < t)
    }

    /// The console's view of it.
    pub fn to_view(&self) -> crate::tui::model::Alert {
        crate::tui::model::Alert {
            id: self.id.clone(),
            kind: self.alert.clone(),
            host: self.host.clone(),
            severity: self.severity,
            summary: self.summary.clone(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            count: self.count,
            acknowledged: self.acknowledged,
            silenced_until: self.silenced_until,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A new alert.
    Fired,
    /// A firing alert seen again (last seen, count, evidence updated).
    Refreshed,
    Resolved,
}

/// One change to one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub change: Change,
    pub alert: Alert,
}

impl AlertEvent {
    /// The console update for it.
    pub fn to_update(&self) -> crate::tui::model::AppUpdate {
        use crate::tui::model::AppUpdate;
        match self.change {
            Change::Fired | Change::Refreshed => AppUpdate::AlertRaised(self.alert.to_view()),
            Change::Resolved => AppUpdate::AlertResolved {
                id: self.alert.id.clone(),
            },
        }
    }
}

#[derive(Debug, Default)]
struct HostMemory {
    listeners: Option<Vec<Listener>>,
    firewall: Option<Firewall>,
    findings: Option<BTreeSet<String>>,
    /// (time, total bans over all jails, banned addresses) per collection, last 10 minutes.
    bans: VecDeque<(i64, u64, BTreeSet<IpAddr>)>,
    banned: Vec<IpAddr>,
    counters: Option<Counters>,
    /// Moving baseline of rx+tx bytes/s and how many samples fed it.
    rate_baseline: f64,
    rate_samples: u32,
    ids: super::ids::IdsMemory,
}

/// The alert engine.
#[derive(Debug)]
pub struct AlertEngine {
    thresholds: Thresholds,
    alerts: BTreeMap<String, Alert>,
    hosts: BTreeMap<String, HostMemory>,
    /// Sources that legitimately fan out (bastions' addresses).
    ignore_sources: BTreeSet<IpAddr>,
    /// Hosts that are bastions (their addresses join `ignore_sources`).
    bastions: BTreeSet<String>,
}

const GROUP_REACH: &str = "reachability";
const GROUP_LISTENERS: &str = "listeners";
const GROUP_FIREWALL: &str = "firewall";
const GROUP_FINDINGS: &str = "findings";
const GROUP_F2B: &str = "fail2ban";
const GROUP_F2B_SEEN: &str = "fail2ban-seen";
const GROUP_SCAN: &str = "scan";
const GROUP_SYN: &str = "syn";
const GROUP_SPIKE: &str = "spike";
const GROUP_IDS: &str = "ids";

/// Samples before the traffic baseline is trusted.
const SPIKE_WARMUP: u32 = 5;

impl AlertEngine {
    pub fn new(thresholds: Thresholds) -> Self {
        AlertEngine {
            thresholds,
            alerts: BTreeMap::new(),
            hosts: BTreeMap::new(),
            ignore_sources: BTreeSet::new(),
            bastions: BTreeSet::new(),
        }
    }

    /// An engine with the inventory's thresholds, knowing which hosts are bastions.
    pub fn from_inventory(inv: &crate::inventory::Inventory) -> Self {
        let mut e = AlertEngine::new(Thresholds::from_map(&inv.alerting.thresholds));
        for h in &inv.hosts {
            if let Some(b) = &h.bastion {
                e.bastions.insert(b.clone());
            }
        }
        for b in e.bastions.clone() {
            if let Some(ip) = inv.host(&b).and_then(|h| h.address.ip()) {
                e.ignore_sources.insert(ip);
            }
        }
        e
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Alerts firing now, by ID.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.alerts.get(id)
    }

    /// Marks an alert acknowledged. False when no such alert fires.
    pub fn acknowledge(&mut self, id: &str) -> Option<AlertEvent> {
        let a = self.alerts.get_mut(id)?;
        a.acknowledged = true;
        Some(AlertEvent {
            change: Change::Refreshed,
            alert: a.clone(),
        })
    }

    /// Silences an alert until Unix seconds `until` (sinks skip it meanwhile).
    pub fn silence(&mut self, id: &str, until: i64) -> Option<AlertEvent> {
        let a = self.alerts.get_mut(id)?;
        a.silenced_until = Some(until);
        Some(AlertEvent {
            change: Change::Refreshed,
            alert: a.clone(),
        })
    }

    /// Reports the full set of conditions of `group` on `host`: fires new alerts, refreshes
    /// seen ones, resolves the group's others.
    pub fn observe(
        &mut self,
        host: &str,
        group: &'static str,
        conditions: Vec<Condition>,
        now: i64,
    ) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        let mut seen = BTreeSet::new();
        for c in conditions {
            let id = if c.key.is_empty() {
                format!("{}:{host}", c.kind)
            } else {
                format!("{}:{host}:{}", c.kind, c.key)
            };
            seen.insert(id.clone());
            match self.alerts.get_mut(&id) {
                Some(a) => {
                    a.last_seen = now;
                    a.count = a.count.saturating_add(1);
                    a.summary = c.summary;
                    a.evidence = c.evidence;
                    a.severity = a.severity.max(c.severity);
                    events.push(AlertEvent {
                        change: Change::Refreshed,
                        alert: a.clone(),
                    });
                }
                None => {
                    let a = Alert {
                        id: id.clone(),
                        alert: c.kind.to_string(),
                        host: host.to_string(),
                        severity: c.severity,
                        check: c.check,
                        state: AlertState::Firing,
                        summary: c.summary,
                        evidence: c.evidence,
                        first_seen: now,
                        last_seen: now,
                        count: 1,
                        acknowledged: false,
                        silenced_until: None,
                        resolved_at: None,
                        group,
                    };
                    events.push(AlertEvent {
                        change: Change::Fired,
                        alert: a.clone(),
                    });
                    self.alerts.insert(id, a);
                }
            }
        }
        let gone: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.host == host && a.group == group && !seen.contains(&a.id))
            .map(|a| a.id.clone())
            .collect();
        for id in gone {
            if let Some(mut a) = self.alerts.remove(&id) {
                a.state = AlertState::Resolved;
                a.resolved_at = Some(now);
                events.push(AlertEvent {
                    change: Change::Resolved,
                    alert: a,
                });
            }
        }
        events
    }

    /// A host's connection state changed (HOST-UNREACHABLE, HOSTKEY-REFUSED).
    pub fn observe_reachability(
        &mut self,
        host: &str,
        r: &Reachability,
        now: i64,
    ) -> Vec<AlertEvent> {
        if *r == Reachability::Unknown {
            return Vec::new();
        }
        let c = detect::reachability(host, r);
        self.observe(host, GROUP_REACH, c, now)
    }

    /// A host was collected: drift against its first collection, new findings, fail2ban
    /// bans, traffic counters. `findings` are this host's (the posture checks' output).
    pub fn observe_state(
        &mut self,
        state: &HostState,
        findings: &[Finding],
        now: i64,
    ) -> Vec<AlertEvent> {
        let host = state.host.clone();
        let mut events = Vec::new();
        if state.is_unreachable() {
            let reason = state.errors.first().map_or_else(
                || "not collected".to_string(),
                |e| format!("{}: {}", e.stage, e.message),
            );
            events.extend(self.observe_reachability(
                &host,
                &Reachability::Unreachable { reason },
                now,
            ));
            return events;
        }
        events.extend(self.observe_reachability(&host, &Reachability::Reachable, now));
        if self.bastions.contains(&host)
            && let Probed::Ok(f) = &state.facts
        {
            for i in &f.interfaces {
                for a in &i.addresses {
                    self.ignore_sources.insert(a.addr());
                }
            }
        }
        let t = self.thresholds.clone();
        let mem = self.hosts.entry(host.clone()).or_default();
        let mut pending: Vec<(&'static str, Vec<Condition>)> = Vec::new();

        if let Probed::Ok(ls) = &state.listeners {
            let base = mem.listeners.get_or_insert_with(|| ls.clone());
            pending.push((GROUP_LISTENERS, detect::new_ports(base, ls)));
        }
        if let Probed::Ok(fw) = &state.firewall {
            let base = mem.firewall.get_or_insert_with(|| fw.clone());
            pending.push((GROUP_FIREWALL, detect::firewall_drift(base, fw)));
        }
        // Findings are judged only from a complete collection: a probe that failed this
        // time hides its findings, and their return would look new.
        if complete(state) {
            let ids: BTreeSet<String> = findings.iter().map(detect::finding_identity).collect();
            let base = mem.findings.get_or_insert(ids);
            pending.push((GROUP_FINDINGS, detect::new_findings(base, findings)));
        }
        if let Probed::Ok(f2b) = &state.fail2ban {
            let total: u64 = f2b.jails.iter().map(|j| j.total_banned).sum();
            let banned: BTreeSet<IpAddr> = f2b
                .jails
                .iter()
                .flat_map(|j| j.banned.iter().copied())
                .collect();
            mem.banned = banned.iter().copied().collect();
            let horizon = now - 600;
            while mem.bans.front().is_some_and(|b| b.0 < horizon) {
                mem.bans.pop_front();
            }
            mem.bans.push_back((now, total, banned));
            // Bans in the last minute: increases of the total between samples in it (or new
            // addresses, when fail2ban restarted and its total went back to zero).
            let mut bans = 0u64;
            let mut new_ips: BTreeSet<IpAddr> = BTreeSet::new();
            let samples: Vec<&(i64, u64, BTreeSet<IpAddr>)> = mem.bans.iter().collect();
            for w in samples.windows(2) {
                let (a, b) = (w[0], w[1]);
                if b.0 < now - 60 {
                    continue;
                }
                let fresh: Vec<IpAddr> = b.2.difference(&a.2).copied().collect();
                let delta = if b.1 >= a.1 {
                    b.1 - a.1
                } else {
                    fresh.len() as u64
                };
                bans += delta.max(fresh.len() as u64);
                new_ips.extend(fresh);
            }
            let jails: Vec<String> = f2b.jails.iter().map(|j| j.name.clone()).collect();
            let ips: Vec<IpAddr> = new_ips.into_iter().collect();
            pending.push((GROUP_F2B, detect::ban_spike(bans, &ips, &jails, &t)));
        }
        if let Probed::Ok(c) = &state.counters {
            if let Some(prev) = &mem.counters
                && let Some(r) = c.rates(prev, 15.0)
            {
                let rate: f64 = r
                    .interfaces
                    .iter()
                    .filter(|i| i.name != "lo")
                    .map(|i| i.rx_bytes + i.tx_bytes)
                    .sum();
                let conds = if mem.rate_samples >= SPIKE_WARMUP {
                    detect::traffic_spike(rate, mem.rate_baseline, &t)
                } else {
                    Vec::new()
                };
                // A spike moves the baseline slowly, so it keeps firing while it lasts but
                // a lasting new level is eventually normal.
                let alpha = if conds.is_empty() { 0.2 } else { 0.02 };
                mem.rate_baseline = if mem.rate_samples == 0 {
                    rate
                } else {
                    mem.rate_baseline * (1.0 - alpha) + rate * alpha
                };
                mem.rate_samples = mem.rate_samples.saturating_add(1);
                pending.push((GROUP_SPIKE, conds));
            }
            mem.counters = Some(c.clone());
        }
        // CrowdSec's ban decisions are bans too: a banned address still seen in traffic is
        // F2B-BANNED-STILL-SEEN whichever IPS banned it.
        if let Probed::Ok(cs) = &state.defences.crowdsec {
            let mut banned: Vec<IpAddr> = match &state.fail2ban {
                Probed::Ok(f) => f
                    .jails
                    .iter()
                    .flat_map(|j| j.banned.iter().copied())
                    .collect(),
                _ => Vec::new(),
            };
            for ip in cs.banned() {
                if !banned.contains(&ip) {
                    banned.push(ip);
                }
            }
            mem.banned = banned;
        }
        if let Probed::Ok(logs) = &state.defences.ids {
            pending.push((GROUP_IDS, mem.ids.observe(logs, now)));
        }
        for (group, conds) in pending {
            events.extend(self.observe(&host, group, conds, now));
        }
        events
    }

    /// A capture's snapshot of a host's traffic: LIVE-PORT-SCAN, LIVE-SYN-FLOOD,
    /// F2B-BANNED-STILL-SEEN.
    pub fn observe_flows(&mut self, host: &str, snap: &FlowSnapshot, now: i64) -> Vec<AlertEvent> {
        let ignore: Vec<IpAddr> = self.ignore_sources.iter().copied().collect();
        let t = self.thresholds.clone();
        let banned = self
            .hosts
            .get(host)
            .map(|m| m.banned.clone())
            .unwrap_or_default();
        let mut events = self.observe(host, GROUP_SCAN, detect::port_scan(snap, &t, &ignore), now);
        events.extend(self.observe(host, GROUP_SYN, detect::syn_flood(snap, &t), now));
        events.extend(self.observe(
            host,
            GROUP_F2B_SEEN,
            detect::banned_still_seen(&banned, snap),
            now,
        ));
        events
    }

    /// The capture of a host stopped: its live alerts can no longer be judged; resolve them
    /// (a capture that starts again will raise them again).
    pub fn capture_stopped(&mut self, host: &str, now: i64) -> Vec<AlertEvent> {
        let mut events = self.observe(host, GROUP_SCAN, Vec::new(), now);
        events.extend(self.observe(host, GROUP_SYN, Vec::new(), now));
        events.extend(self.observe(host, GROUP_F2B_SEEN, Vec::new(), now));
        events
    }
}

/// True when no part of the state failed to collect (not installed is fine).
fn complete(s: &HostState) -> bool {
    fn ok<T>(p: &Probed<T>) -> bool {
        !matches!(p, Probed::Failed { .. } | Probed::PermissionDenied { .. })
    }
    s.errors.is_empty()
        && ok(&s.facts)
        && ok(&s.firewall)
        && ok(&s.listeners)
        && ok(&s.fail2ban)
        && ok(&s.vpn)
        && ok(&s.sshd)
        && ok(&s.nginx)
        && ok(&s.tls)
        && ok(&s.services)
        && ok(&s.counters)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{Fail2ban, Jail, Protocol, SocketProcess};

    fn state(host: &str) -> HostState {
        let mut s = HostState::unreachable(host, "x", "y");
        s.errors.clear();
        s.listeners = Probed::Ok(vec![]);
        s.firewall = Probed::Ok(Firewall::default());
        s.fail2ban = Probed::Ok(Fail2ban::default());
        s
    }

    fn listen(port: u16) -> Listener {
        Listener {
            protocol: Protocol::Tcp,
            address: Some("0.0.0.0".parse().unwrap()),
            interface: None,
            port,
            processes: vec![SocketProcess {
                name: "x".into(),
                pid: 1,
            }],
        }
    }

    #[test]
    fn a_new_port_fires_once_refreshes_then_resolves() {
        let mut e = AlertEngine::new(Thresholds::default());
        let mut s = state("app1");
        assert!(!s.is_unreachable());
        s.listeners = Probed::Ok(vec![listen(22)]);
        let ev = e.observe_state(&s, &[], 100);
        assert!(
            ev.is_empty(),
            "the first collection is the baseline: {ev:?}"
        );
        s.listeners = Probed::Ok(vec![listen(22), listen(8080)]);
        let ev = e.observe_state(&s, &[], 115);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].change, Change::Fired);
        assert_eq!(ev[0].alert.id, "DRIFT-NEW-PORT:app1:8080/tcp");
        let ev = e.observe_state(&s, &[], 130);
        assert_eq!(ev[0].change, Change::Refreshed);
        assert_eq!(
            (
                ev[0].alert.first_seen,
                ev[0].alert.last_seen,
                ev[0].alert.count
            ),
            (115, 130, 2)
        );
        // A failed probe is not "cleared".
        s.listeners = Probed::not_collected("ss", "timeout");
        assert!(e.observe_state(&s, &[], 140).is_empty());
        assert_eq!(e.firing().count(), 1);
        s.listeners = Probed::Ok(vec![listen(22)]);
        let ev = e.observe_state(&s, &[], 145);
        assert_eq!(ev[0].change, Change::Resolved);
        assert_eq!(ev[0].alert.state, AlertState::Resolved);
        assert_eq!(ev[0].alert.resolved_at, Some(145));
        assert_eq!(e.firing().count(), 0);
    }

    fn complete_state(host: &str) -> HostState {
        let mut s = state(host);
        let ni = || "x".to_string();
        s.facts = Probed::NotInstalled { tool: ni() };
        s.vpn = Probed::NotInstalled { tool: ni() };
        s.sshd = Probed::NotInstalled { tool: ni() };
        s.nginx = Probed::NotInstalled { tool: ni() };
        s.tls = Probed::NotInstalled { tool: ni() };
        s.services = Probed::NotInstalled { tool: ni() };
        s.counters = Probed::NotInstalled { tool: ni() };
        s
    }

    #[test]
    fn crowdsec_bans_join_the_banned_list_and_leave_it() {
        use crate::state::{Crowdsec, CrowdsecDecision};
        let mut e = AlertEngine::new(Thresholds::default());
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        let mut s = complete_state("edge");
        s.defences.crowdsec = Probed::Ok(Crowdsec {
            running: true,
            decisions: vec![CrowdsecDecision {
                kind: "ban".into(),
                scope: "Ip".into(),
                value: ip.to_string(),
                ip: Some(ip),
                ..CrowdsecDecision::default()
            }],
            error: None,
        });
        e.observe_state(&s, &[], 0);
        assert_eq!(e.hosts["edge"].banned, vec![ip]);
        s.defences.crowdsec = Probed::Ok(Crowdsec::default());
        e.observe_state(&s, &[], 10);
        assert!(e.hosts["edge"].banned.is_empty());
    }

    #[test]
    fn findings_need_a_complete_collection() {
        let mut e = AlertEngine::new(Thresholds::default());
        let f = Finding::new("SSH-PASSWORD-AUTH", "vpn1", "sshd accepts passwords")
            .severity(Severity::High);
        // First collection: sshd failed, so its finding is missing; no baseline from it.
        let mut s = complete_state("vpn1");
        s.sshd = Probed::not_collected("sshd", "timeout");
        assert!(e.observe_state(&s, &[], 0).is_empty());
        // Complete: this is the baseline, with the finding.
        let s = complete_state("vpn1");
        assert!(e.observe_state(&s, std::slice::from_ref(&f), 10).is_empty());
        // A new high finding later alerts.
        let g = Finding::new("FW-OFF", "vpn1", "firewall off").severity(Severity::Critical);
        let ev = e.observe_state(&s, &[f, g], 20);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].alert.alert, "NEW-FINDING");
        assert_eq!(ev[0].alert.check, "FW-OFF");
    }

    #[test]
    fn unreachable_then_back() {
        let mut e = AlertEngine::new(Thresholds::default());
        let s = HostState::unreachable("db1", "connect", "timed out");
        let ev = e.observe_state(&s, &[], 10);
        assert_eq!(ev[0].alert.alert, "HOST-UNREACHABLE");
        assert!(ev[0].alert.evidence[0].contains("timed out"));
        let ev = e.observe_state(&state("db1"), &[], 20);
        assert_eq!(ev[0].change, Change::Resolved);
        let ev = e.observe_reachability(
            "db1",
            &Reachability::HostKeyRefused {
                reason: "changed".into(),
            },
            30,
        );
        assert_eq!(ev[0].alert.severity, Severity::Critical);
    }

    #[test]
    fn ban_spike_counts_bans_in_the_last_minute() {
        let t = Thresholds {
            ban_spike_per_minute: 2.0,
            ..Thresholds::default()
        };
        let mut e = AlertEngine::new(t);
        let mut s = state("web1");
        let jail = |total: u64, banned: &[&str]| Fail2ban {
            running: true,
            version: None,
            jails: vec![Jail {
                name: "sshd".into(),
                total_banned: total,
                banned: banned.iter().map(|b| b.parse().unwrap()).collect(),
                ..Jail::default()
            }],
        };
        s.fail2ban = Probed::Ok(jail(3, &[]));
        assert!(e.observe_state(&s, &[], 0).is_empty());
        s.fail2ban = Probed::Ok(jail(4, &["10.77.9.99"]));
        assert!(e.observe_state(&s, &[], 15).is_empty(), "1 ban < 2");
        s.fail2ban = Probed::Ok(jail(5, &["10.77.9.99", "10.77.9.98"]));
        let ev = e.observe_state(&s, &[], 30);
        assert_eq!(ev[0].alert.alert, "F2B-BAN-SPIKE");
        assert!(
            ev[0]
                .alert
                .evidence
                .iter()
                .any(|x| x.contains("10.77.9.98"))
        );
        // A minute later with no more bans it resolves.
        let ev = e.observe_state(&s, &[], 100);
        assert_eq!(ev[0].change, Change::Resolved);
        // Banned and still seen in traffic.
        let snap = FlowSnapshot {
            active_sources: vec!["10.77.9.99".parse().unwrap()],
            window_secs: 10.0,
            ..FlowSnapshot::default()
        };
        let ev = e.observe_flows("web1", &snap, 101);
        assert_eq!(ev[0].alert.id, "F2B-BANNED-STILL-SEEN:web1:10.77.9.99");
        let ev = e.capture_stopped("web1", 102);
        assert_eq!(ev[0].change, Change::Resolved);
    }

    #[test]
    fn ack_and_silence_stick_to_the_firing_alert() {
        let mut e = AlertEngine::new(Thresholds::default());
        let c = detect::reachability("x", &Reachability::Unreachable { reason: "r".into() });
        e.observe("x", GROUP_REACH, c.clone(), 1);
        assert!(e.acknowledge("HOST-UNREACHABLE:x").is_some());
        assert!(e.silence("HOST-UNREACHABLE:x", 100).is_some());
        let ev = e.observe("x", GROUP_REACH, c, 2);
        assert!(ev[0].alert.acknowledged);
        assert!(ev[0].alert.is_silenced(50));
        assert!(!ev[0].alert.is_silenced(100));
        assert!(e.acknowledge("nope").is_none());
    }

    #[test]
    fn firewall_turned_off_is_disabled_not_just_changed() {
        use crate::state::{Action, Backend, Chain, Family, Hook};
        let mut e = AlertEngine::new(Thresholds::default());
        let mut s = state("app1");
        let on = Firewall {
            chains: vec![Chain {
                backend: Backend::Nftables,
                family: Family::Any,
                table: "inet filter".into(),
                name: "input".into(),
                hook: Some(Hook::Input),
                priority: 0,
                policy: Some(Action::Drop),
                rules: vec![],
            }],
            ..Firewall::default()
        };
        s.firewall = Probed::Ok(on.clone());
        e.observe_state(&s, &[], 0);
        s.firewall = Probed::Ok(Firewall::default());
        let ev = e.observe_state(&s, &[], 10);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].alert.alert, "DRIFT-FIREWALL-DISABLED");
        let mut changed = on.clone();
        changed.chains[0].policy = Some(Action::Accept);
        changed.chains[0].rules = vec![];
        s.firewall = Probed::Ok(changed);
        let ev = e.observe_state(&s, &[], 20);
        let names: Vec<&str> = ev.iter().map(|x| x.alert.alert.as_str()).collect();
        assert!(names.contains(&"DRIFT-FIREWALL-DISABLED"), "{names:?}");
    }
}
