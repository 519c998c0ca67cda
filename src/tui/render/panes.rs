//! The four list panes: Fleet, Posture, Alerts, Traffic.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{block, glyphs, header_style, score_style};
use crate::posture::Severity;
use crate::tui::app::{App, Grouping, HISTORY_LEN, Pane, SortColumn};
use crate::tui::model::ConnState;
use crate::tui::text::{fit, per_sec, rate, safe, safe_owned, sparkline, when};

/// The pane's title: name, row count, filter and scope.
fn title<'a>(app: &'a App, pane: Pane, rows: usize, extra: &str) -> Line<'a> {
    let t = &app.theme;
    let mut spans = vec![Span::styled(format!(" {} ", pane.title()), t.title)];
    spans.push(Span::styled(format!("[{rows}] "), t.muted));
    if !extra.is_empty() {
        spans.push(Span::styled(format!("{extra} "), t.muted));
    }
    if let Some(f) = app.filter(pane) {
        spans.push(Span::styled(format!("/{} ", safe(f.raw())), t.input));
    }
    Line::from(spans)
}

fn state_style(app: &App, s: &ConnState) -> ratatui::style::Style {
    let t = &app.theme;
    match s {
        ConnState::Ok => t.ok,
        ConnState::Pending | ConnState::Connecting | ConnState::Reconnecting { .. } => t.warn,
        ConnState::Unreachable { .. } | ConnState::HostKeyRefused { .. } => t.bad,
    }
}

fn count_cell<'a>(app: &App, n: usize, sev: Severity) -> Cell<'a> {
    let g = glyphs(app.ascii);
    if n == 0 {
        Cell::from(Span::styled(g.none, app.theme.muted))
    } else {
        Cell::from(Span::styled(n.to_string(), app.theme.severity(sev)))
    }
}

/// Draws a pane's table the one way every pane does (focused block with its title, the
/// selection marked and kept in view), records where its rows landed for mouse clicks, and
/// writes `empty` inside it when given.
fn draw_table(
    frame: &mut Frame,
    app: &App,
    pane: Pane,
    table: Table<'_>,
    title: Line<'_>,
    area: Rect,
    empty: Option<&str>,
) {
    let table = table
        .block(block(app, title, true))
        .row_highlight_style(app.theme.selected)
        .highlight_symbol(glyphs(app.ascii).select);
    let mut state = TableState::default().with_selected(app.clamped_row(pane));
    frame.render_stateful_widget(table, area, &mut state);
    super::record_table(app, pane, area, state.offset());
    if let Some(text) = empty {
        empty_note(frame, app, area, text);
    }
}

fn empty_note(frame: &mut Frame, app: &App, area: Rect, text: &str) {
    // Inside the block's border, under the header.
    if area.height > 3 {
        let r = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        frame.render_widget(
            Paragraph::new(Span::styled(text.to_string(), app.theme.muted)),
            r,
        );
    }
}

