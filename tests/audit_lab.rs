#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `rampart audit` against the practice lab: exactly the lab's deliberate misconfigurations,
//! nothing on the well-configured hosts, exit 1; every format renders and parses; a host that
//! cannot be reached is listed and the audit exits 3.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use serde_json::Value;

fn repo(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn audit(inventory: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(common::rampart_bin())
        .arg("--inventory")
        .arg(inventory)
        .arg("audit")
        .args(extra)
        // Tests never write the user's history database.
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join("rampart-audit-lab-data"),
        )
        .output()
        .expect("run rampart audit")
}

/// What the lab is built to get wrong (docs/lab.md), as (host, check).
fn expected() -> BTreeSet<(String, String)> {
    let v: BTreeSet<(String, String)> = [
        ("app1", "FW-NONE"),
        ("db1", "SEG-DB-EXPOSED"),
        ("web2", "IPS-FAIL2BAN-DOWN"),
        ("web2", "RATE-LIMIT-MISSING"),
        ("web2", "TLS-CERT-EXPIRING"),
        ("vpn1", "SSH-PASSWORD-AUTH"),
        // Only through `Match Address` (sshd -T -C); app1's PasswordAuthentication yes is
        // inert under AuthenticationMethods publickey.
        ("db1", "SSH-PASSWORD-AUTH"),
        ("vpn1", "VPN-PEER-STALE"),
        // No IDS is packaged for this Debian release (docs/lab.md).
        ("edge", "IDS-MISSING"),
        // The defences (issue 14): web1 sends HSTS, web2 does not; vpn1's sshd-journal jail
        // reads a journal the host does not have.
        ("web2", "TLS-NO-HSTS"),
        ("vpn1", "IPS-JAIL-BLIND"),
        // The Django stack: db1's PostgreSQL ssl = off with `host` lines, cache1's Redis in
        // the clear and without a password, web2's plain-HTTP hop to app1:8000, and the app
        // on 8000 with DEBUG on. Their clean counterparts (app1's loopback Redis with a
        // password, web1's verified TLS hop to 8443, the app on 8443) give nothing.
        ("db1", "TLS-INTERNAL-MISSING"),
        ("cache1", "TLS-INTERNAL-MISSING"),
        ("cache1", "DATA-NO-AUTH"),
        ("web2", "TLS-INTERNAL-MISSING"),
        ("app1", "APP-DEBUG"),
        // leg1's node exporter: INPUT names only the admin-src ipset for 9100, but 9180 is
        // redirected to it and INPUT accepts every DNAT'ed connection.
        ("leg1", "FW-EXPOSED-PORT"),
        // dock1's PostgreSQL in Docker, published on every address: ufw's 5432-from-app
        // rule never sees it (Docker's DNAT and FORWARD rules come first).
        ("dock1", "SEG-DB-EXPOSED"),
        ("dock1", "FW-CONTAINER-BYPASS"),
        // fwd1: firewalld's labapp zone is bound to the whole lab, so its Redis (password
        // on, but in the clear like cache1's) answers the dmz and data segments.
        ("fwd1", "SEG-DB-EXPOSED"),
        ("fwd1", "TLS-INTERNAL-MISSING"),
    ]
    .iter()
    .map(|(h, c)| (h.to_string(), c.to_string()))
    .collect();
    v
}

/// Whether an Alertmanager answers on the lab inventory's URL depends on what else runs on
/// this machine (other tests start one), so MON-ALERTING-MISSING is left out of the exact
/// comparison; its firing and not firing are unit-tested.
fn without_alerting(mut v: BTreeSet<(String, String)>) -> BTreeSet<(String, String)> {
    v.remove(&("fleet".to_string(), "MON-ALERTING-MISSING".to_string()));
    v
}

