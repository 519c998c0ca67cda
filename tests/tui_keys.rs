//! Key sequences → expected state: navigation, filter, command mode with completion, the fix
//! dialog, refusal in read-only mode, alerts; and the keymap file.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use rampart::posture::Finding;
use rampart::tui::app::{FixStage, Mode};
use rampart::tui::render::{buffer_text, render_buffer};
use rampart::tui::{
    Action, App, AppUpdate, Effect, FixPlan, FixProgress, Keymap, Options, Pane, Risk, View,
    demo_app,
};

fn demo(read_only: bool) -> App {
    demo_app(Options::builtin(read_only).expect("options")).expect("demo")
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Types a string of keys; `\t` is Tab, `\n` Enter, `\x1b` Esc, `\x08` Backspace, `\x02` Shift-Tab.
fn typed(app: &mut App, s: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in s.chars() {
        let k = match c {
            '\t' => key(KeyCode::Tab),
            '\x02' => KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
            '\n' => key(KeyCode::Enter),
            '\x1b' => key(KeyCode::Esc),
            '\x08' => key(KeyCode::Backspace),
            c if c.is_ascii_uppercase() => KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT),
            c => key(KeyCode::Char(c)),
        };
        effects.extend(app.handle_key(k));
    }
    effects
}

fn fleet_names(app: &App) -> Vec<String> {
    app.fleet_rows()
        .into_iter()
        .map(|i| app.hosts[i].name.clone())
        .collect()
}

#[test]
fn navigation_moves_selection_and_views() {
    let mut app = demo(false);
    // Sorted by score, worst first: the unreachable host leads.
    assert_eq!(fleet_names(&app)[0], "app1");
    typed(&mut app, "jj");
    assert_eq!(app.selected_row(Pane::Fleet), 2);
    typed(&mut app, "G");
    assert_eq!(app.selected_row(Pane::Fleet), 5);
    typed(&mut app, "j");
    assert_eq!(app.selected_row(Pane::Fleet), 5, "stops at the last row");
    typed(&mut app, "gk");
    assert_eq!(app.selected_row(Pane::Fleet), 0);
    app.handle_key(key(KeyCode::Down));
    assert_eq!(app.selected_row(Pane::Fleet), 1);
    let host = app.selected_fleet_host(Pane::Fleet).map(|h| h.name.clone());
    typed(&mut app, "\n");
    assert_eq!(app.view, View::Host(host.clone().expect("a host")));
    typed(&mut app, "\x1b");
    assert_eq!(app.view, View::Pane(Pane::Fleet));
    typed(&mut app, "\t");
    assert_eq!(app.view, View::Pane(Pane::Posture));
    typed(&mut app, "\t\t\t");
    assert_eq!(app.view, View::Pane(Pane::Fleet));
    typed(&mut app, "\x02");
    assert_eq!(app.view, View::Pane(Pane::Traffic));
    typed(&mut app, "3");
    assert_eq!(app.view, View::Pane(Pane::Alerts));
    typed(&mut app, "?");
    assert_eq!(app.mode, Mode::Help);
    typed(&mut app, "\x1b");
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(typed(&mut app, "q"), [Effect::Quit]);
}

#[test]
fn sort_and_group_reorder_the_fleet() {
    let mut app = demo(false);
    app.run_command("sort host");
    assert_eq!(
        fleet_names(&app),
        ["app1", "db1", "edge", "vpn1", "web1", "web2"]
    );
    typed(&mut app, "O");
    assert_eq!(fleet_names(&app)[0], "web2");
    typed(&mut app, "O");
    typed(&mut app, "b");
    // Grouped by first role: app, bastion, db, vpn, web.
    assert_eq!(
        fleet_names(&app),
        ["app1", "edge", "db1", "vpn1", "web1", "web2"]
    );
    typed(&mut app, "b");
    // By segment: app, data, dmz, outside.
    assert_eq!(
        fleet_names(&app),
        ["app1", "db1", "vpn1", "web1", "web2", "edge"]
    );
}

