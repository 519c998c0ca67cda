//! Drawing: a pure function of [`App`]. [`draw`] takes `&App` and never changes it; it lays
//! out the tab line, the body (a pane or the host detail), the status bar and the message
//! line, then the popups (help, fix dialog). Styles come only from `app.theme`; host text
//! passes through [`super::text::safe`].

mod changes;
mod dialog;
pub(crate) mod host;
mod panes;
mod preview;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, HitMap, MIN_HEIGHT, MIN_WIDTH, Mode, Pane, ReadOnly, TableHit, View};
use super::keymap::Action;
use super::text::safe;

/// Characters that differ between Unicode and `--ascii`.
pub(crate) struct Glyphs {
    pub border: border::Set<'static>,
    pub select: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub sep: &'static str,
    pub bullet: &'static str,
    pub none: &'static str,
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

pub(crate) fn glyphs(ascii: bool) -> Glyphs {
    if ascii {
        Glyphs {
            border: ASCII_BORDER,
            select: "> ",
            up: "^",
            down: "v",
            sep: "|",
            bullet: "-",
            none: ".",
        }
    } else {
        Glyphs {
            border: border::PLAIN,
            select: "▶ ",
            up: "▲",
            down: "▼",
            sep: "│",
            bullet: "•",
            none: "·",
        }
    }
}

/// A bordered block in the theme's colours.
/// Records where a bordered table with a one-line header drew its rows, for mouse clicks.
pub(crate) fn record_table(app: &App, pane: Pane, area: Rect, offset: usize) {
    // Compact: no borders, the title on the first line, the header on the second.
    let side = u16::from(!app.compact());
    let rows = Rect {
        x: area.x.saturating_add(side),
        y: area.y.saturating_add(2),
        width: area.width.saturating_sub(2 * side),
        height: area.height.saturating_sub(2 + side),
    };
    app.hits.set(HitMap {
        table: Some(TableHit {
            pane,
            area: rows,
            offset,
        }),
        ..app.hits.get()
    });
}

pub(crate) fn block<'a>(app: &App, title: Line<'a>, focused: bool) -> Block<'a> {
    let g = glyphs(app.ascii);
    let t = &app.theme;
    let border = match environment(app) {
        Some((_, true)) => t.frame_prod,
        Some((_, false)) => t.frame_env,
        None if focused => t.border_focus,
        None => t.border,
    };
    // Between the minimum and the full size the borders go: their rows and columns are
    // worth more as content.
    let borders = if app.compact() {
        Borders::NONE
    } else {
        Borders::ALL
    };
    Block::default()
        .borders(borders)
        .border_set(g.border)
        .border_style(border)
        .title(title)
        .style(t.text)
}

/// The environment's name and whether it is production (any name containing "prod").
pub(crate) fn environment(app: &App) -> Option<(&str, bool)> {
    let e = app.environment.as_deref()?;
    Some((e, e.to_ascii_lowercase().contains("prod")))
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    frame.render_widget(Block::default().style(app.theme.text), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, app, area);
        return;
    }
    let [tabs, summary, body, status, message] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    // Forget the last frame's table: the view drawn now records its own, if it has one.
    app.hits.set(HitMap {
        table: None,
        ..app.hits.get()
    });
    tab_line(frame, app, tabs);
    match &app.view {
        View::Pane(Pane::Fleet) => panes::fleet(frame, app, body),
        View::Pane(Pane::Posture) => panes::posture(frame, app, body),
        View::Pane(Pane::Alerts) => panes::alerts(frame, app, body),
        View::Pane(Pane::Traffic) => panes::traffic(frame, app, body),
        View::Host(name) => host::draw(frame, app, body, name),
        View::Changes => changes::draw(frame, app, body),
    }
    summary_line(frame, app, summary);
    status_bar(frame, app, status);
    message_line(frame, app, message);
    match &app.mode {
        Mode::Help => help(frame, app, body),
        Mode::Fix(d) => dialog::draw(frame, app, body, d),
        _ => {}
    }
}

fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let lines = vec![
        Line::styled("rampart: terminal too small", t.error),
        Line::raw(""),
        Line::styled(
            format!(
                "needs {MIN_WIDTH}x{MIN_HEIGHT}, this one is {}x{}",
                area.width, area.height
            ),
            t.text,
        ),
        Line::styled("enlarge the window, or press q to quit", t.muted),
    ];
    let h = (lines.len() as u16).min(area.height);
    let y = area.y + area.height.saturating_sub(h) / 2;
    let r = Rect::new(area.x, y, area.width, h);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        r,
    );
}

fn tab_line(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let mut spans = if app.compact() {
        Vec::new()
    } else {
        vec![Span::styled(" rampart ", t.title)]
    };
    let mut hits = app.hits.get();
    for (i, p) in Pane::ALL.iter().enumerate() {
        spans.push(Span::styled(g.sep, t.border));
        let start = area.x + spans.iter().map(|s| s.width() as u16).sum::<u16>();
        let mut label = format!(" {} {} ", i + 1, p.title());
        if *p == Pane::Alerts {
            let open = app
                .alerts
                .iter()
                .filter(|a| !a.acknowledged && !a.is_silenced(app.now))
                .count();
            if open > 0 {
                label = format!(" {} {} ({open}) ", i + 1, p.title());
            }
        }
        let style = if app.view == View::Pane(*p) {
            t.tab_active
        } else {
            t.tab
        };
        let end = start + label.chars().count() as u16;
        if let Some(slot) = hits.tabs.get_mut(i) {
            *slot = (start, end.min(area.x + area.width));
        }
        spans.push(Span::styled(label, style));
    }
    app.hits.set(hits);
    if let View::Host(h) = &app.view {
        spans.push(Span::styled(g.sep, t.border));
        spans.push(Span::styled(format!(" host {} ", safe(h)), t.tab_active));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let help = format!("{} help ", app.keymap.key_for(Action::Help));
    let w = help.chars().count() as u16;
    if area.width > w {
        let r = Rect::new(area.x + area.width - w, area.y, w, 1);
        frame.render_widget(Paragraph::new(Span::styled(help, t.muted)), r);
    }
}

pub(crate) use super::text::age;

/// The fleet at a glance: score and trend, critical and high findings, alerts firing,
/// unreachable hosts, the age of the oldest data.
fn summary_line(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let s = app.summary();
    // Under 100 columns the words get shorter, so every number still fits at 80.
    let narrow = area.width < 100;
    let mut spans = vec![Span::styled(
        if narrow { " score " } else { " fleet score " },
        t.muted,
    )];
    match s.score {
        Some(sc) => spans.push(Span::styled(sc.to_string(), score_style(app, sc))),
        None => spans.push(Span::styled("-", t.muted)),
    }
    if let Some((delta, _)) = s.trend {
        let (mark, style) = match delta.cmp(&0) {
            std::cmp::Ordering::Greater => (g.up, t.ok),
            std::cmp::Ordering::Less => (g.down, t.bad),
            std::cmp::Ordering::Equal => ("=", t.muted),
        };
        let text = if delta == 0 {
            mark.to_string()
        } else {
            format!("{mark}{}", delta.abs())
        };
        spans.push(Span::styled(format!(" {text}"), style));
    }
    let tiny = area.width < super::app::FULL_WIDTH;
    let sep = if tiny {
        Span::styled(g.sep, t.border)
    } else {
        Span::styled(format!(" {} ", g.sep), t.border)
    };
    spans.push(sep.clone());
    spans.push(Span::styled(
        format!("{} crit", s.critical),
        if s.critical > 0 { t.critical } else { t.muted },
    ));
    spans.push(Span::raw(" "));
    spans.push(Span::styled(
        format!("{} high", s.high),
        if s.high > 0 { t.high } else { t.muted },
    ));
    spans.push(sep.clone());
    spans.push(Span::styled(
        if narrow {
            format!("{} alerts", s.firing)
        } else {
            format!("{} alerts firing", s.firing)
        },
        if s.open > 0 { t.warn } else { t.muted },
    ));
    spans.push(sep.clone());
    spans.push(Span::styled(
        if tiny {
            format!("{} unreach", s.unreachable)
        } else {
            format!("{} unreachable", s.unreachable)
        },
        if s.unreachable > 0 { t.bad } else { t.muted },
    ));
    spans.push(sep);
    match s.oldest {
        Some(at) => {
            let stale = if s.stale > 0 {
                format!(" ({} stale)", s.stale)
            } else {
                String::new()
            };
            let text = if tiny {
                format!("{} old{stale}", age(app.now - at))
            } else if narrow {
                format!("oldest {}{stale}", age(app.now - at))
            } else {
                format!("oldest data {}{stale}", age(app.now - at))
            };
            spans.push(Span::styled(
                text,
                if s.stale > 0 { t.warn } else { t.muted },
            ));
        }
        None => spans.push(Span::styled("no data yet", t.muted)),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status_bar(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let (ok, failing) = app.health();
    let mut spans = vec![match app.read_only_source {
        ReadOnly::Inventory => Span::styled(" READ-ONLY (inventory) ", t.read_only),
        ReadOnly::Flag => Span::styled(" READ-ONLY ", t.read_only),
        ReadOnly::No if app.read_only => Span::styled(" READ-ONLY ", t.read_only),
        ReadOnly::No => Span::styled(" READ-WRITE ", t.read_write),
    }];
    if let Some((env, prod)) = environment(app) {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            format!(" {} ", safe(env).to_uppercase()),
            if prod { t.env_prod } else { t.env },
        ));
    }
    // A failing alert sink goes first, where a narrow terminal cannot cut it off: pages
    // that are not delivered are the on-call engineer's problem right now.
    let (sinks_failing, sinks) = app.sink_health();
    if sinks_failing > 0 {
        let retries = app.sinks.iter().map(|s| s.failures).max().unwrap_or(0);
        spans.push(Span::styled(
            format!(" SINK FAILING {sinks_failing}/{sinks} ({retries}x) "),
            t.bad,
        ));
    }
    spans.push(Span::raw(" "));
    spans.push(Span::raw(safe(&app.inventory_path).into_owned()));
    spans.push(Span::raw(format!(" {} ", g.sep)));
    if app.refreshing {
        spans.push(Span::styled("refreshing…", t.warn));
    } else {
        match app.last_refresh {
            Some(at) => spans.push(Span::raw(format!("refreshed {}", super::text::clock(at)))),
            None => spans.push(Span::styled("not refreshed yet", t.muted)),
        }
    }
    spans.push(Span::raw(format!(" {} hosts ", g.sep)));
    spans.push(Span::styled(format!("{ok} ok"), t.ok));
    spans.push(Span::raw(" / "));
    spans.push(Span::styled(
        format!("{failing} failing"),
        if failing > 0 { t.bad } else { t.muted },
    ));
    spans.push(Span::raw(format!(" / {} total", app.hosts.len())));
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.status), area);
}

