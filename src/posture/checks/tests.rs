//! Each check on small hand-built states, firing and not firing.

use std::path::Path;

use super::*;
use crate::state::*;

const INV: &str = r#"
[defaults]
bastion = "edge"
[segments]
outside = ["10.77.0.0/24"]
admin = ["10.77.9.0/24"]
dmz = ["10.77.10.0/24"]
app = ["10.77.11.0/24"]
data = ["10.77.12.0/24"]
[roles.db]
allow_ports = [22, 5432]
reachable_from = { 5432 = ["app"], 22 = ["admin"] }
[[host]]
name = "edge"
address = "10.77.0.10"
roles = ["bastion"]
bastion = "none"
[[host]]
name = "web1"
address = "10.77.10.11"
roles = ["web"]
[[host]]
name = "db1"
address = "10.77.12.11"
roles = ["db"]
[alerting]
alertmanager = ["http://127.0.0.1:9093"]
"#;

fn inv() -> Inventory {
    Inventory::parse(INV, Path::new("inv.toml")).expect("inventory")
}

fn origin(chain: &str) -> Origin {
    Origin {
        backend: Backend::Nftables,
        table: "inet filter".into(),
        chain: chain.into(),
        line: None,
        handle: None,
    }
}

/// A firewall with one input base chain of the given policy and these accept rules:
/// `(port, sources)`.
fn firewall(policy: Action, accepts: &[(u16, &[&str])]) -> Firewall {
    let mut rules = Vec::new();
    for (port, srcs) in accepts {
        let mut r = Rule::new(
            Direction::In,
            Action::Accept,
            Manager::Nftables,
            origin("input"),
        );
        r.protocol = Some(Protocol::Tcp);
        r.dports = PortSet::Only(vec![PortRange::single(*port)]);
        r.sources = srcs.iter().map(|s| s.parse().expect("cidr")).collect();
        rules.push(r);
    }
    let chain = Chain {
        backend: Backend::Nftables,
        family: Family::Any,
        table: "inet filter".into(),
        name: "input".into(),
        hook: Some(Hook::Input),
        priority: 0,
        policy: Some(policy),
        rules: (0..rules.len()).collect(),
    };
    Firewall {
        managers: vec![Manager::Nftables],
        installed: vec![Manager::Nftables],
        rules,
        chains: vec![chain],
        ..Firewall::default()
    }
}

fn no_firewall() -> Firewall {
    Firewall {
        installed: vec![Manager::Ufw],
        ufw: Some(UfwStatus::default()),
        ..Firewall::default()
    }
}

fn listener(port: u16, addr: Option<&str>, proc_name: &str) -> Listener {
    Listener {
        protocol: Protocol::Tcp,
        address: addr.map(|a| a.parse().expect("ip")),
        interface: None,
        port,
        processes: vec![SocketProcess {
            name: proc_name.into(),
            pid: 100 + u32::from(port),
        }],
    }
}

fn services(list: &[KnownService]) -> Services {
    Services {
        init: Some("init".into()),
        services: list
            .iter()
            .map(|s| ServiceStatus {
                service: *s,
                running: true,
                pids: vec![1],
                unit_state: None,
            })
            .collect(),
    }
}

fn good_sshd() -> Sshd {
    Sshd {
        password_authentication: Some(false),
        kbd_interactive_authentication: Some(false),
        permit_root_login: Some(PermitRootLogin::ProhibitPassword),
        pubkey_authentication: Some(true),
        allow_agent_forwarding: Some(false),
        x11_forwarding: Some(false),
        ports: vec![22],
        ciphers: vec![
            "chacha20-poly1305@openssh.com".into(),
            "aes256-gcm@openssh.com".into(),
        ],
        kex_algorithms: vec!["curve25519-sha256".into()],
        macs: vec!["hmac-sha2-256-etm@openssh.com".into(), "hmac-sha1".into()],
        ..Sshd::default()
    }
}

fn f2b(running: bool, jails: &[&str]) -> Fail2ban {
    Fail2ban {
        running,
        version: Some("1.0.2".into()),
        jails: jails
            .iter()
            .map(|j| Jail {
                name: (*j).into(),
                ..Jail::default()
            })
            .collect(),
    }
}