pub(super) fn fleet(frame: &mut Frame, app: &App, area: Rect) {
    let area = if app.shows_preview() {
        let (table, side) = if area.width >= crate::tui::app::WIDE_WIDTH {
            let w = (area.width / 3).clamp(40, 64);
            let [a, b] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Length(w)]).areas(area);
            (a, b)
        } else {
            let [a, b] =
                Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(area);
            (a, b)
        };
        super::preview::draw(frame, app, side);
        table
    } else {
        area
    };
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let rows = app.fleet_rows();
    let grouped = app.group != Grouping::None;
    // Narrow tables keep host, state, score and the counts; roles, segment and traffic go.
    let narrow = area.width < crate::tui::app::FULL_WIDTH;
    let name_w = app
        .hosts
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 16) as u16;
    let mut widths = Vec::new();
    if grouped {
        widths.push(Constraint::Length(8));
    }
    if narrow {
        widths.extend([
            Constraint::Length(name_w),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Fill(1),
        ]);
    } else {
        widths.extend([
            Constraint::Length(name_w),
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Fill(1),
        ]);
    }
    // Borders, highlight symbol, fixed columns and the one-space gaps between columns.
    let fixed: u16 = 2 + 2 + name_w + 11 + 10 + 7 + 5 + 8 + 9 + if grouped { 9 } else { 0 };
    let spark_w = usize::from(area.width.saturating_sub(fixed + 6)).clamp(4, HISTORY_LEN);
    let mark = |c: SortColumn, label: &str| {
        if app.sort == c {
            format!("{label}{}", if app.sort_reversed { g.up } else { g.down })
        } else {
            label.to_string()
        }
    };
    let mut header: Vec<Cell> = Vec::new();
    if grouped {
        header.push(Cell::from(match app.group {
            Grouping::Role => "ROLE",
            _ => "SEGMENT",
        }));
    }
    header.extend([
        Cell::from(mark(SortColumn::Host, "HOST")),
        Cell::from(mark(SortColumn::State, "STATE")),
    ]);
    if !narrow {
        header.extend([
            Cell::from(mark(SortColumn::Roles, "ROLES")),
            Cell::from(mark(SortColumn::Segment, "SEGMENT")),
        ]);
    }
    header.extend([
        Cell::from(mark(SortColumn::Score, "SCORE")),
        Cell::from(Span::styled(mark(SortColumn::Findings, "C"), t.critical)),
        Cell::from(Span::styled("H", t.high)),
        Cell::from(Span::styled("M", t.medium)),
        Cell::from(Span::styled("L", t.low)),
    ]);
    header.push(Cell::from(if narrow {
        "DATA".to_string()
    } else {
        mark(SortColumn::Traffic, "TRAFFIC")
    }));
    let mut last_group = None;
    // Every row is built (the table scrolls), so scores and counts come from one pass over
    // the findings rather than one pass per host.
    let keys = app.sort_keys();
    let body: Vec<Row> = rows
        .iter()
        .filter_map(|i| app.hosts.get(*i).map(|h| (*i, h)))
        .map(|(i, h)| {
            let state = app.conn_state(&h.name);
            let (score, counts) = keys.get(i).copied().unwrap_or((None, [0; 4]));
            let mut cells = Vec::new();
            if grouped {
                let grp = app.group_of(h);
                let label = if last_group.as_ref() == Some(&grp) {
                    String::new()
                } else {
                    grp.clone()
                };
                last_group = Some(grp);
                cells.push(Cell::from(Span::styled(safe_owned(&label), t.header)));
            }
            let hist = app.traffic.get(&h.name);
            let traffic = match hist {
                Some(hist) => format!(
                    "{:>5} {}",
                    hist.current().map(rate).unwrap_or_default(),
                    sparkline(hist.total.iter().copied(), spark_w, app.ascii),
                ),
                None => String::new(),
            };
            // A host drawn from the stored snapshot says so, with its age, until it answers.
            let (label, style) = match app.stale.get(&h.name) {
                Some(at) if matches!(state, ConnState::Pending | ConnState::Connecting) => {
                    (format!("stale {}", super::age(app.now - at)), t.warn)
                }
                _ => (state.label().to_string(), state_style(app, &state)),
            };
            cells.extend([
                Cell::from(safe_owned(&h.name)),
                Cell::from(Span::styled(label, style)),
            ]);
            if !narrow {
                cells.extend([
                    Cell::from(Span::styled(
                        fit(&safe(&h.roles.join(",")), 10, app.ascii),
                        t.text,
                    )),
                    Cell::from(Span::styled(safe_owned(&h.segment), t.text)),
                ]);
            }
            let data = match app.stale.get(&h.name) {
                Some(at) => Cell::from(Span::styled(
                    format!("stored {}", super::age(app.now - at)),
                    t.warn,
                )),
                None => Cell::from(Span::styled(
                    app.data_time(&h.name)
                        .map(|at| super::age(app.now - at))
                        .unwrap_or_default(),
                    t.muted,
                )),
            };
            cells.extend([
                match score {
                    Some(s) => Cell::from(Span::styled(format!("{s:>4}"), score_style(app, s))),
                    None => Cell::from(Span::styled(format!("{:>4}", "-"), t.muted)),
                },
                count_cell(app, counts[0], Severity::Critical),
                count_cell(app, counts[1], Severity::High),
                count_cell(app, counts[2], Severity::Medium),
                count_cell(app, counts[3], Severity::Low),
            ]);
            cells.push(if narrow {
                data
            } else {
                Cell::from(Span::styled(traffic, t.sparkline))
            });
            Row::new(cells)
        })
        .collect();
    let group_label = match app.group {
        Grouping::None => String::new(),
        Grouping::Role => "by role".into(),
        Grouping::Segment => "by segment".into(),
    };
    let n = body.len();
    let table = Table::new(body, widths).header(Row::new(header).style(header_style(app)));
    let title = title(app, Pane::Fleet, n, &group_label);
    let empty = (n == 0).then_some("no host matches");
    draw_table(frame, app, Pane::Fleet, table, title, area, empty);
}