#[test]
fn audit_reports_exactly_the_deliberate_misconfigurations() {
    let _lab = common::ensure_lab();
    let out = audit(&repo("inventory.toml"), &["--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is only the JSON report");

    // Validates against the documented schema.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("docs/audit-json-schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let found: BTreeSet<(String, String)> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["host"].as_str().expect("host").to_string(),
                f["check"].as_str().expect("check").to_string(),
            )
        })
        .collect();
    assert_eq!(
        without_alerting(found),
        expected(),
        "{}",
        serde_json::to_string_pretty(&doc["findings"]).unwrap()
    );

    // The right peer is stale (old-laptop never handshakes; edge's peer does).
    let stale: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "VPN-PEER-STALE")
        .collect();
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert!(
        stale[0]["title"].as_str().unwrap().contains("never"),
        "{stale:#?}"
    );

    // Every host reached, the good one scores 100, the bad ones less.
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["reachable"], true, "{h}");
        let score = h["score"]["score"].as_u64().expect("score");
        if h["name"] == "web1" {
            assert_eq!(score, 100, "{h}");
        } else if h["name"] != "edge" {
            assert!(score < 100, "{h}");
        }
    }
    // Evidence names where each value came from.
    let db = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "SEG-DB-EXPOSED")
        .unwrap();
    let ev = db["evidence"].to_string();
    assert!(ev.contains("5432") && ev.contains("ufw"), "{ev}");

    // The stack findings name the port and quote the lines that decide them.
    let of = |host: &str, check: &str| -> String {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["host"] == host && f["check"] == check)
            .map(|f| format!("{} {}", f["title"], f["evidence"]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let debug = of("app1", "APP-DEBUG");
    assert!(
        debug.contains("port 8000") && !debug.contains("8443"),
        "only the app on 8000 runs with DEBUG on: {debug}"
    );
    assert!(
        debug.contains("settings_debug.py:") && debug.contains("DEBUG = True"),
        "{debug}"
    );
    let pg = of("db1", "TLS-INTERNAL-MISSING");
    assert!(
        pg.contains("postgresql.conf:") && pg.contains("ssl = off"),
        "{pg}"
    );
    assert!(
        pg.contains("pg_hba.conf:") && pg.contains("10.77.11.0/24"),
        "{pg}"
    );
    let hop = of("web2", "TLS-INTERNAL-MISSING");
    assert!(
        hop.contains("proxy_pass http://10.77.11.11:8000") && hop.contains("(app1)"),
        "{hop}"
    );
    let redis = of("cache1", "DATA-NO-AUTH");
    assert!(
        redis.contains("redis.conf:") && redis.contains("protected-mode no"),
        "{redis}"
    );
    // RATE-LIMIT-MISSING on web2 says what each layer does.
    let rl = of("web2", "RATE-LIMIT-MISSING");
    assert!(
        rl.contains("RATELIMIT_ENABLE = False") && rl.contains("nothing limits"),
        "{rl}"
    );
}

#[test]
fn every_format_renders_from_the_lab() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    for (format, ext) in [
        ("text", "txt"),
        ("markdown", "md"),
        ("html", "html"),
        ("sarif", "sarif"),
        ("junit", "xml"),
    ] {
        let file = dir.path().join(format!("audit.{ext}"));
        let out = audit(
            &repo("inventory.toml"),
            &["--format", format, "--output", file.to_str().unwrap()],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "{format}: the report goes to the file"
        );
        let text = std::fs::read_to_string(&file).expect("report written");
        assert!(text.contains("SEG-DB-EXPOSED"), "{format}");
        match format {
            "sarif" => {
                let v: Value = serde_json::from_str(&text).expect("SARIF is JSON");
                assert_eq!(v["version"], "2.1.0");
                let results = v["runs"][0]["results"].as_array().expect("results");
                assert!(results.len() >= expected().len(), "{}", results.len());
            }
            "junit" => {
                let mut reader = quick_xml::Reader::from_str(&text);
                let mut failures = 0;
                loop {
                    match reader.read_event().expect("well-formed XML") {
                        quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                            if e.name().as_ref() == "failure" =>
                        {
                            failures += 1
                        }
                        quick_xml::events::Event::Eof => break,
                        _ => {}
                    }
                }
                // Failures are the findings at or above --fail-on (high).
                assert!(failures >= 5, "{failures}");
            }
            "html" => {
                assert!(text.starts_with("<!DOCTYPE html>") || text.starts_with("<!doctype html>"))
            }
            _ => {}
        }
    }
}