/// A well-configured db host: nothing should fire.
fn good_db() -> HostState {
    let mut s = HostState::unreachable("db1", "none", "none");
    s.errors.clear();
    s.firewall = Probed::Ok(firewall(
        Action::Drop,
        &[
            (22, &["10.77.9.0/24"]),
            (5432, &["10.77.11.0/24"]),
            (9100, &["10.77.9.0/24"]),
        ],
    ));
    s.listeners = Probed::Ok(vec![
        listener(22, Some("0.0.0.0"), "sshd"),
        listener(5432, Some("0.0.0.0"), "postgres"),
        listener(9100, None, "node_exporter"),
        listener(25, Some("127.0.0.1"), "exim4"),
    ]);
    s.sshd = Probed::Ok(good_sshd());
    s.fail2ban = Probed::Ok(f2b(true, &["sshd"]));
    s.services = Probed::Ok(services(&[
        KnownService::NodeExporter,
        KnownService::Fail2ban,
    ]));
    s.nginx = Probed::NotInstalled {
        tool: "nginx".into(),
    };
    s.tls = Probed::Ok(vec![]);
    s.vpn = Probed::NotInstalled { tool: "wg".into() };
    s
}

fn run(state: HostState) -> Vec<Finding> {
    let inv = inv();
    let fleet = FleetState { hosts: vec![state] };
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    evaluate(&inv, &fleet, &opts)
}

fn checks(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.check.as_str()).collect()
}

#[test]
fn a_well_configured_host_has_no_findings() {
    let f = run(good_db());
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn db_port_open_to_everyone_is_critical() {
    let mut s = good_db();
    s.firewall = Probed::Ok(firewall(
        Action::Drop,
        &[
            (22, &["10.77.9.0/24"]),
            (5432, &[]),
            (9100, &["10.77.9.0/24"]),
        ],
    ));
    let f = run(s);
    assert_eq!(checks(&f), ["SEG-DB-EXPOSED"], "{f:#?}");
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].fix.as_deref(), Some("fw-restrict-to-segment"));
    assert!(f[0].fix_params.contains(&("port".into(), "5432".into())));
    assert!(f[0].fix_params.contains(&("segment".into(), "app".into())));
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("accept tcp dport 5432 from anywhere")),
        "{:?}",
        f[0].evidence
    );
}

#[test]
fn db_port_open_to_the_dmz_is_also_exposed() {
    let mut s = good_db();
    s.firewall = Probed::Ok(firewall(
        Action::Drop,
        &[
            (22, &["10.77.9.0/24"]),
            (5432, &["10.77.10.0/23"]),
            (9100, &["10.77.9.0/24"]),
        ],
    ));
    let f = run(s);
    assert_eq!(checks(&f), ["SEG-DB-EXPOSED"], "{f:#?}");
    assert!(f[0].title.contains("10.77.10."), "{}", f[0].title);
}

#[test]
fn no_firewall_is_critical_and_lists_exposures() {
    let mut s = good_db();
    s.firewall = Probed::Ok(no_firewall());
    let f = run(s);
    // The database port is still its own critical finding; the rest are evidence of FW-NONE.
    assert_eq!(checks(&f), ["FW-NONE", "SEG-DB-EXPOSED"], "{f:#?}");
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("ufw status: inactive"))
    );
    assert!(
        f[0].evidence.iter().any(|e| e.contains(":9100")),
        "{:?}",
        f[0].evidence
    );
}

