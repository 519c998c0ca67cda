//! The Fleet pane's preview of the selected host: state, score, the age of its data, its
//! top findings and its alerts. Beside the table on wide terminals, under it (`p`) on
//! narrower ones.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{age, block, glyphs, score_style};
use crate::tui::app::{App, Pane};
use crate::tui::text::{fit, safe, safe_owned};

/// How many findings and alerts the preview lists.
const TOP: usize = 6;

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let Some(h) = app.selected_fleet_host(Pane::Fleet) else {
        frame.render_widget(
            Paragraph::new(Line::styled("no host selected", t.muted)).block(block(
                app,
                Line::styled(" preview ", t.title),
                false,
            )),
            area,
        );
        return;
    };
    let width = usize::from(area.width.saturating_sub(4)).max(10);
    let mut lines: Vec<Line> = Vec::new();
    let conn = app.conn_state(&h.name);
    let mut head = vec![
        Span::styled(
            format!("{} ", conn.label()),
            if conn.is_failing() { t.bad } else { t.text },
        ),
        Span::styled(safe_owned(&h.address), t.muted),
    ];
    if !h.roles.is_empty() {
        head.push(Span::styled(
            format!(" {}", safe(&h.roles.join(","))),
            t.muted,
        ));
    }
    lines.push(Line::from(head));
    let mut score_line = vec![Span::styled("score ", t.header)];
    match app.score(&h.name) {
        Some(s) => score_line.push(Span::styled(format!("{s}/100"), score_style(app, s))),
        None => score_line.push(Span::styled("-", t.muted)),
    }
    match (app.stale.get(&h.name), app.data_time(&h.name)) {
        (Some(at), _) => score_line.push(Span::styled(
            format!("  stale: stored {} ago", age(app.now - at)),
            t.warn,
        )),
        (None, Some(at)) => score_line.push(Span::styled(
            format!("  collected {} ago", age(app.now - at)),
            t.muted,
        )),
        (None, None) => score_line.push(Span::styled("  no data yet", t.muted)),
    }
    lines.push(Line::from(score_line));
    if let Some(r) = conn.reason() {
        lines.push(Line::styled(fit(&safe(r), width, app.ascii), t.bad));
    }
    let mut findings: Vec<_> = app
        .findings
        .iter()
        .filter(|f| f.host == h.name && !f.is_waived())
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.check.cmp(&b.check))
    });
    lines.push(Line::styled(
        format!("findings ({})", findings.len()),
        t.header,
    ));
    if findings.is_empty() {
        lines.push(Line::styled(format!(" {} none", g.bullet), t.muted));
    }
    for f in findings.iter().take(TOP) {
        let text = format!("{} {}", f.check, f.title);
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<8} ", f.severity.as_str()),
                t.severity(f.severity),
            ),
            Span::styled(
                fit(&safe(&text), width.saturating_sub(9), app.ascii),
                t.text,
            ),
        ]));
    }
    if findings.len() > TOP {
        lines.push(Line::styled(
            format!("  … {} more (Posture, w: this host)", findings.len() - TOP),
            t.muted,
        ));
    }
    let alerts: Vec<_> = app.alerts.iter().filter(|a| a.host == h.name).collect();
    lines.push(Line::styled(format!("alerts ({})", alerts.len()), t.header));
    if alerts.is_empty() {
        lines.push(Line::styled(format!(" {} none", g.bullet), t.muted));
    }
    for a in alerts.iter().take(TOP) {
        let text = format!("{} {}", a.kind, a.summary);
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<8} ", a.severity.as_str()),
                t.severity(a.severity),
            ),
            Span::styled(
                fit(&safe(&text), width.saturating_sub(9), app.ascii),
                t.text,
            ),
        ]));
    }
    let title = Line::styled(format!(" preview: {} ", safe(&h.name)), t.title);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(app, title, false)),
        area,
    );
}
