//! Every parser on the real outputs kept in tests/fixtures (see the README there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart::collect::{counters, facts, fail2ban, listeners, nginx, services, sshd, tls, vpn};
use rampart::state::{KeyType, KnownService, PermitRootLogin, Protocol};

fn fx(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn ss_listeners_with_processes_ipv6_and_hostile_names() {
    let l = listeners::parse(&fx("ss/tulpn-root.txt")).unwrap();
    assert_eq!(l.len(), 13);
    let pg: Vec<_> = l.iter().filter(|x| x.port == 5432).collect();
    assert!(pg.iter().all(|x| x.is_loopback()));
    let ssh4 = l
        .iter()
        .find(|x| x.port == 22 && x.address == Some("0.0.0.0".parse().unwrap()))
        .unwrap();
    assert_eq!(ssh4.processes[0].name, "sshd");
    assert!(ssh4.is_wildcard());
    // `*:80` is a dual-stack wildcard.
    let http = l.iter().find(|x| x.port == 80).unwrap();
    assert_eq!(http.address, None);
    // The escape character in a process name is made visible, never passed on.
    let evil = l.iter().find(|x| x.port == 51820).unwrap();
    assert_eq!(evil.protocol, Protocol::Udp);
    assert!(!evil.processes[0].name.contains('\u{1b}'));
    assert!(evil.processes[0].name.contains("\\x1b"));
    let spaced = l.iter().find(|x| x.port == 9100).unwrap();
    assert_eq!(spaced.processes[0].name, "name with space");
    // Without root there are no process columns; with the header line it still parses.
    let nr = listeners::parse(&fx("ss/tulpn-nonroot.txt")).unwrap();
    assert_eq!(nr.len(), 13);
    assert!(nr.iter().all(|x| x.processes.is_empty()));
    assert_eq!(
        listeners::parse(&fx("ss/tulpn-with-header.txt"))
            .unwrap()
            .len(),
        13
    );
}

#[test]
fn fail2ban_overview_jails_and_states() {
    let o = fail2ban::parse_overview(&fx("fail2ban/status-two-jails.txt")).unwrap();
    assert_eq!(
        o,
        fail2ban::Overview::Running {
            jails: vec!["nginx-limit-req".into(), "sshd".into()]
        }
    );
    let j = fail2ban::parse_jail("sshd", &fx("fail2ban/status-sshd.txt")).unwrap();
    assert_eq!((j.currently_failed, j.total_failed), (1, 3));
    assert_eq!((j.currently_banned, j.total_banned), (3, 3));
    assert_eq!(j.banned.len(), 3);
    assert!(j.banned.contains(&"2001:db8::bad".parse().unwrap()));
    assert_eq!(j.files, vec!["/tmp/rpx/auth.log"]);
    let none = fail2ban::parse_overview(&fx("fail2ban/status-no-jails.txt")).unwrap();
    assert_eq!(none, fail2ban::Overview::Running { jails: vec![] });
    for f in [
        "fail2ban/status-not-running.txt",
        "fail2ban/status-as-nonroot.txt",
    ] {
        assert_eq!(
            fail2ban::parse_overview(&fx(f)).unwrap(),
            fail2ban::Overview::NotRunning
        );
    }
    assert!(fail2ban::parse_jail("sshd", &fx("fail2ban/status-unknown-jail.txt")).is_err());
    assert_eq!(
        fail2ban::parse_version(&fx("fail2ban/version.txt")).as_deref(),
        Some("1.0.2")
    );
}

#[test]
fn wireguard_dumps() {
    let w = vpn::parse_wg_dump(&fx("wg/dump-all-boringtun.txt"), None).unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].listen_port, Some(51820));
    assert_eq!(w[1].fwmark, Some(0x1234));
    assert_eq!(w[0].peers.len(), 2);
    let p = &w[0].peers[0];
    assert!(p.has_preshared_key);
    assert_eq!(p.allowed_ips.len(), 2);
    assert_eq!(p.persistent_keepalive, Some(25));
    assert_eq!(p.latest_handshake, None);
    assert_eq!(w[0].peers[1].endpoint, None);
    // The preshared key value never enters state.
    let json = serde_json::to_string(&w).unwrap();
    assert!(!json.contains("opLYSHUAfoi"));
    let one = vpn::parse_wg_dump(&fx("wg/dump-one-interface.txt"), Some("wg0")).unwrap();
    assert_eq!(one[0].peers.len(), 2);
    assert!(vpn::parse_wg_dump(&fx("wg/dump-one-interface.txt"), None).is_err());
}

