//! The text report, for terminals: a header with the fleet score and counts, unreachable
//! hosts, then one section per host (findings most severe first, waived ones marked, the
//! score with its breakdown), expired waivers, and the verdict.

use std::fmt::Write;

use super::escape::{terminal as esc, terminal_line as line};
use super::{RenderOptions, counts, fails, findings_for, sections, verdict};
use crate::posture::{AuditReport, FLEET, Finding, Severity};

/// ANSI styles, chosen once so the rendering code holds no escape literals.
struct Palette {
    bold: &'static str,
    dim: &'static str,
    reset: &'static str,
    critical: &'static str,
    high: &'static str,
    medium: &'static str,
    low: &'static str,
    info: &'static str,
    pass: &'static str,
}

const COLOUR: Palette = Palette {
    bold: "\x1b[1m",
    dim: "\x1b[2m",
    reset: "\x1b[0m",
    critical: "\x1b[1;97;41m",
    high: "\x1b[1;31m",
    medium: "\x1b[33m",
    low: "\x1b[36m",
    info: "\x1b[2m",
    pass: "\x1b[1;32m",
};

const PLAIN: Palette = Palette {
    bold: "",
    dim: "",
    reset: "",
    critical: "",
    high: "",
    medium: "",
    low: "",
    info: "",
    pass: "",
};

