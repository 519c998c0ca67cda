//! firewalld's own nft table (tests/fixtures/firewall/firewalld, read from the lab's fwd1):
//! zones dispatched by source (`goto filter_IN_<zone>`), services as ports in each zone's
//! `_allow` chain, a reject at the end, and `ct status dnat accept` in INPUT for what a
//! forward-port translated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use rampart::firewall::assemble::{Inputs, assemble};
use rampart::firewall::eval::{Evaluator, HostNet};
use rampart::state::{Decision, Facts, Firewall, Interface, Packet, Probed, Protocol, Route};

fn fx(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/firewall/firewalld/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn fwd1(nft: &str) -> Firewall {
    let inputs = Inputs {
        nft: Probed::Ok(nft),
        firewalld_running: Some(true),
        ..Inputs::default()
    };
    assemble(&inputs)
}

/// fwd1's eth0 10.77.11.31/24, default route via 10.77.11.1.
fn fwd1_net() -> HostNet {
    let iface = |name: &str, addr: &str| Interface {
        name: name.into(),
        up: true,
        operstate: "UP".into(),
        addresses: vec![addr.parse().unwrap()],
        ..Interface::default()
    };
    HostNet::from_facts(&Facts {
        interfaces: vec![iface("lo", "127.0.0.1/8"), iface("eth0", "10.77.11.31/24")],
        routes: vec![Route {
            destination: "default".into(),
            gateway: Some(ip("10.77.11.1")),
            device: Some("eth0".into()),
            ..Route::default()
        }],
        ..Facts::default()
    })
}

fn tcp(src: &str, port: u16) -> Packet {
    Packet {
        src: ip(src),
        dst: None,
        iface: None,
        protocol: Protocol::Tcp,
        port,
    }
}

#[test]
fn zones_by_source_decide_and_ct_status_dnat_is_not_a_blanket_accept() {
    let fw = fwd1(&fx("nft.json"));
    for ev in [None, Some(Evaluator::new(&fw, fwd1_net()))] {
        let judge = |src: &str, port: u16| match &ev {
            Some(e) => e.evaluate(&tcp(src, port)),
            None => fw.admits(ip(src), Protocol::Tcp, port),
        };
        // The deliberate mistake: Redis from the dmz, through the labapp zone.
        let v = judge("10.77.10.11", 6379);
        assert_eq!(v.decision, Decision::Accept, "{v:#?}");
        assert!(v.path_label().contains("filter_IN_labapp"), "{v:#?}");
        assert!(
            !v.assumptions.iter().any(|a| a.contains("unmodelled")),
            "{:?}",
            v.assumptions
        );
        // The same zone does not allow SSH: rejected (firewalld's icmpx admin-prohibited).
        let v = judge("10.77.10.11", 22);
        assert_eq!(v.decision, Decision::Reject, "{v:#?}");
        // The admin segment goes to the admin zone (sorted first by name): SSH yes, Redis no.
        assert_eq!(judge("10.77.9.10", 22).decision, Decision::Accept);
        assert_eq!(judge("10.77.9.10", 9100).decision, Decision::Accept);
        assert_eq!(judge("10.77.9.10", 6379).decision, Decision::Reject);
        // Outside the lab: the default zone (public) admits nothing.
        let v = judge("198.51.100.7", 22);
        assert_eq!(v.decision, Decision::Reject, "{v:#?}");
        assert!(v.path_label().contains("filter_IN_public"), "{v:#?}");
        // A port nothing allows, from the zone with Redis: no `ct status dnat` shortcut.
        assert_eq!(judge("10.77.12.11", 3306).decision, Decision::Reject);
    }
}

#[test]
fn a_forward_port_is_admitted_by_ct_status_dnat() {
    // After `--zone=labapp --add-rich-rule='rule family=ipv4 source address=10.77.10.0/24
    // forward-port port=16379 protocol=tcp to-port=6379'`: a redirect in nat prerouting, and
    // INPUT accepts it by `ct status dnat` before any zone is asked.
    let fw = fwd1(&fx("nft-forward-port.json"));
    let ev = Evaluator::new(&fw, fwd1_net());
    let v = ev.evaluate(&tcp("10.77.10.11", 16379));
    assert_eq!(v.decision, Decision::Accept, "{v:#?}");
    assert!(v.path_label().contains("redirect"), "{v:#?}");
    // Not from the data segment: the rich rule names the dmz only, and labapp has no 16379.
    assert_eq!(
        ev.evaluate(&tcp("10.77.12.11", 16379)).decision,
        Decision::Reject
    );
}
