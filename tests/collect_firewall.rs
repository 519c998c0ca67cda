//! The firewall model on real dumps (tests/fixtures/{ufw,iptables,nft}, see the README
//! there): which managers are active, the policies, and `admits` answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use rampart::collect::firewall::{Inputs, assemble};
use rampart::collect::{iptables, nft, ufw};
use rampart::state::{DecidedBy, Decision, Manager, Policy, Probed, Protocol};

fn fx(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// ufw active on iptables-nft, as Debian 12 ships it.
fn ufw_host() -> rampart::state::Firewall {
    let status = fx("ufw/status-verbose-active.txt");
    let v4 = fx("iptables/nft-backend-ufw-v4.txt");
    let v6 = fx("iptables/nft-backend-ufw-v6.txt");
    let nft = fx("nft/iptables-nft-ufw.json");
    let user = fx("ufw/user.rules");
    let user6 = fx("ufw/user6.rules");
    assemble(&Inputs {
        ufw_status: Probed::Ok(&status),
        ufw_user_rules: Some(&user),
        ufw_user6_rules: Some(&user6),
        iptables_legacy: Probed::Ok(""),
        ip6tables_legacy: Probed::Ok(""),
        iptables_nft: Probed::Ok(&v4),
        ip6tables_nft: Probed::Ok(&v6),
        nft: Probed::Ok(&nft),
        firewalld_running: None,
    })
}

#[test]
fn ufw_on_iptables_nft_is_one_manager_with_ufw_policies() {
    let fw = ufw_host();
    assert_eq!(fw.managers, vec![Manager::Ufw], "notes: {:?}", fw.notes);
    assert_eq!(fw.policies.incoming, Some(Policy::Drop));
    assert_eq!(fw.policies.outgoing, Some(Policy::Accept));
    assert_eq!(fw.policies.routed, Some(Policy::Disabled));
    // The nft view of ufw's tables (xt expressions) is replaced by iptables-nft-save's.
    assert!(
        fw.chains
            .iter()
            .all(|c| c.backend != rampart::state::Backend::Nftables)
    );
}

#[test]
fn ufw_rules_answer_exposure_questions() {
    let fw = ufw_host();
    let world = ip("203.0.113.50");
    // postgres allowed from anywhere.
    let v = fw.admits(world, Protocol::Tcp, 5432);
    assert_eq!(v.decision, Decision::Accept, "{v:?}");
    let rule = fw.rule_of(&v).unwrap();
    assert_eq!(rule.origin.chain, "ufw-user-input");
    assert_eq!(
        rule.comment.as_deref(),
        Some("ufw allow tcp 5432 (postgres)")
    );
    // ssh is LIMIT: admitted, rate-limited.
    let v = fw.admits(world, Protocol::Tcp, 22);
    assert_eq!(v.decision, Decision::Limit, "{v:?}");
    // 23 denied, 6000-6007 rejected, 8443 v4 not allowed: default drop.
    assert_eq!(fw.admits(world, Protocol::Tcp, 23).decision, Decision::Drop);
    assert_eq!(
        fw.admits(world, Protocol::Tcp, 6003).decision,
        Decision::Reject
    );
    let v = fw.admits(world, Protocol::Tcp, 8443);
    assert_eq!(v.decision, Decision::Drop);
    assert!(matches!(v.decided_by, DecidedBy::Policy { .. }));
    // 8443 from the allowed IPv6 prefix, not from elsewhere.
    assert!(
        fw.admits(ip("2001:db8:77::5"), Protocol::Tcp, 8443)
            .admitted()
    );
    assert!(
        !fw.admits(ip("2001:db8:99::5"), Protocol::Tcp, 8443)
            .admitted()
    );
    // web ports via the app profile, with its name as evidence.
    let v = fw.admits(world, Protocol::Tcp, 443);
    assert!(v.admitted());
    assert_eq!(
        fw.rule_of(&v).unwrap().comment.as_deref(),
        Some("ufw allow Nginx Full")
    );
    // 9100 only on wg0: from an unknown interface it is an assumption, on eth0 it is not.
    let v = fw.admits(world, Protocol::Tcp, 9100);
    assert!(v.admitted() && !v.assumptions.is_empty());
    let v = fw.evaluate(&rampart::state::Packet {
        src: world,
        dst: None,
        iface: Some("eth0".into()),
        protocol: Protocol::Tcp,
        port: 9100,
    });
    assert_eq!(v.decision, Decision::Drop);
    // Loopback is accepted by ufw's before-input.
    assert!(fw.admits(ip("127.0.0.1"), Protocol::Tcp, 6379).admitted());
    // UDP 51820 open.
    assert!(fw.admits(world, Protocol::Udp, 51820).admitted());
}

#[test]
fn ufw_status_reads_app_profiles_and_comments() {
    let st = ufw::parse_status(&fx("ufw/status-verbose-active.txt")).unwrap();
    assert!(st.active);
    assert_eq!(st.rules.len(), 16);
    assert_eq!(st.rules[0].to, "22/tcp (OpenSSH)");
    assert_eq!(st.rules[0].action, "LIMIT IN");
    assert_eq!(st.rules[2].comment.as_deref(), Some("admin segment ssh"));
    assert_eq!(st.rules[2].from, "10.77.9.0/24");
    let numbered = ufw::parse_status(&fx("ufw/status-numbered.txt")).unwrap();
    assert_eq!(numbered.rules.len(), 16);
    // Numbered output names app profiles without their ports.
    assert_eq!(numbered.rules[9].to, "Nginx Full (v6)");
    let inactive = ufw::parse_status(&fx("ufw/status-verbose-inactive.txt")).unwrap();
    assert!(!inactive.active);
    let tuples = ufw::parse_tuples(&fx("ufw/user.rules")).unwrap();
    assert_eq!(tuples[0].app.as_deref(), Some("OpenSSH"));
    assert_eq!(tuples[0].rules, 3);
}

#[test]
fn ufw_inactive_leaves_no_manager_and_admits_everything() {
    let status = fx("ufw/status-verbose-inactive.txt");
    let v4 = fx("iptables/nft-backend-ufw-disabled-v4.txt");
    let nft = fx("nft/iptables-nft-ufw-disabled.json");
    let fw = assemble(&Inputs {
        ufw_status: Probed::Ok(&status),
        iptables_nft: Probed::Ok(&v4),
        ip6tables_nft: Probed::Ok(""),
        iptables_legacy: Probed::Ok(""),
        ip6tables_legacy: Probed::Ok(""),
        nft: Probed::Ok(&nft),
        ..Inputs::default()
    });
    assert!(fw.managers.is_empty(), "{:?}", fw.managers);
    assert_eq!(fw.policies.incoming, Some(Policy::Accept));
    assert!(
        fw.admits(ip("203.0.113.50"), Protocol::Tcp, 5432)
            .admitted()
    );
}

#[test]
fn legacy_handmade_rules() {
    let v4 = fx("iptables/legacy-v4-handmade.txt");
    let v6 = fx("iptables/legacy-v6-handmade.txt");
    let save = iptables::parse(&v4).unwrap();
    assert_eq!(save.backend, Some(iptables::SaveBackend::Legacy));
    let fw = assemble(&Inputs {
        iptables_legacy: Probed::Ok(&v4),
        ip6tables_legacy: Probed::Ok(&v6),
        iptables_nft: Probed::Ok(""),
        ip6tables_nft: Probed::Ok(""),
        nft: Probed::Ok(&fx("nft/empty.json")),
        ..Inputs::default()
    });
    assert_eq!(fw.managers, vec![Manager::IptablesLegacy]);
    assert_eq!(fw.policies.incoming, Some(Policy::Drop));
    let admin = ip("10.77.9.4");
    let world = ip("203.0.113.50");
    // SSH through the user chain SSH_ALLOW.
    let v = fw.admits(admin, Protocol::Tcp, 22);
    assert_eq!(fw.rule_of(&v).unwrap().origin.chain, "SSH_ALLOW");
    assert_eq!(fw.admits(world, Protocol::Tcp, 22).decision, Decision::Drop);
    // 5432: rejected unless from the app segment.
    assert_eq!(
        fw.admits(world, Protocol::Tcp, 5432).decision,
        Decision::Reject
    );
    assert_eq!(
        fw.admits(ip("10.77.11.7"), Protocol::Tcp, 5432).decision,
        Decision::Accept
    );
    // Comment carried; hashlimit-above makes 8000-8100 rate limited; -m limit too.
    let v = fw.admits(world, Protocol::Tcp, 443);
    assert_eq!(
        fw.rule_of(&v).unwrap().comment.as_deref(),
        Some("web traffic")
    );
    assert_eq!(
        fw.admits(world, Protocol::Tcp, 8050).decision,
        Decision::Limit
    );
    assert_eq!(
        fw.admits(world, Protocol::Udp, 1194).decision,
        Decision::Limit
    );
    // The nat table's REDIRECT does not open 2222.
    assert_eq!(
        fw.admits(world, Protocol::Tcp, 2222).decision,
        Decision::Drop
    );
    // IPv6: 443 open, 22 only from the admin prefix, the rest rejected by the last rule.
    assert!(
        fw.admits(ip("2001:db8:1::1"), Protocol::Tcp, 443)
            .admitted()
    );
    assert!(fw.admits(ip("2001:db8:9::1"), Protocol::Tcp, 22).admitted());
    assert_eq!(
        fw.admits(ip("2001:db8:1::1"), Protocol::Tcp, 22).decision,
        Decision::Reject
    );
    let c = iptables::parse(&fx("iptables/legacy-v4-counters.txt")).unwrap();
    assert_eq!(
        c.table("filter").unwrap().rules.len(),
        save.table("filter").unwrap().rules.len()
    );
}

#[test]
fn native_nft_with_sets_vmaps_and_named_ports() {
    for file in [
        "nft/native-sets-vmap.json",
        "nft/native-sets-named-ports.json",
    ] {
        let text = fx(file);
        let rs = nft::parse(&text).unwrap();
        assert_eq!(rs.version.as_deref(), Some("1.0.6"));
        let fw = assemble(&Inputs {
            nft: Probed::Ok(&text),
            ..Inputs::default()
        });
        assert_eq!(fw.managers, vec![Manager::Nftables], "{file}");
        assert_eq!(
            fw.policies.incoming,
            Some(Policy::Reject),
            "{file}: final reject rule"
        );
        let world = ip("203.0.113.50");
        // SSH from the admin set (v4 prefix, single address, element with comment).
        assert!(
            fw.admits(ip("10.77.9.200"), Protocol::Tcp, 22).admitted(),
            "{file}"
        );
        assert!(
            fw.admits(ip("192.0.2.7"), Protocol::Tcp, 22).admitted(),
            "{file}"
        );
        assert!(
            fw.admits(ip("203.0.113.5"), Protocol::Tcp, 22).admitted(),
            "{file}"
        );
        assert!(
            fw.admits(ip("2001:db8:9::4"), Protocol::Tcp, 22).admitted(),
            "{file}"
        );
        assert_eq!(
            fw.admits(world, Protocol::Tcp, 22).decision,
            Decision::Reject,
            "{file}"
        );
        // Web ports from the named set, rate limited.
        assert_eq!(
            fw.admits(world, Protocol::Tcp, 443).decision,
            Decision::Limit,
            "{file}"
        );
        // The dynamic blocklist element drops before anything else.
        assert_eq!(
            fw.admits(ip("198.51.100.66"), Protocol::Tcp, 443).decision,
            Decision::Drop
        );
        // Anonymous set with named ports (postgresql, redis) from the app segment.
        assert!(
            fw.admits(ip("10.77.11.3"), Protocol::Tcp, 6379).admitted(),
            "{file}"
        );
        assert!(!fw.admits(world, Protocol::Tcp, 6379).admitted(), "{file}");
        // Jump to a user chain that returns.
        assert!(
            fw.admits(ip("10.77.10.3"), Protocol::Tcp, 8085).admitted(),
            "{file}"
        );
        assert!(!fw.admits(world, Protocol::Tcp, 8085).admitted(), "{file}");
        // != prefix then accept.
        assert_eq!(
            fw.admits(world, Protocol::Tcp, 3000).decision,
            Decision::Reject
        );
        assert!(fw.admits(ip("10.1.2.3"), Protocol::Tcp, 3000).admitted());
        // The established vmap entry never admits a new connection; comment carried.
        let v = fw.admits(ip("127.0.0.1"), Protocol::Tcp, 9);
        assert_eq!(fw.rule_of(&v).unwrap().comment.as_deref(), Some("loopback"));
        assert!(fw.admits(world, Protocol::Udp, 51820).admitted());
    }
}

#[test]
fn multiple_managers_are_a_fact() {
    let legacy = fx("iptables/legacy-v4-handmade.txt");
    let native = fx("nft/native-sets-vmap.json");
    let fw = assemble(&Inputs {
        iptables_legacy: Probed::Ok(&legacy),
        nft: Probed::Ok(&native),
        ..Inputs::default()
    });
    assert_eq!(
        fw.managers,
        vec![Manager::Nftables, Manager::IptablesLegacy]
    );
    // Both must accept: legacy accepts 443, nft limits it: limited; 5432 from the app
    // segment is accepted by legacy but nft only allows 5432 from 10.77.11.0/24 too.
    assert!(fw.admits(ip("10.77.11.3"), Protocol::Tcp, 5432).admitted());
    // Legacy accepts 8050 (limited) but nft's app_ports drops the world: dropped.
    assert!(
        !fw.admits(ip("203.0.113.50"), Protocol::Tcp, 8050)
            .admitted()
    );
}

#[test]
fn unreadable_backends_become_notes_not_failures() {
    let fw = assemble(&Inputs {
        iptables_nft: Probed::PermissionDenied {
            stage: "iptables-nft-save".into(),
            message: "Permission denied (you must be root)".into(),
        },
        nft: Probed::Ok("{not json"),
        ..Inputs::default()
    });
    assert_eq!(fw.notes.len(), 2, "{:?}", fw.notes);
    assert!(fw.managers.is_empty());
}