#[test]
fn filter_substring_regex_and_cancel() {
    let mut app = demo(false);
    typed(&mut app, "/web");
    assert!(matches!(app.mode, Mode::Filter { .. }));
    assert_eq!(fleet_names(&app), ["web2", "web1"]);
    typed(&mut app, "\n");
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(fleet_names(&app).len(), 2);
    // Esc in normal mode clears the filter first.
    typed(&mut app, "\x1b");
    assert_eq!(fleet_names(&app).len(), 6);
    typed(&mut app, "/re:^(db|app)1$\n");
    assert_eq!(fleet_names(&app), ["app1", "db1"]);
    // Esc while typing restores the previous filter.
    typed(&mut app, "/xyz");
    assert!(fleet_names(&app).is_empty());
    typed(&mut app, "\x1b");
    assert_eq!(fleet_names(&app), ["app1", "db1"]);
    // An invalid regex is refused with a message and the filter line stays open.
    typed(&mut app, "\x1b/re:(\n");
    assert!(matches!(app.mode, Mode::Filter { .. }));
    assert!(app.message.as_ref().is_some_and(|m| m.error));
    typed(&mut app, "\x1b");
    // Filters are per pane: posture filtered by check name, evidence included.
    typed(&mut app, "2/5432\n");
    let checks: Vec<&str> = app
        .posture_rows()
        .into_iter()
        .map(|i| app.findings[i].check.as_str())
        .collect();
    assert_eq!(checks, ["SEG-DB-EXPOSED"]);
}

#[test]
fn command_mode_completes_and_runs() {
    let mut app = demo(false);
    typed(&mut app, ":ho\t");
    assert_eq!(
        app.mode,
        Mode::Command {
            input: "host ".into(),
            completion: None
        }
    );
    typed(&mut app, "w\t");
    let Mode::Command { input, .. } = &app.mode else {
        panic!("still in command mode")
    };
    assert_eq!(input, "host web", "common prefix first");
    assert_eq!(app.command_candidates(), ["web1", "web2"]);
    typed(&mut app, "\t");
    let Mode::Command { input, .. } = &app.mode else {
        panic!("still in command mode")
    };
    assert_eq!(input, "host web1");
    typed(&mut app, "\t");
    let Mode::Command { input, .. } = &app.mode else {
        panic!("still in command mode")
    };
    assert_eq!(input, "host web2", "Tab cycles");
    typed(&mut app, "\n");
    assert_eq!(app.view, View::Host("web2".into()));
    typed(&mut app, ":theme mono\n");
    assert_eq!(app.theme.name, "mono");
    typed(&mut app, ":theme nope\n");
    assert_eq!(app.theme.name, "mono");
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.error && m.text.contains("nope"))
    );
    typed(&mut app, ":host nosuch\n");
    assert!(app.message.as_ref().is_some_and(|m| m.error));
    typed(&mut app, ":alerts\n");
    assert_eq!(app.view, View::Pane(Pane::Alerts));
    assert_eq!(typed(&mut app, ":refresh\n"), [Effect::Refresh]);
    typed(&mut app, ":frobnicate\n");
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.text.contains("unknown command"))
    );
    assert_eq!(typed(&mut app, ":quit\n"), [Effect::Quit]);
}

fn select_finding(app: &mut App, check: &str) {
    typed(app, "2g");
    for _ in 0..app.posture_rows().len() {
        if app.selected_finding().is_some_and(|f| f.check == check) {
            return;
        }
        typed(app, "j");
    }
    panic!("no finding {check}");
}

fn plan(host: &str, fix: &str, risk: Risk) -> FixPlan {
    FixPlan {
        fix: fix.into(),
        host: host.into(),
        params: vec![],
        commands: vec!["true".into()],
        risk,
        notes: vec![],
        description: Default::default(),
    }
}

