//! The kernel agreement test: rampart's exposure verdicts against real packets.
//!
//! For every lab host as a target, every TCP port anything in the lab listens on (so a
//! database port is also tried on the hosts that do not serve it), the ports prerouting NAT
//! on the target translates, and a sample of ports nothing serves, from every lab host's
//! network namespace (each sits in a segment: admin, dmz, app, data...), from a second
//! admin source (the bastion's 10.77.9.99, which no firewall names by itself) and from
//! outside (this namespace, which reaches only the bastion), the test makes a real TCP
//! connection attempt and compares what the kernel did with what the model says.
//!
//! What a connection attempt can observe, and so what is compared:
//! - **connected**: delivered to a listening socket. The model must say admitted, and a
//!   socket must listen on the port the connection lands on (after a REDIRECT, the
//!   translated one: [`Verdict::local_port`](rampart::state::Verdict)).
//! - **refused** (a RST): either admitted with nothing listening, or a REJECT rule with
//!   `tcp-reset`. A RST alone cannot tell those apart (ufw's `reject` answers with a RST
//!   too), so a model "admitted, nothing listens" and a model "rejected" both agree with
//!   it; what a RST does prove is "not dropped and not delivered", and that is what is
//!   checked. No lab firewall rejects TCP today, so in practice every RST is an admitted
//!   closed port.
//! - **silence** (no answer within the bound): dropped. The lab is local (answers come in
//!   milliseconds) and nothing in it delays packets, so silence for the whole bound is a
//!   drop, never a slow answer. The model must say drop.
//! - ICMP errors (host/port unreachable, prohibited): a REJECT with an ICMP type.
//!
//! UDP is not counted: the only UDP listener in the lab is WireGuard (51820), which answers
//! nothing but a valid handshake, so an admitted datagram and a dropped one both meet
//! silence; and a closed UDP port's ICMP port-unreachable is rate-limited per source by the
//! kernel (`icmp_ratelimit`), so many probes from one source would read as drops. Neither
//! is an observable verdict.
//!
//! leg1 (iptables-legacy and ipset) is checked twice: as the collector reads it
//! (`iptables-legacy-save`, `ipset save`) and as a host with only a plain `iptables-save`
//! would give the same kernel ruleset (its header is how the model knows the backend).
//!
//! Every disagreement is a model bug: the test prints each one with the verdict's path and
//! fails. It prints how many (source, host, protocol, port) triples it checked. The probes
//! of all sources run at once (each source's attempts are themselves concurrent), bounded
//! by [`DEADLINE_SECS`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Command;

use rampart::collect::collect_fleet;
use rampart::firewall::assemble::{Inputs, MoreInputs, assemble_with};
use rampart::state::{
    Action, Backend, Decision, Firewall, FleetState, HostState, Manager, PortSet, Probed, Protocol,
};
use serde_json::Value;

/// The bastion's address on the admin segment: how every private host reaches it (its
/// inventory address is on the outside link, which only this namespace is on).
const EDGE_ADMIN: &str = "10.77.9.10";

/// Ports that nothing in the lab listens on (on its lab addresses): the firewall alone
/// decides what the kernel does with them (RST when admitted, silence when dropped).
const CLOSED_SAMPLE: [u16; 6] = [23, 3306, 8081, 10050, 11211, 27017];

/// How long a probe waits for the answers of all its attempts (a drop is silence for all
/// of it). Lab answers come in milliseconds; the bound only has to outlast a busy machine.
const DEADLINE_SECS: u32 = 4;

/// A second source on the admin segment (the bastion's test address).
const EDGE_TEST_SOURCE: &str = "10.77.9.99";

/// Connects to every `addr:port` given in argv[1] (JSON) at once, from this namespace (from
/// the address argv[3] when it is not empty), waiting at most argv[2] seconds; prints the
/// source address of each destination and each outcome.
const PROBE: &str = r#"
import errno, json, selectors, socket, sys, time
targets = json.loads(sys.argv[1])
wait = float(sys.argv[2])
bind = sys.argv[3]
out = {"src": {}, "res": {}}
sel = selectors.DefaultSelector()
for a, p in targets:
    key = "%s:%d" % (a, p)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if bind: u.bind((bind, 0))
        u.connect((a, 9)); out["src"][a] = u.getsockname()[0]
    except OSError as e:
        out["src"][a] = None
    u.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    if bind: s.bind((bind, 0))
    e = s.connect_ex((a, p))
    if e == 0:
        out["res"][key] = "connected"; s.close(); continue
    if e != errno.EINPROGRESS:
        out["res"][key] = errno.errorcode.get(e, str(e)); s.close(); continue
    sel.register(s, selectors.EVENT_WRITE, key)
