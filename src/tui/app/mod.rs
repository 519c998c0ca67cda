//! The console's state, and the one place it changes.
//!
//! [`App`] "eats" [`AppUpdate`]s from the gathering side ([`App::update`]) and the operator's
//! keys ([`App::handle_key`] → [`Action`] → [`App::apply`]); either may hand back an
//! [`Effect`] for the runner. Rows shown by each pane come from functions here, so drawing and
//! selection always agree on what row N is. Nothing here draws or does I/O.
//!
//! Each pane's state and actions live in their own file, so one pane can be changed without
//! reading the others: [`fleet`] (sorting, grouping, scores), [`posture`] (findings, starting a
//! fix), [`alerts`] (raise, resolve, acknowledge, silence), [`traffic`] (rate history), [`fix`]
//! (the fix dialog), [`entry`] (filter and command lines), and the Changes view in
//! [`super::changes`]. This file holds what they share: the state itself, the updates, the
//! key and action dispatch, navigation between views.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::{self, Command};
use super::filter::Filter;
use super::keymap::{Action, Keymap};
use super::model::{Alert, AppUpdate, ConnState, Effect, FixPlan, FixProgress, Risk};
use super::theme::{ColorDepth, Theme, ThemeCatalog};
use crate::inventory::{Address, Inventory};
use crate::posture::{Finding, Severity, score};
use crate::state::{CounterRates, HostState};

mod alerts;
mod entry;
mod fix;
mod fleet;
mod posture;
mod traffic;

pub use fix::{FixDialog, FixStage};
pub use fleet::{Grouping, SortColumn};
pub use traffic::TrafficHistory;

/// Samples of traffic history kept per host (one per refresh).
pub const HISTORY_LEN: usize = 120;
/// How long `s` silences an alert.
pub const SILENCE_SECS: i64 = 3600;
/// The smallest terminal the console draws in (below: "too small").
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// From this size up the console draws in full (borders, every column); between the minimum
/// and this it degrades: no borders, fewer columns, the status line kept.
pub const FULL_WIDTH: u16 = 80;
pub const FULL_HEIGHT: u16 = 24;
/// From this width up the Fleet pane shows the selected host's preview beside the table.
pub const WIDE_WIDTH: u16 = 120;

/// How the console starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// No fix can be started (also when the inventory says so).
    pub read_only: bool,
    /// Theme name (see [`ThemeCatalog`]).
    pub theme: String,
    /// Draw with ASCII only.
    pub ascii: bool,
    pub depth: ColorDepth,
    pub keymap: Keymap,
    pub themes: ThemeCatalog,
    /// The clock at start, Unix seconds (tests fix it; the event loop keeps it current).
    pub now: i64,
    /// Raise the console's own alerts (host unreachable, host key refused, new findings)
    /// until the alert engine sends real ones.
    pub derive_alerts: bool,
    /// Capture the mouse (wheel scrolls, a click selects a row or a pane). Off by default:
    /// capturing it stops the terminal from selecting text to copy.
    pub mouse: bool,
}

impl Options {
    /// Options with the shipped themes and default keys, nothing read from disk or the
    /// environment (for tests and demos).
    pub fn builtin(read_only: bool) -> Result<Options, super::TuiError> {
        Ok(Options {
            read_only,
            theme: "default".into(),
            ascii: false,
            depth: ColorDepth::TrueColor,
            keymap: Keymap::default(),
            themes: ThemeCatalog::builtin()?,
            now: 0,
            derive_alerts: true,
            mouse: false,
            // default
        })
    }

