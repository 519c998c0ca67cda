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

/// Lab host leg1 as rampart reads it: `iptables-legacy-save` (or a plain `iptables-save`
/// that is the legacy one) and `ipset save`, nothing else.
fn legacy_host(plain: bool) -> Firewall {
    let save = fx(if plain {
        "legacy-ipset-iptables-save.txt"
    } else {
        "legacy-ipset-iptables-legacy-save.txt"
    });
    // ip6tables-save and ip6tables-legacy-save print the same (the header names no backend).
    let save6 = fx("legacy-ipset-ip6tables-legacy-save.txt");
    let ipset = fx("legacy-ipset-ipset-save.txt");
    let nft_save = fx("legacy-ipset-iptables-nft-save.txt");
    let inputs = if plain {
        Inputs::default()
    } else {
        Inputs {
            iptables_legacy: Probed::Ok(&save),
            ip6tables_legacy: Probed::Ok(&save6),
            // The nft tool is installed too and sees only a warning.
            iptables_nft: Probed::Ok(&nft_save),
            ..Inputs::default()
        }
    };
    let more = if plain {
        MoreInputs {
            iptables_plain: Probed::Ok(&save),
            ip6tables_plain: Probed::Ok(&save6),
            ipset: Probed::Ok(&ipset),
        }
    } else {
        MoreInputs {
            ipset: Probed::Ok(&ipset),
            ..MoreInputs::default()
        }
    };
    assemble_with(&inputs, &more)
}

#[test]
fn a_redirected_port_is_accepted_by_ctstate_dnat_although_input_names_only_the_set() {
    // The case the kernel agreement test found on leg1: `--ctstate DNAT` was unmodelled, so
    // the model read "accept everything" and disagreed with the kernel on 34 triples.
    let fw = legacy_host(false);
    assert!(fw.rules.iter().all(|r| r.unmodelled.is_empty()), "{fw:#?}");
    let dmz = "10.77.10.11";
    // Through the redirect: delivered to node exporter's 9100, from the dmz.
    let v = fw.admits(ip(dmz), Protocol::Tcp, 9180);
    assert_eq!(v.decision, Decision::Accept, "{v:#?}");
    assert_eq!(v.local_port, Some(9100));
    assert!(v.assumptions.is_empty(), "{v:#?}");
    assert_eq!(
        v.path_label(),
        "nat/PREROUTING → redirect to local port 9100 | delivered locally to port 9100 | \
         filter/INPUT → accept"
    );
    let rule = fw.rule_of(&v).unwrap();
    assert_eq!(rule.origin.label(), "iptables-legacy filter/INPUT line 14");
    // A rule whose sources came from a set says which.
    let ssh = fw
        .rule_of(&fw.admits(ip("10.77.9.10"), Protocol::Tcp, 22))
        .unwrap();
    assert_eq!(ssh.comment.as_deref(), Some("ipset admin-src src"));
    assert_eq!(
        ssh.sources,
        vec!["10.77.9.0/24".parse::<ipnet::IpNet>().unwrap()]
    );
    // 9100 itself, and every port that was not redirected, are the policy's.
    for port in [9100, 22, 23] {
        let v = fw.admits(ip(dmz), Protocol::Tcp, port);
        assert_eq!(v.decision, Decision::Drop, "{port}: {v:#?}");
        assert_eq!(v.local_port, None);
    }
    // The admin set (which holds the bastion) reaches 22 and 9100.
    for port in [22, 9100] {
        assert_eq!(
            fw.admits(ip("10.77.9.10"), Protocol::Tcp, port).decision,
            Decision::Accept
        );
    }
    // The blocklist (hash:ip) drops cache1 before anything else, the redirect included.
    for port in [443, 9180] {
        assert_eq!(
            fw.admits(ip("10.77.12.21"), Protocol::Tcp, port).decision,
            Decision::Drop
        );
    }
    assert_eq!(
        fw.admits(ip("10.77.12.11"), Protocol::Tcp, 443).decision,
        Decision::Accept
    );
}

