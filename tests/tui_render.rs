//! Render snapshots of every pane (ratatui `TestBackend` + insta) at 80x24 and 160x48, in two
//! themes (default and mono), plus read-only, ASCII and too-small screens. Each snapshot holds
//! the characters, then a grid of style letters with their legend, so a theme change shows up
//! as a diff too. The demo fleet has a fixed clock, so snapshots are stable.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rampart::tui::demo::demo_timeline;
use rampart::tui::render::{buffer_text, render_buffer};
use rampart::tui::{Action, App, AppUpdate, FixPlan, Options, Risk, demo_app};

fn app(theme: &str, read_only: bool) -> App {
    let mut o = Options::builtin(read_only).expect("builtin options");
    o.theme = theme.to_string();
    demo_app(o).expect("demo app")
}

/// Characters, then one letter per cell naming its style, then the legend.
fn snapshot(app: &App, w: u16, h: u16) -> String {
    let buf = render_buffer(app, w, h);
    let mut out = buffer_text(&buf);
    let mut legend: BTreeMap<String, char> = BTreeMap::new();
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut grid = String::new();
    for y in 0..h {
        for x in 0..w {
            let c = &buf[(x, y)];
            let key = format!("fg={:?} bg={:?} mod={:?}", c.fg, c.bg, c.modifier);
            let n = legend.len();
            let l = *legend
                .entry(key)
                .or_insert_with(|| letters.get(n).copied().unwrap_or('?'));
            grid.push(l);
        }
        grid.push('\n');
    }
    out.push_str("--- styles ---\n");
    out.push_str(&grid);
    let mut by_letter: Vec<(char, String)> = legend.into_iter().map(|(k, v)| (v, k)).collect();
    by_letter.sort();
    for (l, k) in by_letter {
        out.push_str(&format!("{l}: {k}\n"));
    }
    out
}

/// Puts the demo console into one view.
type Setup = Box<dyn Fn(&mut App)>;

fn views() -> Vec<(&'static str, Setup)> {
    vec![
        ("fleet", Box::new(|_: &mut App| {})),
        (
            "posture",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowPosture);
                a.apply(Action::Down);
            }),
        ),
        (
            "alerts",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowAlerts);
            }),
        ),
        (
            "traffic",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowTraffic);
                a.apply(Action::Down);
            }),
        ),
        (
            "host",
            Box::new(|a: &mut App| {
                a.run_command("host db1");
            }),
        ),
        (
            "help",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowPosture);
                a.apply(Action::Help);
            }),
        ),
        (
            "fix_dialog",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowPosture);
                a.apply(Action::Top);
                a.apply(Action::Fix);
                a.update(AppUpdate::FixPlanned(FixPlan {
                    fix: "fw-restrict-to-segment".into(),
                    host: "db1".into(),
                    params: vec![
                        ("port".into(), "5432".into()),
                        ("segment".into(), "app".into()),
                    ],
                    commands: vec![
                        "ufw insert 1 allow proto tcp from 10.77.11.0/24 to any port 5432".into(),
                        "ufw delete allow 5432/tcp".into(),
                    ],
                    risk: Risk::High,
                    notes: vec!["rollback armed on the host for 60s".into()],
                    description: Default::default(),
                }));
            }),
        ),
        (
            "fix_plan_words",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowPosture);
                a.apply(Action::Top);
                a.apply(Action::Down);
                a.apply(Action::Fix);
                a.update(AppUpdate::FixPlanned(readable_plan()));
            }),
        ),
        (
            "fix_plan_raw",
            Box::new(|a: &mut App| {
                a.apply(Action::ShowPosture);
                a.apply(Action::Top);
                a.apply(Action::Down);
                a.apply(Action::Fix);
                a.update(AppUpdate::FixPlanned(readable_plan()));
                a.handle_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
            }),
        ),
        (
            "preview",
            Box::new(|a: &mut App| {
                a.apply(Action::Down);
                a.apply(Action::Down);
                a.apply(Action::Preview);
            }),
        ),
        (
            "changes",
            Box::new(|a: &mut App| {
                a.apply(Action::Changes);
                a.update(AppUpdate::Changes(Box::new(demo_timeline())));
                a.apply(Action::Down);
                a.apply(Action::Enter);
            }),
        ),
    ]
}

