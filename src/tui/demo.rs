//! A hand-built fleet shaped like the practice lab (a bastion, two web hosts, a VPN host, an
//! app host, a database host), with findings, alerts and traffic, at a fixed time. For
//! snapshot tests and for showing the console without a lab. Everything enters through
//! [`App::update`], the same door the collectors use.

use std::path::Path;

use super::TuiError;
use super::app::{App, Options};
use super::model::{AppUpdate, ConnState};
use crate::inventory::Inventory;
use crate::posture::{Finding, Severity, WaiverRef};
use crate::state::{
    Backend, CounterRates, Facts, Fail2ban, Firewall, HostState, InterfaceRates, Jail, Listener,
    Manager, Origin, OsRelease, PermitRootLogin, Policies, Policy, Probed, Protocol, Rule,
    ServiceStatus, Services, SocketProcess, Sshd, TcpRates,
};

/// 2026-01-01T12:00:00Z: the demo's "now".
pub const DEMO_NOW: i64 = 1_767_268_800;

/// The demo fleet's inventory.
pub const DEMO_INVENTORY: &str = r#"
[defaults]
user = "root"
bastion = "edge"

[segments]
outside = ["10.77.0.0/24"]
admin   = ["10.77.9.0/24"]
dmz     = ["10.77.10.0/24"]
app     = ["10.77.11.0/24"]
data    = ["10.77.12.0/24"]

[roles.bastion]
segments = ["outside", "admin"]

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
name = "web2"
address = "10.77.10.12"
roles = ["web"]

[[host]]
name = "vpn1"
address = "10.77.10.20"
roles = ["vpn"]

[[host]]
name = "app1"
address = "10.77.11.11"
roles = ["app"]

[[host]]
name = "db1"
address = "10.77.12.11"
roles = ["db"]
"#;

/// The demo inventory, parsed.
pub fn demo_inventory() -> Result<Inventory, crate::inventory::InventoryError> {
    Inventory::parse(DEMO_INVENTORY, Path::new("demo/inventory.toml"))
}

fn origin(line: usize) -> Origin {
    Origin {
        backend: Backend::IptablesNft,
        table: "filter".into(),
        chain: "ufw-user-input".into(),
        line: Some(line),
        handle: None,
    }
}

fn allow(port: u16, from: Option<&str>, line: usize) -> Rule {
    let mut r = Rule::new(
        crate::state::Direction::In,
        crate::state::Action::Accept,
        Manager::Ufw,
        origin(line),
    );
    r.protocol = Some(Protocol::Tcp);
    r.dports = crate::state::PortSet::Only(vec![crate::state::PortRange::single(port)]);
    if let Some(net) = from.and_then(|n| n.parse().ok()) {
        r.sources = vec![net];
    }
    r
}

fn listener(port: u16, name: &str, pid: u32) -> Listener {
    Listener {
        protocol: Protocol::Tcp,
        address: None,
        interface: None,
        port,
        processes: vec![SocketProcess {
            name: name.into(),
            pid,
        }],
    }
}

fn state(host: &str, os: &str) -> HostState {
    let mut s = HostState::unreachable(host, "", "");
    s.errors.clear();
    s.collected_at = Some(DEMO_NOW - 20);
    s.facts = Probed::Ok(Facts {
        hostname: host.into(),
        kernel: "6.1.0-31-amd64".into(),
        machine: "x86_64".into(),
        os: OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
            pretty_name: os.into(),
        },
        uptime_secs: Some(3.0 * 86_400.0 + 7200.0),
        init: Some("sh".into()),
        interfaces: Vec::new(),
        routes: Vec::new(),
    });
    s.firewall = Probed::NotInstalled { tool: "ufw".into() };
    s.listeners = Probed::Ok(vec![listener(22, "sshd", 101)]);
    s.fail2ban = Probed::NotInstalled {
        tool: "fail2ban-client".into(),
    };
    s.vpn = Probed::NotInstalled { tool: "wg".into() };
    s.sshd = Probed::Ok(Sshd {
        password_authentication: Some(false),
        kbd_interactive_authentication: Some(false),
        permit_root_login: Some(PermitRootLogin::ProhibitPassword),
        pubkey_authentication: Some(true),
        ports: vec![22],
        max_auth_tries: Some(6),
        ..Sshd::default()
    });
    s.nginx = Probed::NotInstalled {
        tool: "nginx".into(),
    };
    s.tls = Probed::Ok(Vec::new());
    s.services = Probed::Ok(Services {
        init: Some("sh".into()),
        services: vec![ServiceStatus {
            service: crate::state::KnownService::Sshd,
            running: true,
            pids: vec![101],
            unit_state: None,
        }],
    });
    s.counters = Probed::Failed {
        stage: "counters".into(),
        message: "not sampled in the demo".into(),
    };
    s
}