fn message_line(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    match &app.mode {
        Mode::Filter { input, .. } => {
            let mut spans = vec![
                Span::styled("/", t.key),
                Span::styled(safe(input).into_owned(), t.input),
            ];
            let err = super::filter::Filter::new(input);
            if let Some(e) = err.error() {
                spans.push(Span::styled(format!("  invalid regex: {e}"), t.error));
            } else {
                spans.push(Span::styled(
                    "  (Enter keep, Esc cancel, re: regex)",
                    t.muted,
                ));
            }
            let x = area.x + 1 + input.chars().count() as u16;
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
        }
        Mode::Command { input, .. } => {
            let cands = app.command_candidates();
            let mut spans = vec![
                Span::styled(":", t.key),
                Span::styled(safe(input).into_owned(), t.input),
            ];
            if !cands.is_empty() {
                let shown: Vec<String> = cands.iter().take(8).map(|c| safe_owned(c)).collect();
                let more = if cands.len() > 8 { " …" } else { "" };
                spans.push(Span::styled(
                    format!("   [{}{more}]", shown.join(" ")),
                    t.muted,
                ));
            }
            let x = area.x + 1 + input.chars().count() as u16;
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
        }
        _ => {
            if let Some(m) = &app.message {
                let style = if m.error { t.error } else { t.message };
                frame.render_widget(
                    Paragraph::new(Span::styled(safe(&m.text).into_owned(), style)),
                    area,
                );
            } else {
                frame.render_widget(Paragraph::new(hints(app)), area);
            }
        }
    }
}

