//! Render snapshots of every pane (ratatui `TestBackend` + insta) at 80x24 and 160x48, in two
//! themes (default and mono), plus read-only, ASCII and too-small screens. Each snapshot holds
//! the characters, then a grid of style letters with their legend, so a theme change shows up
//! as a diff too. The demo fleet has a fixed clock, so snapshots are stable.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

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
                }));
            }),
        ),
    ]
}

#[test]
fn every_pane_in_two_themes_at_two_sizes() {
    for theme in ["default", "mono"] {
        for (name, setup) in views() {
            for (w, h) in [(80u16, 24u16), (160, 48)] {
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
fn too_small_says_so() {
    let a = app("default", false);
    let s = snapshot(&a, 60, 16);
    assert!(s.contains("needs 80x24, this one is 60x16"), "{s}");
    insta::assert_snapshot!("too_small_60x16", s);
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