#[test]
fn default_allow_and_exposed_port() {
    let mut s = good_db();
    let mut fw = firewall(Action::Accept, &[(22, &["10.77.9.0/24"])]);
    // A drop rule for 5432 from outside the app tier keeps the db port closed.
    let mut drop = Rule::new(
        Direction::In,
        Action::Drop,
        Manager::Nftables,
        origin("input"),
    );
    drop.protocol = Some(Protocol::Tcp);
    drop.dports = PortSet::Only(vec![PortRange::single(5432)]);
    drop.sources = vec!["10.77.11.0/24".parse().expect("net")];
    drop.sources_negated = true;
    fw.rules.push(drop);
    fw.chains[0].rules.push(fw.rules.len() - 1);
    s.firewall = Probed::Ok(fw);
    s.listeners = Probed::Ok(vec![
        listener(22, Some("0.0.0.0"), "sshd"),
        listener(5432, Some("0.0.0.0"), "postgres"),
        listener(6000, Some("0.0.0.0"), "x"),
    ]);
    let f = run(s);
    let c = checks(&f);
    assert!(c.contains(&"FW-DEFAULT-ALLOW"), "{f:#?}");
    assert!(c.contains(&"FW-EXPOSED-PORT"), "{f:#?}");
    assert!(c.contains(&"SEG-SSH-OPEN"), "{f:#?}");
    assert!(!c.contains(&"SEG-DB-EXPOSED"), "{f:#?}");
    let exposed = f
        .iter()
        .find(|f| f.check == "FW-EXPOSED-PORT")
        .expect("exposed");
    assert!(exposed.title.starts_with("6000/tcp"), "{}", exposed.title);
}

#[test]
fn a_port_that_listens_but_is_dropped_is_not_exposed() {
    let mut s = good_db();
    s.listeners = Probed::Ok(vec![
        listener(6000, Some("0.0.0.0"), "x"),
        listener(22, None, "sshd"),
    ]);
    let f = run(s);
    assert!(!checks(&f).contains(&"FW-EXPOSED-PORT"), "{f:#?}");
}

#[test]
fn stale_rule() {
    let mut s = good_db();
    s.firewall = Probed::Ok(firewall(
        Action::Drop,
        &[
            (22, &["10.77.9.0/24"]),
            (5432, &["10.77.11.0/24"]),
            (8080, &["10.77.9.0/24"]),
        ],
    ));
    let f = run(s);
    assert_eq!(checks(&f), ["FW-STALE-RULE"], "{f:#?}");
    assert!(f[0].title.contains("8080/tcp"));
}

#[test]
fn multiple_managers() {
    let mut s = good_db();
    let mut fw = firewall(
        Action::Drop,
        &[(22, &["10.77.9.0/24"]), (5432, &["10.77.11.0/24"])],
    );
    fw.managers = vec![Manager::Ufw, Manager::IptablesNft];
    s.firewall = Probed::Ok(fw.clone());
    assert!(!checks(&run(s.clone())).contains(&"FW-MULTIPLE"));
    fw.managers = vec![Manager::Ufw, Manager::Nftables];
    s.firewall = Probed::Ok(fw);
    assert!(checks(&run(s)).contains(&"FW-MULTIPLE"));
}

#[test]
fn sshd_settings() {
    let mut s = good_db();
    let mut sshd = good_sshd();
    sshd.password_authentication = Some(true);
    sshd.permit_root_login = Some(PermitRootLogin::Yes);
    sshd.ciphers.push("aes128-cbc".into());
    sshd.macs.push("hmac-md5".into());
    s.sshd = Probed::Ok(sshd);
    let f = run(s);
    assert_eq!(
        checks(&f),
        ["SSH-PASSWORD-AUTH", "SSH-ROOT-LOGIN", "SSH-WEAK-CRYPTO"],
        "{f:#?}"
    );
    let weak = &f[2];
    assert!(weak.evidence.iter().any(|e| e.contains("aes128-cbc")));
    assert!(weak.evidence.iter().any(|e| e.contains("hmac-md5")));
}

/// A Match block, asked about with `sshd -T -C addr=ADDR,user=root`, that turns passwords on.
fn password_match(addr: &str) -> SshdMatch {
    SshdMatch {
        origin: "/etc/ssh/sshd_config:40".into(),
        criteria: format!("Address {addr}/24"),
        body: vec![(
            "passwordauthentication".into(),
            "yes".into(),
            "/etc/ssh/sshd_config:41".into(),
        )],
        probes: vec![SshdMatchProbe {
            addr: Some(addr.parse().expect("addr")),
            user: Some("root".into()),
            effective: SshdAuth {
                password_authentication: Some(true),
                permit_root_login: Some(PermitRootLogin::ProhibitPassword),
                ..Default::default()
            },
        }],
    }
}

