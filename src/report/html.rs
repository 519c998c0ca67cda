//! The HTML report: one self-contained file an auditor can read offline and print. Inline
//! CSS only; no scripts, fonts, images or links to anything outside the file (a
//! Content-Security-Policy meta tag forbids them too); every value is HTML-escaped.

use std::fmt::Write;

use super::escape::html as h;
use super::{counts, fails, findings_for, sections, verdict};
use crate::posture::{AuditReport, FLEET, Severity};

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:72em;color:#1b1f23;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.6em 0}
th,td{border:1px solid #d0d7de;padding:.35em .55em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right}
code,.mono{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;font-size:.92em;white-space:pre-wrap;word-break:break-word}
.sev{display:inline-block;padding:.05em .5em;border-radius:.8em;font-weight:600;font-size:.85em}
.critical{background:#82071e;color:#fff}.high{background:#cf222e;color:#fff}
.medium{background:#bf8700;color:#fff}.low{background:#0969da;color:#fff}.info{background:#6e7781;color:#fff}
tr.waived td{color:#6e7781;background:#f6f8fa}
.verdict{font-size:1.15em;font-weight:700;padding:.5em .8em;border-radius:.3em}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#82071e}.incomplete{background:#fff8c5;color:#7d4e00}
.muted{color:#6e7781}
ul.evidence{margin:0;padding-left:1.1em}
@media print{body{margin:0;max-width:none}}
";

fn sev_badge(s: Severity) -> String {
    format!("<span class=\"sev {s}\">{s}</span>")
}

pub fn render(report: &AuditReport) -> Result<String, std::fmt::Error> {
    let mut o = String::new();
    writeln!(o, "<!DOCTYPE html>")?;
    writeln!(o, "<html lang=\"en\">")?;
    writeln!(o, "<head>")?;
    writeln!(o, "<meta charset=\"utf-8\">")?;
    writeln!(
        o,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    )?;
    writeln!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        o,
        "<title>rampart audit: {} ({})</title>",
        h(&report.inventory),
        h(&report.generated_at)
    )?;
    writeln!(o, "<style>{STYLE}</style>")?;
    writeln!(o, "</head>")?;
    writeln!(o, "<body>")?;
    writeln!(o, "<h1>rampart audit report</h1>")?;
    let class = match report.exit_code() {
        0 => "pass",
        1 => "fail",
        _ => "incomplete",
    };
    writeln!(
        o,
        "<p class=\"verdict {class}\">{}</p>",
        h(&verdict(report))
    )?;
    writeln!(o, "<table>")?;
    writeln!(
        o,
        "<tr><th>Inventory</th><td class=\"mono\">{}</td></tr>",
        h(&report.inventory)
    )?;
    writeln!(
        o,
        "<tr><th>Generated</th><td>{}</td></tr>",
        h(&report.generated_at)
    )?;
    writeln!(
        o,
        "<tr><th>Tool</th><td>{} {} (report schema {})</td></tr>",
        h(&report.tool),
        h(&report.tool_version),
        report.schema_version
    )?;
    writeln!(
        o,
        "<tr><th>Fleet score</th><td><strong>{}/100</strong></td></tr>",
        report.fleet_score.score
    )?;
    writeln!(
        o,
        "<tr><th>Fails on</th><td>{} and above</td></tr>",
        sev_badge(report.fail_on)
    )?;
    writeln!(o, "</table>")?;

    writeln!(o, "<h2>Findings by severity</h2>")?;
    writeln!(
        o,
        "<table><tr><th>Severity</th><th>Findings</th><th>Waived</th></tr>"
    )?;
    for (s, n, w) in counts(report) {
        writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{w}</td></tr>",
            sev_badge(s)
        )?;
    }
    writeln!(o, "</table>")?;

    writeln!(o, "<h2>Hosts</h2>")?;
    writeln!(
        o,
        "<table><tr><th>Host</th><th>Address</th><th>Roles</th><th>Reachable</th><th>Score</th><th>Findings</th><th>Errors</th></tr>"
    )?;
    for host in &report.hosts {
        let n = report
            .findings
            .iter()
            .filter(|f| f.host == host.name)
            .count();
        let roles: Vec<String> = host.roles.iter().map(|r| h(r)).collect();
        let errors: Vec<String> = host
            .errors
            .iter()
            .map(|e| format!("<div class=\"mono\">{}</div>", h(e)))
            .collect();
        writeln!(
            o,
            "<tr><td><a id=\"host-{}\"></a><strong>{}</strong></td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{n}</td><td>{}</td></tr>",
            anchor(&host.name),
            h(&host.name),
            h(&host.address),
            roles.join(", "),
            if host.reachable {
                "yes"
            } else {
                "<strong>no</strong>"
            },
            host.score
                .as_ref()
                .map_or_else(|| "–".to_string(), |s| format!("{}/100", s.score)),
            errors.concat()
        )?;
    }
    writeln!(o, "</table>")?;

    writeln!(o, "<h2>Findings</h2>")?;
    for name in sections(report) {
        let host = report.hosts.iter().find(|x| x.name == name);
        if name == FLEET {
            writeln!(o, "<h3>Fleet-wide</h3>")?;
        } else {
            writeln!(o, "<h3>{}</h3>", h(&name))?;
        }
        if let Some(hr) = host
            && !hr.summary.is_empty()
        {
            let s: Vec<String> = hr
                .summary
                .iter()
                .map(|(k, v)| format!("<strong>{}</strong>: {}", h(k), h(v)))
                .collect();
            writeln!(o, "<p class=\"muted\">{}</p>", s.join("; "))?;
        }
        let findings = findings_for(report, &name);
        if findings.is_empty() {
            let msg = if host.is_some_and(|x| !x.reachable) {
                "Not audited (unreachable)."
            } else {
                "No findings."
            };
            writeln!(o, "<p>{msg}</p>")?;
        } else {
            writeln!(
                o,
                "<table><tr><th>Severity</th><th>Check</th><th>Finding</th><th>Evidence</th><th>Why it matters</th><th>Fix</th><th>Status</th></tr>"
            )?;
            for f in findings {
                let evidence: Vec<String> = f
                    .evidence
                    .iter()
                    .map(|e| format!("<li class=\"mono\">{}</li>", h(e)))
                    .collect();
                let status = match &f.waived {
                    Some(w) => format!(
                        "waived until {} (<span class=\"mono\">{}</span>): {}",
                        h(&w.expires),
                        h(&w.source),
                        h(&w.justification)
                    ),
                    None if fails(report, f) => "<strong>failing</strong>".to_string(),
                    None => "open".to_string(),
                };
                let fix = match &f.fix {
                    Some(x) => {
                        let params: Vec<String> = f
                            .fix_params
                            .iter()
                            .map(|(k, v)| format!("{}={}", h(k), h(v)))
                            .collect();
                        if params.is_empty() {
                            format!("<code>{}</code>", h(x))
                        } else {
                            format!("<code>{}</code> ({})", h(x), params.join(", "))
                        }
                    }
                    None => "–".to_string(),
                };
                writeln!(
                    o,
                    "<tr{}><td>{}</td><td><code>{}</code></td><td>{}</td><td><ul class=\"evidence\">{}</ul></td><td>{}</td><td>{fix}</td><td>{status}</td></tr>",
                    if f.is_waived() {
                        " class=\"waived\""
                    } else {
                        ""
                    },
                    sev_badge(f.severity),
                    h(&f.check),
                    h(&f.title),
                    evidence.concat(),
                    h(&f.why),
                )?;
            }
            writeln!(o, "</table>")?;
        }
        if let Some(s) = host.and_then(|x| x.score.as_ref()) {
            write!(o, "<p>Score <strong>{}/100</strong>", s.score)?;
            if !s.breakdown.is_empty() {
                let parts: Vec<String> = s
                    .breakdown
                    .iter()
                    .map(|(c, t, p)| format!("−{p} <code>{}</code> ({})", h(c), h(t)))
                    .collect();
                write!(o, " = 100 {}", parts.join(" "))?;
            }
            writeln!(o, "</p>")?;
        }
    }
    if !report.fleet_score.breakdown.is_empty() {
        writeln!(
            o,
            "<p>Fleet score <strong>{}/100</strong>: the mean of the host scores, less fleet-wide findings:</p><ul>",
            report.fleet_score.score
        )?;
        for (c, t, p) in &report.fleet_score.breakdown {
            writeln!(o, "<li>−{p} <code>{}</code> ({})</li>", h(c), h(t))?;
        }
        writeln!(o, "</ul>")?;
    }
    if !report.expired_waivers.is_empty() {
        writeln!(o, "<h2>Expired waivers</h2><ul>")?;
        for w in &report.expired_waivers {
            writeln!(o, "<li class=\"mono\">{}</li>", h(w))?;
        }
        writeln!(o, "</ul>")?;
    }
    writeln!(o, "</body>")?;
    writeln!(o, "</html>")?;
    Ok(o)
}

/// An `id` attribute value from a host name: ASCII alphanumerics and `-`, others as `_XX`.
fn anchor(name: &str) -> String {
    let mut s = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("_{b:02x}"));
        }
    }
    s
}
