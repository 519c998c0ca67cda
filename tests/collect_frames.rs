//! Whole-host framed outputs of the lab (tests/fixtures/frames/HOST, captured with
//! `RAMPART_CAPTURE_FRAMES` from tests/collect_lab.rs) parsed into state offline: the same
//! misconfigurations must be visible without a lab.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use rampart::collect::probes::state_from_frames;
use rampart::ssh::command::parse_frames;
use rampart::state::{Decision, HostState, KnownService, Manager, Policy, Protocol};

/// When the frames were captured (Unix seconds); certificates' days left count from here.
const CAPTURED_AT: i64 = 1_796_542_509;

fn load(host: &str) -> HostState {
    let dir = format!(
        "{}/tests/fixtures/frames/{host}",
        env!("CARGO_MANIFEST_DIR")
    );
    let nonce = std::fs::read_to_string(format!("{dir}/nonce")).unwrap();
    let stdout = std::fs::read(format!("{dir}/stdout")).unwrap();
    let stderr = std::fs::read(format!("{dir}/stderr")).unwrap();
    let frames = parse_frames(nonce.trim(), &stdout, &stderr);
    state_from_frames(host, &frames)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_lab_host_parses_completely() {
    for h in [
        "edge", "web1", "web2", "vpn1", "app1", "db1", "cache1", "leg1", "fwd1", "dock1",
    ] {
        let st = load(h);
        assert!(st.errors.is_empty(), "{h}: {:?}", st.errors);
        assert_eq!(st.facts.ok().unwrap().hostname, h);
        for (part, ok) in [
            ("firewall", st.firewall.is_ok()),
            ("listeners", st.listeners.is_ok()),
            ("sshd", st.sshd.is_ok()),
            ("services", st.services.is_ok()),
            ("counters", st.counters.is_ok()),
            ("vpn", st.vpn.is_ok()),
        ] {
            assert!(ok, "{h}: {part}: {st:?}");
        }
        let fw = st.firewall.ok().unwrap();
        assert!(fw.notes.is_empty(), "{h}: {:?}", fw.notes);
        let c = st.counters.ok().unwrap();
        assert!(c.uptime_secs.is_some() && c.tcp.is_some() && !c.interfaces.is_empty());
    }
}

#[test]
fn deliberate_misconfigurations_are_visible() {
    let world = ip("198.51.100.200");
    let db1 = load("db1");
    let fw = db1.firewall.ok().unwrap();
    assert_eq!(fw.managers, vec![Manager::Ufw]);
    let v = fw.admits(world, Protocol::Tcp, 5432);
    assert_eq!(v.decision, Decision::Accept);
    assert!(fw.rule_of(&v).unwrap().sources.is_empty());

    let app1 = load("app1");
    let fw = app1.firewall.ok().unwrap();
    assert!(fw.managers.is_empty());
    assert_eq!(fw.policies.incoming, Some(Policy::Accept));

    let web2 = load("web2");
    assert!(!web2.fail2ban.ok().unwrap().running);
    assert!(!web2.services.ok().unwrap().running(KnownService::Fail2ban));
    assert!(
        web2.nginx
            .ok()
            .unwrap()
            .servers
            .iter()
            .all(|s| s.limit_req.is_empty())
    );
    let leaf = web2
        .tls
        .ok()
        .unwrap()
        .iter()
        .find(|c| c.index == 0)
        .cloned()
        .unwrap();
    assert!((5..=12).contains(&leaf.days_left(CAPTURED_AT)), "{leaf:?}");

    // web2 answers its own HTTPS without HSTS; web1 with it.
    let https = web2.defences.https.ok().unwrap();
    assert!(
        https
            .iter()
            .all(|f| f.status == Some(200) && f.hsts.is_none()),
        "{https:?}"
    );
    let web1_https = load("web1").defences.https.ok().unwrap().clone();
    assert!(
        web1_https.iter().any(|f| f.hsts.is_some()),
        "{web1_https:?}"
    );

    // leg1: read from its legacy tables and ipsets; node exporter (9100: admin-src only)
    // is reached from anywhere through the redirect of 9180.
    let leg1 = load("leg1");
    let fw = leg1.firewall.ok().unwrap();
    assert_eq!(fw.managers, vec![Manager::IptablesLegacy]);
    assert!(fw.rules.iter().all(|r| r.unmodelled.is_empty()), "{fw:#?}");
    assert!(!fw.admits(world, Protocol::Tcp, 9100).admitted());
    let v = fw.admits(world, Protocol::Tcp, 9180);
    assert!(v.admitted() && v.local_port == Some(9100), "{v:#?}");
    assert!(fw.admits(ip("10.77.9.10"), Protocol::Tcp, 22).admitted());
    assert!(!fw.admits(ip("10.77.12.21"), Protocol::Tcp, 443).admitted());

    let vpn1 = load("vpn1");
    // The blind jail: systemd backend, no journal on the host.
    let js = vpn1.defences.jail_sources.ok().unwrap();
    assert!(!js.journal);
    assert!(
        js.jails
            .iter()
            .any(|j| j.name == "sshd-journal" && j.enabled)
    );
    let f2b = vpn1.fail2ban.ok().unwrap();
    assert!(
        f2b.jails
            .iter()
            .any(|j| j.name == "sshd-journal" && j.journal_matches.is_some())
    );
    // CrowdSec runs on edge (offline), and nowhere else.
    assert!(load("edge").defences.crowdsec.ok().unwrap().running);
    assert!(!matches!(&vpn1.defences.crowdsec, rampart::state::Probed::Ok(c) if c.running));
    assert_eq!(vpn1.sshd.ok().unwrap().password_authentication, Some(true));
    let wg = vpn1.vpn.ok().unwrap().wireguard.ok().unwrap().clone();
    assert!(
        wg.iter()
            .flat_map(|i| &i.peers)
            .any(|p| p.latest_handshake.is_none())
    );
}

#[test]
fn well_configured_hosts_look_well_configured() {
    let world = ip("198.51.100.200");
    let web1 = load("web1");
    let fw = web1.firewall.ok().unwrap();
    assert_eq!(fw.policies.incoming, Some(Policy::Drop));
    assert!(fw.admits(world, Protocol::Tcp, 443).admitted());
    assert!(!fw.admits(world, Protocol::Tcp, 22).admitted());
    assert!(fw.admits(ip("10.77.9.10"), Protocol::Tcp, 22).admitted());
    assert!(web1.fail2ban.ok().unwrap().running);
    assert!(web1.services.ok().unwrap().running(KnownService::Fail2ban));
    let ng = web1.nginx.ok().unwrap();
    assert!(ng.servers.iter().any(|s| !s.limit_req.is_empty()));
    let leaf = web1
        .tls
        .ok()
        .unwrap()
        .iter()
        .find(|c| c.index == 0)
        .cloned()
        .unwrap();
    assert!(leaf.days_left(CAPTURED_AT) > 30);
    assert_eq!(
        load("edge").sshd.ok().unwrap().password_authentication,
        Some(false)
    );
}
