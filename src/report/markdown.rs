//! The Markdown report (GitHub-flavoured tables), for pull requests, tickets and wikis.

use std::fmt::Write;

use super::escape::markdown as md;
use super::{counts, fails, findings_for, sections, verdict};
use crate::posture::{AuditReport, FLEET};

pub fn render(report: &AuditReport) -> Result<String, std::fmt::Error> {
    let mut o = String::new();
    writeln!(o, "# rampart audit report")?;
    writeln!(o)?;
    writeln!(o, "| | |")?;
    writeln!(o, "|---|---|")?;
    writeln!(o, "| Inventory | {} |", md(&report.inventory))?;
    writeln!(o, "| Generated | {} |", md(&report.generated_at))?;
    writeln!(
        o,
        "| Tool | {} {} (report schema {}) |",
        md(&report.tool),
        md(&report.tool_version),
        report.schema_version
    )?;
    writeln!(o, "| Fleet score | **{}/100** |", report.fleet_score.score)?;
    writeln!(o, "| Fails on | {} and above |", report.fail_on)?;
    writeln!(o, "| Result | **{}** |", md(&verdict(report)))?;
    writeln!(o)?;

    writeln!(o, "## Findings by severity")?;
    writeln!(o)?;
    writeln!(o, "| Severity | Findings | Waived |")?;
    writeln!(o, "|---|---:|---:|")?;
    for (s, n, w) in counts(report) {
        writeln!(o, "| {s} | {n} | {w} |")?;
    }
    writeln!(o)?;

    writeln!(o, "## Hosts")?;
    writeln!(o)?;
    writeln!(
        o,
        "| Host | Address | Roles | Reachable | Score | Findings | Errors |"
    )?;
    writeln!(o, "|---|---|---|---|---:|---:|---|")?;
    for h in &report.hosts {
        let n = report.findings.iter().filter(|f| f.host == h.name).count();
        let roles: Vec<String> = h.roles.iter().map(|r| md(r)).collect();
        let errors: Vec<String> = h.errors.iter().map(|e| md(e)).collect();
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {n} | {} |",
            md(&h.name),
            md(&h.address),
            roles.join(", "),
            if h.reachable { "yes" } else { "**no**" },
            h.score
                .as_ref()
                .map_or_else(|| "–".to_string(), |s| format!("{}/100", s.score)),
            errors.join("<br>")
        )?;
    }
    writeln!(o)?;

    let unreachable: Vec<_> = report.hosts.iter().filter(|h| !h.reachable).collect();
    if !unreachable.is_empty() {
        writeln!(o, "## Unreachable hosts")?;
        writeln!(o)?;
        writeln!(
            o,
            "These hosts were not audited; their findings are unknown."
        )?;
        writeln!(o)?;
        for h in unreachable {
            let errors: Vec<String> = h.errors.iter().map(|e| md(e)).collect();
            writeln!(
                o,
                "- **{}** ({}): {}",
                md(&h.name),
                md(&h.address),
                errors.join("; ")
            )?;
        }
        writeln!(o)?;
    }

    writeln!(o, "## Findings")?;
    for name in sections(report) {
        let findings = findings_for(report, &name);
        let host = report.hosts.iter().find(|h| h.name == name);
        writeln!(o)?;
        if name == FLEET {
            writeln!(o, "### Fleet-wide")?;
        } else {
            writeln!(o, "### {}", md(&name))?;
        }
        writeln!(o)?;
        if let Some(h) = host
            && !h.summary.is_empty()
        {
            let s: Vec<String> = h
                .summary
                .iter()
                .map(|(k, v)| format!("{}: {}", md(k), md(v)))
                .collect();
            writeln!(o, "State: {}", s.join("; "))?;
            writeln!(o)?;
        }
        if findings.is_empty() {
            writeln!(
                o,
                "{}",
                if host.is_some_and(|h| !h.reachable) {
                    "Not audited (unreachable)."
                } else {
                    "No findings."
                }
            )?;
        } else {
            writeln!(
                o,
                "| Severity | Check | Finding | Evidence | Why | Fix | Status |"
            )?;
            writeln!(o, "|---|---|---|---|---|---|---|")?;
            for f in findings {
                let evidence: Vec<String> = f.evidence.iter().map(|e| md(e)).collect();
                let status = match &f.waived {
                    Some(w) => format!(
                        "waived until {} ({}): {}",
                        md(&w.expires),
                        md(&w.source),
                        md(&w.justification)
                    ),
                    None if fails(report, f) => "**failing**".to_string(),
                    None => "open".to_string(),
                };
                let fix = match &f.fix {
                    Some(x) => {
                        let params: Vec<String> = f
                            .fix_params
                            .iter()
                            .map(|(k, v)| format!("{}={}", md(k), md(v)))
                            .collect();
                        if params.is_empty() {
                            md(x)
                        } else {
                            format!("{} ({})", md(x), params.join(", "))
                        }
                    }
                    None => "–".to_string(),
                };
                writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {fix} | {status} |",
                    f.severity,
                    md(&f.check),
                    md(&f.title),
                    evidence.join("<br>"),
                    md(&f.why),
                )?;
            }
        }
        if let Some(s) = host.and_then(|h| h.score.as_ref()) {
            writeln!(o)?;
            write!(o, "Score **{}/100**", s.score)?;
            if !s.breakdown.is_empty() {
                let parts: Vec<String> = s
                    .breakdown
                    .iter()
                    .map(|(c, t, p)| format!("−{p} {} ({})", md(c), md(t)))
                    .collect();
                write!(o, " = 100 {}", parts.join(" "))?;
            }
            writeln!(o)?;
        }
    }

    if !report.fleet_score.breakdown.is_empty() {
        writeln!(o)?;
        writeln!(
            o,
            "Fleet score **{}/100**: the mean of the host scores, less fleet-wide findings:",
            report.fleet_score.score
        )?;
        for (c, t, p) in &report.fleet_score.breakdown {
            writeln!(o, "- −{p} {} ({})", md(c), md(t))?;
        }
    }

    if !report.expired_waivers.is_empty() {
        writeln!(o)?;
        writeln!(o, "## Expired waivers")?;
        writeln!(o)?;
        for w in &report.expired_waivers {
            writeln!(o, "- {}", md(w))?;
        }
    }
    Ok(o)
}
