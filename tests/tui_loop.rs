//! The event loop on a real crossterm backend writing into memory: what reaches the terminal.
//! Host text carrying escape sequences arrives as visible, harmless text; an idle console (clock
//! ticks, re-sent identical state) writes nothing; a change writes only the changed cells.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use rampart::posture::Finding;
use rampart::tui::{AppUpdate, Effect, Options, demo_app, event_loop};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::sync::mpsc;

/// A writer whose bytes the test can read while the loop owns the terminal.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn len(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("lock").clone()
    }
}

fn terminal(out: &Shared, w: u16, h: u16) -> Terminal<CrosstermBackend<Shared>> {
    Terminal::with_options(
        CrosstermBackend::new(out.clone()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        },
    )
    .expect("terminal")
}

fn press(c: char) -> std::io::Result<TermEvent> {
    Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

const EVIL: &str = "\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZXZpbA==\x07\u{202e}evil";

#[test]
fn host_text_with_escape_sequences_renders_as_visible_text() {
    let mut app = demo_app(Options::builtin(false).expect("options")).expect("demo");
    let mut findings = app.findings.clone();
    findings.push(
        Finding::new("FW-EXPOSED-PORT", "web1", format!("title {EVIL}"))
            .evidence(format!("evidence {EVIL}")),
    );
    app.update(AppUpdate::Findings(findings));
    app.update(AppUpdate::AlertRaised(rampart::tui::Alert {
        id: "X".into(),
        kind: "DRIFT-NEW-PORT".into(),
        host: "web1".into(),
        severity: rampart::posture::Severity::High,
        summary: format!("summary {EVIL}"),
        first_seen: app.now,
        last_seen: app.now,
        count: 1,
        acknowledged: false,
        silenced_until: None,
    }));
    let mut texts = Vec::new();
    let mut raw = Vec::new();
    for pane in ['2', '3'] {
        app.handle_key(KeyEvent::new(KeyCode::Char(pane), KeyModifiers::NONE));
        if pane == '2' {
            // Select the hostile finding so its evidence shows in the detail box.
            while app
                .selected_finding()
                .is_some_and(|f| !f.title.starts_with("title"))
            {
                app.handle_key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
            }
        }
        let buf = rampart::tui::render::render_buffer(&app, 160, 48);
        texts.push(rampart::tui::render::buffer_text(&buf));
        // And the bytes a real terminal would receive.
        let out = Shared::default();
        let mut term = terminal(&out, 160, 48);
        term.draw(|f| rampart::tui::draw(f, &app)).expect("draw");
        raw.push(out.bytes());
    }
    let posture = &texts[0];
    assert!(
        posture.contains("title \\x1b]0;owned\\x07\\x1b[2J"),
        "{posture}"
    );
    assert!(posture.contains("evidence \\x1b]0;owned"), "{posture}");
    assert!(texts[1].contains("summary \\x1b]0;owned"), "{}", texts[1]);
    for t in &texts {
        assert!(
            !t.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reached a cell"
        );
        assert!(!t.contains('\u{202e}'));
    }
    for bytes in raw {
        // crossterm's own output is CSI sequences only: no OSC, no BEL, no C1, no bidi override.
        assert!(
            !bytes.windows(2).any(|w| w == b"\x1b]"),
            "OSC reached the terminal"
        );
        assert!(!bytes.contains(&0x07), "BEL reached the terminal");
        let s = String::from_utf8_lossy(&bytes);
        assert!(!s.contains('\u{202e}'));
        assert!(!s.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)));
        assert!(
            !s.contains("\x1b[2J"),
            "a host's clear-screen reached the terminal"
        );
    }
}

#[tokio::test]
async fn idle_console_writes_nothing_and_changes_write_little() {
    let app0 = demo_app(Options::builtin(false).expect("options")).expect("demo");
    let mut app = app0.clone();
    let out = Shared::default();
    let mut term = terminal(&out, 120, 40);
    let (keys_tx, keys_rx) = futures::channel::mpsc::unbounded();
    let (upd_tx, upd_rx) = mpsc::channel(64);
    let (eff_tx, mut eff_rx) = mpsc::channel(8);
    let driver = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let after_first_frame = out.len();
        // Idle: ticks every 10ms for 300ms, and the collectors re-send what is already known.
        for u in rampart::tui::demo::demo_updates() {
            if matches!(u, AppUpdate::Connection { .. } | AppUpdate::HostState(_)) {
                upd_tx.send(u).await.expect("send");
            }
        }
        upd_tx
            .send(AppUpdate::Findings(app0.findings.clone()))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = out.len() - after_first_frame;
        // One new traffic sample: the sparkline and rate cells of one row change.
        let mut rates = app0.traffic["web1"].last.clone().expect("rates");
        rates.interfaces[0].rx_bytes *= 3.0;
        upd_tx
            .send(AppUpdate::Traffic {
                host: "web1".into(),
                rates,
            })
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let one_sample = out.len() - after_first_frame - idle;
        // A key that moves the selection.
        keys_tx.unbounded_send(press('j')).expect("key");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let one_key = out.len() - after_first_frame - idle - one_sample;
        keys_tx.unbounded_send(press('q')).expect("key");
        (after_first_frame, idle, one_sample, one_key)
    };
    let run = event_loop(
        &mut term,
        &mut app,
        keys_rx,
        upd_rx,
        eff_tx,
        Duration::from_millis(10),
        std::future::pending(),
    );
    let (stats, (first, idle, sample, key)) = tokio::join!(run, driver);
    let stats = stats.expect("loop");
    println!(
        "bytes: first frame {first}, idle (30 ticks + re-sent state) {idle}, \
         one traffic sample {sample}, one key {key}; {} events, {} draws",
        stats.events, stats.draws
    );
    assert!(first > 1000, "the first frame draws the screen");
    assert_eq!(idle, 0, "an idle console writes nothing");
    assert!(
        sample > 0 && sample < first / 4,
        "a sample redraws only what changed"
    );
    assert!(key > 0 && key < first / 4);
    assert_eq!(eff_rx.recv().await, Some(Effect::Quit));
}

#[tokio::test]
async fn closed_terminal_stream_or_shutdown_ends_the_loop() {
    let mut app = demo_app(Options::builtin(false).expect("options")).expect("demo");
    let out = Shared::default();
    let mut term = terminal(&out, 80, 24);
    let (_upd_tx, upd_rx) = mpsc::channel(1);
    let (eff_tx, mut eff_rx) = mpsc::channel(1);
    // A SIGTERM / SIGHUP stands in as the shutdown future resolving.
    let keys = futures::stream::pending::<std::io::Result<TermEvent>>();
    let r = event_loop(
        &mut term,
        &mut app,
        keys,
        upd_rx,
        eff_tx,
        Duration::from_secs(1),
        tokio::time::sleep(Duration::from_millis(50)),
    )
    .await;
    assert!(r.is_ok());
    assert_eq!(eff_rx.recv().await, Some(Effect::Quit));
}
