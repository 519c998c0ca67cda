//! The whole packet path on a real Docker-style ruleset (tests/fixtures/firewall, see the
//! README there): a published container port is DNAT'ed in PREROUTING and judged by
//! FORWARD (DOCKER-USER, DOCKER), not by INPUT; ipset members decide `--match-set`; plain
//! `iptables-save` reads like the suffixed tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use rampart::firewall::assemble::{Inputs, MoreInputs, assemble_with};
use rampart::firewall::eval::{Evaluator, HostNet};
use rampart::state::{Decision, Facts, Firewall, Interface, Packet, Probed, Protocol, Route};

fn fx(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/firewall/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn docker_host(save: &str, plain: bool) -> Firewall {
    let nft = fx("docker-nft.json");
    let ipset = fx("docker-ipset.txt");
    let none = |t: &str| Probed::NotInstalled { tool: t.into() };
    let inputs = Inputs {
        iptables_nft: if plain {
            none("iptables-nft-save")
        } else {
            Probed::Ok(save)
        },
        nft: Probed::Ok(&nft),
        ..Inputs::default()
    };
    let more = MoreInputs {
        iptables_plain: if plain {
            Probed::Ok(save)
        } else {
            none("iptables-save")
        },
        ipset: Probed::Ok(&ipset),
        ..MoreInputs::default()
    };
    assemble_with(&inputs, &more)
}

/// eth0 10.77.1.10/24 (default route), docker0 172.17.0.1/16.
fn docker_net() -> HostNet {
    let iface = |name: &str, addr: &str| Interface {
        name: name.into(),
        up: true,
        operstate: "UP".into(),
        addresses: vec![addr.parse().unwrap()],
        ..Interface::default()
    };
    HostNet::from_facts(&Facts {
        interfaces: vec![
            iface("lo", "127.0.0.1/8"),
            iface("eth0", "10.77.1.10/24"),
            iface("docker0", "172.17.0.1/16"),
        ],
        routes: vec![Route {
            destination: "default".into(),
            gateway: Some(ip("10.77.1.1")),
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
fn published_database_is_exposed_through_forward_although_input_drops_it() {
    let save = fx("docker-iptables-nft-save.txt");
    let fw = docker_host(&save, false);
    // Without the host's addresses: the DNAT target may be a container; that reading
    // delivers it, so it is exposed.
    let v = fw.admits(ip("198.18.0.9"), Protocol::Tcp, 5432);
    assert!(v.admitted(), "{v:#?}");
    let f = v.forwarded.as_ref().expect("forwarded");
    assert_eq!((f.addr, f.port), (ip("172.17.0.2"), 5432));
    // With them: one reading, the whole path in the evidence.
    let ev = Evaluator::new(&fw, docker_net());
    let v = ev.evaluate(&tcp("198.18.0.9", 5432));
    assert_eq!(v.decision, Decision::Accept, "{v:#?}");
    assert_eq!(
        v.path_label(),
        "nat/PREROUTING → DOCKER → dnat to 172.17.0.2:5432 | routed to 172.17.0.2 via \
         docker0 | filter/FORWARD → DOCKER → accept"
    );
    assert_eq!(v.forwarded.unwrap().iface.as_deref(), Some("docker0"));
    // INPUT alone would have said "closed": port 5432 has no INPUT rule.
    let v = ev.evaluate(&tcp("198.18.0.9", 5433));
    assert_eq!(v.decision, Decision::Drop);
    assert!(
        v.path_label().contains("filter/INPUT → policy drop"),
        "{v:#?}"
    );
}

#[test]
fn docker_user_decides_before_docker_and_translates_ports() {
    let save = fx("docker-iptables-nft-save.txt");
    let fw = docker_host(&save, false);
    let ev = Evaluator::new(&fw, docker_net());
    // 8080 → 172.17.0.3:80, dropped in DOCKER-USER unless from the admin network.
    let v = ev.evaluate(&tcp("198.18.0.9", 8080));
    assert_eq!(v.decision, Decision::Drop, "{v:#?}");
    assert!(
        v.path_label()
            .contains("filter/FORWARD → DOCKER-USER → drop")
    );
    let v = ev.evaluate(&tcp("10.77.9.4", 8080));
    assert!(v.admitted(), "{v:#?}");
    assert_eq!(v.forwarded.unwrap().port, 80);
    // Without the arrival interface the DOCKER-USER drop is an open branch: the model
    // leans towards exposed and says so.
    let v = fw.admits(ip("198.18.0.9"), Protocol::Tcp, 8080);
    assert!(v.admitted(), "{v:#?}");
    assert!(!v.assumptions.is_empty());
}

#[test]
fn ipset_members_decide_match_set() {
    let save = fx("docker-iptables-nft-save.txt");
    let fw = docker_host(&save, false);
    let ev = Evaluator::new(&fw, docker_net());
    assert_eq!(
        ev.evaluate(&tcp("203.0.113.8", 443)).decision,
        Decision::Drop
    );
    assert_eq!(
        ev.evaluate(&tcp("198.51.100.7", 443)).decision,
        Decision::Drop
    );
    assert_eq!(
        ev.evaluate(&tcp("198.51.100.8", 443)).decision,
        Decision::Accept
    );
    // Without `ipset save` the condition stays unmodelled and the drop is read both ways.
    let inputs = Inputs {
        iptables_nft: Probed::Ok(&save),
        ..Inputs::default()
    };
    let bare = rampart::firewall::assemble::assemble(&inputs);
    assert!(
        bare.admits(ip("203.0.113.8"), Protocol::Tcp, 443)
            .admitted()
    );
}

#[test]
fn plain_iptables_save_reads_like_iptables_nft_save() {
    let plain = fx("docker-iptables-save.txt");
    let suffixed = fx("docker-iptables-nft-save.txt");
    let a = docker_host(&plain, true);
    let b = docker_host(&suffixed, false);
    assert_eq!(a.rules.len(), b.rules.len());
    for port in [22, 443, 5432, 8080, 9] {
        for src in ["198.18.0.9", "10.77.9.4", "203.0.113.8"] {
            let (va, vb) = (
                a.admits(ip(src), Protocol::Tcp, port),
                b.admits(ip(src), Protocol::Tcp, port),
            );
            assert_eq!(va.decision, vb.decision, "{src} → {port}");
        }
    }
}

#[test]
fn matches_that_are_conditions_by_themselves_stay_unmodelled() {
    // Each DROP names a match the model cannot decide; none may close port 80.
    for m in [
        "-m socket",
        "-m ttl --ttl-gt 5",
        "-m ttl --ttl-eq 64",
        "-m hl --hl-eq 255",
        "-m frag --fragmore",
        "-m ah",
        "-m hbh",
        "-m rt --rt-type 0",
        "-m statistic --mode random --probability 0.5",
    ] {
        let save = format!("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp {m} -j DROP\nCOMMIT\n");
        let inputs = Inputs {
            iptables_legacy: Probed::Ok(&save),
            ..Inputs::default()
        };
        let fw = rampart::firewall::assemble::assemble(&inputs);
        let r = &fw.rules[0];
        assert!(!r.unmodelled.is_empty(), "{m}: {r:?}");
        assert!(
            fw.admits(ip("198.18.0.9"), Protocol::Tcp, 80).admitted(),
            "{m} closed the port"
        );
    }
    // ... and an ACCEPT naming one does not hide that the policy might drop: the
    // open branch is taken (admitted) and said.
    let save = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 80 -m socket -j ACCEPT\nCOMMIT\n";
    let fw = rampart::firewall::assemble::assemble(&Inputs {
        iptables_legacy: Probed::Ok(save),
        ..Inputs::default()
    });
    let v = fw.admits(ip("198.18.0.9"), Protocol::Tcp, 80);
    assert!(v.admitted() && !v.assumptions.is_empty(), "{v:#?}");
}

#[test]
fn a_jump_to_a_dropping_chain_on_an_unknown_interface_is_read_both_ways() {
    // `-i eth1 -j BLOCK` with BLOCK dropping everything: a packet on another interface
    // is let in by the policy, so the port is exposed.
    let save = "*filter\n:INPUT ACCEPT [0:0]\n:BLOCK - [0:0]\n-A INPUT -i eth1 -j BLOCK\n-A BLOCK -j DROP\nCOMMIT\n";
    let fw = rampart::firewall::assemble::assemble(&Inputs {
        iptables_legacy: Probed::Ok(save),
        ..Inputs::default()
    });
    let v = fw.admits(ip("198.18.0.9"), Protocol::Tcp, 80);
    assert!(v.admitted(), "{v:#?}");
}

#[test]
fn tcp_flags_and_syn_read_the_first_packet_of_a_connection() {
    for (m, closes) in [
        ("--syn", true),
        ("! --syn", false),
        ("--tcp-flags FIN,SYN,RST,ACK SYN", true),
        ("--tcp-flags SYN,ACK SYN,ACK", false),
        ("--tcp-flags ALL NONE", false),
    ] {
        let save =
            format!("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp {m} -j DROP\nCOMMIT\n");
        let fw = rampart::firewall::assemble::assemble(&Inputs {
            iptables_legacy: Probed::Ok(&save),
            ..Inputs::default()
        });
        let v = fw.admits(ip("198.18.0.9"), Protocol::Tcp, 80);
        assert_eq!(!v.admitted(), closes, "{m}: {v:#?}");
        assert!(fw.rules[0].unmodelled.is_empty(), "{m}");
    }
}
