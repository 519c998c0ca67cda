//! Waiver files: applied, expired, malformed (each kind names file:line and key), globs.

#![allow(clippy::expect_used)]

use std::path::Path;

use rampart::posture::waivers::{self, Date, WaiverError};
use rampart::posture::{FLEET, Finding};

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report/waivers/good.toml"
    ))
}

fn day(s: &str) -> Date {
    Date::parse(s).expect("date")
}

fn findings() -> Vec<Finding> {
    vec![
        Finding::new("FW-STALE-RULE", "web1", "allow 8443/tcp, nothing listens"),
        Finding::new("FW-STALE-RULE", "web12", "allow 9000/tcp, nothing listens"),
        Finding::new("FW-STALE-RULE", "db1", "allow 6379/tcp, nothing listens"),
        Finding::new("SSH-FORWARDING", "edge", "AllowAgentForwarding yes"),
        Finding::new("MON-ALERTING-MISSING", FLEET, "no Alertmanager configured"),
    ]
}

#[test]
fn applied_and_expired() {
    let ws = waivers::load(fixture()).expect("load");
    assert_eq!(ws.len(), 4);
    let mut f = findings();
    let notices = waivers::apply(&mut f, &ws, day("2025-05-01"));
    // web1 and web12 match `web*` (the first waiver wins over `web?`), db1 does not.
    let w = f[0].waived.as_ref().expect("web1 waived");
    assert_eq!(w.justification, "8443 is kept for the blue/green switch");
    assert_eq!(w.expires, "2027-01-31");
    assert!(w.source.ends_with("good.toml:3"), "{}", w.source);
    assert!(
        f[1].waived
            .as_ref()
            .is_some_and(|w| w.source.ends_with(":3"))
    );
    assert!(f[2].waived.is_none());
    // The forwarding waiver expired on 2024-06-30: it no longer applies and is reported.
    assert!(f[3].waived.is_none());
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("good.toml:9: SSH-FORWARDING edge (expired 2024-06-30"));
    assert!(notices[0].contains("would cover 1 finding"));
    // Fleet findings are waived by host = "fleet".
    assert!(f[4].waived.is_some());
}

#[test]
fn expiry_day_is_inclusive() {
    let ws = waivers::load(fixture()).expect("load");
    let mut f = findings();
    assert!(waivers::apply(&mut f, &ws, day("2024-06-30")).is_empty());
    assert!(f[3].waived.is_some(), "still valid on its last day");
    let mut f = findings();
    let n = waivers::apply(&mut f, &ws, day("2027-02-01"));
    // Past 2027-01-31 the `web*` waiver lapses, and the later `web?` one takes over for web1.
    assert!(
        f[0].waived
            .as_ref()
            .is_some_and(|w| w.expires == "2030-01-01")
    );
    assert!(f[1].waived.is_none(), "web12 only matched web*");
    assert_eq!(n.len(), 2, "{n:?}");
}

fn err(text: &str) -> WaiverError {
    waivers::parse("w.toml", text).expect_err("must be rejected")
}

fn assert_err(text: &str, line: usize, key: &str, needle: &str) {
    let e = err(text);
    let msg = e.to_string();
    assert_eq!(e.line(), line, "{msg}");
    assert!(
        msg.starts_with(&format!("w.toml:{line}: {key}: ")),
        "{msg} should name w.toml:{line}: {key}"
    );
    assert!(msg.contains(needle), "{msg} should mention {needle}");
}

const OK: &str =
    "check = \"FW-NONE\"\nhost = \"*\"\njustification = \"lab\"\nexpires = \"2030-01-01\"\n";

#[test]
fn malformed_files_are_errors_with_file_line_key() {
    // Not TOML at all.
    assert_err("[[waiver]\ncheck = 1", 1, "waiver", "");
    // An unknown key (a typo must not silently drop the intent).
    assert_err(
        &format!("[[waiver]]\n{OK}justifcation = \"x\"\n"),
        6,
        "justifcation",
        "unknown field",
    );
    // An unknown top-level table.
    assert_err(
        "[waivers]\ncheck = \"FW-NONE\"\n",
        1,
        "waivers",
        "unknown field",
    );
    // Missing justification.
    assert_err(
        "\n[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"a\"\nexpires = \"2030-01-01\"\n",
        2,
        "justification",
        "missing",
    );
    // Blank justification.
    assert_err(
        "[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"a\"\njustification = \"  \"\nexpires = \"2030-01-01\"\n",
        4,
        "justification",
        "empty",
    );
    // Bad dates: format, and a day that does not exist.
    assert_err(
        "[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"a\"\njustification = \"x\"\nexpires = \"31/01/2027\"\n",
        5,
        "expires",
        "YYYY-MM-DD",
    );
    assert_err(
        "[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"a\"\njustification = \"x\"\nexpires = \"2027-02-30\"\n",
        5,
        "expires",
        "does not exist",
    );
    // A TOML date instead of a string is still a type error at the right line.
    assert_err(
        "[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"a\"\njustification = \"x\"\nexpires = 2027-02-01\n",
        5,
        "waiver",
        "",
    );
    // A check that is not in the catalogue (a typo would otherwise never match).
    assert_err(
        "[[waiver]]\ncheck = \"FW-STALE-RULES\"\nhost = \"a\"\njustification = \"x\"\nexpires = \"2030-01-01\"\n",
        2,
        "check",
        "not a check",
    );
    // Missing host and missing check.
    assert_err(
        "[[waiver]]\ncheck = \"FW-NONE\"\njustification = \"x\"\nexpires = \"2030-01-01\"\n",
        1,
        "host",
        "missing",
    );
    assert_err(
        "[[waiver]]\nhost = \"a\"\njustification = \"x\"\nexpires = \"2030-01-01\"\n",
        1,
        "check",
        "missing",
    );
}

#[test]
fn empty_file_has_no_waivers_and_read_errors_name_the_file() {
    assert!(
        waivers::parse("w.toml", "# nothing yet\n")
            .expect("ok")
            .is_empty()
    );
    let e = waivers::load(Path::new("/nonexistent/rampart-waivers.toml")).expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/rampart-waivers.toml: cannot read")
    );
}

#[test]
fn globs_select_hosts() {
    let ws = waivers::parse(
        "w.toml",
        "[[waiver]]\ncheck = \"FW-NONE\"\nhost = \"app?\"\njustification = \"x\"\nexpires = \"2030-01-01\"\n",
    )
    .expect("ok");
    let mut f: Vec<Finding> = ["app1", "app2", "app10", "xapp1", "app"]
        .iter()
        .map(|h| Finding::new("FW-NONE", h, "no firewall"))
        .collect();
    waivers::apply(&mut f, &ws, day("2025-01-01"));
    let waived: Vec<&str> = f
        .iter()
        .filter(|f| f.is_waived())
        .map(|f| f.host.as_str())
        .collect();
    assert_eq!(waived, ["app1", "app2"]);
}