fn safe_owned(s: &str) -> String {
    safe(s).into_owned()
}

/// The short key hints for the current view.
fn hints(app: &App) -> Line<'static> {
    let t = &app.theme;
    let mut actions: Vec<(Action, &str)> = vec![(Action::Help, "help")];
    match &app.view {
        View::Pane(Pane::Fleet) => {
            actions.extend([
                (Action::Enter, "detail"),
                (Action::Filter, "filter"),
                (Action::SortNext, "sort"),
                (Action::Group, "group"),
            ]);
        }
        View::Pane(Pane::Posture) => {
            actions.extend([
                (Action::Fix, "fix"),
                (Action::Enter, "host"),
                (Action::Scope, "scope"),
                (Action::Filter, "filter"),
            ]);
        }
        View::Pane(Pane::Alerts) => {
            actions.extend([
                (Action::Acknowledge, "ack"),
                (Action::Silence, "silence 1h"),
                (Action::Enter, "host"),
                (Action::Filter, "filter"),
            ]);
        }
        View::Pane(Pane::Traffic) => {
            actions.extend([(Action::Enter, "flows"), (Action::Filter, "filter")]);
        }
        View::Host(_) => {
            actions.extend([
                (Action::Down, "scroll"),
                (Action::Changes, "changes"),
                (Action::Back, "back"),
            ]);
        }
        View::Changes => {
            actions.extend([
                (Action::Enter, "evidence"),
                (Action::Scope, "host/fleet"),
                (Action::Back, "back"),
            ]);
        }
    }
    if app.view == View::Pane(Pane::Fleet) {
        actions.push((Action::Changes, "changes"));
        if app.size.0 < super::app::WIDE_WIDTH {
            actions.push((Action::Preview, "preview"));
        }
    }
    actions.extend([
        (Action::Command, "command"),
        (Action::Refresh, "refresh"),
        (Action::Quit, "quit"),
    ]);
    let mut spans = Vec::new();
    for (a, label) in actions {
        let key = app.keymap.key_for(a);
        if key.is_empty() {
            continue;
        }
        let disabled = a == Action::Fix && app.read_only;
        let (ks, ls) = if disabled {
            (t.fix_disabled, t.fix_disabled)
        } else {
            (t.key, t.muted)
        };
        spans.push(Span::styled(key, ks));
        let label = if disabled {
            format!(" {label} (read-only)  ")
        } else {
            format!(" {label}  ")
        };
        spans.push(Span::styled(label, ls));
    }
    Line::from(spans)
}