pub(super) fn posture(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(58), Constraint::Fill(1)]).areas(area);
    let rows = app.posture_rows();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(18),
        Constraint::Length(3),
        Constraint::Fill(1),
    ];
    let header = Row::new(["SEVERITY", "HOST", "CHECK", "FIX", "FINDING"]).style(header_style(app));
    let body: Vec<Row> = rows
        .iter()
        .filter_map(|i| app.findings.get(*i))
        .map(|f| {
            let sev = if f.is_waived() {
                Cell::from(Span::styled("waived", t.waived))
            } else {
                Cell::from(Span::styled(f.severity.as_str(), t.severity(f.severity)))
            };
            let fix = match &f.fix {
                Some(_) if app.fixes_disabled(&f.host) => {
                    Cell::from(Span::styled("ro", t.fix_disabled))
                }
                Some(_) => Cell::from(Span::styled("fix", t.fix_mark)),
                None => Cell::from(Span::styled(g.none, t.muted)),
            };
            let text_style = if f.is_waived() { t.waived } else { t.text };
            Row::new([
                sev,
                Cell::from(Span::styled(safe_owned(&f.host), text_style)),
                Cell::from(Span::styled(
                    fit(&safe(&f.check), 18, app.ascii),
                    text_style,
                )),
                fix,
                Cell::from(Span::styled(safe_owned(&f.title), text_style)),
            ])
        })
        .collect();
    let scope = match &app.posture_host {
        Some(h) => format!("host {}", safe(h)),
        None => "whole fleet".into(),
    };
    let n = body.len();
    let waived = rows
        .iter()
        .filter(|i| app.findings.get(**i).is_some_and(|f| f.is_waived()))
        .count();
    let extra = if waived > 0 {
        format!("{scope}, {waived} waived")
    } else {
        scope
    };
    let table = Table::new(body, widths).header(header);
    let title = title(app, Pane::Posture, n, &extra);
    let empty = (n == 0).then_some(if app.findings.is_empty() {
        "no findings yet (waiting for the first collection)"
    } else {
        "no finding matches"
    });
    draw_table(frame, app, Pane::Posture, table, title, list, empty);

    // The selected finding in full.
    let mut lines: Vec<Line> = Vec::new();
    let mut head = Line::default();
    if let Some(f) = app.selected_finding() {
        head = Line::from(vec![
            Span::styled(format!(" {} ", safe(&f.check)), t.title),
            Span::styled(format!("on {} ", safe(&f.host)), t.muted),
        ]);
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", f.severity.as_str()), t.severity(f.severity)),
            Span::styled(safe_owned(&f.title), t.text),
        ]));
        if !f.why.is_empty() {
            lines.push(Line::from(vec![
                Span::styled("why: ", t.header),
                Span::styled(safe_owned(&f.why), t.text),
            ]));
        }
        if let Some(w) = &f.waived {
            lines.push(Line::from(vec![
                Span::styled("waived: ", t.waived),
                Span::styled(
                    format!(
                        "{} (expires {}, {})",
                        safe(&w.justification),
                        safe(&w.expires),
                        safe(&w.source)
                    ),
                    t.waived,
                ),
            ]));
        }
        match &f.fix {
            Some(fix) => {
                let params: Vec<String> = f
                    .fix_params
                    .iter()
                    .map(|(k, v)| format!("{}={}", safe(k), safe(v)))
                    .collect();
                let p = if params.is_empty() {
                    String::new()
                } else {
                    format!(" {}", params.join(" "))
                };
                let key = app.keymap.key_for(crate::tui::keymap::Action::Fix);
                if app.fixes_disabled(&f.host) {
                    lines.push(Line::from(vec![
                        Span::styled("fix: ", t.header),
                        Span::styled(format!("{}{p}", safe(fix)), t.fix_disabled),
                        Span::styled("  disabled: read-only", t.error),
                    ]));
                } else {
                    lines.push(Line::from(vec![
                        Span::styled("fix: ", t.header),
                        Span::styled(format!("{}{p}", safe(fix)), t.fix_mark),
                        Span::styled(format!("  press {key}"), t.muted),
                    ]));
                }
            }
            None => lines.push(Line::from(vec![
                Span::styled("fix: ", t.header),
                Span::styled("none in the catalogue", t.muted),
            ])),
        }
        if !f.evidence.is_empty() {
            lines.push(Line::styled("evidence:", t.header));
            for e in &f.evidence {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {} ", g.bullet), t.muted),
                    Span::styled(safe_owned(e), t.text),
                ]));
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, head, false)),
        detail,
    );
}