/// The plan of fw-enable-default-deny for the demo's web2 (FW-NONE), worded as
/// `rampart::fix::plan::describe` words it for the lab's app1.
fn readable_plan() -> FixPlan {
    use rampart::fix::plan::Description;
    FixPlan {
        fix: "fw-enable-default-deny".into(),
        host: "web2".into(),
        params: vec![],
        commands: vec![
            "'ufw' 'prepend' 'allow' 'proto' 'tcp' 'from' '10.77.9.0/24' 'to' 'any' 'port' '22'"
                .into(),
            "'ufw' 'default' 'deny' 'incoming'".into(),
            "'ufw' '--force' 'enable'".into(),
        ],
        risk: Risk::High,
        notes: vec![],
        description: Box::new(Description {
            steps: vec![
                "1. save the current firewall rules".into(),
                "2. arm the rollback timer (60 s) on the host".into(),
                "3. allow SSH 22/tcp from 10.77.9.0/24 (first in ufw's rules)".into(),
                "4. deny incoming by default".into(),
                "5. enable ufw".into(),
                "6. reconnect over a fresh connection, re-verify, then cancel the rollback timer"
                    .into(),
            ],
            saved: Some(
                "the current firewall rules are saved on the host before anything changes".into(),
            ),
            rules_removed: vec![],
            rules_added: vec!["accept tcp dport 22 from 10.77.9.0/24".into()],
            policies: vec![
                "before: no chain filters incoming traffic (all admitted)".into(),
                "filter ufw (after enable, simulated): (no such chain) → drop".into(),
            ],
            admitted: vec![
                "22/tcp from anywhere: admitted → refused by the policy of iptables-nft filter/ufw (after enable, simulated)".into(),
                "8000/tcp from anywhere: admitted → refused by the policy of iptables-nft filter/ufw (after enable, simulated)".into(),
            ],
            guard: vec![
                "checked SSH 22/tcp from 10.77.9.10 (the bastion edge, as web2 sees it): still admitted afterwards by accept tcp dport 22 from 10.77.9.0/24".into(),
            ],
            rollback: Some(
                "the host restores the saved firewall rules 60 s after the timer is armed, unless rampart re-verifies over a fresh connection and cancels it first".into(),
            ),
        }),
    }
}

#[test]
fn every_pane_in_two_themes_at_two_sizes() {
    for theme in ["default", "mono"] {
        for (name, setup) in views() {
            for (w, h) in [(60u16, 16u16), (80, 24), (160, 48)] {
                let mut a = app(theme, false);
                a.resize(w, h);
                setup(&mut a);
                insta::assert_snapshot!(format!("{name}_{theme}_{w}x{h}"), snapshot(&a, w, h));
            }
        }
    }
}

#[test]
fn read_only_posture_shows_fixes_disabled() {
    let mut a = app("default", true);
    a.apply(Action::ShowPosture);
    let s = snapshot(&a, 80, 24);
    assert!(s.contains(" READ-ONLY "), "{s}");
    assert!(s.contains("disabled: read-only"), "{s}");
    assert!(s.contains("f fix (read-only)"), "{s}");
    insta::assert_snapshot!("posture_read_only_80x24", s);
}

#[test]
fn ascii_mode_draws_no_line_drawing_characters() {
    let mut o = Options::builtin(false).expect("options");
    o.ascii = true;
    let mut a = demo_app(o).expect("demo");
    let text = buffer_text(&render_buffer(&a, 80, 24));
    assert!(text.is_ascii(), "{text}");
    a.apply(Action::ShowTraffic);
    let traffic = buffer_text(&render_buffer(&a, 80, 24));
    assert!(traffic.is_ascii(), "{traffic}");
    insta::assert_snapshot!("fleet_ascii_80x24", text);
}

#[test]
fn too_small_says_so_only_below_60x16() {
    let mut a = app("default", false);
    a.resize(59, 16);
    let s = snapshot(&a, 59, 16);
    assert!(s.contains("needs 60x16, this one is 59x16"), "{s}");
    insta::assert_snapshot!("too_small_59x16", s);
    // 60x16 and 100x20 (a tmux split) draw the console: status line kept, no borders.
    for (w, h) in [(60u16, 16u16), (100, 20), (79, 24)] {
        a.resize(w, h);
        let text = buffer_text(&render_buffer(&a, w, h));
        assert!(!text.contains("too small"), "{w}x{h}:\n{text}");
        let status = text.lines().nth(usize::from(h) - 2).unwrap_or_default();
        assert!(status.contains("READ-WRITE"), "{w}x{h}: {status}");
        assert!(!text.contains('┌'), "{w}x{h} has no borders:\n{text}");
        assert!(text.contains("web1") && text.contains("SCORE"), "{text}");
    }
}