/// A centred rectangle of at most `w` x `h` inside `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The actions the help screen lists for the current view, with a note for disabled ones.
pub fn help_entries(app: &App) -> Vec<(Action, Option<&'static str>)> {
    let mut v: Vec<Action> = Vec::new();
    match &app.view {
        View::Pane(p) => {
            v.extend([
                Action::Up,
                Action::Down,
                Action::Top,
                Action::Bottom,
                Action::PageUp,
                Action::PageDown,
                Action::Filter,
            ]);
            match p {
                Pane::Fleet => v.extend([
                    Action::Enter,
                    Action::SortNext,
                    Action::SortReverse,
                    Action::Group,
                    Action::Scope,
                    Action::Preview,
                ]),
                Pane::Posture => v.extend([Action::Fix, Action::Enter, Action::Scope]),
                Pane::Alerts => v.extend([Action::Acknowledge, Action::Silence, Action::Enter]),
                Pane::Traffic => v.push(Action::Enter),
            }
            v.push(Action::Back);
        }
        View::Host(_) => v.extend([
            Action::Up,
            Action::Down,
            Action::Top,
            Action::Bottom,
            Action::PageUp,
            Action::PageDown,
            Action::Scope,
            Action::Back,
        ]),
        View::Changes => v.extend([
            Action::Up,
            Action::Down,
            Action::Top,
            Action::Bottom,
            Action::Enter,
            Action::Scope,
            Action::Back,
        ]),
    }
    v.extend([
        Action::NextPane,
        Action::PrevPane,
        Action::ShowFleet,
        Action::ShowPosture,
        Action::ShowAlerts,
        Action::ShowTraffic,
        Action::Changes,
        Action::Command,
        Action::Refresh,
        Action::Help,
        Action::Quit,
    ]);
    v.into_iter()
        .map(|a| {
            let note = (a == Action::Fix && app.read_only).then_some("disabled: read-only");
            (a, note)
        })
        .collect()
}

fn help(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let entries = help_entries(app);
    let title = match &app.view {
        View::Pane(p) => format!(" keys: {} ", p.title()),
        View::Host(_) => " keys: host detail ".to_string(),
        View::Changes => " keys: changes ".to_string(),
    };
    let mut lines: Vec<Line> = Vec::new();
    for (a, note) in &entries {
        let keys = app.keymap.keys_for(*a).join(" ");
        let (ks, ds) = if note.is_some() {
            (t.fix_disabled, t.fix_disabled)
        } else {
            (t.key, t.text)
        };
        let mut spans = vec![
            Span::styled(format!("{keys:>16}  "), ks),
            Span::styled(a.describe(), ds),
        ];
        if let Some(n) = note {
            spans.push(Span::styled(format!("  ({n})"), t.error));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  / filter: Enter keeps, Esc cancels; re:PATTERN is a regex",
        t.muted,
    ));
    lines.push(Line::styled(
        "  : commands: fleet posture alerts traffic host NAME theme NAME changes [SINCE]",
        t.muted,
    ));
    lines.push(Line::styled(
        "    sort COL group BY refresh quit (Tab completes)",
        t.muted,
    ));
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, 72, h);
    frame.render_widget(Clear, r);
    let b = block(app, Line::styled(title, t.title), true).style(t.dialog);
    frame.render_widget(Paragraph::new(lines).block(b), r);
}

/// Style for a score.
pub(crate) fn score_style(app: &App, score: u32) -> Style {
    let t = &app.theme;
    if score < 50 {
        t.bad
    } else if score < 80 {
        t.warn
    } else {
        t.ok
    }
}

/// Header style with the sort mark.
pub(crate) fn header_style(app: &App) -> Style {
    app.theme.header.add_modifier(Modifier::empty())
}

/// Draws `app` on an off-screen `width` x `height` terminal and returns the buffer (for
/// tests, snapshots and measurements).
pub fn render_buffer(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut buf = ratatui::buffer::Buffer::empty(Rect::new(0, 0, width, height));
    let backend = ratatui::backend::TestBackend::new(width, height);
    if let Ok(mut term) = ratatui::Terminal::new(backend)
        && term.draw(|f| draw(f, app)).is_ok()
    {
        buf = term.backend().buffer().clone();
    }
    buf
}

/// The characters of a buffer, one line per row.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut s = String::new();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}