#[test]
fn risky_fix_needs_the_host_name_typed() {
    let mut app = demo(false);
    select_finding(&mut app, "SEG-DB-EXPOSED");
    let e = typed(&mut app, "f");
    assert_eq!(
        e,
        [Effect::PlanFix {
            host: "db1".into(),
            fix: "fw-restrict-to-segment".into(),
            params: vec![
                ("port".into(), "5432".into()),
                ("segment".into(), "app".into())
            ],
        }]
    );
    let Mode::Fix(d) = &app.mode else {
        panic!("dialog open")
    };
    assert_eq!(d.stage, FixStage::Planning);
    app.update(AppUpdate::FixPlanned(plan(
        "db1",
        "fw-restrict-to-segment",
        Risk::High,
    )));
    assert!(matches!(&app.mode, Mode::Fix(d) if matches!(d.stage, FixStage::Confirm { .. })));
    // 'y' is just a typed letter for a risky fix; the wrong name is refused.
    assert!(typed(&mut app, "y\n").is_empty());
    assert!(typed(&mut app, "\x08db\n").is_empty());
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.text.contains("type the host name"))
    );
    let e = typed(&mut app, "1\n");
    assert_eq!(
        e,
        [Effect::ApplyFix {
            host: "db1".into(),
            fix: "fw-restrict-to-segment".into(),
            params: vec![],
        }]
    );
    // Esc does not hide a running fix.
    typed(&mut app, "\x1b");
    assert!(matches!(&app.mode, Mode::Fix(d) if matches!(d.stage, FixStage::Running { .. })));
    app.update(AppUpdate::FixProgress(FixProgress::Step {
        message: "arming rollback".into(),
    }));
    app.update(AppUpdate::FixProgress(FixProgress::Finished {
        ok: true,
        verified: true,
        message: "SEG-DB-EXPOSED gone".into(),
    }));
    let Mode::Fix(d) = &app.mode else {
        panic!("dialog open")
    };
    assert!(
        matches!(&d.stage, FixStage::Done { ok: true, verified: true, log, .. } if log.len() == 1)
    );
    typed(&mut app, "\n");
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn low_risk_fix_confirms_with_y_and_cancels_with_n() {
    let mut app = demo(false);
    select_finding(&mut app, "IPS-FAIL2BAN-DOWN");
    assert_eq!(typed(&mut app, "f").len(), 1);
    app.update(AppUpdate::FixPlanned(plan("web2", "f2b-start", Risk::Low)));
    assert!(typed(&mut app, "n").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    typed(&mut app, "f");
    app.update(AppUpdate::FixPlanned(plan("web2", "f2b-start", Risk::Low)));
    assert!(matches!(
        typed(&mut app, "y").as_slice(),
        [Effect::ApplyFix { .. }]
    ));
    // A finding without a fix opens nothing.
    let mut app = demo(false);
    select_finding(&mut app, "VPN-PEER-STALE");
    assert!(typed(&mut app, "f").is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn read_only_refuses_fixes_and_never_opens_the_dialog() {
    let mut app = demo(true);
    select_finding(&mut app, "SEG-DB-EXPOSED");
    assert!(
        typed(&mut app, "f").is_empty(),
        "no effect leaves the console"
    );
    assert_eq!(app.mode, Mode::Normal);
    let m = app.message.clone().expect("a message says why");
    assert!(m.error && m.text.contains("READ-ONLY"), "{m:?}");
    // A plan that arrives anyway does not open the dialog.
    app.update(AppUpdate::FixPlanned(plan(
        "db1",
        "fw-restrict-to-segment",
        Risk::Low,
    )));
    assert_eq!(app.mode, Mode::Normal);
    assert!(typed(&mut app, "y\n").is_empty());

    // A host the inventory marks read_only refuses too, even in a read-write console.
    let text = rampart::tui::demo::DEMO_INVENTORY.replace(
        "name = \"db1\"\naddress = \"10.77.12.11\"",
        "name = \"db1\"\naddress = \"10.77.12.11\"\nread_only = true",
    );
    let inv = rampart::inventory::Inventory::parse(&text, std::path::Path::new("x.toml"))
        .expect("inventory");
    let mut app = App::new(&inv, Options::builtin(false).expect("options")).expect("app");
    app.update(AppUpdate::Findings(vec![
        Finding::new("SEG-DB-EXPOSED", "db1", "5432 open").param("port", "5432"),
    ]));
    typed(&mut app, "2");
    assert!(typed(&mut app, "f").is_empty());
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.text.contains("read_only"))
    );
}

#[test]
fn acknowledge_and_silence_alerts() {
    let mut app = demo(false);
    let open = |a: &App| {
        a.alerts
            .iter()
            .filter(|x| !x.acknowledged && !x.is_silenced(a.now))
            .count()
    };
    assert_eq!(open(&app), 2);
    typed(&mut app, "3");
    let first = app.selected_alert().expect("an alert").id.clone();
    assert_eq!(
        typed(&mut app, "a"),
        [Effect::AcknowledgeAlert { id: first.clone() }]
    );
    assert_eq!(open(&app), 1);
    // Acknowledged alerts sort after open ones; the open one is now on top.
    typed(&mut app, "g");
    let second = app.selected_alert().expect("an alert").id.clone();
    assert_ne!(first, second);
    let now = app.now;
    assert_eq!(
        typed(&mut app, "s"),
        [Effect::SilenceAlert {
            id: second.clone(),
            until: now + 3600
        }]
    );
    assert_eq!(open(&app), 0);
    // The silence runs out.
    assert!(app.set_clock(now + 3601));
    assert_eq!(open(&app), 1);
    // A host that comes back resolves its unreachable alert.
    app.update(AppUpdate::Connection {
        host: "app1".into(),
        state: rampart::tui::ConnState::Ok,
    });
    assert!(!app.alerts.iter().any(|a| a.id == "HOST-UNREACHABLE:app1"));
}

#[test]
fn identical_updates_do_not_change_the_revision() {
    let mut app = demo(false);
    let rev = app.revision;
    for u in rampart::tui::demo::demo_updates() {
        // Traffic samples and refresh times are new information each time; the rest repeats.
        if matches!(u, AppUpdate::Connection { .. } | AppUpdate::HostState(_)) {
            app.update(u);
        }
    }
    app.update(AppUpdate::Findings(app.findings.clone()));
    assert_eq!(
        app.revision, rev,
        "re-sending the same state redraws nothing"
    );
    assert!(!app.set_clock(app.now + 1), "a tick alone redraws nothing");
    assert!(app.update(AppUpdate::Connection {
        host: "web1".into(),
        state: rampart::tui::ConnState::Connecting
    }));
    assert_ne!(app.revision, rev);
}

#[test]
fn keymap_file_remaps_keys() {
    let km = Keymap::parse(
        "# mine\n[keys]\ndown = [\"n\", \"ctrl-n\"]\nquit = \"ctrl-q\"\ngroup = []\n",
        "keymap.toml",
    )
    .expect("valid keymap");
    let mut o = Options::builtin(false).expect("options");
    o.keymap = km;
    let mut app = demo_app(o).expect("demo");
    typed(&mut app, "j");
    assert_eq!(app.selected_row(Pane::Fleet), 0, "j no longer moves");
    typed(&mut app, "n");
    assert_eq!(app.selected_row(Pane::Fleet), 1);
    assert!(typed(&mut app, "q").is_empty(), "q no longer quits");
    let e = app.handle_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL));
    assert_eq!(e, Some(Effect::Quit));
    assert_eq!(app.keymap.keys_for(Action::Down), ["n", "ctrl-n"]);
    assert!(app.keymap.keys_for(Action::Group).is_empty());
    // The help screen lists the remapped keys.
    app.apply(Action::Help);
    let text =
        rampart::tui::render::buffer_text(&rampart::tui::render::render_buffer(&app, 80, 24));
    assert!(text.contains("n ctrl-n  move down"), "{text}");
}