#[test]
fn a_match_block_that_turns_passwords_on_counts_for_sources_that_reach_sshd() {
    // db1 admits 22 from the admin segment only.
    let mut s = good_db();
    let mut sshd = good_sshd();
    sshd.matches.push(password_match("10.77.9.1"));
    s.sshd = Probed::Ok(sshd.clone());
    let f = run(s.clone());
    assert_eq!(checks(&f), ["SSH-PASSWORD-AUTH"], "{f:#?}");
    assert!(
        f[0].evidence.iter().any(|e| e
            .contains("Match Address 10.77.9.1/24 (/etc/ssh/sshd_config:40)")
            && e.contains("addr=10.77.9.1")),
        "{f:#?}"
    );

    // The same block for a network the firewall keeps away from port 22: nothing to say.
    let mut sshd = good_sshd();
    sshd.matches.push(password_match("10.77.11.1"));
    s.sshd = Probed::Ok(sshd);
    assert!(run(s.clone()).is_empty());

    // Unknown firewall: the source is assumed to reach sshd.
    s.firewall = Probed::Failed {
        stage: "nft".into(),
        message: "boom".into(),
    };
    assert!(checks(&run(s)).contains(&"SSH-PASSWORD-AUTH"));
}

#[test]
fn a_match_block_sshd_cannot_be_asked_about_leans_towards_exposed() {
    let mut s = good_db();
    let mut sshd = good_sshd();
    let mut m = password_match("10.77.11.1");
    m.criteria = "Group admins".into();
    m.probes.clear();
    sshd.matches.push(m);
    s.sshd = Probed::Ok(sshd);
    let f = run(s);
    assert_eq!(checks(&f), ["SSH-PASSWORD-AUTH"], "{f:#?}");
    assert!(f[0].evidence[0].contains("Match Group admins"), "{f:#?}");
}

#[test]
fn authentication_methods_publickey_makes_password_authentication_inert() {
    let mut s = good_db();
    let mut sshd = good_sshd();
    sshd.password_authentication = Some(true);
    sshd.permit_root_login = Some(PermitRootLogin::Yes);
    sshd.settings
        .insert("authenticationmethods".into(), vec!["publickey".into()]);
    s.sshd = Probed::Ok(sshd);
    assert!(run(s).is_empty());
}

#[test]
fn root_login_without_passwords_is_fine() {
    let mut s = good_db();
    let mut sshd = good_sshd();
    sshd.permit_root_login = Some(PermitRootLogin::Yes);
    s.sshd = Probed::Ok(sshd);
    assert!(run(s).is_empty());
}

#[test]
fn fail2ban_and_monitoring() {
    let mut s = good_db();
    s.fail2ban = Probed::Ok(f2b(false, &[]));
    s.services = Probed::Ok(services(&[]));
    let f = run(s.clone());
    assert_eq!(
        checks(&f),
        ["IPS-FAIL2BAN-DOWN", "MON-AGENT-MISSING"],
        "{f:#?}"
    );
    assert_eq!(f[0].fix.as_deref(), Some("f2b-start"));
    s.fail2ban = Probed::Ok(f2b(true, &["nginx-http-auth"]));
    s.services = Probed::Ok(services(&[KnownService::NodeExporter]));
    assert_eq!(checks(&run(s)), ["IPS-NO-SSHD-JAIL"]);
}