#[test]
fn summary_line_shows_the_fleet_at_a_glance() {
    let mut a = app("default", false);
    a.resize(160, 48);
    let text = buffer_text(&render_buffer(&a, 160, 48));
    let line = text.lines().nth(1).unwrap_or_default().to_string();
    let s = a.summary();
    assert!(s.critical > 0 && s.unreachable == 1, "{s:?}");
    let score = s.score.expect("a fleet score");
    assert!(line.contains(&format!("fleet score {score}")), "{line}");
    let (delta, _) = s.trend.expect("a trend against the baseline");
    assert_eq!(delta, i64::from(score) - 70);
    assert!(line.contains(&format!("{} crit", s.critical)), "{line}");
    assert!(line.contains(&format!("{} high", s.high)), "{line}");
    assert!(
        line.contains(&format!("{} alerts firing", s.firing)),
        "{line}"
    );
    assert!(line.contains("1 unreachable"), "{line}");
    assert!(line.contains("oldest data"), "{line}");
    // At 80 columns the words shorten and every number still fits.
    a.resize(80, 24);
    let text = buffer_text(&render_buffer(&a, 80, 24));
    let short = text.lines().nth(1).unwrap_or_default();
    assert!(short.contains(&format!("score {score}")), "{short}");
    assert!(short.contains(&format!("{} alerts", s.firing)), "{short}");
    assert!(short.contains("1 unreachable │ oldest "), "{short}");
}