#[test]
fn plain_iptables_save_of_the_legacy_backend_reads_as_iptables_legacy() {
    // No -legacy/-nft tool: the header ("iptables-save v1.8.9", no "(nf_tables)") says legacy,
    // as `iptables -V` does.
    assert!(fx("legacy-ipset-iptables-V.txt").contains("(legacy)"));
    let plain = legacy_host(true);
    let suffixed = legacy_host(false);
    assert_eq!(
        plain.managers,
        vec![rampart::state::Manager::IptablesLegacy]
    );
    assert_eq!(plain.rules.len(), suffixed.rules.len());
    assert!(
        plain
            .rules
            .iter()
            .all(|r| r.origin.backend == rampart::state::Backend::IptablesLegacy)
    );
    assert!(
        plain
            .notes
            .iter()
            .any(|n| n.contains("iptables-save") && n.contains("legacy")),
        "{:?}",
        plain.notes
    );
    for port in [22, 80, 443, 9100, 9180, 23] {
        for src in ["10.77.9.10", "10.77.10.11", "10.77.12.21", "198.18.0.9"] {
            let (a, b) = (
                plain.admits(ip(src), Protocol::Tcp, port),
                suffixed.admits(ip(src), Protocol::Tcp, port),
            );
            assert_eq!(
                (a.decision, a.local_port),
                (b.decision, b.local_port),
                "{src} → {port}"
            );
        }
    }
}

#[test]
fn ctstate_dnat_holds_only_for_what_prerouting_translated() {
    let fw = |nat: &str, input: &str| {
        let save = format!(
            "*nat\n:PREROUTING ACCEPT [0:0]\n{nat}COMMIT\n\
             *filter\n:INPUT DROP [0:0]\n{input}COMMIT\n"
        );
        rampart::firewall::assemble::assemble(&Inputs {
            iptables_legacy: Probed::Ok(&save),
            ..Inputs::default()
        })
    };
    let src = ip("198.18.0.9");
    // DNAT to another port on the host: DNAT state, accepted.
    let f = fw(
        "-A PREROUTING -p tcp -m tcp --dport 2222 -j REDIRECT --to-ports 22\n",
        "-A INPUT -m conntrack --ctstate DNAT -j ACCEPT\n",
    );
    assert!(f.admits(src, Protocol::Tcp, 2222).admitted());
    assert!(!f.admits(src, Protocol::Tcp, 22).admitted());
    // `! --ctstate DNAT -j DROP` before an accept: only translated connections pass.
    let f = fw(
        "-A PREROUTING -p tcp -m tcp --dport 2222 -j REDIRECT --to-ports 22\n",
        "-A INPUT -m conntrack ! --ctstate DNAT -j DROP\n-A INPUT -j ACCEPT\n",
    );
    assert!(f.admits(src, Protocol::Tcp, 2222).admitted());
    assert!(!f.admits(src, Protocol::Tcp, 80).admitted());
    // NEW,DNAT matches every new connection; SNAT none coming in.
    let f = fw("", "-A INPUT -m conntrack --ctstate NEW,DNAT -j ACCEPT\n");
    assert!(f.admits(src, Protocol::Tcp, 80).admitted());
    let f = fw("", "-A INPUT -m conntrack --ctstate SNAT -j ACCEPT\n");
    assert!(!f.admits(src, Protocol::Tcp, 80).admitted());
    // A REDIRECT without a port may leave the tuple as it was (when the packet was sent to
    // the arrival interface's first address): the state is an open branch, read as exposed.
    let f = fw(
        "-A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT\n",
        "-A INPUT -m conntrack --ctstate DNAT -j ACCEPT\n",
    );
    let v = f.admits(src, Protocol::Tcp, 80);
    assert!(v.admitted() && !v.assumptions.is_empty(), "{v:#?}");
}

#[test]
fn nft_ct_status_dnat_reads_like_ctstate_dnat() {
    // `nft -j` of `ct status dnat accept` and `ct status != dnat drop` (nftables 1.0.6),
    // behind a redirect of 2222 to 22 and an input policy of drop.
    let ruleset = |verdict: &str, op: &str| {
        format!(
            r#"{{"nftables": [
  {{"table": {{"family": "ip", "name": "t", "handle": 1}}}},
  {{"chain": {{"family": "ip", "table": "t", "name": "pre", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}}},
  {{"chain": {{"family": "ip", "table": "t", "name": "in", "handle": 2, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}}},
  {{"rule": {{"family": "ip", "table": "t", "chain": "pre", "handle": 3, "expr": [
    {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": 2222}}}},
    {{"redirect": {{"port": 22}}}}]}}}},
  {{"rule": {{"family": "ip", "table": "t", "chain": "in", "handle": 4, "expr": [
    {{"match": {{"op": "{op}", "left": {{"ct": {{"key": "status"}}}}, "right": "dnat"}}}},
    {{"{verdict}": null}}]}}}},
  {{"rule": {{"family": "ip", "table": "t", "chain": "in", "handle": 5, "expr": [
    {{"match": {{"op": "==", "left": {{"payload": {{"protocol": "tcp", "field": "dport"}}}}, "right": 80}}}},
    {{"accept": null}}]}}}}
]}}"#
        )
    };
    let src = ip("198.18.0.9");
    let text = ruleset("accept", "in");
    let fw = rampart::firewall::assemble::assemble(&Inputs {
        nft: Probed::Ok(&text),
        ..Inputs::default()
    });
    assert!(fw.rules.iter().all(|r| r.unmodelled.is_empty()), "{fw:#?}");
    let v = fw.admits(src, Protocol::Tcp, 2222);
    assert!(v.admitted(), "{v:#?}");
    assert_eq!(v.local_port, Some(22));
    assert!(!fw.admits(src, Protocol::Tcp, 22).admitted());
    let text = ruleset("drop", "!=");
    let fw = rampart::firewall::assemble::assemble(&Inputs {
        nft: Probed::Ok(&text),
        ..Inputs::default()
    });
    assert!(!fw.admits(src, Protocol::Tcp, 80).admitted());
    assert!(!fw.admits(src, Protocol::Tcp, 2222).admitted());
}