fn web_state() -> HostState {
    let mut s = good_db();
    s.host = "web1".into();
    s.firewall = Probed::Ok(firewall(
        Action::Drop,
        &[
            (22, &["10.77.9.0/24"]),
            (80, &[]),
            (443, &[]),
            (9100, &["10.77.9.0/24"]),
        ],
    ));
    s.listeners = Probed::Ok(vec![
        listener(22, Some("0.0.0.0"), "sshd"),
        listener(80, Some("0.0.0.0"), "nginx"),
        listener(443, Some("0.0.0.0"), "nginx"),
        listener(9100, None, "node_exporter"),
    ]);
    let server = |port: u16, ssl: bool, redirect: bool, limited: bool| NginxServer {
        file: "/etc/nginx/sites-enabled/app".into(),
        line: if ssl { 10 } else { 1 },
        server_names: vec!["web1.lab".into()],
        listens: vec![NginxListen {
            raw: port.to_string(),
            address: None,
            port: Some(port),
            ssl,
            http2: false,
            default_server: false,
        }],
        redirects_to_https: redirect,
        ssl_protocols: ssl.then(|| vec!["TLSv1.2".into(), "TLSv1.3".into()]),
        hsts: ssl.then(|| crate::state::NginxHeader {
            value: "max-age=31536000".into(),
            always: true,
            file: "/etc/nginx/sites-enabled/app".into(),
            line: 11,
        }),
        limit_req: if limited {
            vec![LimitReq {
                zone: "perip".into(),
                burst: Some(20),
                nodelay: true,
                location: None,
                file: "x".into(),
                line: 12,
            }]
        } else {
            vec![]
        },
        ..NginxServer::default()
    };
    s.nginx = Probed::Ok(Nginx {
        syntax_ok: true,
        servers: vec![
            server(80, false, true, false),
            server(443, true, false, true),
        ],
        limit_req_zones: vec![LimitReqZone {
            key: "$binary_remote_addr".into(),
            name: "perip".into(),
            ..LimitReqZone::default()
        }],
        ..Nginx::default()
    });
    s.tls = Probed::Ok(vec![Certificate {
        path: "/etc/ssl/lab/web1.pem".into(),
        subject: "CN=web1.lab".into(),
        issuer: "CN=lab CA".into(),
        not_before: 1_790_000_000,
        not_after: 1_800_000_000 + 300 * 86_400,
        serial: "01".into(),
        index: 0,
        sans: vec!["web1.lab".into()],
        key: KeyType::Ec {
            curve: "P-256".into(),
        },
        self_signed: false,
    }]);
    s
}

fn run_web(s: HostState) -> Vec<Finding> {
    let inv = inv();
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    evaluate(&inv, &FleetState { hosts: vec![s] }, &opts)
}

