//! The fleet pane sorts by keys computed once per host (`App::sort_keys`); they must be the
//! very scores and counts the rows show (`App::score`, `App::counts`), waivers and unreachable
//! hosts included.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use rampart::posture::Finding;
use rampart::tui::{AppUpdate, Options, demo_app};

#[test]
fn sort_keys_agree_with_scores_and_counts() {
    let mut app = demo_app(Options::builtin(false).expect("options")).expect("demo");
    let mut findings = app.findings.clone();
    // A second finding on a host that already has one, and one on the unreachable host.
    findings.push(Finding::new(
        "FW-STALE-RULE",
        "db1",
        "9000/tcp allowed, nothing listens",
    ));
    findings.push(Finding::new("FW-NONE", "app1", "no firewall"));
    app.update(AppUpdate::Findings(findings));
    let keys = app.sort_keys();
    assert_eq!(keys.len(), app.hosts.len());
    let mut scored = 0;
    for (h, (score, counts)) in app.hosts.iter().zip(&keys) {
        assert_eq!(*score, app.score(&h.name), "{}", h.name);
        assert_eq!(*counts, app.counts(&h.name), "{}", h.name);
        scored += usize::from(score.is_some_and(|s| s < 100));
    }
    assert!(
        scored >= 3,
        "the demo has several hosts with findings: {keys:?}"
    );
    assert_eq!(
        keys[app.hosts.iter().position(|h| h.name == "app1").unwrap()].0,
        None
    );
}