    /// Options for a real terminal: user themes from `<config dir>/themes`, the keymap from
    /// `<config dir>/keymap.toml`, colour depth from `NO_COLOR`, `COLORTERM` and `TERM`, the
    /// clock from the system. An invalid keymap or theme file, or an unknown theme name, is an
    /// error naming the file and line.
    pub fn load(
        read_only: bool,
        theme: Option<&str>,
        ascii: bool,
    ) -> Result<Options, super::TuiError> {
        let dir = crate::paths::config_dir();
        let themes = ThemeCatalog::load(&dir.join("themes"))?;
        let keymap = Keymap::load(&dir.join("keymap.toml"))?;
        let theme = theme.unwrap_or("default").to_string();
        let depth = ColorDepth::from_env();
        // Fail now, with the list of names, rather than on the first frame.
        themes.theme(&theme, depth)?;
        Ok(Options {
            read_only,
            theme,
            ascii,
            depth,
            keymap,
            themes,
            now: unix_now(),
            derive_alerts: true,
            mouse: false,
        })
    }
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Where the last frame drew what a mouse click can hit, recorded by the renderer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HitMap {
    /// Each pane's tab on the top line, as columns `[start, end)`, in [`Pane::ALL`] order.
    pub tabs: [(u16, u16); 4],
    /// The rows of the table of the pane on screen.
    pub table: Option<TableHit>,
    /// The largest useful scroll of the host detail on screen (its last line at the bottom).
    pub host_max_scroll: usize,
}

/// A table's rows on screen: `area` holds its rows (borders and header excluded), the first
/// of them showing row `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableHit {
    pub pane: Pane,
    pub area: ratatui::layout::Rect,
    pub offset: usize,
}

/// A top-level pane (Tab cycles through these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pane {
    Fleet,
    Posture,
    Alerts,
    Traffic,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Fleet, Pane::Posture, Pane::Alerts, Pane::Traffic];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Fleet => "Fleet",
            Pane::Posture => "Posture",
            Pane::Alerts => "Alerts",
            Pane::Traffic => "Traffic",
        }
    }
}

/// What fills the body of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Pane(Pane),
    /// The typed state of one host.
    Host(String),
    /// The drift timeline from the history (see [`super::changes`]).
    Changes,
}

/// What keys go to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a filter; `previous` is restored by Esc.
    Filter {
        input: String,
        previous: String,
    },
    /// Typing a command; `completion` cycles Tab candidates.
    Command {
        input: String,
        completion: Option<(Vec<String>, usize)>,
    },
    Fix(Box<FixDialog>),
}

/// A line on the message line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub error: bool,
    pub text: String,
}

/// What the console knows about one inventory host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub name: String,
    pub address: String,
    pub roles: Vec<String>,
    /// The first segment containing its address, or "-".
    pub segment: String,
    pub bastion: Option<String>,
    /// The inventory forbids fixes on this host.
    pub read_only: bool,
}

/// Why fixes are disabled, for the badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnly {
    /// Fixes are enabled.
    No,
    /// `--read-only` on the command line.
    Flag,
    /// The inventory's `read_only = true`.
    Inventory,
}

/// Per-pane selection and filters.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub row: usize,
}