impl Palette {
    fn severity(&self, s: Severity) -> &'static str {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

pub fn render(report: &AuditReport, opts: &RenderOptions) -> Result<String, std::fmt::Error> {
    let p = if opts.color { &COLOUR } else { &PLAIN };
    let mut o = String::new();
    writeln!(
        o,
        "{}rampart audit{} of {}",
        p.bold,
        p.reset,
        line(&report.inventory)
    )?;
    writeln!(
        o,
        "{}generated {} by {} {} (report schema {}){}",
        p.dim,
        line(&report.generated_at),
        line(&report.tool),
        line(&report.tool_version),
        report.schema_version,
        p.reset
    )?;
    writeln!(o)?;
    writeln!(
        o,
        "{}Fleet score: {}/100{}",
        p.bold, report.fleet_score.score, p.reset
    )?;
    for (check, title, points) in &report.fleet_score.breakdown {
        writeln!(o, "  -{points:<3} {} {}", line(check), line(title))?;
    }
    let total = report.findings.len();
    let waived = report.findings.iter().filter(|f| f.is_waived()).count();
    let per: Vec<String> = counts(report)
        .into_iter()
        .filter(|(_, n, _)| *n > 0)
        .map(|(s, n, _)| format!("{}{s} {n}{}", p.severity(s), p.reset))
        .collect();
    write!(o, "Findings: {total}")?;
    if !per.is_empty() {
        write!(o, " ({})", per.join(", "))?;
    }
    writeln!(
        o,
        ", {waived} waived; failing at or above {}: {}",
        report.fail_on,
        report.failing().count()
    )?;
    let unreachable: Vec<_> = report.hosts.iter().filter(|h| !h.reachable).collect();
    writeln!(
        o,
        "Hosts: {} audited, {} reachable, {} unreachable",
        report.hosts.len(),
        report.hosts.len() - unreachable.len(),
        unreachable.len()
    )?;
    if !unreachable.is_empty() {
        writeln!(o)?;
        writeln!(
            o,
            "{}UNREACHABLE (not audited: their findings are unknown){}",
            p.high, p.reset
        )?;
        for h in &unreachable {
            writeln!(o, "  {} ({})", line(&h.name), line(&h.address))?;
            for e in &h.errors {
                writeln!(o, "      {}", line(e))?;
            }
        }
    }

    for name in sections(report) {
        writeln!(o)?;
        section(&mut o, p, report, &name)?;
    }

    if !report.expired_waivers.is_empty() {
        writeln!(o)?;
        writeln!(
            o,
            "{}Expired waivers (no longer applied):{}",
            p.medium, p.reset
        )?;
        for w in &report.expired_waivers {
            writeln!(o, "  {}", line(w))?;
        }
    }
    writeln!(o)?;
    let style = match report.exit_code() {
        0 => p.pass,
        _ => p.high,
    };
    writeln!(o, "{style}{}{}", verdict(report), p.reset)?;
    Ok(o)
}

fn section(
    o: &mut String,
    p: &Palette,
    report: &AuditReport,
    name: &str,
) -> Result<(), std::fmt::Error> {
    let host = report.hosts.iter().find(|h| h.name == name);
    write!(o, "{}== {}", p.bold, line(name))?;
    if let Some(h) = host {
        write!(o, "  {}", line(&h.address))?;
        if !h.roles.is_empty() {
            let roles: Vec<String> = h.roles.iter().map(|r| line(r)).collect();
            write!(o, "  roles: {}", roles.join(", "))?;
        }
        match (&h.score, h.reachable) {
            (Some(s), _) => write!(o, "  score {}/100", s.score)?,
            (None, false) => write!(o, "  UNREACHABLE")?,
            (None, true) => {}
        }
    } else if name == FLEET {
        write!(o, "  (fleet-wide)")?;
    }
    writeln!(o, " =={}", p.reset)?;

    if let Some(h) = host {
        if !h.summary.is_empty() {
            let s: Vec<String> = h
                .summary
                .iter()
                .map(|(k, v)| format!("{}: {}", line(k), line(v)))
                .collect();
            writeln!(o, "  {}{}{}", p.dim, s.join("; "), p.reset)?;
        }
        if h.reachable {
            for e in &h.errors {
                writeln!(o, "  {}error:{} {}", p.medium, p.reset, line(e))?;
            }
        }
    }

    let findings = findings_for(report, name);
    if findings.is_empty() {
        if host.is_some_and(|h| h.reachable) {
            writeln!(o, "  no findings")?;
        }
    } else {
        for f in &findings {
            finding(o, p, report, f)?;
        }
    }
    if let Some(s) = host.and_then(|h| h.score.as_ref())
        && !s.breakdown.is_empty()
    {
        let parts: Vec<String> = s
            .breakdown
            .iter()
            .map(|(c, t, pts)| format!("-{pts} {} ({})", line(c), line(t)))
            .collect();
        writeln!(o, "  score {}/100 = 100 {}", s.score, parts.join(" "))?;
    }
    Ok(())
}

fn finding(
    o: &mut String,
    p: &Palette,
    report: &AuditReport,
    f: &Finding,
) -> Result<(), std::fmt::Error> {
    let sev = f.severity.as_str().to_ascii_uppercase();
    let indent = "             ";
    if let Some(w) = &f.waived {
        writeln!(
            o,
            "  {}WAIVED   {sev:<8} {}  {}{}",
            p.dim,
            line(&f.check),
            line(&f.title),
            p.reset
        )?;
        writeln!(
            o,
            "{indent}{}waived until {} ({}): {}{}",
            p.dim,
            line(&w.expires),
            line(&w.source),
            line(&w.justification),
            p.reset
        )?;
        return Ok(());
    }
    let mark = if fails(report, f) { "✗" } else { " " };
    writeln!(
        o,
        "  {mark} {}{sev:<8}{} {}{}{}  {}",
        p.severity(f.severity),
        p.reset,
        p.bold,
        line(&f.check),
        p.reset,
        line(&f.title)
    )?;
    for e in &f.evidence {
        let text = esc(e);
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            writeln!(o, "{indent}evidence: {first}")?;
        }
        for more in lines {
            writeln!(o, "{indent}          {more}")?;
        }
    }
    if !f.why.is_empty() {
        writeln!(o, "{indent}{}why: {}{}", p.dim, line(&f.why), p.reset)?;
    }
    if let Some(fix) = &f.fix {
        write!(o, "{indent}fix: {}", line(fix))?;
        if !f.fix_params.is_empty() {
            let params: Vec<String> = f
                .fix_params
                .iter()
                .map(|(k, v)| format!("{}={}", line(k), line(v)))
                .collect();
            write!(o, " ({})", params.join(", "))?;
        }
        writeln!(o)?;
    }
    Ok(())
}
