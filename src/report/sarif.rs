//! SARIF 2.1.0, so findings show in code-scanning UIs.
//!
//! One rule per catalogue check (plus any check a finding names that the catalogue lacks);
//! one result per finding, with a logical location naming its host and a physical location
//! naming the inventory file (code-scanning services drop results without one). Waived
//! findings carry an accepted external suppression. `partialFingerprints` hash the finding's
//! check, host and title, so the same finding keeps its identity from one run to the next.
//! Unreachable hosts and collector errors are tool execution notifications.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use super::escape::terminal as clean;
use super::{ReportError, fails, ordered, sections};
use crate::posture::{AuditReport, CATALOGUE, Finding, Severity};

/// Where the SARIF 2.1.0 schema lives (OASIS, errata 01).
pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The key of our partial fingerprint; bump the version if its input ever changes.
pub const FINGERPRINT_KEY: &str = "rampartFinding/v1";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (a CVSS-like score it buckets into critical/high/medium/low).
fn security_severity(s: Severity) -> Option<&'static str> {
    match s {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("3.0"),
        Severity::Info => None,
    }
}

/// Stable across runs: only the check, host and title go in.
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha1::new();
    h.update(f.check.as_bytes());
    h.update([0u8]);
    h.update(f.host.as_bytes());
    h.update([0u8]);
    h.update(f.title.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A URI reference for a file path: percent-encodes everything but unreserved characters
/// and `/`; an absolute path becomes a `file://` URI.
fn path_uri(path: &str) -> String {
    let mut s = String::new();
    if path.starts_with('/') {
        s.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn rule(
    id: &str,
    title: &str,
    why: &str,
    severity: Severity,
    fix: Option<&str>,
    fleet: bool,
) -> Value {
    let category = id.split('-').next().unwrap_or(id);
    let help = match fix {
        Some(x) => format!("{why} Fix: {x} (rampart fix catalogue)."),
        None => format!("{why} No automatic fix; resolve it by hand."),
    };
    let mut props = json!({
        "severity": severity.as_str(),
        "tags": ["security", category, if fleet { "fleet" } else { "host" }],
    });
    if let (Some(ss), Some(obj)) = (security_severity(severity), props.as_object_mut()) {
        obj.insert("security-severity".to_string(), json!(ss));
    }
    json!({
        "id": id,
        "name": id,
        "shortDescription": { "text": clean(title) },
        "fullDescription": { "text": clean(why) },
        "help": { "text": clean(&help) },
        "defaultConfiguration": { "level": level(severity) },
        "properties": props,
    })
}

pub fn render(report: &AuditReport) -> Result<String, ReportError> {
    let mut rules = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    for c in CATALOGUE {
        rule_index.insert(c.id.to_string(), rules.len());
        rules.push(rule(c.id, c.title, c.why, c.severity, c.fix, c.fleet));
    }
    for f in &report.findings {
        if !rule_index.contains_key(&f.check) {
            rule_index.insert(f.check.clone(), rules.len());
            rules.push(rule(
                &f.check,
                &f.check,
                &f.why,
                f.severity,
                f.fix.as_deref(),
                false,
            ));
        }
    }

    let hosts = sections(report);
    let host_index: BTreeMap<&str, usize> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let logical = |host: &str| -> Value {
        let mut v =
            json!({ "name": clean(host), "fullyQualifiedName": clean(host), "kind": "resource" });
        if let (Some(i), Some(obj)) = (host_index.get(host), v.as_object_mut()) {
            obj.insert("index".to_string(), json!(i));
        }
        v
    };
    let logical_locations: Vec<Value> = hosts
        .iter()
        .map(|h| json!({ "name": clean(h), "fullyQualifiedName": clean(h), "kind": "resource" }))
        .collect();
    let inventory_uri = path_uri(&report.inventory);

    let results: Vec<Value> = ordered(report.findings.iter())
        .into_iter()
        .map(|f| {
            let mut props = json!({
                "severity": f.severity.as_str(),
                "host": clean(&f.host),
                "evidence": f.evidence.iter().map(|e| clean(e)).collect::<Vec<_>>(),
                "why": clean(&f.why),
                "failing": fails(report, f),
            });
            if let Some(obj) = props.as_object_mut() {
                if let Some(fix) = &f.fix {
                    obj.insert("fix".to_string(), json!(clean(fix)));
                }
                if !f.fix_params.is_empty() {
                    let params: BTreeMap<String, String> = f
                        .fix_params
                        .iter()
                        .map(|(k, v)| (clean(k), clean(v)))
                        .collect();
                    obj.insert("fixParams".to_string(), json!(params));
                }
            }
            let mut text = format!("{}: {}", clean(&f.host), clean(&f.title));
            if let Some(e) = f.evidence.first() {
                text.push_str(&format!(" (evidence: {})", clean(e)));
            }
            let mut r = json!({
                "ruleId": f.check,
                "ruleIndex": rule_index.get(&f.check).copied().unwrap_or(0),
                "level": level(f.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": inventory_uri } },
                    "logicalLocations": [logical(&f.host)],
                }],
                "partialFingerprints": { FINGERPRINT_KEY: fingerprint(f) },
                "properties": props,
            });
            if let (Some(w), Some(obj)) = (&f.waived, r.as_object_mut()) {
                obj.insert(
                    "suppressions".to_string(),
                    json!([{
                        "kind": "external",
                        "status": "accepted",
                        "justification": format!(
                            "{} (waiver {}, expires {})",
                            clean(&w.justification),
                            clean(&w.source),
                            clean(&w.expires)
                        ),
                    }]),
                );
            }
            r
        })
        .collect();

    let mut notifications = Vec::new();
    for h in &report.hosts {
        let lvl = if h.reachable { "warning" } else { "error" };
        let prefix = if h.reachable {
            "collector error"
        } else {
            "host not reached or collected; not audited"
        };
        if !h.reachable && h.errors.is_empty() {
            notifications.push(json!({
                "level": lvl,
                "message": { "text": format!("{}: {prefix}", clean(&h.name)) },
                "locations": [{ "logicalLocations": [logical(&h.name)] }],
            }));
        }
        for e in &h.errors {
            notifications.push(json!({
                "level": lvl,
                "message": { "text": format!("{}: {prefix}: {}", clean(&h.name), clean(e)) },
                "locations": [{ "logicalLocations": [logical(&h.name)] }],
            }));
        }
    }
    for w in &report.expired_waivers {
        notifications.push(json!({
            "level": "warning",
            "message": { "text": format!("expired waiver, no longer applied: {}", clean(w)) },
        }));
    }

    let log = json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": clean(&report.tool),
                    "version": clean(&report.tool_version),
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": report.hosts.iter().all(|h| h.reachable),
                "exitCode": report.exit_code(),
                "endTimeUtc": report.generated_at,
                "toolExecutionNotifications": notifications,
            }],
            "logicalLocations": logical_locations,
            "results": results,
            "properties": {
                "reportSchemaVersion": report.schema_version,
                "inventory": clean(&report.inventory),
                "fleetScore": report.fleet_score.score,
                "failOn": report.fail_on.as_str(),
                "expiredWaivers": report.expired_waivers.iter().map(|w| clean(w)).collect::<Vec<_>>(),
            },
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).map_err(|source| ReportError::Json {
        format: "sarif",
        source,
    })?;
    s.push('\n');
    Ok(super::json_safe(s))
}
