//! JUnit XML, for CI dashboards: one `<testsuite>` per host (and one for fleet-wide checks),
//! one `<testcase>` per (host, check in the catalogue).
//!
//! A test case fails when the check produced an un-waived finding at or above `fail_on`; it is
//! skipped when its only findings that would fail are waived; it errors when the host was not
//! reached (the check could not run); otherwise it passes, and findings below `fail_on` are
//! listed in its `<system-out>`.

use std::fmt::Write;

use super::escape::xml as x;
use super::{fails, ordered, sections};
use crate::posture::{AuditReport, CATALOGUE, FLEET, Finding};

enum Outcome<'a> {
    Pass(Vec<&'a Finding>),
    Fail(Vec<&'a Finding>, Vec<&'a Finding>),
    Skip(Vec<&'a Finding>),
    Error(String),
}

fn outcome<'a>(
    report: &AuditReport,
    findings: Vec<&'a Finding>,
    unreachable: Option<String>,
) -> Outcome<'a> {
    if let Some(why) = unreachable {
        return Outcome::Error(why);
    }
    let (failing, rest): (Vec<&Finding>, Vec<&Finding>) =
        findings.into_iter().partition(|f| fails(report, f));
    if !failing.is_empty() {
        Outcome::Fail(failing, rest)
    } else if rest.iter().any(|f| f.is_waived()) {
        Outcome::Skip(rest)
    } else {
        Outcome::Pass(rest)
    }
}

fn describe(f: &Finding) -> String {
    let mut s = format!("[{}] {}", f.severity, f.title);
    for e in &f.evidence {
        s.push_str("\n  evidence: ");
        s.push_str(e);
    }
    if !f.why.is_empty() {
        s.push_str("\n  why: ");
        s.push_str(&f.why);
    }
    if let Some(fix) = &f.fix {
        s.push_str("\n  fix: ");
        s.push_str(fix);
    }
    if let Some(w) = &f.waived {
        s.push_str(&format!(
            "\n  waived until {} ({}): {}",
            w.expires, w.source, w.justification
        ));
    }
    s
}