#[test]
fn fail_on_critical_and_waivers_change_the_exit_status() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let waivers = dir.path().join("waivers.toml");
    let mut w = String::new();
    let mut all = expected();
    all.insert(("fleet".into(), "MON-ALERTING-MISSING".into()));
    for (host, check) in all {
        w.push_str(&format!(
            "[[waiver]]\ncheck = \"{check}\"\nhost = \"{host}\"\njustification = \"lab\"\nexpires = \"2099-12-31\"\n\n"
        ));
    }
    std::fs::write(&waivers, w).unwrap();
    let out = audit(
        &repo("inventory.toml"),
        &["--format", "json", "--waivers", waivers.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["waived"].is_object())
    );

    // Only the two critical findings remain at --fail-on critical.
    let out = audit(
        &repo("inventory.toml"),
        &[
            "--format",
            "json",
            "--fail-on",
            "critical",
            "--hosts",
            "web*",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "web hosts have no critical finding"
    );
    let out = audit(
        &repo("inventory.toml"),
        &["--format", "json", "--fail-on", "critical", "--roles", "db"],
    );
    assert_eq!(out.status.code(), Some(1));

    // A malformed waiver file is a configuration error.
    std::fs::write(&waivers, "[[waiver]]\ncheck = \"FW-NONE\"\n").unwrap();
    let out = audit(
        &repo("inventory.toml"),
        &["--waivers", waivers.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("waivers.toml:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_host_is_listed_and_the_audit_exits_3() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    // A host at a lab address where nothing answers, behind the same bastion.
    let text = std::fs::read_to_string(repo("inventory.toml")).unwrap()
        + "\n[[host]]\nname = \"db2\"\naddress = \"10.77.12.99\"\nroles = [\"db\"]\n";
    let inv = dir.path().join("inventory.toml");
    std::fs::write(&inv, text).unwrap();
    let out = audit(&inv, &["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();
    let db2 = hosts.iter().find(|h| h["name"] == "db2").unwrap();
    assert_eq!(db2["reachable"], false);
    let err = db2["errors"].to_string();
    assert!(
        err.contains("db2") && err.contains("edge"),
        "the error names host and hop: {err}"
    );
    // The others are still fully reported.
    assert_eq!(
        hosts.iter().filter(|h| h["reachable"] == true).count(),
        common::HOSTS.len()
    );
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "SEG-DB-EXPOSED")
    );
}

#[test]
fn drift_a_port_opened_on_a_host_shows_in_diff() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let history = dir.path().join("history.sqlite3");
    let h = history.to_str().unwrap();
    let first = audit(
        &repo("inventory.toml"),
        &["--format", "json", "--history", h],
    );
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // A listener on db1 that was not there before (the firewall drops it: no new finding).
    let marker = "rampart-drift-test";
    let script = format!(
        "import socket,time,sys; sys.argv[0]='{marker}'; s=socket.socket(); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7777)); \
         s.listen(); time.sleep(120)"
    );
    let started = lab.exec(
        "db1",
        "sh",
        &[
            "-c",
            &format!("setsid timeout 120 python3 -c \"{script}\" {marker} >/dev/null 2>&1 &"),
        ],
    );
    assert!(started.status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !String::from_utf8_lossy(&lab.exec("db1", "ss", &["-Htln"]).stdout).contains(":7777") {
        assert!(
            std::time::Instant::now() < deadline,
            "listener did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let second = audit(
        &repo("inventory.toml"),
        &["--format", "json", "--history", h],
    );
    let _ = lab.exec("db1", "pkill", &["-f", marker]);
    assert_eq!(second.status.code(), Some(1));

    let out = Command::new(common::rampart_bin())
        .args(["diff", "--format", "json", "--history", h])
        .output()
        .expect("run rampart diff");
    assert_eq!(
        out.status.code(),
        Some(1),
        "something changed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).expect("diff JSON");
    let hosts = d["hosts"].as_array().expect("hosts");
    let changed: Vec<&Value> = hosts
        .iter()
        .filter(|h| {
            [
                "ports_opened",
                "ports_closed",
                "rules_added",
                "rules_removed",
                "bans_added",
                "bans_removed",
            ]
            .iter()
            .any(|k| !h[*k].as_array().unwrap().is_empty())
        })
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "{}",
        serde_json::to_string_pretty(&d).unwrap()
    );
    assert_eq!(changed[0]["host"], "db1");
    let opened = changed[0]["ports_opened"].to_string();
    assert!(opened.contains("7777"), "{opened}");
    assert!(
        d["findings_new"].as_array().unwrap().is_empty(),
        "{}",
        d["findings_new"]
    );
    assert!(d["findings_resolved"].as_array().unwrap().is_empty());

    // Text form too, for people.
    let text = Command::new(common::rampart_bin())
        .args(["diff", "--history", h])
        .output()
        .expect("diff text");
    assert!(String::from_utf8_lossy(&text.stdout).contains("7777"));
}