/// The console's whole state.
#[derive(Debug, Clone)]
pub struct App {
    pub inventory_path: String,
    pub hosts: Vec<HostInfo>,
    pub conn: BTreeMap<String, ConnState>,
    pub states: BTreeMap<String, HostState>,
    pub findings: Vec<Finding>,
    pub traffic: BTreeMap<String, TrafficHistory>,
    pub alerts: Vec<Alert>,
    pub refreshing: bool,
    pub last_refresh: Option<i64>,
    pub now: i64,
    pub read_only: bool,
    pub ascii: bool,
    pub theme: Theme,
    pub themes: ThemeCatalog,
    pub depth: ColorDepth,
    pub keymap: Keymap,
    pub derive_alerts: bool,
    pub view: View,
    /// Views to go back to with Esc.
    pub back: Vec<View>,
    pub mode: Mode,
    pub selection: BTreeMap<Pane, usize>,
    /// Scroll of the host detail view.
    pub host_scroll: usize,
    pub filters: BTreeMap<Pane, Filter>,
    pub sort: SortColumn,
    pub sort_reversed: bool,
    pub group: Grouping,
    /// Posture shows only this host; `None` = the whole fleet.
    pub posture_host: Option<String>,
    pub message: Option<Message>,
    /// The host whose live flow view was asked for.
    pub flow_host: Option<String>,
    /// The latest flow snapshot and the host it is of (shown only while it is `flow_host`).
    pub flows: Option<(String, Box<crate::traffic::FlowSnapshot>)>,
    /// The alert sinks' latest health (empty when none is configured).
    pub sinks: Vec<crate::alerts::SinkStatus>,
    /// Whether the mouse is captured (see [`Options::mouse`]).
    pub mouse: bool,
    /// What the last frame drew where; the renderer fills it, mouse clicks read it.
    pub hits: std::cell::Cell<HitMap>,
    /// Terminal size, for paging.
    pub size: (u16, u16),
    /// Bumped on every change that could alter the screen; the event loop draws only when it
    /// moved (or on resize), so an idle console writes nothing.
    pub revision: u64,
    /// Hosts drawn from the stored snapshot and not yet collected afresh: when it was taken.
    pub stale: BTreeMap<String, i64>,
    /// The stored snapshot's findings of the stale hosts, kept until each is collected.
    pub stored_findings: Vec<Finding>,
    /// The fleet score the trend compares with, and when it was taken.
    pub baseline: Option<(u32, i64)>,
    /// `[console] environment` (free text), shown in the status bar and colouring the frame.
    pub environment: Option<String>,
    /// Where read-only mode comes from.
    pub read_only_source: ReadOnly,
    /// Fleet: the preview is shown on terminals narrower than [`WIDE_WIDTH`].
    pub preview: bool,
    /// The Changes view's state.
    pub changes: super::changes::ChangesState,
    /// Finding keys of the previous recomputation, for "new since last refresh" alerts.
    seen_findings: Option<BTreeSet<String>>,
}

impl App {
    /// A console over `inventory`'s hosts, nothing collected yet.
    pub fn new(inventory: &Inventory, opts: Options) -> Result<App, super::TuiError> {
        let theme = opts.themes.theme(&opts.theme, opts.depth)?;
        let hosts = inventory
            .hosts
            .iter()
            .map(|h| HostInfo {
                name: h.name.clone(),
                address: h.address.to_string(),
                roles: h.roles.clone(),
                segment: match &h.address {
                    Address::Ip(ip) => inventory
                        .segments_of(*ip)
                        .first()
                        .map_or_else(|| "-".to_string(), |s| s.to_string()),
                    Address::Dns(_) => "-".to_string(),
                },
                bastion: h.bastion.clone(),
                read_only: h.read_only,
            })
            .collect();
        Ok(App {
            inventory_path: inventory.path.display().to_string(),
            hosts,
            conn: BTreeMap::new(),
            states: BTreeMap::new(),
            findings: Vec::new(),
            traffic: BTreeMap::new(),
            alerts: Vec::new(),
            refreshing: false,
            last_refresh: None,
            now: opts.now,
            read_only: opts.read_only || inventory.read_only(),
            read_only_source: if inventory.read_only() {
                ReadOnly::Inventory
            } else if opts.read_only {
                ReadOnly::Flag
            } else {
                ReadOnly::No
            },
            environment: inventory.console.environment.clone(),
            stale: BTreeMap::new(),
            stored_findings: Vec::new(),
            baseline: None,
            preview: false,
            changes: super::changes::ChangesState::default(),
            ascii: opts.ascii,
            theme,
            themes: opts.themes,
            depth: opts.depth,
            keymap: opts.keymap,
            derive_alerts: opts.derive_alerts,
            view: View::Pane(Pane::Fleet),
            back: Vec::new(),
            mode: Mode::Normal,
            selection: BTreeMap::new(),
            host_scroll: 0,
            filters: BTreeMap::new(),
            sort: SortColumn::Score,
            sort_reversed: false,
            group: Grouping::None,
            posture_host: None,
            message: None,
            flow_host: None,
            flows: None,
            sinks: Vec::new(),
            mouse: opts.mouse,
            hits: std::cell::Cell::new(HitMap::default()),
            size: (FULL_WIDTH, FULL_HEIGHT),
            revision: 0,
            seen_findings: None,
        })
    }