#[test]
fn sshd_effective_settings() {
    let d = sshd::parse(&fx("sshd/T-debian12-default.txt")).unwrap();
    assert_eq!(d.password_authentication, Some(true));
    assert_eq!(d.permit_root_login, Some(PermitRootLogin::ProhibitPassword));
    assert_eq!(d.ports, vec![22]);
    assert!(
        d.ciphers
            .iter()
            .any(|c| c == "chacha20-poly1305@openssh.com")
    );
    let w = sshd::parse(&fx("sshd/T-weak-passwords.txt")).unwrap();
    assert_eq!(w.permit_root_login, Some(PermitRootLogin::Yes));
    assert_eq!(w.x11_forwarding, Some(true));
    assert_eq!(w.max_auth_tries, Some(10));
    assert!(w.ciphers.iter().any(|c| c == "3des-cbc"));
    assert!(w.macs.iter().any(|c| c == "hmac-sha1"));
    let h = sshd::parse(&fx("sshd/T-hardened.txt")).unwrap();
    assert_eq!(h.password_authentication, Some(false));
    assert_eq!(h.ports, vec![22, 2222]);
    assert_eq!(h.listen_addresses.len(), 3);
    assert_eq!(h.allow_users, vec!["root@10.77.9.*", "ops"]);
    assert_eq!(h.allow_groups, vec!["sshusers"]);
    assert_eq!(h.allow_tcp_forwarding.as_deref(), Some("local"));
    assert!(sshd::parse(&fx("sshd/T-error-bad-option.txt")).is_err());
    assert!(sshd::is_permission_problem(&fx("sshd/T-as-nonroot.txt")));
}

#[test]
fn nginx_servers_redirects_limits_and_certificates() {
    let n = nginx::parse(&fx("nginx/T-tls-ratelimit.txt")).unwrap();
    assert!(n.syntax_ok);
    assert_eq!(n.files.len(), 5);
    assert_eq!(n.limit_req_zones.len(), 2);
    assert_eq!(n.limit_req_zones[0].name, "perip");
    assert_eq!(n.limit_req_zones[0].rate.as_deref(), Some("10r/s"));
    assert_eq!(n.ssl_protocols.as_deref().unwrap().len(), 4);
    assert_eq!(n.servers.len(), 5);
    let by_name = |name: &str, tls: bool| {
        n.servers
            .iter()
            .find(|s| s.server_names.iter().any(|x| x == name) && s.serves_tls() == tls)
            .unwrap()
    };
    let web_plain = by_name("web1.lab.example", false);
    assert!(web_plain.redirects_to_https);
    let web_tls = by_name("web1.lab.example", true);
    assert_eq!(web_tls.ssl_certificates, vec!["/tmp/rpx/nginx/ssl/web.crt"]);
    assert_eq!(
        web_tls.ssl_protocols.as_deref().unwrap(),
        ["TLSv1.2", "TLSv1.3"]
    );
    // http-level limit_req (from an included conf.d file) plus the location's.
    assert_eq!(web_tls.limit_req.len(), 2);
    assert_eq!(web_tls.limit_req[1].location.as_deref(), Some("/"));
    assert_eq!(web_tls.limit_req[1].burst, Some(20));
    assert!(web_tls.limit_req[1].nodelay);
    let api_plain = by_name("api.lab.example", false);
    assert!(api_plain.redirects_to_https, "rewrite ... permanent");
    let api_tls = by_name("api.lab.example", true);
    // No ssl_protocols in the server: the http level's (with TLSv1) applies.
    assert!(
        api_tls
            .ssl_protocols
            .as_deref()
            .unwrap()
            .iter()
            .any(|p| p == "TLSv1")
    );
    assert!(
        api_tls
            .limit_req
            .iter()
            .any(|l| l.location.as_deref() == Some("~ ^/v[0-9]+/"))
    );
    let status = n.servers.iter().find(|s| s.server_names == ["_"]).unwrap();
    assert_eq!(status.listens[0].address.as_deref(), Some("127.0.0.1"));
    assert!(!status.redirects_to_https);

    let d = nginx::parse(&fx("nginx/T-debian-default.txt")).unwrap();
    assert_eq!(d.servers.len(), 1);
    assert!(d.servers[0].limit_req.is_empty());
    assert!(!d.servers[0].serves_tls());
    assert!(d.limit_req_zones.is_empty());
    let bad = nginx::parse(&fx("nginx/T-error-unknown-zone.txt")).unwrap();
    assert!(!bad.syntax_ok);
    assert!(bad.servers.is_empty());
}