deadline = time.time() + wait
while sel.get_map() and time.time() < deadline:
    for k, _ in sel.select(timeout=max(0.0, deadline - time.time())):
        e = k.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        out["res"][k.data] = "connected" if e == 0 else errno.errorcode.get(e, str(e))
        sel.unregister(k.fileobj); k.fileobj.close()
for k in list(sel.get_map().values()):
    out["res"][k.data] = "timeout"; k.fileobj.close()
print(json.dumps(out))
"#;

/// What the kernel may do with a connection attempt, as the model predicts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Connected,
    Refused,
    Silence,
    /// A reject rule: RST or an ICMP error, depending on the rule.
    RefusedOrUnreachable,
}

impl Expect {
    fn agrees(self, outcome: &str) -> bool {
        match self {
            Expect::Connected => outcome == "connected",
            Expect::Refused => outcome == "ECONNREFUSED",
            Expect::Silence => outcome == "timeout",
            Expect::RefusedOrUnreachable => {
                matches!(
                    outcome,
                    "ECONNREFUSED" | "EHOSTUNREACH" | "ENETUNREACH" | "EACCES"
                )
            }
        }
    }
}

/// The model's prediction for a new TCP connection from `src` to `dst:port` on `target`,
/// in words for the failure message.
fn predict(target: &HostState, src: IpAddr, dst: IpAddr, port: u16) -> (Expect, String) {
    match &target.firewall {
        Probed::Ok(fw) => predict_with(target, fw, src, dst, port),
        other => panic!("{}: firewall {}", target.host, other.status_label()),
    }
}

/// [`predict`] with another reading of the target's firewall.
fn predict_with(
    target: &HostState,
    fw: &Firewall,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
) -> (Expect, String) {
    let v = fw.admits(src, Protocol::Tcp, port);
    // After a REDIRECT the connection lands on the translated port.
    let lands_on = v.local_port.unwrap_or(port);
    let listening = match &target.listeners {
        Probed::Ok(ls) => ls.iter().any(|l| {
            l.protocol == Protocol::Tcp
                && l.port == lands_on
                && !l.is_loopback()
                && (l.is_wildcard() || l.address == Some(dst))
                && l.accepts_family_of(src)
        }),
        other => panic!("{}: listeners {}", target.host, other.status_label()),
    };
    let why = match fw.rule_of(&v) {
        Some(r) => format!("{:?} by rule {}", v.decision, r.origin.label()),
        None => format!("{:?} by {:?}", v.decision, v.decided_by),
    };
    let expect = match (v.decision, listening) {
        (Decision::Accept | Decision::Limit, true) => Expect::Connected,
        (Decision::Accept | Decision::Limit, false) => Expect::Refused,
        (Decision::Drop, _) => Expect::Silence,
        (Decision::Reject, _) => Expect::RefusedOrUnreachable,
    };
    (
        expect,
        format!(
            "{why}; path {}; lands on {lands_on}, listening: {listening}; assumptions {:?}",
            v.path_label(),
            v.assumptions
        ),
    )
}

/// Where connection attempts come from: a lab host's namespace (or "outside", this test's
/// own), from the address its routes choose or from `bind`.
#[derive(Debug, Clone, Copy)]
struct Source {
    host: &'static str,
    bind: Option<&'static str>,
}

impl Source {
    fn label(&self) -> String {
        match self.bind {
            Some(b) => format!("{}@{b}", self.host),
            None => self.host.to_string(),
        }
    }
}