fn firewall(rules: Vec<Rule>, incoming: Policy) -> Firewall {
    Firewall {
        managers: vec![Manager::Ufw],
        installed: vec![Manager::Ufw],
        policies: Policies {
            incoming: Some(incoming),
            outgoing: Some(Policy::Accept),
            routed: Some(Policy::Disabled),
        },
        rules,
        ..Firewall::default()
    }
}

fn states() -> Vec<HostState> {
    let mut edge = state("edge", "Debian GNU/Linux 12 (bookworm)");
    edge.firewall = Probed::Ok(firewall(vec![allow(22, None, 7)], Policy::Drop));
    edge.fail2ban = Probed::Ok(Fail2ban {
        running: true,
        version: Some("1.0.2".into()),
        jails: vec![Jail {
            name: "sshd".into(),
            currently_failed: 2,
            total_failed: 41,
            currently_banned: 1,
            total_banned: 6,
            banned: vec![
                "10.77.0.66"
                    .parse()
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            ],
            ..Jail::default()
        }],
    });

    let mut web1 = state("web1", "Debian GNU/Linux 12 (bookworm)");
    web1.firewall = Probed::Ok(firewall(
        vec![
            allow(22, Some("10.77.9.0/24"), 7),
            allow(80, None, 10),
            allow(443, None, 13),
            allow(8080, None, 16),
        ],
        Policy::Drop,
    ));
    web1.listeners = Probed::Ok(vec![
        listener(22, "sshd", 101),
        listener(80, "nginx", 230),
        listener(443, "nginx", 230),
    ]);
    if let Probed::Ok(s) = &mut web1.sshd {
        s.password_authentication = Some(true);
    }

    let mut web2 = state("web2", "Debian GNU/Linux 12 (bookworm)");
    web2.firewall = Probed::Ok(Firewall {
        installed: vec![Manager::Ufw],
        ..Firewall::default()
    });
    web2.listeners = Probed::Ok(vec![listener(22, "sshd", 101), listener(80, "nginx", 240)]);

    let vpn1 = state("vpn1", "Debian GNU/Linux 12 (bookworm)");

    let mut db1 = state("db1", "Debian GNU/Linux 12 (bookworm)");
    db1.firewall = Probed::Ok(firewall(
        vec![allow(22, Some("10.77.9.0/24"), 7), allow(5432, None, 10)],
        Policy::Drop,
    ));
    db1.listeners = Probed::Ok(vec![
        listener(22, "sshd", 101),
        listener(5432, "postgres", 310),
    ]);

    let app1 = HostState::unreachable(
        "app1",
        "connect",
        "app1 via edge: connect: timed out after 5s",
    );
    vec![edge, web1, web2, vpn1, app1, db1]
}

fn findings() -> Vec<Finding> {
    vec![
        Finding::new("SSH-PASSWORD-AUTH", "web1", "sshd accepts passwords")
            .evidence("sshd -T: passwordauthentication yes"),
        Finding::new(
            "FW-STALE-RULE",
            "web1",
            "8080/tcp allowed from anywhere, nothing listens",
        )
        .evidence("iptables-nft filter/ufw-user-input line 16: -A ufw-user-input -p tcp --dport 8080 -j ACCEPT")
        .param("port", "8080"),
        Finding::new("FW-NONE", "web2", "ufw inactive and no filtering ruleset")
            .evidence("ufw status: inactive")
            .evidence("nft list ruleset: no incoming base chain"),
        Finding::new("IPS-FAIL2BAN-DOWN", "web2", "fail2ban is not running"),
        Finding::new(
            "SEG-DB-EXPOSED",
            "db1",
            "5432/tcp open to 0.0.0.0/0 (allowed only from app)",
        )
        .evidence("iptables-nft filter/ufw-user-input line 10: -A ufw-user-input -p tcp --dport 5432 -j ACCEPT")
        .evidence("ss: postgres(310) listens on *:5432")
        .param("port", "5432")
        .param("segment", "app"),
        Finding::new("VPN-PEER-STALE", "vpn1", "peer hQx3… last handshake 3 days ago"),
        {
            let mut f = Finding::new("IDS-MISSING", "edge", "no snort or suricata running");
            f.waived = Some(WaiverRef {
                justification: "IDS runs on the upstream firewall".into(),
                expires: "2026-06-30".into(),
                source: "waivers.toml:4".into(),
            });
            f
        },
        Finding::new("MON-AGENT-MISSING", "edge", "no monitoring agent running")
            .severity(Severity::Low),
    ]
}