#[test]
fn certificates_from_pem() {
    let rsa = tls::parse_pem("web.crt", &fx("tls/web.crt")).unwrap();
    assert_eq!(rsa.len(), 1);
    assert_eq!(rsa[0].key, KeyType::Rsa { bits: 2048 });
    assert!(rsa[0].self_signed);
    assert!(rsa[0].subject.contains("CN=web1.lab.example"));
    assert_eq!(
        rsa[0].sans,
        [
            "DNS:web1.lab.example",
            "DNS:www.lab.example",
            "IP:10.77.10.11"
        ]
    );
    assert_eq!(rsa[0].not_after - rsa[0].not_before, 365 * 86_400);
    let ec = tls::parse_pem("exp.crt", &fx("tls/exp.crt")).unwrap();
    assert_eq!(
        ec[0].key,
        KeyType::Ec {
            curve: "P-256".into()
        }
    );
    assert_eq!(ec[0].not_after - ec[0].not_before, 10 * 86_400);
    assert_eq!(ec[0].days_left(ec[0].not_before), 10);
    let ed = tls::parse_pem("ed.crt", &fx("tls/ed.crt")).unwrap();
    assert_eq!(ed[0].key, KeyType::Ed25519);
    let chain = tls::parse_pem("fullchain.pem", &fx("tls/fullchain.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        chain[0].key,
        KeyType::Ec {
            curve: "P-384".into()
        }
    );
    assert!(!chain[0].self_signed);
    assert_eq!(chain[1].key, KeyType::Rsa { bits: 3072 });
    assert!(chain[0].sans.contains(&"DNS:*.api.lab.example".to_string()));
    let framed = format!(
        "### file /a.pem\n{}### file /b.pem\n{}",
        fx("tls/web.crt"),
        fx("tls/fullchain.pem")
    );
    let (certs, errors) = tls::parse_files(&framed);
    assert_eq!(certs.len(), 3);
    assert!(errors.is_empty());
}

#[test]
fn counters_and_facts() {
    let dev = counters::parse_net_dev(&fx("counters/proc-net-dev.txt")).unwrap();
    assert!(dev.iter().any(|d| d.name == "lo"));
    assert!(dev.iter().any(|d| d.name == "wg0"));
    let tcp = counters::parse_snmp(&fx("counters/proc-net-snmp.txt")).unwrap();
    assert!(tcp.in_segs >= tcp.passive_opens);
    let os = facts::parse_os_release(&fx("facts/os-release-debian12.txt")).unwrap();
    assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "12"));
    let ifs = facts::parse_ip_addr(&fx("facts/ip-addr.json")).unwrap();
    let lo = ifs.iter().find(|i| i.name == "lo").unwrap();
    assert!(lo.up);
    assert_eq!(lo.addresses.len(), 2);
    let wg = ifs.iter().find(|i| i.name == "wg1").unwrap();
    assert!(!wg.up, "wg1 was set down before the capture");
    let r = facts::parse_ip_route(&fx("facts/ip-route-root.json")).unwrap();
    assert_eq!(r[0].destination, "default");
    assert_eq!(r[0].gateway, Some("192.0.2.1".parse().unwrap()));
    assert!(facts::parse_ip_route(&fx("facts/ip6-route.json")).is_ok());
}

#[test]
fn services_in_own_namespace_only() {
    let (own, procs) = services::parse_ps(&fx("services/ps-netns.txt")).unwrap();
    assert_eq!(own, Some(4_026_532_177));
    let s = services::from_processes(own, &procs);
    assert!(s.running(KnownService::Fail2ban));
    // This VM's own sshd, if any, lives in another namespace.
    assert!(!s.running(KnownService::Sshd));
    let all = services::from_processes(None, &procs);
    assert!(all.running(KnownService::Fail2ban));
    assert_eq!(s.init.as_deref(), Some("process_api"));
}
