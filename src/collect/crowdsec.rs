//! CrowdSec: whether its agent runs in the host's network namespace, and the active
//! decisions of `cscli decisions list -o json` (read-only). Pure: no I/O.
//!
//! cscli prints the alerts that carry decisions, each with a `decisions` array, or `null`
//! when there are none; a flat array of decisions is accepted too.

use super::{ParseError, check_size, clean};
use crate::state::{Crowdsec, CrowdsecDecision};

const WHAT: &str = "cscli decisions list -o json";

/// The most decisions kept (a community blocklist can hold tens of thousands).
pub const MAX_DECISIONS: usize = 5000;

fn text(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => clean(s),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn decision(v: &serde_json::Value) -> Option<CrowdsecDecision> {
    let value = text(v, "value");
    if value.is_empty() {
        return None;
    }
    let scope = text(v, "scope");
    let ip = if scope.eq_ignore_ascii_case("ip") {
        value.parse().ok()
    } else {
        None
    };
    Some(CrowdsecDecision {
        id: v.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0),
        origin: text(v, "origin"),
        scenario: text(v, "scenario"),
        scope,
        value,
        ip,
        kind: text(v, "type"),
        duration: text(v, "duration"),
    })
}

/// Parses the JSON cscli prints.
pub fn parse_decisions(json: &str) -> Result<Vec<CrowdsecDecision>, ParseError> {
    check_size(WHAT, json)?;
    let t = json.trim();
    if t.is_empty() || t == "null" {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(t).map_err(|e| ParseError::new(WHAT, e.line(), e.to_string()))?;
    let Some(items) = v.as_array() else {
        return Err(ParseError::new(WHAT, 0, "not a JSON array"));
    };
    let mut out = Vec::new();
    for item in items {
        match item.get("decisions") {
            Some(serde_json::Value::Array(ds)) => out.extend(ds.iter().filter_map(decision)),
            Some(serde_json::Value::Null) => {}
            Some(_) => return Err(ParseError::new(WHAT, 0, "\"decisions\" is not an array")),
            None => out.extend(decision(item)),
        }
        if out.len() >= MAX_DECISIONS {
            out.truncate(MAX_DECISIONS);
            break;
        }
    }
    Ok(out)
}

/// Parses the probe's whole output: `### running` when the agent runs in this network
/// namespace, then `### decisions RC` and cscli's standard output (or `### decisions
/// skipped` where no agent runs); `stderr` says why cscli
/// failed, when it did.
pub fn parse_probe(text: &str, stderr: &str) -> Result<Crowdsec, ParseError> {
    check_size(WHAT, text)?;
    let mut c = Crowdsec::default();
    let mut rc: Option<i32> = None;
    let mut body = String::new();
    for line in text.lines() {
        if line.trim() == "### running" {
            c.running = true;
        } else if line.trim() == "### decisions skipped" {
            // No agent here: its decisions were not asked for.
            return Ok(c);
        } else if let Some(code) = line.strip_prefix("### decisions ") {
            rc = code.trim().parse().ok();
        } else if rc.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    match rc {
        Some(0) => c.decisions = parse_decisions(&body)?,
        // The probe's `timeout 10`, with nothing said.
        Some(124) if stderr.trim().is_empty() && body.trim().is_empty() => {
            c.error = Some("cscli gave no answer in 10 s (the local API hung?)".into());
        }
        Some(code) => {
            let first = stderr
                .lines()
                .chain(body.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output");
            let mut msg = clean(first);
            msg.truncate(300);
            c.error = Some(format!("cscli exit status {code}: {msg}"));
        }
        None => c.error = Some("cscli was not run".into()),
    }
    Ok(c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn null_means_no_decisions() {
        assert!(parse_decisions("null\n").unwrap().is_empty());
        assert!(parse_decisions("").unwrap().is_empty());
    }

    #[test]
    fn flat_decisions_and_garbage() {
        let d = parse_decisions(
            r#"[{"id":3,"origin":"cscli","scope":"Ip","value":"203.0.113.7","type":"ban","duration":"59m"}]"#,
        )
        .unwrap();
        assert_eq!(d[0].ip, Some("203.0.113.7".parse().unwrap()));
        assert!(parse_decisions("{\"a\":1}").is_err());
        assert!(parse_decisions("[{\"decisions\":7}]").is_err());
        assert!(parse_decisions("[{").is_err());
    }

    #[test]
    fn no_agent_no_cscli_call() {
        let c = parse_probe("### decisions skipped\n", "").unwrap();
        assert!(!c.running);
        assert_eq!(c.error, None);
        assert!(c.decisions.is_empty());
    }

    #[test]
    fn a_failing_cscli_is_an_error_in_state_not_a_parse_error() {
        let c = parse_probe(
            "### decisions 1\n",
            "level=fatal msg=\"unable to retrieve decisions: connection refused\"\n",
        )
        .unwrap();
        assert!(!c.running);
        assert!(c.error.unwrap().contains("connection refused"));
        // The probe's `timeout 10` ended a cscli that said nothing.
        let c = parse_probe("### running\n### decisions 124\n\n", "").unwrap();
        assert!(c.running);
        assert!(c.error.unwrap().contains("no answer in 10 s"));
    }
}