#[test]
fn keymap_errors_name_the_line() {
    let cases = [
        ("[keys]\ndown = \"j\"\nfly = \"x\"\n", 3, "unknown action"),
        ("[keys]\n\ndown = [\"j\", \"ctrl-\"]\n", 3, "not a key"),
        ("[keys]\ndown = \"x\"\nup = \"x\"\n", 3, "bound to both"),
        ("[keys]\ndown = 3\n", 2, "takes a key"),
        ("[colors]\n", 1, "unknown section"),
        ("[keys]\ndown = [\"j\"\n", 2, ""),
    ];
    for (text, line, what) in cases {
        let e = Keymap::parse(text, "km.toml").expect_err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(what), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("km.toml:{line}: ")),
            "{e}"
        );
    }
}

fn mouse(kind: crossterm::event::MouseEventKind, column: u16, row: u16) -> MouseEvent {
    MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

fn click(app: &mut App, column: u16, row: u16) -> Option<Effect> {
    app.handle_mouse(mouse(MouseEventKind::Down(MouseButton::Left), column, row))
}

/// With `--mouse`: the wheel moves the selection, a click on a row selects the row drawn
/// there, a click on the selected row opens it, a click on a tab opens that pane; a click
/// never answers the fix dialog; without `--mouse` nothing happens.
#[test]
fn the_mouse_scrolls_selects_opens_and_switches_panes() {
    let mut o = Options::builtin(false).expect("options");
    o.mouse = true;
    let mut a = demo_app(o).expect("demo");
    let screen = |a: &App| buffer_text(&render_buffer(a, 120, 40));
    screen(&a);
    let table = a.hits.get().table.expect("the fleet table was drawn");
    assert_eq!(table.pane, Pane::Fleet);

    // The third row on screen is the third host, whatever the layout around it.
    assert_eq!(click(&mut a, table.area.x + 3, table.area.y + 2), None);
    assert_eq!(a.selected_row(Pane::Fleet), 2);
    let host = fleet_names(&a)[2].clone();
    let text = screen(&a);
    let line = text.lines().nth(usize::from(table.area.y + 2)).unwrap();
    assert!(line.contains(&host), "row {line:?} should show {host}");

    // The wheel moves the selection one row a notch.
    a.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10));
    assert_eq!(a.selected_row(Pane::Fleet), 3);
    a.handle_mouse(mouse(MouseEventKind::ScrollUp, 10, 10));
    assert_eq!(a.selected_row(Pane::Fleet), 2);

    // Below the last row, or on the border: nothing.
    let rows = fleet_names(&a).len() as u16;
    if rows < table.area.height {
        click(&mut a, table.area.x + 3, table.area.y + rows);
        assert_eq!(a.selected_row(Pane::Fleet), 2);
    }
    click(&mut a, table.area.x + 3, table.area.y - 1);
    assert_eq!(a.selected_row(Pane::Fleet), 2);

    // A click on the selected row opens the host, as Enter does.
    click(&mut a, table.area.x + 3, table.area.y + 2);
    assert_eq!(a.view, View::Host(host));
    typed(&mut a, "\x1b");

    // A click on the Posture tab, where the renderer said it is.
    screen(&a);
    let (start, end) = a.hits.get().tabs[1];
    assert!(end > start);
    let text = screen(&a);
    let top = text.lines().next().unwrap();
    let tab: String = top
        .chars()
        .skip(usize::from(start))
        .take(usize::from(end - start))
        .collect();
    assert!(tab.contains("Posture"), "{tab:?} in {top:?}");
    click(&mut a, start + 1, 0);
    assert_eq!(a.view, View::Pane(Pane::Posture));

    // In the fix dialog a click does nothing: only the keyboard confirms.
    select_finding(&mut a, "FW-NONE");
    typed(&mut a, "f");
    assert!(matches!(a.mode, Mode::Fix(_)), "{:?}", a.mode);
    screen(&a);
    for y in 0..40 {
        assert_eq!(click(&mut a, 30, y), None);
    }
    assert!(matches!(a.mode, Mode::Fix(_)));
    typed(&mut a, "\x1b");

    // Without --mouse the console ignores it.
    let mut plain = demo(false);
    screen(&plain);
    let before = plain.selected_row(Pane::Fleet);
    click(&mut plain, table.area.x + 3, table.area.y + 2);
    plain.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10));
    assert_eq!(plain.selected_row(Pane::Fleet), before);
}