#[test]
fn a_good_web_host_has_no_findings() {
    let f = run_web(web_state());
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn web_host_misconfigurations() {
    let mut s = web_state();
    if let Probed::Ok(n) = &mut s.nginx {
        n.servers[0].redirects_to_https = false;
        n.servers[1].limit_req.clear();
        n.servers[1].ssl_protocols = None;
        n.ssl_protocols = Some(vec!["TLSv1".into(), "TLSv1.2".into()]);
    }
    if let Probed::Ok(c) = &mut s.tls {
        c[0].not_after = 1_800_000_000 + 10 * 86_400;
    }
    let f = run_web(s.clone());
    let c = checks(&f);
    assert_eq!(
        c,
        [
            "TLS-CERT-EXPIRING",
            "RATE-LIMIT-MISSING",
            "TLS-NO-REDIRECT",
            "TLS-OLD-PROTOCOL"
        ],
        "{f:#?}"
    );
    assert!(f[0].title.contains("10 day"));
    if let Probed::Ok(c) = &mut s.tls {
        c[0].not_after = 1_800_000_000 - 86_400;
    }
    let f = run_web(s);
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(f[0].title.contains("expired"));
}

#[test]
fn web_host_without_https() {
    let mut s = web_state();
    if let Probed::Ok(n) = &mut s.nginx {
        n.servers.truncate(1);
        n.servers[0].redirects_to_https = false;
        n.servers[0].limit_req = n.servers.first().map(|_| vec![]).unwrap_or_default();
    }
    s.listeners = Probed::Ok(vec![
        listener(80, Some("0.0.0.0"), "nginx"),
        listener(22, None, "sshd"),
    ]);
    let c: Vec<String> = run_web(s).iter().map(|f| f.check.clone()).collect();
    assert!(c.contains(&"TLS-MISSING".to_string()), "{c:?}");
}

fn peer() -> WgPeer {
    WgPeer {
        public_key: String::new(),
        has_preshared_key: false,
        endpoint: None,
        allowed_ips: vec![],
        latest_handshake: None,
        rx_bytes: 0,
        tx_bytes: 0,
        persistent_keepalive: None,
    }
}

#[test]
fn vpn_checks_fire() {
    let mut s = good_db();
    s.host = "db1".into();
    s.vpn = Probed::Ok(Vpn {
        wireguard: Probed::Ok(vec![WgInterface {
            name: "wg0".into(),
            public_key: "k".into(),
            listen_port: Some(51820),
            up: Some(true),
            peers: vec![
                WgPeer {
                    public_key: "AAAAAAAAAAAAAAAAold".into(),
                    latest_handshake: Some(0),
                    ..peer()
                },
                WgPeer {
                    public_key: "BBBBBBBBBBBBBBBBnew".into(),
                    latest_handshake: Some(1_800_000_000 - 60),
                    ..peer()
                },
            ],
            fwmark: None,
        }]),
        openvpn: Probed::NotInstalled {
            tool: "openvpn".into(),
        },
    });
    let f = run(s);
    assert_eq!(checks(&f), ["VPN-PEER-STALE"], "{f:#?}");
    assert!(f[0].title.contains("AAAAAAAAAAAA"));
}

#[test]
fn vpn_down_on_a_vpn_host() {
    let text = INV.replace("roles = [\"db\"]", "roles = [\"db\", \"vpn\"]");
    let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inv");
    let mut s = good_db();
    s.vpn = Probed::Ok(Vpn {
        wireguard: Probed::Ok(vec![]),
        openvpn: Probed::NotInstalled {
            tool: "openvpn".into(),
        },
    });
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    let f = evaluate(&inv, &FleetState { hosts: vec![s] }, &opts);
    assert!(checks(&f).contains(&"VPN-DOWN"), "{f:#?}");
}

#[test]
fn bastion_checks() {
    let inv = inv();
    let mut s = good_db();
    s.host = "edge".into();
    s.firewall = Probed::Ok(firewall(Action::Drop, &[(22, &[])]));
    s.listeners = Probed::Ok(vec![listener(22, None, "sshd")]);
    let mut sshd = good_sshd();
    sshd.allow_agent_forwarding = Some(true);
    s.sshd = Probed::Ok(sshd);
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    let f = evaluate(&inv, &FleetState { hosts: vec![s] }, &opts);
    // SSH open to the world is fine on the bastion; forwarding and a missing IDS are not.
    assert_eq!(checks(&f), ["IDS-MISSING", "SSH-FORWARDING"], "{f:#?}");
}

#[test]
fn wrong_segment() {
    let text = INV.replace("address = \"10.77.12.11\"", "address = \"10.77.10.99\"");
    let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inv");
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    let f = evaluate(
        &inv,
        &FleetState {
            hosts: vec![good_db()],
        },
        &opts,
    );
    assert_eq!(checks(&f), ["SEG-WRONG-SEGMENT"], "{f:#?}");
    assert!(f[0].evidence[0].contains("dmz"));
}

#[test]
fn fleet_alerting_and_unreachable_hosts() {
    let inv = Inventory::parse(
        &INV.replace("alertmanager = [\"http://127.0.0.1:9093\"]", ""),
        Path::new("i.toml"),
    )
    .expect("inv");
    let fleet = FleetState {
        hosts: vec![HostState::unreachable("db1", "connect", "timed out")],
    };
    let f = evaluate(&inv, &fleet, &CheckOptions::new(0));
    assert_eq!(checks(&f), ["MON-ALERTING-MISSING"]);
    assert_eq!(f[0].host, FLEET);
    let mut opts = CheckOptions::new(0);
    opts.alertmanager_ok = Some(false);
    let f = evaluate(&crate::posture::checks::tests::inv(), &fleet, &opts);
    assert!(f[0].title.contains("does not answer"));
}

#[test]
fn cloud_security_groups() {
    let text = INV.replace(
        "roles = [\"web\"]",
        "roles = [\"web\"]\ntags = { security_groups = \"sg-1\" }",
    );
    let inv = Inventory::parse(&text, Path::new("inv.toml")).expect("inv");
    let sg = crate::posture::cloud::parse(
        r#"{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"web","IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]},
        {"GroupId":"sg-2","GroupName":"x","IpPermissions":[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]}]}"#,
        "sg.json",
    )
    .expect("sg");
    let mut opts = CheckOptions::new(1_800_000_000);
    opts.alertmanager_ok = Some(true);
    opts.cloud = sg;
    let mut s = web_state();
    s.host = "web1".into();
    let f = evaluate(&inv, &FleetState { hosts: vec![s] }, &opts);
    assert_eq!(checks(&f), ["FW-CLOUD-OPEN"], "{f:#?}");
    assert!(f[0].title.contains("22/tcp"));
}