#[test]
fn a_listener_reached_only_through_a_redirect_is_an_exposed_port() {
    use rampart::inventory::Inventory;
    use rampart::posture::checks::{CheckOptions, evaluate};
    use rampart::state::{FleetState, HostState, Listener};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml");
    let inv = Inventory::load(&path).unwrap();
    let listen = |port: u16| Listener {
        protocol: Protocol::Tcp,
        address: None,
        interface: None,
        port,
        processes: Vec::new(),
    };
    let mut leg1 = HostState::unreachable("leg1", "test", "only the firewall and listeners");
    leg1.errors.clear();
    leg1.firewall = Probed::Ok(legacy_host(false));
    leg1.listeners = Probed::Ok(vec![listen(22), listen(80), listen(443), listen(9100)]);
    let fleet = FleetState { hosts: vec![leg1] };
    let findings = evaluate(&inv, &fleet, &CheckOptions::new(0));
    let exposed: Vec<_> = findings
        .iter()
        .filter(|f| f.host == "leg1" && f.check == "FW-EXPOSED-PORT")
        .collect();
    // Node exporter: INPUT lets 9100 in from admin-src only, but 9180 is redirected to it.
    assert_eq!(exposed.len(), 1, "{findings:#?}");
    let f = exposed[0];
    assert!(f.title.starts_with("9100/tcp is let in from"), "{f:#?}");
    assert!(
        f.evidence.iter().any(|e| e.contains("to port 9180")
            && e.contains("redirect to local port 9100")
            && e.contains("iptables-legacy filter/INPUT line 14")),
        "{f:#?}"
    );
    // SSH stays the admin set's: no finding for it.
    assert!(
        !findings
            .iter()
            .any(|f| f.host == "leg1" && f.check == "SEG-SSH-OPEN"),
        "{findings:#?}"
    );
}

#[test]
fn default_allow_quotes_the_family_that_is_let_in() {
    // IPv4 rules only (no ip6tables dump): IPv6 is let in by nothing at all, and the
    // evidence must say so for IPv6, not quote the IPv4 policy's drop.
    use rampart::inventory::Inventory;
    use rampart::posture::checks::{CheckOptions, evaluate};
    use rampart::state::{FleetState, HostState};
    let save = fx("legacy-ipset-iptables-legacy-save.txt");
    let ipset = fx("legacy-ipset-ipset-save.txt");
    let fw = assemble_with(
        &Inputs {
            iptables_legacy: Probed::Ok(&save),
            ..Inputs::default()
        },
        &MoreInputs {
            ipset: Probed::Ok(&ipset),
            ..MoreInputs::default()
        },
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml");
    let inv = Inventory::load(&path).unwrap();
    let mut leg1 = HostState::unreachable("leg1", "test", "only the firewall");
    leg1.errors.clear();
    leg1.firewall = Probed::Ok(fw);
    leg1.listeners = Probed::Ok(Vec::new());
    let findings = evaluate(
        &inv,
        &FleetState { hosts: vec![leg1] },
        &CheckOptions::new(0),
    );
    let f = findings
        .iter()
        .find(|f| f.check == "FW-DEFAULT-ALLOW")
        .expect("IPv6 is let in by default");
    let e = &f.evidence[0];
    assert!(e.contains("from 2001:db8::77 "), "{e}");
    assert!(e.contains("NoFilter"), "{e}");
}
