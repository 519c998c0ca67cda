//! The fix dialog: host, fix, exact commands, risk, confirmation, then progress and result.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{block, centered};
use crate::tui::app::{App, FixDialog, FixStage};
use crate::tui::model::{FixPlan, Risk};
use crate::tui::text::{safe, safe_owned};

fn risk_style(app: &App, r: Risk) -> ratatui::style::Style {
    let t = &app.theme;
    match r {
        Risk::Low => t.low,
        Risk::Medium => t.medium,
        Risk::High => t.critical,
    }
}

/// The plan in words: steps, what is saved, rules and admitted ports before → after, the
/// lockout guard, the rollback timer.
fn words<'a>(app: &App, plan: &FixPlan, lines: &mut Vec<Line<'a>>) {
    let t = &app.theme;
    let d = &plan.description;
    let section = |lines: &mut Vec<Line<'a>>, title: &str, items: &[String], style| {
        if items.is_empty() {
            return;
        }
        lines.push(Line::styled(title.to_string(), t.header));
        for i in items {
            lines.push(Line::styled(format!("  {}", safe(i)), style));
        }
    };
    section(lines, "steps:", &d.steps, t.text);
    if let Some(s) = &d.saved {
        lines.push(Line::from(vec![
            Span::styled("saved first: ", t.header),
            Span::styled(safe_owned(s), t.text),
        ]));
    }
    let removed: Vec<String> = d.rules_removed.iter().map(|r| format!("- {r}")).collect();
    let added: Vec<String> = d.rules_added.iter().map(|r| format!("+ {r}")).collect();
    let mut rules = d
        .policies
        .iter()
        .map(|p| format!("policy {p}"))
        .collect::<Vec<_>>();
    rules.extend(removed);
    rules.extend(added);
    section(lines, "firewall rules, before → after:", &rules, t.text);
    section(lines, "admitted, before → after:", &d.admitted, t.warn);
    section(lines, "lockout guard:", &d.guard, t.ok);
    if let Some(r) = &d.rollback {
        lines.push(Line::from(vec![
            Span::styled("rollback timer: ", t.header),
            Span::styled(safe_owned(r), t.text),
        ]));
    }
}

fn plan_lines<'a>(app: &App, plan: &FixPlan, raw: bool, lines: &mut Vec<Line<'a>>) {
    let t = &app.theme;
    lines.push(Line::from(vec![
        Span::styled("host: ", t.header),
        Span::styled(safe_owned(&plan.host), t.text),
        Span::styled("   fix: ", t.header),
        Span::styled(safe_owned(&plan.fix), t.text),
        Span::styled("   risk: ", t.header),
        Span::styled(plan.risk.label(), risk_style(app, plan.risk)),
    ]));
    if !plan.params.is_empty() {
        let p: Vec<String> = plan
            .params
            .iter()
            .map(|(k, v)| format!("{}={}", safe(k), safe(v)))
            .collect();
        lines.push(Line::from(vec![
            Span::styled("params: ", t.header),
            Span::styled(p.join(" "), t.text),
        ]));
    }
    if !raw && *plan.description != crate::fix::plan::Description::default() {
        words(app, plan, lines);
        return;
    }
    lines.push(Line::styled(
        "commands, exactly as they will be sent:",
        t.header,
    ));
    for (i, c) in plan.commands.iter().enumerate() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>3} ", i + 1), t.muted),
            Span::styled(safe_owned(c), t.input),
        ]));
    }
    for n in &plan.notes {
        lines.push(Line::styled(format!("note: {}", safe(n)), t.muted));
    }
}

