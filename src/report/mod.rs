//! Renders an [`AuditReport`] in every report format: text for terminals, JSON (the
//! documented, versioned schema in `docs/audit-json-schema.json`), Markdown, one
//! self-contained HTML file, SARIF 2.1.0 and JUnit XML.
//!
//! Rendering is a pure function of the report: this module never connects, never reads the
//! environment (the caller decides colour from `NO_COLOR` and isatty) and never writes files.
//! Text from hosts was sanitized when it entered state, but every format escapes it again for
//! its own syntax (XML, HTML, Markdown), because a report is often read far from the tool.

mod escape;
mod html;
mod junit;
mod markdown;
mod sarif;
mod text;

use crate::posture::{AuditReport, FLEET, Finding};

pub use crate::cli::ReportFormat;

/// How to render. Only text uses colour; the caller decides it (`NO_COLOR`, isatty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colours in the text format.
    pub color: bool,
}

/// A report that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot serialize the {format} report: {source}")]
    Json {
        format: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot format the {format} report")]
    Format {
        format: &'static str,
        #[source]
        source: std::fmt::Error,
    },
}

/// Renders `report` in `format`.
pub fn render(
    report: &AuditReport,
    format: ReportFormat,
    opts: &RenderOptions,
) -> Result<String, ReportError> {
    let name = format_name(format);
    let fmt_err = |source| ReportError::Format {
        format: name,
        source,
    };
    match format {
        ReportFormat::Text => text::render(report, opts).map_err(fmt_err),
        ReportFormat::Json => json(report),
        ReportFormat::Markdown => markdown::render(report).map_err(fmt_err),
        ReportFormat::Html => html::render(report).map_err(fmt_err),
        ReportFormat::Sarif => sarif::render(report),
        ReportFormat::Junit => junit::render(report).map_err(fmt_err),
    }
}

/// The JSON report: the serde form of [`AuditReport`], pretty-printed, with a final newline.
pub fn json(report: &AuditReport) -> Result<String, ReportError> {
    let mut s = serde_json::to_string_pretty(report).map_err(|source| ReportError::Json {
        format: "json",
        source,
    })?;
    s.push('\n');
    Ok(json_safe(s))
}

/// Writes every character a terminal or a text viewer could act on (DEL, C1 controls, bidi
/// overrides; serde already escapes C0) as a JSON `\uXXXX` escape. The JSON means exactly the
/// same, but `cat report.json` can no longer be turned against whoever reads it. Such
/// characters can only occur inside strings, where the escape is valid.
fn json_safe(s: String) -> String {
    if !s.chars().any(crate::sanitize::is_dangerous) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if crate::sanitize::is_dangerous(c) {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The format's name as the CLI spells it.
pub fn format_name(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Text => "text",
        ReportFormat::Json => "json",
        ReportFormat::Markdown => "markdown",
        ReportFormat::Html => "html",
        ReportFormat::Sarif => "sarif",
        ReportFormat::Junit => "junit",
    }
}

/// The usual file extension for a format (for naming output files).
pub fn file_extension(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Text => "txt",
        ReportFormat::Json => "json",
        ReportFormat::Markdown => "md",
        ReportFormat::Html => "html",
        ReportFormat::Sarif => "sarif",
        ReportFormat::Junit => "xml",
    }
}

/// True when `f` makes the audit fail: un-waived and at or above `fail_on`.
fn fails(report: &AuditReport, f: &Finding) -> bool {
    !f.is_waived() && f.severity >= report.fail_on
}

/// Findings in report order: most severe first, then host, check and title, so output is
/// the same whatever order the checks ran in.
fn ordered<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<&'a Finding> {
    let mut v: Vec<&Finding> = findings.collect();
    v.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.title.cmp(&b.title))
    });
    v
}

/// The findings about one host (or [`FLEET`]), in report order.
fn findings_for<'a>(report: &'a AuditReport, host: &str) -> Vec<&'a Finding> {
    ordered(report.findings.iter().filter(|f| f.host == host))
}

/// Every section a report has: the audited hosts in inventory order, then any host that
/// only appears in findings, then the fleet when a fleet-wide finding exists.
fn sections(report: &AuditReport) -> Vec<String> {
    let mut names: Vec<String> = report.hosts.iter().map(|h| h.name.clone()).collect();
    for f in &report.findings {
        if f.host != FLEET && !names.contains(&f.host) {
            names.push(f.host.clone());
        }
    }
    if report.findings.iter().any(|f| f.host == FLEET) {
        names.push(FLEET.to_string());
    }
    names
}

/// One line saying how the audit ended, matching [`AuditReport::exit_code`].
fn verdict(report: &AuditReport) -> String {
    let failing = report.failing().count();
    let unreachable = report.hosts.iter().filter(|h| !h.reachable).count();
    let code = report.exit_code();
    match code {
        3 => format!(
            "INCOMPLETE: {unreachable} host{} not reached or collected; {failing} un-waived finding{} at or above {} (exit 3)",
            plural(unreachable),
            plural(failing),
            report.fail_on
        ),
        1 => format!(
            "FAIL: {failing} un-waived finding{} at or above {} (exit 1)",
            plural(failing),
            report.fail_on
        ),
        _ => format!(
            "PASS: no un-waived finding at or above {} (exit 0)",
            report.fail_on
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Counts of findings per severity, most severe first: `(severity, total, waived)`.
fn counts(report: &AuditReport) -> Vec<(crate::posture::Severity, usize, usize)> {
    crate::posture::Severity::all()
        .into_iter()
        .map(|s| {
            let of: Vec<&Finding> = report.findings.iter().filter(|f| f.severity == s).collect();
            let waived = of.iter().filter(|f| f.is_waived()).count();
            (s, of.len(), waived)
        })
        .collect()
}
