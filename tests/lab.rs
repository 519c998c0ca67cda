//! The practice lab, checked from the outside with real tools: the system `ssh -J` through
//! the bastion with strict host keys, `ufw status` and `ss -tlnp` on each host, routing that
//! keeps private hosts unreachable from the root namespace, `rampart lab status`, fail2ban
//! reading sshd's log, the WireGuard handshake, and TLS. Needs root; shares the lab with other
//! test binaries (see tests/common) and never takes it down.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{PRIVATE_HOSTS, TEST_SOURCE, ensure_lab};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Lines of `ss -tlnp` that listen on `port`.
fn listeners(ss: &str, port: u16) -> Vec<&str> {
    let suffix = format!(":{port}");
    ss.lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(3)
                .is_some_and(|local| local.ends_with(&suffix))
        })
        .collect()
}

/// A `ufw status` rule line, split into its columns (`To`, `Action`, `From`).
fn ufw_has(status: &str, to: &str, action: &str, from: &str) -> bool {
    status.lines().any(|l| {
        let cols: Vec<&str> = l
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        cols == [to, action, from]
    })
}

#[test]
fn private_hosts_through_the_bastion_show_their_own_state() {
    let lab = ensure_lab();
    for (host, _) in PRIVATE_HOSTS {
        let out = lab.ssh_ok(
            host,
            "hostname; echo =====; ufw status; echo =====; ss -tlnp",
        );
        let parts: Vec<&str> = out.split("=====\n").collect();
        assert_eq!(parts.len(), 3, "{host}: {out}");
        let (name, ufw, ss) = (parts[0].trim(), parts[1], parts[2]);
        assert_eq!(name, host, "reached the wrong host");
        // Every host runs sshd and the monitoring agent.
        assert!(
            listeners(ss, 22).iter().any(|l| l.contains("\"sshd\"")),
            "{host}: {ss}"
        );
        assert!(!listeners(ss, 9100).is_empty(), "{host}: {ss}");
        match host {
            "db1" => {
                assert!(ufw.contains("Status: active"), "{ufw}");
                assert!(ufw_has(ufw, "5432/tcp", "ALLOW", "Anywhere"), "{ufw}");
                assert!(ufw_has(ufw, "22/tcp", "ALLOW", "10.77.9.0/24"), "{ufw}");
                assert!(!listeners(ss, 5432).is_empty(), "{ss}");
            }
            "app1" => {
                assert!(ufw.contains("Status: inactive"), "{ufw}");
                assert!(!listeners(ss, 8000).is_empty(), "{ss}");
            }
            "web1" | "web2" => {
                assert!(ufw.contains("Status: active"), "{ufw}");
                assert!(ufw_has(ufw, "443/tcp", "ALLOW", "Anywhere"), "{ufw}");
                assert!(ufw_has(ufw, "22/tcp", "ALLOW", "10.77.9.0/24"), "{ufw}");
                assert!(
                    listeners(ss, 443).iter().any(|l| l.contains("\"nginx\"")),
                    "{ss}"
                );
                assert!(!listeners(ss, 80).is_empty(), "{ss}");
            }
            "vpn1" => {
                // vpn1 filters with nftables, not ufw.
                assert!(ufw.contains("Status: inactive"), "{ufw}");
                let nft = lab.ssh_ok(host, "nft list ruleset");
                assert!(nft.contains("policy drop"), "{nft}");
                assert!(
                    nft.contains("ip saddr 10.77.9.0/24 tcp dport 22 accept"),
                    "{nft}"
                );
                let sshd = lab.ssh_ok(host, "sshd -T");
                assert!(sshd.contains("\npasswordauthentication yes\n"), "{sshd}");
            }
            "cache1" => {
                // Redis from the app segment only (the missing password is the mistake).
                assert!(ufw.contains("Status: active"), "{ufw}");
                assert!(ufw_has(ufw, "6379/tcp", "ALLOW", "10.77.11.0/24"), "{ufw}");
                assert!(
                    listeners(ss, 6379)
                        .iter()
                        .any(|l| l.contains("10.77.12.21:6379") && l.contains("redis-server")),
                    "{ss}"
                );
            }
            "leg1" => {
                // iptables on the legacy backend with ipsets, no manager; its own `iptables`
                // is the legacy one (fail2ban's first ban makes its chain there).
                assert!(ufw.contains("Status: inactive"), "{ufw}");
                let out = lab.ssh_ok(
                    host,
                    "iptables -V; iptables-legacy-save; echo =====; ipset list -n; \
                     echo =====; iptables-nft-save",
                );
                let parts: Vec<&str> = out.split("=====\n").collect();
                assert_eq!(parts.len(), 3, "{out}");
                let (legacy, sets, nft) = (parts[0], parts[1], parts[2]);
                assert!(legacy.starts_with("iptables v1."), "{legacy}");
                assert!(
                    legacy.lines().next().unwrap().ends_with("(legacy)"),
                    "{legacy}"
                );
                assert!(legacy.contains(":INPUT DROP"), "{legacy}");
                assert!(
                    legacy.contains("-m set --match-set admin-src src -m tcp --dport 22 -j ACCEPT"),
                    "{legacy}"
                );
                assert!(legacy.contains("-j REDIRECT --to-ports 9100"), "{legacy}");
                assert_eq!(
                    sets.lines().collect::<Vec<_>>(),
                    ["admin-src", "blocklist"],
                    "{sets}"
                );
                assert!(!nft.contains("-A "), "nothing on nf_tables: {nft}");
                assert!(
                    listeners(ss, 443).iter().any(|l| l.contains("\"nginx\"")),
                    "{ss}"
                );
            }
            "fwd1" => {
                // firewalld on its own bus, nftables backend: its zones are in this host's
                // ruleset, ufw is not in use.
                assert!(ufw.contains("Status: inactive"), "{ufw}");
                let out = lab.ssh_ok(
                    host,
                    "firewall-cmd --state; firewall-cmd --get-active-zones; \
                     nft list chain inet firewalld filter_INPUT_ZONES",
                );
                assert!(out.starts_with("running\n"), "{out}");
                assert!(
                    out.contains("ip saddr 10.77.9.0/24 goto filter_IN_admin"),
                    "{out}"
                );
                // The deliberate mistake: the whole lab goes to the zone with Redis.
                assert!(
                    out.contains("ip saddr 10.77.0.0/16 goto filter_IN_labapp"),
                    "{out}"
                );
                assert!(
                    listeners(ss, 6379)
                        .iter()
                        .any(|l| l.contains("10.77.11.31:6379") && l.contains("redis-server")),
                    "{ss}"
                );
            }
            "dock1" => {
                // ufw says 5432 only from the app segment; Docker's docker-proxy listens on
                // every address and its NAT rules sit in front of ufw's.
                assert!(ufw.contains("Status: active"), "{ufw}");
                assert!(ufw_has(ufw, "5432/tcp", "ALLOW", "10.77.11.0/24"), "{ufw}");
                assert!(
                    listeners(ss, 5432)
                        .iter()
                        .any(|l| l.contains("\"docker-proxy\"")),
                    "{ss}"
                );
                let nat = lab.ssh_ok(host, "iptables-nft-save -t nat");
                assert!(
                    nat.contains("-j DNAT --to-destination 172.17.0.2:5432"),
                    "{nat}"
                );
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn the_bastion_is_reachable_and_does_not_route() {
    let lab = ensure_lab();
    let out = lab.ssh_ok(
        "edge",
        "hostname; sysctl -n net.ipv4.ip_forward; nft list ruleset",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("edge"));
    assert_eq!(lines.next(), Some("0"), "the bastion must not forward");
    assert!(out.contains("\t\ttcp dport 22 accept\n"), "{out}");
    let sshd = lab.ssh_ok("edge", "sshd -T");
    assert!(sshd.contains("\nallowagentforwarding no\n"), "{sshd}");
    assert!(sshd.contains("\npasswordauthentication no\n"), "{sshd}");
}

#[test]
fn a_private_host_is_not_reachable_directly() {
    let _lab = ensure_lab();
    // The bastion answers directly...
    let edge: SocketAddr = "10.77.0.10:22".parse().unwrap();
    TcpStream::connect_timeout(&edge, Duration::from_secs(5)).expect("the bastion answers");
    // ...a private host does not: the root namespace has no route to it.
    for (host, addr) in PRIVATE_HOSTS {
        let target: SocketAddr = format!("{addr}:22").parse().unwrap();
        let err = TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect_err(&format!(
            "{host} must not be reachable from the root namespace"
        ));
        assert!(
            matches!(
                err.kind(),
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
            ),
            "{host}: expected no route, got {err:?}"
        );
    }
    let route = Command::new("ip")
        .args(["route", "get", "10.77.12.11"])
        .output()
        .expect("ip route get");
    assert!(!route.status.success() || text(&route.stdout).contains("unreachable"));
}

#[test]
fn an_unknown_host_key_is_refused() {
    let lab = ensure_lab();
    let empty = tempfile::NamedTempFile::new().unwrap();
    // Everything as the lab tests use it, except a known_hosts file that knows nothing.
    let out = Command::new("ssh")
        .arg("-F")
        .arg("/dev/null")
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.path().display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-i"])
        .arg(lab.client_key())
        .args(["root@10.77.0.10", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Host key verification failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn lab_status_reports_every_host_up() {
    let _lab = ensure_lab();
    let out = Command::new(common::rampart_bin())
        .args(["lab", "status"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for (host, addr) in common::HOSTS {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("{host} missing:\n{stdout}"));
        assert!(line.contains(addr), "{line}");
        assert!(line.split_whitespace().nth(4) == Some("ok"), "{line}");
    }
    assert!(stdout.contains("fail2ban:stopped(deliberate)"), "{stdout}");
    assert!(stdout.contains("all hosts up"), "{stdout}");
}

fn f2b_total_failed(lab: &common::Lab, host: &str) -> u64 {
    let out = lab.exec(host, "fail2ban-client", &["status", "sshd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.split("Total failed:").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .expect("Total failed in fail2ban-client status")
}

#[test]
fn fail2ban_counts_a_failed_login_from_sshd_log() {
    let lab = ensure_lab();
    let host = "db1";
    let before = f2b_total_failed(&lab, host);
    let user = format!("nosuchuser{}", std::process::id());
    let out = lab.in_bastion_netns(
        "ssh",
        &[
            "-F",
            "/dev/null",
            "-b",
            TEST_SOURCE,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            &format!("{user}@{}", common::address(host)),
            "true",
        ],
    );
    assert!(!out.status.success(), "an unknown user must not log in");
    let log = lab.ssh_ok(host, "cat /var/log/auth.log");
    assert!(
        log.contains(&format!("Invalid user {user} from {TEST_SOURCE}")),
        "sshd did not log the failure"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = before;
    while Instant::now() < deadline {
        after = f2b_total_failed(&lab, host);
        if after > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Leave no ban behind for other tests, whatever happened.
    let _ = lab.exec(
        host,
        "fail2ban-client",
        &["set", "sshd", "unbanip", TEST_SOURCE],
    );
    assert!(
        after > before,
        "fail2ban on {host} did not count the failure"
    );
}

#[test]
fn wireguard_edge_handshakes_and_old_laptop_never_does() {
    let lab = ensure_lab();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        // `wg show dump` peer lines: key, psk, endpoint, allowed-ips, latest-handshake, rx, tx, ka.
        let dump = lab.ssh_ok("vpn1", "wg show wg0 dump");
        let peer = |ip: &str| -> Vec<String> {
            dump.lines()
                .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
                .find(|f| f.len() >= 8 && f[3] == ip)
                .unwrap_or_else(|| panic!("no peer {ip} in:\n{dump}"))
        };
        let old = peer("10.77.100.9/32");
        assert_eq!(old[2], "(none)", "old-laptop has no endpoint");
        assert_eq!(old[4], "0", "old-laptop must never handshake");
        let edge = peer("10.77.100.2/32");
        // boringtun reports seconds since the handshake here (not a timestamp); 0 = never.
        if edge[4] != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "edge never handshook:\n{dump}");
        lab.ssh_ok("edge", "bash -c 'echo hi > /dev/udp/10.77.100.1/9'");
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn web_hosts_serve_tls_from_the_lab_ca_and_redirect_http() {
    let lab = ensure_lab();
    let ca = lab.ca_cert();
    for (host, addr, short_lived) in [
        ("web1", "10.77.10.11", false),
        ("web2", "10.77.10.12", true),
    ] {
        let connect = format!("{addr}:443");
        let s_client = lab.in_bastion_netns(
            "openssl",
            &[
                "s_client",
                "-connect",
                &connect,
                "-servername",
                host,
                "-verify_return_error",
                "-CAfile",
                ca.to_str().unwrap(),
                "-verify_ip",
                addr,
            ],
        );
        let out = text(&s_client.stdout);
        assert!(out.contains("Verify return code: 0 (ok)"), "{host}: {out}");
        let pem = out
            .split("-----BEGIN CERTIFICATE-----")
            .nth(1)
            .and_then(|r| r.split("-----END CERTIFICATE-----").next())
            .map(|b| format!("-----BEGIN CERTIFICATE-----{b}-----END CERTIFICATE-----\n"))
            .expect("server certificate");
        let cert = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cert.path(), pem).unwrap();
        // Will it expire within 11 days? Only web2's should.
        let check = Command::new("openssl")
            .args(["x509", "-noout", "-checkend", "950400", "-in"])
            .arg(cert.path())
            .output()
            .unwrap();
        assert_eq!(!check.status.success(), short_lived, "{host} expiry");

        let old_tls =
            lab.in_bastion_netns("openssl", &["s_client", "-connect", &connect, "-tls1_1"]);
        assert!(!old_tls.status.success(), "{host} accepted TLS 1.1");

        let http = lab.in_bastion_netns(
            "python3",
            &[
                "-c",
                "import http.client, sys\n\
                 c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)\n\
                 c.request('GET', '/x')\n\
                 r = c.getresponse()\n\
                 print(r.status, r.getheader('Location'))",
                addr,
            ],
        );
        assert_eq!(
            text(&http.stdout).trim(),
            format!("301 https://{addr}/x"),
            "{host}: {}",
            text(&http.stderr)
        );
    }
    let web1 = lab.ssh_ok("web1", "nginx -T 2>/dev/null");
    assert!(web1.contains("limit_req zone=perip"), "web1 rate limit");
    let web2 = lab.ssh_ok("web2", "nginx -T 2>/dev/null");
    assert!(!web2.contains("limit_req"), "web2 must have no rate limit");
}

#[test]
fn without_root_lab_commands_fail_with_one_clear_line() {
    for verb in ["up", "status", "down"] {
        // `setpriv` drops to nobody; nothing is made, so no lab lock is needed.
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::rampart_bin())
            .args(["lab", verb])
            .env(
                "XDG_STATE_HOME",
                std::env::temp_dir().join("rampart-nobody"),
            )
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{verb}");
        assert_ne!(out.status.code(), Some(101), "{verb} panicked: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{verb}: {err}");
        assert!(err.contains("must run as root"), "{verb}: {err}");
        assert!(out.stdout.is_empty(), "{verb}");
    }
}

/// `lab down` removes every namespace, link, process and file the lab made; `lab up` then
/// rebuilds it from nothing (fresh keys and known_hosts).
#[test]
fn down_leaves_nothing_behind_and_up_rebuilds() {
    let lab = common::ensure_lab_exclusive();
    // Whatever happens below, the lab is up again for the tests after this one.
    let _restore = common::LabRestore;
    let run = |args: &[&str]| {
        std::process::Command::new(common::rampart_bin())
            .args(args)
            .output()
            .expect("run rampart")
    };
    let before = common::lab_processes();
    assert!(!before.is_empty(), "the lab has no processes to take down");
    let down = run(&["lab", "down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));

    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let left: Vec<String> = text(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with("rpl-"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    assert!(
        !text(&links.stdout).contains("rpl-"),
        "links left:\n{}",
        text(&links.stdout)
    );
    assert!(
        !lab.state_dir.exists(),
        "state dir left: {}",
        lab.state_dir.display()
    );
    // No process of the lab is left: every process that was in its namespaces, by pid and
    // start time (never by name: another boringtun on the machine is not the lab's).
    let stray: Vec<String> = before
        .iter()
        .filter(|p| p.alive())
        .map(|p| {
            let args = std::fs::read_to_string(format!("/proc/{}/cmdline", p.pid))
                .unwrap_or_default()
                .replace('\0', " ");
            format!("{} {args}", p.pid)
        })
        .collect();
    assert!(stray.is_empty(), "processes left: {stray:#?}");

    let up = run(&["lab", "up"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let status = run(&["lab", "status"]);
    assert!(status.status.success(), "{}", text(&status.stdout));
}
