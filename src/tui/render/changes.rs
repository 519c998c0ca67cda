//! The Changes view: the drift timeline (newest first), fleet-wide or for one host, with
//! the selected entry's evidence under it (Enter).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};

use super::{block, glyphs, header_style};
use crate::tui::keymap::Action;
use crate::tui::text::{clock, date, fit, safe, safe_owned};

pub(super) fn draw(frame: &mut Frame, app: &crate::tui::app::App, area: Rect) {
    let t = &app.theme;
    let g = glyphs(app.ascii);
    let c = &app.changes;
    let scope = match &c.host {
        Some(h) => format!("host {}", safe(h)),
        None => "whole fleet".into(),
    };
    let rows = c.rows();
    let since = c.timeline.as_ref().map_or_else(
        || crate::store::timeline::since_label(&c.since),
        |tl| tl.since.clone(),
    );
    let title = Line::from(vec![
        Span::styled(" Changes ", t.title),
        Span::styled(format!("[{}] {since}, {scope} ", rows.len()), t.muted),
    ]);
    let (list, detail) = if c.evidence {
        let [a, b] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    let narrow = list.width < crate::tui::app::FULL_WIDTH;
    let mut widths = vec![Constraint::Length(11)];
    if !narrow {
        widths.push(Constraint::Length(8));
    }
    widths.extend([Constraint::Length(16), Constraint::Fill(1)]);
    let mut header = vec!["WHEN"];
    if !narrow {
        header.push("HOST");
    }
    header.extend(["CHANGE", "WHAT"]);
    let body: Vec<Row> = match &c.timeline {
        None => Vec::new(),
        Some(tl) => rows
            .iter()
            .filter_map(|i| tl.changes.get(*i))
            .map(|ch| {
                let when = if date(ch.at) == date(app.now) {
                    clock(ch.at)
                } else {
                    date(ch.at)
                };
                let style = if ch.kind.is_worse() { t.warn } else { t.ok };
                let mut cells = vec![Cell::from(Span::styled(when, t.muted))];
                if !narrow {
                    cells.push(Cell::from(safe_owned(&ch.host)));
                }
                let what = if narrow {
                    format!("{} {}", ch.host, ch.what)
                } else {
                    ch.what.clone()
                };
                cells.extend([
                    Cell::from(Span::styled(ch.kind.label(), style)),
                    Cell::from(Span::styled(safe_owned(&what), t.text)),
                ]);
                Row::new(cells)
            })
            .collect(),
    };
    let n = body.len();
    let table = Table::new(body, widths)
        .header(Row::new(header).style(header_style(app)))
        .block(block(app, title, true))
        .row_highlight_style(t.selected)
        .highlight_symbol(g.select);
    let mut state = TableState::default().with_selected(c.clamped_row());
    frame.render_stateful_widget(table, list, &mut state);
    if n == 0 {
        let text = match &c.timeline {
            None => "reading the history…".to_string(),
            Some(tl) => tl
                .note
                .clone()
                .unwrap_or_else(|| "no changes in this window".to_string()),
        };
        let inset = u16::from(!app.compact());
        if list.height > 2 + inset {
            let r = Rect::new(
                list.x + 2 * inset,
                list.y + 2,
                list.width.saturating_sub(4 * inset),
                1,
            );
            frame.render_widget(
                Paragraph::new(Span::styled(
                    fit(&text, usize::from(r.width), app.ascii),
                    t.muted,
                )),
                r,
            );
        }
    }
    if let Some(area) = detail {
        let mut lines = Vec::new();
        if let Some(ch) = c.selected() {
            lines.push(Line::from(vec![
                Span::styled(format!("{} ", ch.kind.label()), t.header),
                Span::styled(
                    format!("on {} at {} {}", safe(&ch.host), date(ch.at), clock(ch.at)),
                    t.muted,
                ),
            ]));
            for e in &ch.evidence {
                lines.push(Line::from(vec![
                    Span::styled(format!(" {} ", g.bullet), t.muted),
                    Span::styled(safe_owned(e), t.text),
                ]));
            }
        }
        let back = app.keymap.key_for(Action::Back);
        let head = Line::from(vec![
            Span::styled(" evidence ", t.title),
            Span::styled(format!("({back} closes) "), t.muted),
        ]);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, head, false)),
            area,
        );
    }
}
