//! The kernel agreement test: rampart's exposure verdicts against real packets.
//!
//! For every lab host as a target, every TCP port it listens on and a few it doesn't, from
//! every other lab host (each sits in a segment: admin, dmz, app, data...) and from outside
//! (this namespace, which reaches only the bastion), the test makes a real connection attempt
//! from the source's own network namespace and compares what the kernel did with what the
//! model says:
//! - delivered to a listening socket (firewall admits, a socket is bound there) → connected;
//! - admitted but nothing listens there → refused (RST);
//! - dropped → no answer; rejected → refused or unreachable.
//!
//! Every disagreement is a model bug: the test prints each one with the verdict's path and
//! fails. It prints how many (source, host, protocol, port) triples it checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use rampart::collect::collect_fleet;
use rampart::state::{Decision, FleetState, HostState, Probed, Protocol};
use serde_json::Value;

/// The bastion's address on the admin segment: how every private host reaches it (its
/// inventory address is on the outside link, which only this namespace is on).
const EDGE_ADMIN: &str = "10.77.9.10";

/// Ports that nothing in the lab listens on: the firewall alone decides what the kernel
/// does with them (RST when admitted, silence when dropped).
const CLOSED_SAMPLE: [u16; 4] = [23, 3306, 8081, 11211];

/// Connects to every `addr:port` given in argv[1] (JSON) at once, from this namespace;
/// prints the source address the kernel chose for each destination and each outcome.
const PROBE: &str = r#"
import errno, json, selectors, socket, sys, time
targets = json.loads(sys.argv[1])
out = {"src": {}, "res": {}}
sel = selectors.DefaultSelector()
for a, p in targets:
    key = "%s:%d" % (a, p)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.connect((a, 9)); out["src"][a] = u.getsockname()[0]
    except OSError as e:
        out["src"][a] = None
    u.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    e = s.connect_ex((a, p))
    if e == 0:
        out["res"][key] = "connected"; s.close(); continue
    if e != errno.EINPROGRESS:
        out["res"][key] = errno.errorcode.get(e, str(e)); s.close(); continue
    sel.register(s, selectors.EVENT_WRITE, key)
deadline = time.time() + 4
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
    let listening = match &target.listeners {
        Probed::Ok(ls) => ls.iter().any(|l| {
            l.protocol == Protocol::Tcp
                && l.port == port
                && !l.is_loopback()
                && (l.is_wildcard() || l.address == Some(dst))
                && l.accepts_family_of(src)
        }),
        other => panic!("{}: listeners {}", target.host, other.status_label()),
    };
    let (decision, why) = match &target.firewall {
        Probed::Ok(fw) => {
            let v = fw.admits(src, Protocol::Tcp, port);
            let why = match fw.rule_of(&v) {
                Some(r) => format!("{:?} by rule {:?}", v.decision, r.origin),
                None => format!("{:?} by {:?}", v.decision, v.decided_by),
            };
            (
                v.decision,
                format!("{why}; assumptions {:?}", v.assumptions),
            )
        }
        other => panic!("{}: firewall {}", target.host, other.status_label()),
    };
    let expect = match (decision, listening) {
        (Decision::Accept | Decision::Limit, true) => Expect::Connected,
        (Decision::Accept | Decision::Limit, false) => Expect::Refused,
        (Decision::Drop, _) => Expect::Silence,
        (Decision::Reject, _) => Expect::RefusedOrUnreachable,
    };
    (expect, format!("{why}; listening: {listening}"))
}

/// Runs the probe in `source`'s namespaces ("outside" is this test's own).
fn probe_from(lab: &common::Lab, source: &str, targets: &[(String, u16)]) -> Value {
    let arg = serde_json::to_string(targets).unwrap();
    let out = if source == "outside" {
        Command::new("python3")
            .args(["-c", PROBE, &arg])
            .output()
            .expect("run python3")
    } else {
        lab.exec(source, "python3", &["-c", PROBE, &arg])
    };
    assert!(
        out.status.success(),
        "probe from {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

fn host<'a>(fleet: &'a FleetState, name: &str) -> &'a HostState {
    fleet
        .host(name)
        .unwrap_or_else(|| panic!("no state for {name}"))
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

    let mut sources: Vec<&str> = vec!["outside"];
    sources.extend(common::HOSTS.iter().map(|(n, _)| *n));
    let mut checked = 0usize;
    let mut disagreements = Vec::new();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for source in &sources {
        // What this source can be routed to: from outside only the bastion's outside leg.
        let targets: Vec<(&str, IpAddr)> = common::HOSTS
            .iter()
            .filter(|(n, _)| n != source)
            .filter_map(|(n, a)| match (*source, *n) {
                ("outside", "edge") => Some((*n, a.parse().unwrap())),
                ("outside", _) => None,
                (_, "edge") => Some((*n, EDGE_ADMIN.parse().unwrap())),
                _ => Some((*n, a.parse().unwrap())),
            })
            .collect();
        let mut attempts: Vec<(String, u16)> = Vec::new();
        let mut plan: Vec<(&str, IpAddr, u16)> = Vec::new();
        for (name, dst) in &targets {
            let h = host(&fleet, name);
            let mut ports: BTreeSet<u16> = match &h.listeners {
                Probed::Ok(ls) => ls
                    .iter()
                    .filter(|l| l.protocol == Protocol::Tcp && !l.is_loopback())
                    .map(|l| l.port)
                    .collect(),
                other => panic!("{name}: listeners {}", other.status_label()),
            };
            ports.extend(CLOSED_SAMPLE);
            for p in ports {
                attempts.push((dst.to_string(), p));
                plan.push((name, *dst, p));
            }
        }
        let answer = probe_from(&lab, source, &attempts);
        for (name, dst, port) in plan {
            let key = format!("{dst}:{port}");
            let outcome = answer["res"][&key]
                .as_str()
                .unwrap_or("missing")
                .to_string();
            let src: IpAddr = answer["src"][dst.to_string()]
                .as_str()
                .unwrap_or_else(|| panic!("{source}: no route to {dst}: {answer}"))
                .parse()
                .unwrap();
            let (expect, why) = predict(host(&fleet, name), src, dst, port);
            checked += 1;
            covered.insert(name);
            *outcomes.entry(outcome.clone()).or_default() += 1;
            if !expect.agrees(&outcome) {
                disagreements.push(format!(
                    "{source} ({src}) -> {name} {dst} tcp/{port}: kernel {outcome}, model \
                     {expect:?} ({why})"
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
    assert!(checked >= 100, "too few triples: {checked}");
    assert_eq!(covered.len(), common::HOSTS.len(), "{covered:?}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
