//! The console: an interactive terminal UI for the on-call engineer.
//!
//! Owns the app state ([`App`]), the event loop ([`run`]), the panes ([`draw`]), themes and
//! the keymap. The shape follows ratatui's event-driven async template: one [`Event`] enum
//! (tick, terminal event, app update), one `tokio::select!` loop, only key presses count.
//!
//! It must not: open a connection, run a command on a host, or build one. Gathering runs
//! elsewhere and sends [`AppUpdate`]s over a channel; what the operator asks for goes back as
//! [`Effect`]s for the runner to carry out. Drawing is a pure function of `&App`, and happens
//! only when the state changed or the terminal was resized, so an idle console writes nothing.

pub mod app;
pub mod changes;
pub mod command;
pub mod demo;
pub mod filter;
pub mod keymap;
pub mod model;
pub mod render;
pub mod summary;
pub mod text;
pub mod theme;

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

pub use app::{App, HitMap, Options, Pane, TableHit, View};
pub use demo::demo_app;
pub use keymap::{Action, Keymap, KeymapError};
pub use model::{Alert, AppUpdate, ConnState, Effect, FixPlan, FixProgress, Risk};
pub use render::draw;
pub use theme::{ColorDepth, Theme, ThemeCatalog, ThemeError};

/// Why the console stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("keymap: {0}")]
    Keymap(#[from] KeymapError),
    #[error("theme: {0}")]
    Theme(#[from] ThemeError),
    #[error("drawing: {0}")]
    Draw(String),
}

/// One thing the loop reacts to.
#[derive(Debug)]
pub enum Event {
    /// Time passed (keeps the clock current).
    Tick,
    Terminal(TermEvent),
    Update(AppUpdate),
    /// The update channel closed: the gathering side is gone.
    UpdatesClosed,
    /// The terminal event stream ended or failed.
    TerminalClosed,
    /// SIGTERM or SIGHUP (the SSH session dropped): restore the terminal and leave.
    Shutdown,
}

/// How often the clock ticks. Ticks never redraw by themselves.
pub const TICK: Duration = Duration::from_secs(1);

/// Runs the console on the real terminal until the operator quits, a signal arrives, or the
/// update channel closes. Restores the terminal on every way out, panics included.
pub async fn run(
    mut app: App,
    updates: mpsc::Receiver<AppUpdate>,
    effects: mpsc::Sender<Effect>,
) -> Result<(), TuiError> {
    // Installs a panic hook that restores the terminal before the message prints.
    let mut terminal = ratatui::try_init()?;
    let mouse = app.mouse
        && crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture).is_ok();
    let guard = RestoreGuard { mouse };
    if let Ok(size) = terminal.size() {
        app.resize(size.width, size.height);
    }
    let shutdown = shutdown_signal();
    let result = event_loop(
        &mut terminal,
        &mut app,
        EventStream::new(),
        updates,
        effects,
        TICK,
        shutdown,
    )
    .await;
    drop(guard);
    result.map(|_| ())
}

/// Restores the terminal when dropped, whatever way the loop ended (a panic unwinds
/// through it too), releasing the mouse first when it was captured.
struct RestoreGuard {
    mouse: bool,
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        if self.mouse {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        }
        ratatui::restore();
    }
}

/// Resolves on SIGTERM or SIGHUP. If the handlers cannot be installed, never resolves (the
/// console still works; only the signal path is lost).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut term), Ok(mut hup)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// Counters from one run of the loop, for tests and measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub events: u64,
    pub draws: u64,
}

/// The loop itself, over any backend and any stream of terminal events, so tests can drive it
/// with a recording backend and scripted keys.
pub async fn event_loop<B, S>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut term_events: S,
    mut updates: mpsc::Receiver<AppUpdate>,
    effects: mpsc::Sender<Effect>,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<LoopStats, TuiError>
where
    B: Backend,
    S: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let mut stats = LoopStats::default();
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut drawn: Option<u64> = None;
    let mut updates_open = true;
    loop {
        if drawn != Some(app.revision) {
            terminal
                .draw(|f| render::draw(f, app))
                .map_err(|e| TuiError::Draw(e.to_string()))?;
            drawn = Some(app.revision);
            stats.draws += 1;
        }
        let event = tokio::select! {
            _ = ticker.tick() => Event::Tick,
            ev = term_events.next() => match ev {
                Some(Ok(e)) => Event::Terminal(e),
                Some(Err(_)) | None => Event::TerminalClosed,
            },
            u = updates.recv(), if updates_open => match u {
                Some(u) => Event::Update(u),
                None => Event::UpdatesClosed,
            },
            _ = &mut shutdown => Event::Shutdown,
        };
        stats.events += 1;
        let effect = match event {
            Event::Tick => {
                app.update(AppUpdate::Clock {
                    now: app::unix_now().max(app.now),
                });
                None
            }
            Event::Terminal(TermEvent::Key(k)) if k.kind == KeyEventKind::Press => {
                app.handle_key(k)
            }
            Event::Terminal(TermEvent::Mouse(m)) => app.handle_mouse(m),
            Event::Terminal(TermEvent::Resize(w, h)) => {
                app.resize(w, h);
                None
            }
            Event::Terminal(_) => None,
            Event::Update(u) => {
                app.update(u);
                None
            }
            Event::UpdatesClosed => {
                // Keep the console up so the operator can read what was gathered.
                updates_open = false;
                app.update(AppUpdate::Message(
                    "the collectors stopped; what is shown will not refresh".into(),
                ));
                None
            }
            Event::TerminalClosed | Event::Shutdown => {
                // Best effort: tell the runner, without waiting on it.
                let _ = effects.try_send(Effect::Quit);
                return Ok(stats);
            }
        };
        if let Some(e) = effect {
            let quit = e == Effect::Quit;
            // Never block a frame on the runner: a full queue is reported, not waited on.
            if let Err(err) = effects.try_send(e) {
                if quit {
                    return Ok(stats);
                }
                let why = match err {
                    mpsc::error::TrySendError::Full(_) => "busy, try again in a moment",
                    mpsc::error::TrySendError::Closed(_) => "the runner has stopped",
                };
                app.update(AppUpdate::Message(format!("request not sent: {why}")));
            }
            if quit {
                return Ok(stats);
            }
        }
    }
}