#[test]
fn hsts_missing_dropped_or_supplied_by_the_app() {
    use crate::state::{Defences, HttpsFetch};
    let fetch = |hsts: Option<&str>| {
        Probed::Ok(vec![HttpsFetch {
            url: "https://127.0.0.1:443/".into(),
            status: Some(200),
            hsts: hsts.map(Into::into),
            error: None,
        }])
    };
    // No HSTS in the configuration, none in the answer.
    let mut s = web_state();
    if let Probed::Ok(n) = &mut s.nginx {
        n.servers[1].hsts = None;
    }
    s.defences = Defences {
        https: fetch(None),
        ..Defences::default()
    };
    let f = run_web(s.clone());
    assert_eq!(checks(&f), ["TLS-NO-HSTS"], "{f:#?}");
    assert!(
        f[0].evidence
            .iter()
            .any(|e| e.contains("answered 200 without")),
        "{f:#?}"
    );
    // The app behind nginx sends it: served, no finding.
    s.defences.https = fetch(Some("max-age=600"));
    assert!(run_web(s.clone()).is_empty());
    // max-age=0 turns HSTS off.
    s.defences.https = fetch(Some("max-age=0"));
    assert_eq!(checks(&run_web(s)), ["TLS-NO-HSTS"]);
    // Configured, but a location's own add_header drops it.
    let mut s = web_state();
    if let Probed::Ok(n) = &mut s.nginx {
        n.servers[1]
            .hsts_dropped_in
            .push("location /api at /etc/nginx/sites-enabled/app:20 (its add_header at /etc/nginx/sites-enabled/app:21)".into());
    }
    let f = run_web(s);
    assert_eq!(checks(&f), ["TLS-NO-HSTS"]);
    // Configured, but the running nginx does not send it (not reloaded).
    let mut s = web_state();
    s.defences.https = fetch(None);
    assert_eq!(checks(&run_web(s)), ["TLS-NO-HSTS"]);
}

#[test]
fn blind_jails_and_crowdsec_as_an_ips() {
    use crate::state::{Crowdsec, JailSources, LogFileStat};
    let mut s = good_db();
    let base = run(s.clone());
    assert!(!checks(&base).contains(&"IPS-JAIL-BLIND"));
    // The sshd jail polls a file that is gone.
    if let Probed::Ok(f) = &mut s.fail2ban {
        f.jails[0].files = vec!["/var/log/auth.log".into()];
    }
    s.defences.jail_sources = Probed::Ok(JailSources {
        jails: vec![],
        journal: false,
        files: vec![LogFileStat {
            path: "/var/log/auth.log".into(),
            exists: false,
            kind: None,
            size: None,
        }],
    });
    let f = run(s.clone());
    assert!(checks(&f).contains(&"IPS-JAIL-BLIND"), "{f:#?}");
    // Present: fine.
    if let Probed::Ok(js) = &mut s.defences.jail_sources {
        js.files[0].exists = true;
        js.files[0].kind = Some("regular file".into());
    }
    assert!(!checks(&run(s.clone())).contains(&"IPS-JAIL-BLIND"));
    // The systemd backend without a journal.
    if let Probed::Ok(f) = &mut s.fail2ban {
        f.jails[0].files.clear();
        f.jails[0].journal_matches = Some("_SYSTEMD_UNIT=ssh.service".into());
    }
    assert!(checks(&run(s.clone())).contains(&"IPS-JAIL-BLIND"));
    // fail2ban down: IPS-FAIL2BAN-DOWN, unless CrowdSec runs.
    s.fail2ban = Probed::Ok(f2b(false, &[]));
    assert!(checks(&run(s.clone())).contains(&"IPS-FAIL2BAN-DOWN"));
    s.defences.crowdsec = Probed::Ok(Crowdsec {
        running: true,
        ..Crowdsec::default()
    });
    assert!(!checks(&run(s)).contains(&"IPS-FAIL2BAN-DOWN"));
}