pub(super) fn alerts(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let rows = app.alert_rows();
    let widths = [
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let header = Row::new(["LAST SEEN", "SEVERITY", "HOST", "ALERT", "STATE", "SUMMARY"])
        .style(header_style(app));
    let body: Vec<Row> = rows
        .iter()
        .filter_map(|i| app.alerts.get(*i))
        .map(|a| {
            let (state, style) = if a.is_silenced(app.now) {
                ("silenced".to_string(), t.muted)
            } else if a.acknowledged {
                ("acked".to_string(), t.muted)
            } else if a.count > 1 {
                (format!("new x{}", a.count), t.warn)
            } else {
                ("new".to_string(), t.warn)
            };
            let quiet = a.acknowledged || a.is_silenced(app.now);
            let text = if quiet { t.muted } else { t.text };
            Row::new([
                Cell::from(Span::styled(when(a.last_seen, app.now), text)),
                Cell::from(Span::styled(a.severity.as_str(), t.severity(a.severity))),
                Cell::from(Span::styled(safe_owned(&a.host), text)),
                Cell::from(Span::styled(fit(&safe(&a.kind), 16, app.ascii), text)),
                Cell::from(Span::styled(state, style)),
                Cell::from(Span::styled(safe_owned(&a.summary), text)),
            ])
        })
        .collect();
    let n = body.len();
    let open = app
        .alerts
        .iter()
        .filter(|a| !a.acknowledged && !a.is_silenced(app.now))
        .count();
    let table = Table::new(body, widths).header(header);
    let title = title(app, Pane::Alerts, n, &format!("{open} open"));
    let empty = (n == 0).then_some("no alerts");
    draw_table(frame, app, Pane::Alerts, table, title, area, empty);
}

pub(super) fn traffic(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [list, flows] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
    let rows = app.traffic_rows();
    let name_w = app
        .hosts
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 16) as u16;
    let widths = [
        Constraint::Length(name_w),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let spark_w = usize::from(
        list.width
            .saturating_sub(2 + 2 + name_w + 6 + 6 + 6 + 5 + 5 + 6 + 7),
    )
    .clamp(4, HISTORY_LEN);
    let header = Row::new([
        "HOST", "RX/s", "TX/s", "PKT/s", "ERR", "DROP", "CONN/s", "HISTORY",
    ])
    .style(header_style(app));
    let body: Vec<Row> = rows
        .iter()
        .filter_map(|i| app.hosts.get(*i))
        .map(|h| {
            let hist = app.traffic.get(&h.name);
            let last = hist.and_then(|x| x.last.as_ref());
            let ifaces = || {
                last.into_iter()
                    .flat_map(|l| l.interfaces.iter())
                    .filter(|i| i.name != "lo")
            };
            let sum =
                |f: &dyn Fn(&crate::state::InterfaceRates) -> f64| -> f64 { ifaces().map(f).sum() };
            let cell = |s: String| Cell::from(Span::styled(s, t.text));
            if last.is_none() {
                let mut cells = vec![Cell::from(safe_owned(&h.name))];
                cells.extend((0..6).map(|_| Cell::from(Span::styled("-", t.muted))));
                cells.push(Cell::from(Span::styled("no samples yet", t.muted)));
                return Row::new(cells);
            }
            let errors = sum(&|i| i.errors);
            let drops = sum(&|i| i.dropped);
            Row::new([
                Cell::from(safe_owned(&h.name)),
                cell(rate(sum(&|i| i.rx_bytes))),
                cell(rate(sum(&|i| i.tx_bytes))),
                cell(per_sec(sum(&|i| i.rx_packets + i.tx_packets))),
                Cell::from(Span::styled(
                    per_sec(errors),
                    if errors > 0.0 { t.bad } else { t.muted },
                )),
                Cell::from(Span::styled(
                    per_sec(drops),
                    if drops > 0.0 { t.warn } else { t.muted },
                )),
                cell(
                    last.and_then(|l| l.tcp.as_ref())
                        .map_or_else(|| "-".into(), |tcp| per_sec(tcp.passive_opens)),
                ),
                Cell::from(Span::styled(
                    hist.map(|x| sparkline(x.total.iter().copied(), spark_w, app.ascii))
                        .unwrap_or_default(),
                    t.sparkline,
                )),
            ])
        })
        .collect();
    let n = body.len();
    let table = Table::new(body, widths).header(header);
    let title = title(app, Pane::Traffic, n, "rates per second");
    draw_table(frame, app, Pane::Traffic, table, title, list, None);

    // Lower area: the selected host's interfaces, and room for the live flow view.
    let sel = app.selected_fleet_host(Pane::Traffic);
    let [ifaces, flow] =
        Layout::horizontal([Constraint::Length(44), Constraint::Fill(1)]).areas(flows);
    let mut lines = Vec::new();
    if let Some(h) = sel
        && let Some(last) = app.traffic.get(&h.name).and_then(|x| x.last.as_ref())
    {
        lines.push(Line::styled(
            format!(
                "{:<10} {:>7} {:>7} {:>6} {:>6}",
                "IFACE", "RX/s", "TX/s", "ERR", "DROP"
            ),
            t.header,
        ));
        for i in &last.interfaces {
            lines.push(Line::styled(
                format!(
                    "{:<10} {:>7} {:>7} {:>6} {:>6}",
                    fit(&safe(&i.name), 10, app.ascii),
                    rate(i.rx_bytes),
                    rate(i.tx_bytes),
                    per_sec(i.errors),
                    per_sec(i.dropped)
                ),
                t.text,
            ));
        }
        if let Some(tcp) = &last.tcp {
            lines.push(Line::styled(
                format!(
                    "tcp opens/s in {} out {}, fails {}",
                    per_sec(tcp.passive_opens),
                    per_sec(tcp.active_opens),
                    per_sec(tcp.attempt_fails),
                ),
                t.muted,
            ));
        }
    }
    let iface_title = match sel {
        Some(h) => Line::styled(format!(" interfaces: {} ", safe(&h.name)), t.title),
        None => Line::styled(" interfaces ", t.title),
    };
    frame.render_widget(
        Paragraph::new(lines).block(block(app, iface_title, false)),
        ifaces,
    );
    let enter = app.keymap.key_for(crate::tui::keymap::Action::Enter);
    let back = app.keymap.key_for(crate::tui::keymap::Action::Back);
    let flow_lines = match (&app.flow_host, &app.flows) {
        (Some(h), Some((fh, snap))) if fh == h => flow_view(app, h, snap, &back),
        (Some(h), _) => vec![
            Line::styled(format!("live flows of {}", safe(h)), t.text),
            Line::styled(
                "waiting for the capture (top sources, ports, new connections/s)",
                t.muted,
            ),
            Line::styled(format!("{back}: stop the capture"), t.muted),
        ],
        (None, _) => vec![Line::styled(
            format!("{enter}: live flows of the selected host"),
            t.muted,
        )],
    };
    frame.render_widget(
        Paragraph::new(flow_lines)
            .wrap(Wrap { trim: true })
            .block(block(app, Line::styled(" flows ", t.title), false)),
        flow,
    );
}

/// The live flow view: rates, handshake counts, top sources and ports side by side, then
/// the largest flows. Text only, so it degrades to whatever height is left.
fn flow_view<'a>(
    app: &App,
    host: &str,
    s: &crate::traffic::FlowSnapshot,
    back: &str,
) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut v = vec![
        Line::styled(
            format!(
                "{}: {} pkt/s {}/s  new conn/s {}  SYN {} SYN-ACK {}  unanswered SYN/s {}",
                safe(host),
                per_sec(s.packets_per_sec),
                rate(s.bytes_per_sec),
                per_sec(s.new_connections_per_sec),
                s.syn,
                s.syn_ack,
                per_sec(s.unanswered_syn_per_sec),
            ),
            t.text,
        ),
        Line::styled(
            format!(
                "{:<26} {:>7} {:>8}   {:<12} {:>6}",
                "TOP SOURCES", "PKTS", "BYTES", "TOP PORTS", "NEW"
            ),
            t.header,
        ),
    ];
    let n = s.top_sources.len().max(s.top_dst_ports.len()).min(5);
    for i in 0..n {
        let left = s.top_sources.get(i).map_or_else(
            || format!("{:<26} {:>7} {:>8}", "", "", ""),
            |(ip, p, b)| {
                format!(
                    "{:<26} {:>7} {:>8}",
                    fit(&ip.to_string(), 26, app.ascii),
                    p,
                    rate(*b as f64)
                )
            },
        );
        let right = s
            .top_dst_ports
            .get(i)
            .map_or_else(String::new, |(proto, port, c)| {
                format!("{:<12} {:>6}", format!("{port}/{proto}"), c)
            });
        v.push(Line::styled(format!("{left}   {right}"), t.text));
    }
    v.push(Line::styled(
        format!(
            "{:<5} {:<22} {:<22} {:>6} {:>8} {}",
            "PROTO", "CLIENT", "SERVER", "PKTS", "BYTES", "STATE"
        ),
        t.header,
    ));
    for f in s.top_flows.iter().take(8) {
        let state = f.tcp.map_or_else(String::new, |st| {
            serde_json::to_value(st)
                .ok()
                .and_then(|x| x.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        v.push(Line::styled(
            format!(
                "{:<5} {:<22} {:<22} {:>6} {:>8} {}",
                f.proto,
                fit(&format!("{}:{}", f.client, f.client_port), 22, app.ascii),
                fit(&format!("{}:{}", f.server, f.server_port), 22, app.ascii),
                f.packets,
                rate(f.bytes as f64),
                state
            ),
            t.text,
        ));
    }
    v.push(Line::styled(
        format!(
            "{} flows tracked, {} evicted, {} not IP, {} undecodable; {back}: stop the capture",
            s.flows_tracked, s.flows_evicted, s.not_ip_total, s.decode_errors_total
        ),
        t.muted,
    ));
    v
}