    fn changed(&mut self) {
        self.revision = self.revision.wrapping_add(1);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            error: false,
            text: text.into(),
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            error: true,
            text: text.into(),
        });
    }

    // ---------------------------------------------------------------------------------
    // Reading

    pub fn host(&self, name: &str) -> Option<&HostInfo> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn conn_state(&self, host: &str) -> ConnState {
        self.conn.get(host).cloned().unwrap_or_default()
    }

    /// The host's score, `None` when it was not reached (no score for what was not seen).
    pub fn score(&self, host: &str) -> Option<u32> {
        if self.conn_state(host).is_failing()
            || self.states.get(host).is_none_or(|s| s.is_unreachable())
        {
            return None;
        }
        Some(score::host_score(host, &self.findings).score)
    }

    /// Hosts connected / failing.
    pub fn health(&self) -> (usize, usize) {
        let ok = self
            .hosts
            .iter()
            .filter(|h| self.conn_state(&h.name) == ConnState::Ok)
            .count();
        let failing = self
            .hosts
            .iter()
            .filter(|h| self.conn_state(&h.name).is_failing())
            .count();
        (ok, failing)
    }

    /// The alert sinks that are failing now, and how many are configured.
    pub fn sink_health(&self) -> (usize, usize) {
        let failing = self.sinks.iter().filter(|s| s.failures > 0).count();
        (failing, self.sinks.len())
    }

    pub fn pane(&self) -> Option<Pane> {
        match self.view {
            View::Pane(p) => Some(p),
            View::Host(_) | View::Changes => None,
        }
    }

    /// When the host's data was collected, if the console holds any: the stored snapshot's
    /// time while it is stale, else the collection's.
    pub fn data_time(&self, host: &str) -> Option<i64> {
        if let Some(at) = self.stale.get(host) {
            return Some(*at);
        }
        self.states.get(host).and_then(|s| s.collected_at)
    }

    /// The at-a-glance summary (fleet score and trend, findings, alerts, reachability, age).
    pub fn summary(&self) -> super::summary::Summary {
        super::summary::Summary::of(self)
    }

    /// The terminal is between the minimum and the full size: draw without borders.
    pub fn compact(&self) -> bool {
        self.size.0 < FULL_WIDTH || self.size.1 < FULL_HEIGHT
    }

    /// The Fleet pane shows the preview: always on wide terminals, else when asked for.
    pub fn shows_preview(&self) -> bool {
        self.size.0 >= WIDE_WIDTH || self.preview
    }

    pub fn filter(&self, pane: Pane) -> Option<&Filter> {
        self.filters.get(&pane).filter(|f| !f.is_empty())
    }

    pub fn selected_row(&self, pane: Pane) -> usize {
        self.selection.get(&pane).copied().unwrap_or(0)
    }

    fn row_count(&self, pane: Pane) -> usize {
        match pane {
            Pane::Fleet => self.fleet_rows().len(),
            Pane::Posture => self.posture_rows().len(),
            Pane::Alerts => self.alert_rows().len(),
            Pane::Traffic => self.traffic_rows().len(),
        }
    }

    /// The row index to highlight, clamped to what the pane holds.
    pub fn clamped_row(&self, pane: Pane) -> Option<usize> {
        let n = self.row_count(pane);
        (n > 0).then(|| self.selected_row(pane).min(n - 1))
    }

    /// True when fixes may not run on `host` (console or inventory read-only).
    pub fn fixes_disabled(&self, host: &str) -> bool {
        self.read_only || self.host(host).is_some_and(|h| h.read_only)
    }

    /// Rows a page moves.
    pub fn page(&self) -> usize {
        usize::from(self.size.1.saturating_sub(8)).max(1)
    }

    // ---------------------------------------------------------------------------------
    // Updates from the gathering side

    /// Applies one update. Returns true when anything the screen shows may have changed.
    pub fn update(&mut self, u: AppUpdate) -> bool {
        let changed = self.eat(u);
        if changed {
            self.changed();
        }
        changed
    }

    fn eat(&mut self, u: AppUpdate) -> bool {
        match u {
            AppUpdate::Connection { host, state } => {
                if self.conn.get(&host) == Some(&state) {
                    return false;
                }
                if self.derive_alerts {
                    self.derive_connection_alerts(&host, &state);
                }
                self.conn.insert(host, state);
                true
            }
            AppUpdate::HostState(s) => {
                // An unreachable answer is not fresh state: the stored one stays, marked stale.
                if s.is_unreachable() && self.stale.contains_key(&s.host) {
                    return false;
                }
                let was_stale = self.stale.remove(&s.host).is_some();
                if !was_stale && self.states.get(&s.host) == Some(&*s) {
                    return false;
                }
                self.states.insert(s.host.clone(), *s);
                true
            }
            AppUpdate::Stored(st) => self.stored(*st),
            AppUpdate::Baseline { score, at } => {
                let changed = self.baseline != Some((score, at));
                self.baseline = Some((score, at));
                changed
            }
            AppUpdate::Changes(t) => {
                self.changes.arrived(*t);
                true
            }
            AppUpdate::Findings(f) => {
                // A host still stale (not collected afresh, e.g. unreachable) keeps its stored
                // findings: the fresh evaluation could not see it, and dropping them would
                // show it as clean.
                let mut all = f.clone();
                all.extend(
                    self.stored_findings
                        .iter()
                        .filter(|x| self.stale.contains_key(&x.host))
                        .cloned(),
                );
                if all == self.findings {
                    return false;
                }
                if self.derive_alerts {
                    self.derive_finding_alerts(&f);
                }
                self.findings = all;
                true
            }
            AppUpdate::Traffic { host, rates } => {
                let total: f64 = rates
                    .interfaces
                    .iter()
                    .filter(|i| i.name != "lo")
                    .map(|i| i.rx_bytes + i.tx_bytes)
                    .sum();
                let h = self.traffic.entry(host).or_default();
                h.total.push_back(total);
                while h.total.len() > HISTORY_LEN {
                    h.total.pop_front();
                }
                h.last = Some(rates);
                true
            }
            AppUpdate::Flows { host, snapshot } => {
                // A late snapshot of a view already closed is dropped.
                if self.flow_host.as_deref() != Some(host.as_str()) {
                    return false;
                }
                self.flows = Some((host, snapshot));
                true
            }
            AppUpdate::AlertRaised(a) => self.raise(a),
            AppUpdate::AlertResolved { id } => self.resolve(&id),
            AppUpdate::RefreshStarted { .. } => {
                let was = self.refreshing;
                self.refreshing = true;
                !was
            }
            AppUpdate::RefreshFinished { at } => {
                self.refreshing = false;
                self.last_refresh = Some(at);
                true
            }
            AppUpdate::FixPlanned(plan) => self.plan_arrived(plan),
            AppUpdate::FixPlanFailed { host, fix, reason } => {
                if let Mode::Fix(d) = &mut self.mode
                    && d.host == host
                    && d.fix == fix
                {
                    d.stage = FixStage::Done {
                        plan: None,
                        ok: false,
                        verified: false,
                        message: format!("cannot plan {fix} on {host}: {reason}"),
                        log: Vec::new(),
                    };
                    return true;
                }
                false
            }
            AppUpdate::FixProgress(p) => self.fix_progress(p),
            AppUpdate::Clock { now } => self.set_clock(now),
            AppUpdate::Message(m) => {
                self.info(m);
                true
            }
            AppUpdate::SinkHealth(sinks) => {
                let changed = self.sinks != sinks;
                self.sinks = sinks;
                changed
            }
        }
    }

    /// The stored snapshot: each host not yet collected is drawn from it, marked stale.
    fn stored(&mut self, st: super::model::Stored) -> bool {
        let mut any = false;
        for s in st.states {
            if self.states.contains_key(&s.host) || self.host(&s.host).is_none() {
                continue;
            }
            self.stale.insert(s.host.clone(), st.taken_at);
            self.states.insert(s.host.clone(), s);
            any = true;
        }
        self.stored_findings = st
            .findings
            .iter()
            .filter(|f| self.stale.contains_key(&f.host))
            .cloned()
            .collect();
        if self.findings.is_empty() && !st.findings.is_empty() {
            // The baseline for "new finding" alerts is the first fresh set, not history.
            self.findings = st.findings;
            any = true;
        }
        any
    }

    /// Moves the clock. Returns true only when something shown depends on the change (a
    /// silence ran out, the day turned for certificate expiry), so a ticking clock alone never
    /// redraws.
    pub fn set_clock(&mut self, now: i64) -> bool {
        let before = self.now;
        self.now = now;
        let silence_ended = self
            .alerts
            .iter()
            .any(|a| a.is_silenced(before) != a.is_silenced(now));
        let day_turned = before.div_euclid(86_400) != now.div_euclid(86_400);
        // Ages of data ("oldest data 5m", "stale 2h") are drawn: redraw when one of their
        // labels changes, and only then (a redraw writes bytes even when nothing changed).
        let age_changed = || {
            self.hosts.iter().any(|h| {
                self.data_time(&h.name)
                    .is_some_and(|t| super::text::age(before - t) != super::text::age(now - t))
            })
        };
        silence_ended || day_turned || age_changed()
    }

    // ---------------------------------------------------------------------------------
    // Keys

    /// Terminal resized.
    pub fn resize(&mut self, w: u16, h: u16) {
        self.size = (w, h);
        self.changed();
    }

    /// One key press (the event loop drops releases and repeats).
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Effect> {
        self.changed();
        match &self.mode {
            Mode::Filter { .. } => {
                self.filter_key(key);
                None
            }
            Mode::Command { .. } => self.command_key(key),
            Mode::Fix(_) => self.fix_key(key),
            Mode::Help | Mode::Normal => {
                let action = self.keymap.action(&key)?;
                self.message = None;
                self.apply(action)
            }
        }
    }

    /// A mouse event: the wheel scrolls, a left click on a tab opens that pane, a click on a
    /// table row selects it and a click on the selected row opens it (as Enter). Only in the
    /// normal mode: a click never answers a dialog, a filter or a prompt.
    pub fn handle_mouse(&mut self, m: crossterm::event::MouseEvent) -> Option<Effect> {
        use crossterm::event::{MouseButton, MouseEventKind};
        if !self.mouse || self.mode != Mode::Normal {
            return None;
        }
        match m.kind {
            MouseEventKind::ScrollDown => self.apply(Action::Down),
            MouseEventKind::ScrollUp => self.apply(Action::Up),
            MouseEventKind::Down(MouseButton::Left) => {
                let hits = self.hits.get();
                if m.row == 0 {
                    let at = Pane::ALL
                        .iter()
                        .zip(hits.tabs)
                        .find(|(_, (start, end))| (*start..*end).contains(&m.column));
                    return match at.map(|(p, _)| *p)? {
                        Pane::Fleet => self.apply(Action::ShowFleet),
                        Pane::Posture => self.apply(Action::ShowPosture),
                        Pane::Alerts => self.apply(Action::ShowAlerts),
                        Pane::Traffic => self.apply(Action::ShowTraffic),
                    };
                }
                let table = hits.table?;
                let a = table.area;
                let inside = (a.x..a.x + a.width).contains(&m.column)
                    && (a.y..a.y + a.height).contains(&m.row);
                if !inside || self.view != View::Pane(table.pane) {
                    return None;
                }
                let row = table.offset + usize::from(m.row - a.y);
                if row >= self.row_count(table.pane) {
                    return None;
                }
                if self.clamped_row(table.pane) == Some(row) {
                    return self.apply(Action::Enter);
                }
                self.changed();
                self.message = None;
                self.selection.insert(table.pane, row);
                None
            }
            _ => None,
        }
    }

    /// Runs an action. The one place the operator changes state.
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        self.changed();
        if self.mode == Mode::Help {
            if matches!(action, Action::Back | Action::Help | Action::Quit) {
                self.mode = Mode::Normal;
            }
            return None;
        }
        match action {
            Action::Quit => return Some(Effect::Quit),
            Action::Help => self.mode = Mode::Help,
            Action::NextPane | Action::PrevPane => {
                let cur = self.pane().unwrap_or(Pane::Fleet);
                let i = Pane::ALL.iter().position(|p| *p == cur).unwrap_or(0);
                let n = Pane::ALL.len();
                let next = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                return self.show(Pane::ALL[next]);
            }
            Action::ShowFleet => return self.show(Pane::Fleet),
            Action::ShowPosture => return self.show(Pane::Posture),
            Action::ShowAlerts => return self.show(Pane::Alerts),
            Action::ShowTraffic => return self.show(Pane::Traffic),
            Action::Preview => {
                if self.size.0 >= WIDE_WIDTH {
                    self.info("the preview is always shown on terminals 120 columns wide or more");
                } else {
                    self.preview = !self.preview;
                }
                if self.pane() != Some(Pane::Fleet) {
                    return self.show(Pane::Fleet);
                }
            }
            Action::Changes => {
                let host = match &self.view {
                    View::Host(h) => Some(h.clone()),
                    _ => None,
                };
                return self.open_changes(super::changes::DEFAULT_SINCE, host);
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as i64)),
            Action::PageDown => self.move_by(self.page() as i64),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(usize::MAX),
            Action::Enter => return self.enter(),
            Action::Back => return self.go_back(),
            Action::Filter => {
                if let Some(p) = self.pane() {
                    let previous = self
                        .filters
                        .get(&p)
                        .map(|f| f.raw().to_string())
                        .unwrap_or_default();
                    self.mode = Mode::Filter {
                        input: previous.clone(),
                        previous,
                    };
                } else {
                    self.info("no filter here: Esc goes back to the list");
                }
            }
            Action::Command => {
                self.mode = Mode::Command {
                    input: String::new(),
                    completion: None,
                }
            }
            Action::Refresh => {
                self.info("refresh requested");
                return Some(Effect::Refresh);
            }
            Action::Fix => return self.start_fix(),
            Action::Acknowledge => return self.acknowledge(),
            Action::Silence => return self.silence(),
            Action::SortNext => {
                if self.pane() == Some(Pane::Fleet) {
                    let i = SortColumn::ALL
                        .iter()
                        .position(|c| *c == self.sort)
                        .unwrap_or(0);
                    self.sort = SortColumn::ALL[(i + 1) % SortColumn::ALL.len()];
                    self.info(format!("fleet sorted by {}", self.sort.name()));
                }
            }
            Action::SortReverse => {
                if self.pane() == Some(Pane::Fleet) {
                    self.sort_reversed = !self.sort_reversed;
                }
            }
            Action::Group => {
                if self.pane() == Some(Pane::Fleet) {
                    self.group = match self.group {
                        Grouping::None => Grouping::Role,
                        Grouping::Role => Grouping::Segment,
                        Grouping::Segment => Grouping::None,
                    };
                }
            }
            Action::Scope if self.view == View::Changes => self.changes.toggle_scope(),
            Action::Scope => {
                if self.posture_host.take().is_none() {
                    let host = match &self.view {
                        View::Host(h) => Some(h.clone()),
                        _ => self
                            .selected_fleet_host(Pane::Fleet)
                            .map(|h| h.name.clone()),
                    };
                    self.posture_host = host;
                }
                self.selection.insert(Pane::Posture, 0);
                if self.pane() != Some(Pane::Posture) {
                    return self.show(Pane::Posture);
                }
            }
        }
        None
    }

    fn show(&mut self, pane: Pane) -> Option<Effect> {
        if self.view == View::Pane(pane) {
            return None;
        }
        let leaving_flow = self.flow_host.is_some() && pane != Pane::Traffic;
        self.back.clear();
        self.view = View::Pane(pane);
        if leaving_flow {
            self.flow_host = None;
            return Some(Effect::FlowView { host: None });
        }
        None
    }

    /// Opens the Changes view and asks the runner for the timeline.
    fn open_changes(&mut self, since: crate::store::Since, host: Option<String>) -> Option<Effect> {
        if self.view != View::Changes {
            let here = self.view.clone();
            self.back.push(here);
            self.view = View::Changes;
        }
        self.changes.ask(since, host);
        Some(Effect::Changes { since })
    }

    fn open_host(&mut self, name: &str) {
        let here = self.view.clone();
        self.back.push(here);
        self.view = View::Host(name.to_string());
        self.host_scroll = 0;
    }

    /// The largest useful scroll of the host detail, as the last frame drew it (the state
    /// never asks the renderer: drawing depends on the state, not the other way round).
    fn host_max_scroll(&self) -> usize {
        self.hits.get().host_max_scroll
    }

    fn move_by(&mut self, delta: i64) {
        match self.view.clone() {
            View::Changes => self.changes.move_by(delta),
            View::Host(_) => {
                let max = self.host_max_scroll() as i64;
                self.host_scroll = (self.host_scroll as i64 + delta).clamp(0, max) as usize;
            }
            View::Pane(p) => {
                let n = self.row_count(p);
                if n == 0 {
                    return;
                }
                let cur = self.selected_row(p).min(n - 1) as i64;
                let next = (cur + delta).clamp(0, n as i64 - 1) as usize;
                self.selection.insert(p, next);
            }
        }
    }

    fn move_to(&mut self, row: usize) {
        match self.view.clone() {
            View::Changes => self.changes.move_to(row),
            View::Host(_) => self.host_scroll = row.min(self.host_max_scroll()),
            View::Pane(p) => {
                let n = self.row_count(p);
                self.selection.insert(p, row.min(n.saturating_sub(1)));
            }
        }
    }

    fn enter(&mut self) -> Option<Effect> {
        if self.view == View::Changes {
            if self.changes.selected().is_some() {
                self.changes.evidence = !self.changes.evidence;
            }
            return None;
        }
        let target = match self.pane()? {
            Pane::Fleet => self
                .selected_fleet_host(Pane::Fleet)
                .map(|h| h.name.clone()),
            Pane::Posture => self
                .selected_finding()
                .map(|f| f.host.clone())
                .filter(|h| self.host(h).is_some()),
            Pane::Alerts => self
                .selected_alert()
                .map(|a| a.host.clone())
                .filter(|h| self.host(h).is_some()),
            Pane::Traffic => {
                // Enter on Traffic opens the live flow view of the host, in place.
                let host = self
                    .selected_fleet_host(Pane::Traffic)
                    .map(|h| h.name.clone())?;
                if self.flow_host.as_deref() == Some(host.as_str()) {
                    return None;
                }
                self.flow_host = Some(host.clone());
                return Some(Effect::FlowView { host: Some(host) });
            }
        };
        if let Some(t) = target {
            self.open_host(&t);
        }
        None
    }

    fn go_back(&mut self) -> Option<Effect> {
        if self.view == View::Changes && self.changes.evidence {
            self.changes.evidence = false;
            return None;
        }
        if let Some(p) = self.pane()
            && self.filter(p).is_some()
        {
            self.filters.remove(&p);
            self.info("filter cleared");
            return None;
        }
        if self.pane() == Some(Pane::Traffic) && self.flow_host.is_some() {
            self.flow_host = None;
            return Some(Effect::FlowView { host: None });
        }
        if let Some(v) = self.back.pop() {
            self.view = v;
        } else if self.pane() == Some(Pane::Posture) && self.posture_host.is_some() {
            self.posture_host = None;
        }
        None
    }

    // ---------------------------------------------------------------------------------
    // Text entry
}