/// The last stored snapshot, drawn before any host answers: every host marked stale with
/// its age, then replaced host by host as fresh state arrives.
#[test]
fn stored_snapshot_is_drawn_stale_until_fresh_state_arrives() {
    let demo = app("default", false);
    let inv = rampart::tui::demo::demo_inventory().expect("inventory");
    let mut o = Options::builtin(false).expect("options");
    o.now = rampart::tui::demo::DEMO_NOW;
    let mut a = App::new(&inv, o).expect("app");
    a.resize(80, 24);
    let before = buffer_text(&render_buffer(&a, 80, 24));
    assert!(before.contains("no data yet"), "{before}");
    a.update(AppUpdate::Stored(Box::new(rampart::tui::model::Stored {
        taken_at: rampart::tui::demo::DEMO_NOW - 7200,
        source: "audit".into(),
        states: demo.states.values().cloned().collect(),
        findings: demo.findings.clone(),
    })));
    let s = snapshot(&a, 80, 24);
    assert!(s.contains("stale 2h"), "{s}");
    assert!(s.contains("oldest 2h (6 stale)"), "{s}");
    insta::assert_snapshot!("stale_default_80x24", s);
    let web1 = demo.states.get("web1").cloned().expect("web1");
    a.update(AppUpdate::Connection {
        host: "web1".into(),
        state: rampart::tui::ConnState::Ok,
    });
    a.update(AppUpdate::HostState(Box::new(web1)));
    // Fresh findings (web1's only: the others were not collected) keep the stale hosts'.
    let fresh: Vec<_> = demo
        .findings
        .iter()
        .filter(|f| f.host == "web1")
        .cloned()
        .collect();
    a.update(AppUpdate::Findings(fresh));
    assert_eq!(a.findings.len(), demo.findings.len(), "{:?}", a.findings);
    let text = buffer_text(&render_buffer(&a, 80, 24));
    assert!(text.contains("(5 stale)"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains(" web1 "))
        .unwrap_or_default();
    assert!(!row.contains("stale"), "{row}");
}

/// `[console] environment = "prod"`: a badge in the status bar and the frame in the theme's
/// production colour; in mono too (reversed, bold).
#[test]
fn prod_environment_badge_and_frame_in_two_themes() {
    let text = format!(
        "{}\n[console]\nenvironment = \"prod\"\n",
        rampart::tui::demo::DEMO_INVENTORY
    );
    let inv = rampart::inventory::Inventory::parse(&text, std::path::Path::new("prod.toml"))
        .expect("inventory");
    for theme in ["default", "mono"] {
        let mut o = Options::builtin(false).expect("options");
        o.theme = theme.into();
        o.now = rampart::tui::demo::DEMO_NOW;
        let mut a = App::new(&inv, o).expect("app");
        for u in rampart::tui::demo::demo_updates() {
            a.update(u);
        }
        a.resize(80, 24);
        let buf = render_buffer(&a, 80, 24);
        let status = buffer_text(&buf)
            .lines()
            .nth(22)
            .unwrap_or_default()
            .to_string();
        assert!(status.contains(" PROD "), "{status}");
        let corner = &buf[(0u16, 2u16)];
        assert_eq!(corner.symbol(), "┌");
        assert_eq!(corner.style(), a.theme.frame_prod.patch(corner.style()));
        assert_ne!(a.theme.frame_prod, a.theme.border, "{theme}");
        insta::assert_snapshot!(format!("prod_{theme}_80x24"), snapshot(&a, 80, 24));
    }
}

#[test]
fn read_only_inventory_is_named_in_the_badge() {
    let text = rampart::tui::demo::DEMO_INVENTORY
        .replace("[defaults]\n", "[defaults]\nread_only = true\n");
    let inv = rampart::inventory::Inventory::parse(&text, std::path::Path::new("ro.toml"))
        .expect("inventory");
    let a = App::new(&inv, Options::builtin(false).expect("options")).expect("app");
    let status = buffer_text(&render_buffer(&a, 80, 24));
    assert!(status.contains("READ-ONLY (inventory)"), "{status}");
}

#[test]
fn a_failing_alert_sink_shows_in_the_status_bar_until_it_delivers_again() {
    use rampart::alerts::SinkStatus;
    let mut a = app("default", true);
    let status_line = |a: &App| {
        let text = buffer_text(&render_buffer(a, 80, 24));
        text.lines().nth(22).unwrap_or_default().to_string()
    };
    let healthy = SinkStatus {
        url: "http://127.0.0.1:9093".to_string(),
        last_ok: Some(1),
        ..SinkStatus::default()
    };
    assert!(a.update(AppUpdate::SinkHealth(vec![healthy.clone()])));
    assert!(!status_line(&a).contains("SINK"), "{}", status_line(&a));

    let failing = SinkStatus {
        failures: 3,
        last_error: Some("connection refused".to_string()),
        ..healthy.clone()
    };
    let webhook = SinkStatus {
        url: "http://127.0.0.1:9/hook".to_string(),
        ..SinkStatus::default()
    };
    assert!(a.update(AppUpdate::SinkHealth(vec![
        failing.clone(),
        webhook.clone()
    ])));
    let line = status_line(&a);
    assert!(line.contains("SINK FAILING 1/2 (3x)"), "{line}");
    // The same health again changes nothing, so nothing is redrawn.
    assert!(!a.update(AppUpdate::SinkHealth(vec![failing, webhook.clone()])));

    assert!(a.update(AppUpdate::SinkHealth(vec![healthy, webhook])));
    assert!(!status_line(&a).contains("SINK"), "{}", status_line(&a));
}

/// Ages are drawn in minutes at the finest, so a ticking clock redraws only when an age
/// label changes: never every second.
#[test]
fn a_ticking_clock_redraws_only_when_an_age_label_changes() {
    let mut a = app("default", false);
    let t = a
        .hosts
        .iter()
        .filter_map(|h| a.data_time(&h.name))
        .max()
        .expect("collected data");
    // Within the same minute of age: no redraw.
    let start = t + 61;
    a.update(AppUpdate::Clock { now: start });
    assert!(!a.update(AppUpdate::Clock { now: start + 1 }));
    assert!(!a.update(AppUpdate::Clock { now: start + 30 }));
    // An age label turns: redraw.
    assert!(a.update(AppUpdate::Clock { now: t + 121 }));
}

/// Host detail scrolls no further than its last line, as the last frame drew it.
#[test]
fn host_detail_scroll_stops_at_the_last_line_drawn() {
    let mut a = app("default", false);
    a.resize(80, 24);
    a.run_command("host db1");
    let _ = render_buffer(&a, 80, 24);
    let max = a.hits.get().host_max_scroll;
    assert!(max > 0, "db1's detail is longer than one screen");
    a.apply(Action::Bottom);
    assert_eq!(a.host_scroll, max);
    a.apply(Action::Down);
    assert_eq!(a.host_scroll, max);
    let text = buffer_text(&render_buffer(&a, 80, 24));
    assert!(text.contains(&format!("/{} ", max + 18)), "{text}");
}