/// The line saying how to switch between the plan in words and the exact commands.
fn switch_hint<'a>(app: &App, d: &FixDialog) -> Line<'a> {
    let t = &app.theme;
    Line::from(vec![
        Span::styled("Tab", t.key),
        Span::styled(
            if d.raw {
                " the plan in words  "
            } else {
                " the exact commands  "
            },
            t.muted,
        ),
        Span::styled("↑↓ PgUp PgDn", t.key),
        Span::styled(" scroll", t.muted),
    ])
}

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect, d: &FixDialog) {
    let t = &app.theme;
    let mut lines: Vec<Line> = Vec::new();
    let mut footer: Vec<Line> = Vec::new();
    match &d.stage {
        FixStage::Planning => {
            lines.push(Line::from(vec![
                Span::styled("host: ", t.header),
                Span::styled(safe_owned(&d.host), t.text),
                Span::styled("   fix: ", t.header),
                Span::styled(safe_owned(&d.fix), t.text),
            ]));
            lines.push(Line::styled(
                "planning: checking preconditions and the lockout guard…",
                t.muted,
            ));
            footer.push(Line::styled("Esc cancel (nothing has been sent)", t.muted));
        }
        FixStage::Confirm { plan, typed } => {
            plan_lines(app, plan, d.raw, &mut lines);
            footer.push(switch_hint(app, d));
            if plan.risk == Risk::High {
                footer.push(Line::styled(
                    "this fix can cut access; a rollback is armed on the host first",
                    t.warn,
                ));
                footer.push(Line::from(vec![
                    Span::styled("type the host name to confirm: ", t.header),
                    Span::styled(safe_owned(typed), t.input),
                    Span::styled("_", t.input),
                    Span::styled("   Enter apply, Esc cancel", t.muted),
                ]));
            } else {
                footer.push(Line::from(vec![
                    Span::styled("apply? ", t.header),
                    Span::styled("y", t.key),
                    Span::styled("/Enter apply, ", t.muted),
                    Span::styled("n", t.key),
                    Span::styled("/Esc cancel", t.muted),
                ]));
            }
        }
        FixStage::Running { plan, log } => {
            plan_lines(app, plan, d.raw, &mut lines);
            lines.push(Line::styled("progress:", t.header));
            for l in log {
                lines.push(Line::styled(safe_owned(l), t.text));
            }
            footer.push(Line::styled("running… the result will show here", t.warn));
        }
        FixStage::Done {
            plan,
            ok,
            verified,
            message,
            log,
        } => {
            if let Some(plan) = plan {
                plan_lines(app, plan, d.raw, &mut lines);
            }
            if !log.is_empty() {
                lines.push(Line::styled("progress:", t.header));
                for l in log {
                    lines.push(Line::styled(safe_owned(l), t.text));
                }
            }
            let (word, style) = match (ok, verified) {
                (true, true) => ("done, verified: the finding is gone", t.ok),
                (true, false) => ("done, NOT verified", t.warn),
                (false, _) => ("failed", t.bad),
            };
            footer.push(Line::from(vec![
                Span::styled(word, style),
                Span::styled(format!(": {}", safe(message)), t.text),
            ]));
            footer.push(Line::styled("Enter/Esc close", t.muted));
        }
    }
    let want_h = (lines.len() + footer.len() + 3) as u16;
    // Wrapped lines take more rows than there are lines: ask for a little more, the body
    // scrolls anyway. In a compact terminal the dialog takes the whole body.
    let want_h = want_h.saturating_add(want_h / 3);
    let margin = if app.compact() { 0 } else { 4 };
    let r = centered(
        area,
        area.width.saturating_sub(margin).min(110),
        want_h.max(8),
    );
    frame.render_widget(Clear, r);
    let title = Line::styled(
        format!(" fix {} on {} ", safe(&d.fix), safe(&d.host)),
        t.title,
    );
    let b = block(app, title, true).style(t.dialog);
    let inner = b.inner(r);
    frame.render_widget(b, r);
    let fh = (footer.len() as u16).min(inner.height);
    let body = Rect::new(inner.x, inner.y, inner.width, inner.height - fh);
    let foot = Rect::new(inner.x, inner.y + inner.height - fh, inner.width, fh);
    let max_scroll = lines.len().saturating_sub(usize::from(body.height));
    let scroll = d.scroll.min(max_scroll) as u16;
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body,
    );
    frame.render_widget(Paragraph::new(footer), foot);
}