pub fn render(report: &AuditReport) -> Result<String, std::fmt::Error> {
    struct Suite {
        name: String,
        cases: Vec<(String, String)>, // (check, rendered testcase xml)
        failures: usize,
        skipped: usize,
        errors: usize,
    }
    let mut suites = Vec::new();
    let mut names = sections(report);
    // Fleet-wide checks are test cases too, even when none of them fired.
    if !names.iter().any(|n| n == FLEET) {
        names.push(FLEET.to_string());
    }
    for name in names {
        let host = report.hosts.iter().find(|h| h.name == name);
        let fleet = name == FLEET;
        let mut checks: Vec<String> = CATALOGUE
            .iter()
            .filter(|c| c.fleet == fleet)
            .map(|c| c.id.to_string())
            .collect();
        for f in report.findings.iter().filter(|f| f.host == name) {
            if !checks.contains(&f.check) {
                checks.push(f.check.clone());
            }
        }
        let unreachable = host.filter(|h| !h.reachable).map(|h| {
            if h.errors.is_empty() {
                "host not reached or collected: check not run".to_string()
            } else {
                format!(
                    "host not reached or collected: check not run: {}",
                    h.errors.join("; ")
                )
            }
        });
        let mut suite = Suite {
            name: name.clone(),
            cases: Vec::new(),
            failures: 0,
            skipped: 0,
            errors: 0,
        };
        for check in checks {
            let findings = ordered(
                report
                    .findings
                    .iter()
                    .filter(|f| f.host == name && f.check == check),
            );
            let mut c = String::new();
            let classname = format!("rampart.{}", if fleet { FLEET } else { name.as_str() });
            write!(
                c,
                "    <testcase classname=\"{}\" name=\"{}\"",
                x(&classname),
                x(&check)
            )?;
            match outcome(report, findings, unreachable.clone()) {
                Outcome::Pass(rest) if rest.is_empty() => writeln!(c, "/>")?,
                Outcome::Pass(rest) => {
                    writeln!(c, ">")?;
                    let text: Vec<String> = rest.iter().map(|f| describe(f)).collect();
                    writeln!(
                        c,
                        "      <system-out>{}</system-out>",
                        x(&format!(
                            "below --fail-on {}:\n{}",
                            report.fail_on,
                            text.join("\n")
                        ))
                    )?;
                    writeln!(c, "    </testcase>")?;
                }
                Outcome::Fail(failing, rest) => {
                    suite.failures += 1;
                    writeln!(c, ">")?;
                    let message: Vec<&str> = failing.iter().map(|f| f.title.as_str()).collect();
                    let body: Vec<String> = failing
                        .iter()
                        .chain(rest.iter())
                        .map(|f| describe(f))
                        .collect();
                    writeln!(
                        c,
                        "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                        x(&message.join("; ")),
                        failing
                            .iter()
                            .map(|f| f.severity)
                            .max()
                            .map_or("", |s| s.as_str()),
                        x(&body.join("\n"))
                    )?;
                    writeln!(c, "    </testcase>")?;
                }
                Outcome::Skip(rest) => {
                    suite.skipped += 1;
                    writeln!(c, ">")?;
                    let body: Vec<String> = rest.iter().map(|f| describe(f)).collect();
                    let why: Vec<String> = rest
                        .iter()
                        .filter_map(|f| f.waived.as_ref())
                        .map(|w| format!("waived ({}): {}", w.source, w.justification))
                        .collect();
                    writeln!(
                        c,
                        "      <skipped message=\"{}\">{}</skipped>",
                        x(&why.join("; ")),
                        x(&body.join("\n"))
                    )?;
                    writeln!(c, "    </testcase>")?;
                }
                Outcome::Error(why) => {
                    suite.errors += 1;
                    writeln!(c, ">")?;
                    writeln!(
                        c,
                        "      <error message=\"{}\" type=\"unreachable\"/>",
                        x(&why)
                    )?;
                    writeln!(c, "    </testcase>")?;
                }
            }
            suite.cases.push((check, c));
        }
        suites.push(suite);
    }

    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(|s| s.failures).sum();
    let skipped: usize = suites.iter().map(|s| s.skipped).sum();
    let errors: usize = suites.iter().map(|s| s.errors).sum();
    let mut o = String::new();
    writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        o,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" timestamp=\"{}\">",
        x(&format!("rampart audit {}", report.inventory)),
        x(&report.generated_at)
    )?;
    for s in suites {
        let host = report.hosts.iter().find(|h| h.name == s.name);
        writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
            x(&s.name),
            s.cases.len(),
            s.failures,
            s.errors,
            s.skipped,
            x(&report.generated_at),
            x(&s.name)
        )?;
        writeln!(o, "    <properties>")?;
        writeln!(
            o,
            "      <property name=\"fail-on\" value=\"{}\"/>",
            report.fail_on
        )?;
        if let Some(h) = host {
            writeln!(
                o,
                "      <property name=\"address\" value=\"{}\"/>",
                x(&h.address)
            )?;
            writeln!(
                o,
                "      <property name=\"roles\" value=\"{}\"/>",
                x(&h.roles.join(","))
            )?;
            writeln!(
                o,
                "      <property name=\"reachable\" value=\"{}\"/>",
                h.reachable
            )?;
            if let Some(sc) = &h.score {
                writeln!(o, "      <property name=\"score\" value=\"{}\"/>", sc.score)?;
            }
        } else if s.name == FLEET {
            writeln!(
                o,
                "      <property name=\"score\" value=\"{}\"/>",
                report.fleet_score.score
            )?;
        }
        writeln!(o, "    </properties>")?;
        for (_, c) in s.cases {
            o.push_str(&c);
        }
        writeln!(o, "  </testsuite>")?;
    }
    writeln!(o, "</testsuites>")?;
    Ok(o)
}