fn rates(base: f64, i: usize) -> CounterRates {
    let wave = [1.0, 1.4, 0.8, 2.2, 1.1, 0.6, 1.9, 3.0, 1.2, 0.9, 1.5, 2.6];
    let k = wave[i % wave.len()];
    CounterRates {
        seconds: 15.0,
        interfaces: vec![
            InterfaceRates {
                name: "eth0".into(),
                rx_bytes: base * k,
                tx_bytes: base * k * 0.7,
                rx_packets: base * k / 800.0,
                tx_packets: base * k / 1000.0,
                errors: 0.0,
                dropped: if i.is_multiple_of(5) { 0.2 } else { 0.0 },
            },
            InterfaceRates {
                name: "lo".into(),
                rx_bytes: 120.0,
                tx_bytes: 120.0,
                ..InterfaceRates::default()
            },
        ],
        tcp: Some(TcpRates {
            active_opens: 0.1,
            passive_opens: base / 20_000.0 * k,
            attempt_fails: 0.0,
            estab_resets: 0.0,
            in_segs: base / 900.0,
            retrans_segs: 0.05,
        }),
    }
}

/// A console over the demo fleet at [`DEMO_NOW`], everything collected once.
pub fn demo_app(opts: Options) -> Result<App, TuiError> {
    let inv = demo_inventory().map_err(|e| TuiError::Draw(e.to_string()))?;
    let mut app = App::new(
        &inv,
        Options {
            now: DEMO_NOW,
            ..opts
        },
    )?;
    for u in demo_updates() {
        app.update(u);
    }
    Ok(app)
}

/// The updates that build the demo, in the order a collection would send them.
pub fn demo_updates() -> Vec<AppUpdate> {
    let mut v = vec![
        AppUpdate::RefreshStarted { at: DEMO_NOW - 30 },
        // Yesterday's audit, for the score's trend.
        AppUpdate::Baseline {
            score: 70,
            at: DEMO_NOW - 86_400,
        },
    ];
    for h in ["edge", "web1", "web2", "vpn1", "db1"] {
        v.push(AppUpdate::Connection {
            host: h.into(),
            state: ConnState::Ok,
        });
    }
    v.push(AppUpdate::Connection {
        host: "app1".into(),
        state: ConnState::Unreachable {
            reason: "app1 via edge: connect: timed out after 5s".into(),
        },
    });
    for s in states() {
        v.push(AppUpdate::HostState(Box::new(s)));
    }
    // A first recomputation without db1's exposure, then with it: db1's finding is "new
    // since the last refresh" and raises an alert.
    let all = findings();
    let before: Vec<Finding> = all
        .iter()
        .filter(|f| f.check != "SEG-DB-EXPOSED")
        .cloned()
        .collect();
    v.push(AppUpdate::Findings(before));
    v.push(AppUpdate::Findings(all));
    let bases = [
        ("edge", 40_000.0),
        ("web1", 900_000.0),
        ("web2", 300_000.0),
        ("vpn1", 60_000.0),
        ("db1", 120_000.0),
    ];
    for i in 0..40 {
        for (h, b) in bases {
            v.push(AppUpdate::Traffic {
                host: h.into(),
                rates: rates(b, i + h.len()),
            });
        }
    }
    v.push(AppUpdate::RefreshFinished { at: DEMO_NOW - 5 });
    v
}

/// A drift timeline over the demo fleet (what the Changes view shows after `c`).
pub fn demo_timeline() -> crate::store::timeline::Timeline {
    use crate::store::timeline::{Change, ChangeKind, Timeline};
    let ev = |s: &str| {
        vec![
            s.to_string(),
            "snapshot 41 (audit) → snapshot 42 (console)".into(),
        ]
    };
    let change = |at: i64, host: &str, kind: ChangeKind, what: &str, e: &str| Change {
        at,
        host: host.into(),
        kind,
        what: what.into(),
        evidence: ev(e),
    };
    Timeline {
        since: "since 1d ago".into(),
        from: None,
        to: None,
        changes: vec![
            change(
                DEMO_NOW - 300,
                "db1",
                ChangeKind::PortOpened,
                "5432/tcp 0.0.0.0 (postgres)",
                "now listening: 5432/tcp 0.0.0.0 (postgres)",
            ),
            change(
                DEMO_NOW - 300,
                "db1",
                ChangeKind::FindingNew,
                "SEG-DB-EXPOSED 5432/tcp is reachable from outside app",
                "ufw: ALLOW IN 5432/tcp from anywhere (ufw-user-input line 3)",
            ),
            change(
                DEMO_NOW - 3_600,
                "web2",
                ChangeKind::RuleRemoved,
                "accept tcp dport 443 from anywhere",
                "rule gone from the firewall: accept tcp dport 443 from anywhere",
            ),
            change(
                DEMO_NOW - 7_200,
                "edge",
                ChangeKind::BanAdded,
                "sshd 203.0.113.50",
                "banned by fail2ban: sshd 203.0.113.50",
            ),
            change(
                DEMO_NOW - 90_000,
                "web1",
                ChangeKind::FindingResolved,
                "TLS-NO-REDIRECT plain HTTP does not redirect",
                "TLS-NO-REDIRECT (medium) no longer fires",
            ),
        ],
        note: None,
    }
}