/// One planned connection attempt: (target host, destination address, port).
type Attempt = (&'static str, IpAddr, u16);

/// Runs the probe in `source`'s namespaces ("outside" is this test's own).
fn probe_from(lab: &common::Lab, source: Source, targets: &[(String, u16)]) -> Value {
    let arg = serde_json::to_string(targets).unwrap();
    let wait = DEADLINE_SECS.to_string();
    let args = ["-c", PROBE, &arg, &wait, source.bind.unwrap_or("")];
    let out = if source.host == "outside" {
        Command::new("python3")
            .args(args)
            .output()
            .expect("run python3")
    } else {
        lab.exec(source.host, "python3", &args)
    };
    assert!(
        out.status.success(),
        "probe from {}: {}",
        source.label(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

fn host<'a>(fleet: &'a FleetState, name: &str) -> &'a HostState {
    fleet
        .host(name)
        .unwrap_or_else(|| panic!("no state for {name}"))
}

/// TCP ports a host listens on, on a non-loopback address.
fn listening_ports(h: &HostState) -> BTreeSet<u16> {
    match &h.listeners {
        Probed::Ok(ls) => ls
            .iter()
            .filter(|l| l.protocol == Protocol::Tcp && !l.is_loopback())
            .map(|l| l.port)
            .collect(),
        other => panic!("{}: listeners {}", h.host, other.status_label()),
    }
}

/// TCP ports the host's prerouting NAT (DNAT, REDIRECT) names one by one: the paths the
/// INPUT rules alone do not show.
fn nat_ports(h: &HostState) -> BTreeSet<u16> {
    let Probed::Ok(fw) = &h.firewall else {
        return BTreeSet::new();
    };
    fw.rules
        .iter()
        .filter(|r| matches!(r.action, Action::Dnat(_) | Action::Redirect(_)))
        .filter(|r| r.protocol.as_ref().is_none_or(|p| *p == Protocol::Tcp))
        .flat_map(|r| match &r.dports {
            PortSet::Only(ranges) => ranges
                .iter()
                .filter(|p| p.last.saturating_sub(p.first) < 4)
                .flat_map(|p| p.first..=p.last)
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_verdict_agrees_with_a_real_connection_attempt() {
    // Exclusive: no other test changes a firewall or a listener between the collection and
    // the packets.
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    let t = lab.transport(Some(&dir.path().join("commands.jsonl")));
    let names: Vec<String> = common::HOSTS.iter().map(|(n, _)| n.to_string()).collect();
    let fleet = collect_fleet(&t, &names).await;

    // leg1 is read from its legacy tables (iptables-legacy-save, ipset save), not from the
    // empty nf_tables side.
    let Probed::Ok(leg_fw) = &host(&fleet, "leg1").firewall else {
        panic!("leg1: no firewall")
    };
    assert_eq!(
        leg_fw.managers,
        vec![Manager::IptablesLegacy],
        "{leg_fw:#?}"
    );
    assert!(
        !leg_fw.rules.is_empty()
            && leg_fw
                .rules
                .iter()
                .all(|r| r.origin.backend == Backend::IptablesLegacy && r.unmodelled.is_empty()),
        "{leg_fw:#?}"
    );
    // The same kernel ruleset read as a host with only a plain `iptables-save` would give
    // it (on leg1 `iptables-save` is the legacy alternative): checked against the same
    // packets below.
    let plain_save = lab.exec("leg1", "iptables-save", &[]);
    let ipset_save = lab.exec("leg1", "ipset", &["save"]);
    assert!(plain_save.status.success() && ipset_save.status.success());
    let (plain_save, ipset_save) = (
        String::from_utf8(plain_save.stdout).unwrap(),
        String::from_utf8(ipset_save.stdout).unwrap(),
    );
    let leg_plain = assemble_with(
        &Inputs::default(),
        &MoreInputs {
            iptables_plain: Probed::Ok(&plain_save),
            ipset: Probed::Ok(&ipset_save),
            ..MoreInputs::default()
        },
    );
    assert_eq!(leg_plain.managers, vec![Manager::IptablesLegacy]);

    let mut sources = vec![Source {
        host: "outside",
        bind: None,
    }];
    sources.extend(common::HOSTS.iter().map(|(n, _)| Source {
        host: n,
        bind: None,
    }));
    sources.push(Source {
        host: "edge",
        bind: Some(EDGE_TEST_SOURCE),
    });
    // Every port something in the lab serves, tried on every host.
    let mut served: BTreeSet<u16> = BTreeSet::new();
    for (n, _) in common::HOSTS {
        served.extend(listening_ports(host(&fleet, n)));
    }

    // Each source's plan: (target, destination address, port).
    let plans: Vec<(Source, Vec<Attempt>)> = sources
        .iter()
        .map(|source| {
            let mut plan = Vec::new();
            for (name, addr) in common::HOSTS.iter().filter(|(n, _)| *n != source.host) {
                // What this source can be routed to: from outside only the bastion's
                // outside leg; from inside, the bastion's admin leg.
                let dst: IpAddr = match (source.host, *name) {
                    ("outside", "edge") => addr.parse().unwrap(),
                    ("outside", _) => continue,
                    (_, "edge") => EDGE_ADMIN.parse().unwrap(),
                    _ => addr.parse().unwrap(),
                };
                let h = host(&fleet, name);
                let mut ports = served.clone();
                ports.extend(CLOSED_SAMPLE);
                ports.extend(nat_ports(h));
                plan.extend(ports.into_iter().map(|p| (*name, dst, p)));
            }
            (*source, plan)
        })
        .collect();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|(source, plan)| {
                let lab = &lab;
                s.spawn(move || {
                    let attempts: Vec<(String, u16)> =
                        plan.iter().map(|(_, d, p)| (d.to_string(), *p)).collect();
                    probe_from(lab, *source, &attempts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut checked = 0usize;
    let mut disagreements = Vec::new();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
    // leg1's deliberate exposure, seen by the kernel: node exporter through the redirect.
    let mut redirect_delivered = Vec::new();
    let mut plain_checked = 0usize;
    for ((source, plan), answer) in plans.iter().zip(&answers) {
        for &(name, dst, port) in plan {
            let key = format!("{dst}:{port}");
            let outcome = answer["res"][&key]
                .as_str()
                .unwrap_or("missing")
                .to_string();
            let src: IpAddr = answer["src"][dst.to_string()]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no route to {dst}: {answer}", source.label()))
                .parse()
                .unwrap();
            let (expect, why) = predict(host(&fleet, name), src, dst, port);
            checked += 1;
            covered.insert(name);
            *per_host.entry(name).or_default() += 1;
            *outcomes.entry(outcome.clone()).or_default() += 1;
            if name == "leg1" && port == 9180 && outcome == "connected" {
                redirect_delivered.push(source.label());
            }
            if name == "leg1" {
                let (expect, why) = predict_with(host(&fleet, name), &leg_plain, src, dst, port);
                plain_checked += 1;
                if !expect.agrees(&outcome) {
                    disagreements.push(format!(
                        "{} ({src}) -> leg1 read from plain iptables-save, tcp/{port}: kernel \
                         {outcome}, model {expect:?} ({why})",
                        source.label()
                    ));
                }
            }
            if !expect.agrees(&outcome) {
                disagreements.push(format!(
                    "{} ({src}) -> {name} {dst} tcp/{port}: kernel {outcome}, model \
                     {expect:?} ({why})",
                    source.label()
                ));
            }
        }
    }
    eprintln!(
        "kernel agreement: {checked} (source, host, protocol, port) triples from {} sources \
         to {} hosts, {} disagree",
        sources.len(),
        covered.len(),
        disagreements.len()
    );
    eprintln!("  per target host: {per_host:?}");
    eprintln!(
        "  leg1 also read from plain iptables-save: {plain_checked} triples (disagreements \
         included above)"
    );
    eprintln!("  kernel outcomes: {outcomes:?}");
    for d in &disagreements {
        eprintln!("  {d}");
    }
    // The lab has all three answers: delivered, refused by the host, dropped by a firewall.
    for kind in ["connected", "ECONNREFUSED", "timeout"] {
        assert!(
            outcomes.contains_key(kind),
            "no {kind} at all: {outcomes:?}"
        );
    }
    assert!(checked >= 500, "too few triples: {checked}");
    assert!(
        redirect_delivered.contains(&"web1".to_string()),
        "leg1's redirect 9180 -> 9100 did not deliver from the dmz: {redirect_delivered:?}"
    );
    assert_eq!(covered.len(), common::HOSTS.len(), "{covered:?}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
