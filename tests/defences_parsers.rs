//! The defence parsers (IDS alert files, fail2ban jail files, CrowdSec decisions, the
//! host's own HTTPS answer, nginx HSTS) on the fixtures in tests/fixtures (see the README
//! there and tests/fixtures/ids/README.md: the IDS files follow the formats' documentation,
//! since neither IDS is packaged in Debian 12).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart::collect::{crowdsec, https, ids, jails, nginx};
use rampart::state::{IdsEngine, IdsFormat};

fn fx(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn suricata_eve_alerts_only() {
    let log = ids::parse_tail(
        "/var/log/suricata/eve.json",
        IdsFormat::SuricataEve,
        &fx("ids/eve.json"),
        false,
    );
    assert_eq!(log.alerts.len(), 3, "{log:#?}");
    assert_eq!(log.skipped, 3, "flow, dns and garbage");
    let a = &log.alerts[0];
    assert_eq!(a.engine, IdsEngine::Suricata);
    assert_eq!((a.gid, a.sid, a.rev), (1, 2001219, 20));
    assert_eq!(a.priority, Some(2));
    assert_eq!(a.src, Some("203.0.113.50".parse().unwrap()));
    assert_eq!(a.dst_port, Some(22));
    assert_eq!(a.time, ids::parse_rfc3339ish("2026-12-06T02:10:02+0000"));
    let v6 = &log.alerts[2];
    assert_eq!(v6.src, Some("2001:db8::66".parse().unwrap()));
    assert_eq!(v6.action.as_deref(), Some("blocked"));
    // +0100: an hour earlier in UTC.
    assert_eq!(v6.time, ids::parse_rfc3339ish("2026-12-06T02:15:44Z"));
}

#[test]
fn snort3_alert_json_both_field_styles() {
    let log = ids::parse_tail(
        "/var/log/snort/alert_json.txt",
        IdsFormat::SnortJson,
        &fx("ids/alert_json.txt"),
        false,
    );
    assert_eq!(log.alerts.len(), 2, "{log:#?}");
    assert_eq!(log.skipped, 1, "a line without a rule");
    let a = &log.alerts[0];
    assert_eq!((a.gid, a.sid, a.rev), (1, 1000001, 1));
    assert_eq!(a.src_port, Some(41022));
    assert_eq!(a.priority, Some(3));
    assert_eq!(a.category, None, "class none");
    assert_eq!(a.time, ids::parse_snort_time("26/12/06-02:10:01.120331"));
    let b = &log.alerts[1];
    assert_eq!(b.sid, 2100498);
    assert_eq!(b.dst, Some("10.77.0.10".parse().unwrap()));
    assert_eq!(
        b.time, None,
        "no year, no seconds: the time cannot be placed"
    );
}

#[test]
fn alert_fast_with_and_without_quotes_classification_and_ipv6() {
    let log = ids::parse_tail(
        "/var/log/snort/alert_fast.txt",
        IdsFormat::SnortFast,
        &fx("ids/alert_fast.txt"),
        false,
    );
    assert_eq!(log.alerts.len(), 4, "{log:#?}");
    assert_eq!(log.skipped, 1);
    assert_eq!(log.alerts[0].signature, "rampart test: ping sweep");
    assert_eq!(log.alerts[0].proto.as_deref(), Some("ICMP"));
    assert_eq!(log.alerts[0].dst_port, None);
    assert_eq!(log.alerts[1].priority, Some(1));
    assert_eq!(log.alerts[1].src_port, Some(80));
    assert_eq!(log.alerts[2].gid, 129);
    assert_eq!(log.alerts[2].category, None);
    assert_eq!(log.alerts[2].dst, Some("2001:db8::10".parse().unwrap()));
    assert_eq!(log.alerts[3].signature, "ICMP PING NMAP");
}

#[test]
fn the_probe_output_is_split_per_file_and_a_cut_tail_loses_its_first_line() {
    let text = format!(
        "### ids suricata-eve 9999999 42 /var/log/suricata/eve.json\n{}### ids snort-fast 100 43 /var/log/snort/alert_fast.txt\n{}",
        fx("ids/eve.json"),
        fx("ids/alert_fast.txt")
    );
    let logs = ids::parse_probe(&text).unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs[0].cut);
    assert_eq!(logs[0].inode, Some(42));
    // The first line (a flow event) was dropped as partial: 3 alerts, 2 skipped.
    assert_eq!(logs[0].alerts.len(), 3);
    assert_eq!(logs[0].skipped, 2);
    assert!(!logs[1].cut);
    assert_eq!(logs[1].alerts.len(), 4);
}

#[test]
fn a_hostile_ids_file_stays_bounded() {
    // 5000 alert lines, and one 1 MB line: at most MAX_ALERTS kept, the long line skipped.
    let line = fx("ids/alert_fast.txt").lines().next().unwrap().to_string();
    let mut body = String::new();
    for _ in 0..5000 {
        body.push_str(&line);
        body.push('\n');
    }
    body.push_str(&"A".repeat(1 << 20));
    body.push('\n');
    let log = ids::parse_tail("/x", IdsFormat::SnortFast, &body, false);
    assert_eq!(log.alerts.len(), ids::MAX_ALERTS);
    assert_eq!(log.skipped, 5000 - ids::MAX_ALERTS + 1);
}

#[test]
fn debian_stock_jail_files_resolve_sshd() {
    let s = jails::parse_probe(&fx("fail2ban/jails/debian12-stock.txt")).unwrap();
    let sshd = s.jails.iter().find(|j| j.name == "sshd").unwrap();
    assert!(sshd.enabled, "defaults-debian.conf enables it");
    assert_eq!(sshd.logpath, vec!["/var/log/auth.log"]);
    assert_eq!(sshd.backend.as_deref(), Some("auto"));
    assert!(
        sshd.enabled_at
            .as_deref()
            .unwrap()
            .starts_with("/etc/fail2ban/jail.d/defaults-debian.conf:")
    );
    let enabled: Vec<&str> = s
        .jails
        .iter()
        .filter(|j| j.enabled)
        .map(|j| j.name.as_str())
        .collect();
    assert_eq!(enabled, ["sshd"]);
    assert!(
        s.jails.len() > 40,
        "every jail of jail.conf: {}",
        s.jails.len()
    );
}

#[test]
fn https_self_answer_and_nginx_without_hsts() {
    let f = https::parse_probe(&fx("https/self-web1.txt")).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].status, Some(200));
    assert_eq!(f[0].hsts.as_deref(), Some("max-age=31536000"));
    let f = https::parse_probe(&fx("https/self-web2.txt")).unwrap();
    assert_eq!(f[0].status, Some(200));
    assert_eq!(f[0].hsts, None);
    // A real dump with TLS servers and no add_header anywhere: no server sends HSTS.
    let n = nginx::parse(&fx("nginx/T-tls-ratelimit.txt")).unwrap();
    assert!(n.http_hsts.is_none());
    let tls: Vec<_> = n.servers.iter().filter(|s| s.serves_tls()).collect();
    assert!(!tls.is_empty());
    assert!(
        tls.iter()
            .all(|s| s.hsts.is_none() && s.own_add_header.is_none())
    );
}

#[test]
fn crowdsec_decisions_from_cscli() {
    let d = crowdsec::parse_decisions(&fx("crowdsec/decisions.json")).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].kind, "ban");
    assert_eq!(d[0].origin, "cscli");
    assert_eq!(d[0].ip, Some("203.0.113.77".parse().unwrap()));
    assert!(
        crowdsec::parse_decisions(&fx("crowdsec/decisions-empty.json"))
            .unwrap()
            .is_empty()
    );
}
