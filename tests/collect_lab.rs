//! Collecting the whole practice lab over the real transport (one exec channel per host)
//! and checking that the lab's deliberate misconfigurations are visible in the typed state,
//! and that the well-configured hosts look well configured.
//!
//! With `RAMPART_CAPTURE_FRAMES=DIR` set, each host's raw framed output is also written to
//! DIR (how tests/fixtures/frames/ was made).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::time::Instant;

use rampart::collect::{collect_fleet, probes};
use rampart::state::{
    Decision, FleetState, HostState, KnownService, Manager, PermitRootLogin, Policy, Protocol,
};

fn host<'a>(fleet: &'a FleetState, name: &str) -> &'a HostState {
    fleet
        .host(name)
        .unwrap_or_else(|| panic!("no state for {name}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_lab_collects_and_shows_its_misconfigurations() {
    let lab = common::ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("commands.jsonl");
    let t = lab.transport(Some(&log));
    let names: Vec<String> = common::HOSTS.iter().map(|(n, _)| n.to_string()).collect();
    let started = Instant::now();
    let fleet = collect_fleet(&t, &names).await;
    eprintln!(
        "collected {} hosts in {:?}",
        fleet.hosts.len(),
        started.elapsed()
    );

    if let Ok(out) = std::env::var("RAMPART_CAPTURE_FRAMES") {
        let script = probes::host_script().unwrap();
        for n in &names {
            let o = t.exec(n, &script).await.unwrap();
            let d = std::path::Path::new(&out).join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("nonce"), script.nonce().unwrap()).unwrap();
            std::fs::write(d.join("stdout"), &o.stdout).unwrap();
            std::fs::write(d.join("stderr"), &o.stderr).unwrap();
        }
    }

    // Every host: typed state, nothing unreachable, no probe missing, no parse failure.
    for h in &fleet.hosts {
        assert!(h.errors.is_empty(), "{}: {:?}", h.host, h.errors);
        for (part, ok, label) in [
            ("facts", h.facts.is_ok(), h.facts.status_label()),
            ("firewall", h.firewall.is_ok(), h.firewall.status_label()),
            ("listeners", h.listeners.is_ok(), h.listeners.status_label()),
            ("sshd", h.sshd.is_ok(), h.sshd.status_label()),
            ("services", h.services.is_ok(), h.services.status_label()),
            ("counters", h.counters.is_ok(), h.counters.status_label()),
        ] {
            assert!(ok, "{}: {part} is {label}: {:?}", h.host, h);
        }
        let facts = h.facts.ok().unwrap();
        assert_eq!(facts.os.id, "debian", "{}", h.host);
        let fw = h.firewall.ok().unwrap();
        assert!(
            fw.notes.iter().all(|n| !n.contains("unreadable")),
            "{}: {:?}",
            h.host,
            fw.notes
        );
        // The state survives the JSON round trip history and reports rely on.
        let back: HostState = serde_json::from_str(&serde_json::to_string(h).unwrap()).unwrap();
        assert_eq!(&back, h);
    }
    let world = ip("203.0.113.77");

    // db1: ufw allows 5432 from anywhere, and postgres-like listener on 5432.
    let db1 = host(&fleet, "db1");
    let fw = db1.firewall.ok().unwrap();
    assert!(fw.managers.contains(&Manager::Ufw), "{:?}", fw.managers);
    let v = fw.admits(world, Protocol::Tcp, 5432);
    assert!(v.admitted(), "db1 5432 from the world: {v:?}");
    let r = fw.rule_of(&v).expect("a rule, not the policy, admits 5432");
    assert!(r.dports.contains(5432) && r.sources.is_empty(), "{r:?}");
    assert!(
        db1.listeners
            .ok()
            .unwrap()
            .iter()
            .any(|l| l.port == 5432 && !l.is_loopback()),
        "db1 listens on 5432"
    );

    // app1: firewall inactive, so everything is admitted with no manager.
    let app1 = host(&fleet, "app1");
    let fw = app1.firewall.ok().unwrap();
    assert!(fw.managers.is_empty(), "app1 managers: {:?}", fw.managers);
    assert!(!fw.ufw.as_ref().is_some_and(|u| u.active));
    assert!(fw.admits(world, Protocol::Tcp, 22).admitted());

    // web2: fail2ban not running, nginx without limit_req, a certificate expiring in ~10 days.
    let web2 = host(&fleet, "web2");
    let f2b = web2.fail2ban.ok().expect("fail2ban installed on web2");
    assert!(!f2b.running, "web2 fail2ban: {f2b:?}");
    assert!(!web2.services.ok().unwrap().running(KnownService::Fail2ban));
    let ng = web2.nginx.ok().unwrap();
    assert!(!ng.servers.is_empty());
    assert!(
        ng.servers.iter().all(|s| s.limit_req.is_empty()),
        "{:?}",
        ng.servers
    );
    let now = web2.collected_at.unwrap();
    let certs = web2.tls.ok().unwrap();
    assert!(
        certs
            .iter()
            .any(|c| c.index == 0 && (5..=12).contains(&c.days_left(now))),
        "web2 certificates: {certs:?}"
    );

    // vpn1: password authentication on, and a WireGuard peer that never shook hands.
    let vpn1 = host(&fleet, "vpn1");
    assert_eq!(vpn1.sshd.ok().unwrap().password_authentication, Some(true));
    let wg = vpn1.vpn.ok().unwrap().wireguard.ok().unwrap();
    assert!(!wg.is_empty(), "vpn1 has a WireGuard interface");
    assert!(wg.iter().any(|i| i.up == Some(true)), "{wg:?}");
    assert!(
        wg.iter()
            .flat_map(|i| &i.peers)
            .any(|p| p.latest_handshake.is_none()),
        "vpn1 peers: {wg:?}"
    );
    let json = serde_json::to_string(&wg).unwrap();
    assert!(!json.contains("PrivateKey") && !json.contains("(hidden)"));

    // The well-configured hosts look well configured.
    for name in ["web1", "db1", "web2", "vpn1", "edge"] {
        let fw = host(&fleet, name).firewall.ok().unwrap();
        assert_eq!(
            fw.policies.incoming,
            Some(Policy::Drop),
            "{name}: {:?}",
            fw.policies
        );
    }
    for name in ["web1", "web2", "db1", "app1", "edge"] {
        let s = host(&fleet, name).sshd.ok().unwrap();
        // app1 says yes, but AuthenticationMethods publickey makes it inert.
        assert!(!s.auth().passwords_possible(), "{name}: {:?}", s.auth());
        assert_ne!(s.permit_root_login, Some(PermitRootLogin::Yes), "{name}");
    }
    // db1's Match block: passwords for the admin network, as `sshd -T -C` reports it.
    let db1_sshd = host(&fleet, "db1").sshd.ok().unwrap();
    assert_eq!(db1_sshd.matches.len(), 1, "{:?}", db1_sshd.matches);
    let m = &db1_sshd.matches[0];
    assert_eq!(m.criteria, "Address 10.77.9.0/24");
    assert!(m.origin.starts_with("/etc/ssh/sshd_config:"), "{m:?}");
    assert_eq!(m.probes.len(), 1, "{m:?}");
    assert_eq!(m.probes[0].addr, Some(ip("10.77.9.1")));
    assert!(m.probes[0].effective.passwords_possible(), "{m:?}");
    let web1 = host(&fleet, "web1");
    assert!(web1.fail2ban.ok().unwrap().running);
    assert!(
        web1.fail2ban
            .ok()
            .unwrap()
            .jails
            .iter()
            .any(|j| j.name == "sshd")
    );
    let ng = web1.nginx.ok().unwrap();
    assert!(ng.servers.iter().any(|s| s.serves_tls()));
    assert!(ng.servers.iter().any(|s| !s.limit_req.is_empty()));
    assert!(
        ng.servers
            .iter()
            .filter(|s| !s.serves_tls())
            .all(|s| s.redirects_to_https),
        "web1 plain servers redirect: {:?}",
        ng.servers
    );
    let web1_certs = web1.tls.ok().unwrap();
    assert!(
        web1_certs
            .iter()
            .any(|c| c.index == 0 && c.days_left(now) > 30)
    );
    let fw = web1.firewall.ok().unwrap();
    assert!(fw.admits(world, Protocol::Tcp, 443).admitted());
    assert_eq!(
        fw.admits(world, Protocol::Tcp, 5432).decision,
        Decision::Drop
    );
    // The services probe sees only its own namespace: web1's fail2ban, not web2's.
    assert!(web1.services.ok().unwrap().running(KnownService::Fail2ban));
    assert!(web1.services.ok().unwrap().running(KnownService::Sshd));

    // One exec channel per host for the whole collection.
    let log_text = std::fs::read_to_string(&log).unwrap();
    for n in &names {
        let execs = log_text
            .lines()
            .filter(|l| l.contains(&format!("\"host\":\"{n}\"")) && l.contains("\"collect\""))
            .count();
        assert!(execs >= 1, "{n}: {log_text}");
    }
    t.close().await;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Measures what collecting costs (numbers for the README's performance section); asserts
/// only that one collection is one exec channel per host. Run with
/// `cargo test --test collect_lab measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, prints numbers"]
async fn measure_collection_cost() {
    const TRUE: rampart::ssh::ReadCommand = rampart::ssh::ReadCommand::new("true", "true");
    const RUNS: usize = 7;
    let lab = common::ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("commands.jsonl");
    let t = lab.transport(Some(&log));
    for (n, r) in t.connect_all().await {
        r.unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    let script = probes::host_script().unwrap();
    let text = script.render(false);
    eprintln!(
        "script: {} probes, {} bytes",
        script.probes().len(),
        text.len()
    );
    eprintln!(
        "host  true_ms  collect_ms  per_probe_execs_ms  execs/collect  out_kB  remote_cpu_ms(user+sys)"
    );
    for (name, _) in common::HOSTS {
        let mut t_true = Vec::new();
        let mut t_collect = Vec::new();
        let mut bytes = 0;
        for _ in 0..RUNS {
            let s = Instant::now();
            t.exec(name, &TRUE).await.unwrap();
            t_true.push(s.elapsed().as_secs_f64() * 1000.0);
            let before = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count();
            let s = Instant::now();
            let o = t.exec(name, &script).await.unwrap();
            t_collect.push(s.elapsed().as_secs_f64() * 1000.0);
            bytes = o.stdout.len() + o.stderr.len();
            let after = std::fs::read_to_string(&log).unwrap().lines().count();
            assert_eq!(after - before, 1, "one exec channel per collection");
        }
        // The naive way: one exec per probe.
        let s = Instant::now();
        for p in probes::PROBES {
            t.exec(name, p).await.unwrap();
        }
        let separate = s.elapsed().as_secs_f64() * 1000.0;
        // Remote CPU of the script: the login shell's children times after running it.
        let mut cmd = lab.ssh_command(name, "sh -s >/dev/null 2>&1; times");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let times = String::from_utf8_lossy(&out.stdout);
        // Second line: children's user and system time, e.g. "0m0.120000s 0m0.080000s".
        let cpu: f64 = times
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|w| {
                let (m, s) = w.trim_end_matches('s').split_once('m')?;
                Some(m.parse::<f64>().ok()? * 60_000.0 + s.parse::<f64>().ok()? * 1000.0)
            })
            .sum();
        eprintln!(
            "{name:5} {:8.1} {:11.1} {:19.1} {:14} {:7.1} {:10.0}",
            median(t_true),
            median(t_collect),
            separate,
            1,
            bytes as f64 / 1024.0,
            cpu
        );
    }
    t.close().await;
}
