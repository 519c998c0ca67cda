//! The posture engine: the check catalogue, findings, scores and waivers.
//!
//! Checks are pure functions of the fleet's typed state and the inventory's policy; this module
//! never connects to anything and never builds commands. A *check* produces *findings*; a
//! *fix* (see `fix/`) resolves them.

mod catalogue;
pub mod checks;
pub mod cloud;
pub mod score;
pub mod stack;
pub mod waivers;

use serde::{Deserialize, Serialize};

pub use catalogue::{CATALOGUE, CheckInfo, check_info};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn all() -> [Severity; 5] {
        [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ]
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "{other:?} is not a severity (info, low, medium, high, critical)"
            )),
        }
    }
}

/// The host a finding is about, or the whole fleet.
pub const FLEET: &str = "fleet";

/// One finding: a check that fired on a host (or on the fleet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable check ID, e.g. `FW-EXPOSED-PORT`.
    pub check: String,
    pub severity: Severity,
    /// Host name, or [`FLEET`].
    pub host: String,
    /// One line saying what is wrong, specific to this host (`5432/tcp open to 0.0.0.0/0`).
    pub title: String,
    /// The exact rule, socket, setting or value seen, and where it came from.
    pub evidence: Vec<String>,
    /// One line on why it matters.
    pub why: String,
    /// The fix that resolves it, when one exists.
    pub fix: Option<String>,
    /// Parameters the fix needs (e.g. `port=5432`), so one key can apply it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fix_params: Vec<(String, String)>,
    /// Set when a waiver covers this finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<WaiverRef>,
}

impl Finding {
    /// A finding of `check` with its catalogue severity, why and fix.
    pub fn new(check: &str, host: &str, title: impl Into<String>) -> Finding {
        let info = check_info(check);
        Finding {
            check: check.to_string(),
            severity: info.map_or(Severity::Medium, |i| i.severity),
            host: host.to_string(),
            title: title.into(),
            evidence: Vec::new(),
            why: info.map_or_else(String::new, |i| i.why.to_string()),
            fix: info.and_then(|i| i.fix).map(str::to_string),
            fix_params: Vec::new(),
            waived: None,
        }
    }

    pub fn evidence(mut self, e: impl Into<String>) -> Finding {
        self.evidence.push(e.into());
        self
    }

    pub fn severity(mut self, s: Severity) -> Finding {
        self.severity = s;
        self
    }

    pub fn param(mut self, k: &str, v: impl Into<String>) -> Finding {
        self.fix_params.push((k.to_string(), v.into()));
        self
    }

    pub fn no_fix(mut self) -> Finding {
        self.fix = None;
        self
    }

    /// A stable key for deduplication and diffing: check, host and title.
    pub fn key(&self) -> String {
        format!("{}|{}|{}", self.check, self.host, self.title)
    }

    pub fn is_waived(&self) -> bool {
        self.waived.is_some()
    }
}

/// Which waiver covered a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaiverRef {
    pub justification: String,
    pub expires: String,
    /// `file:line` of the waiver.
    pub source: String,
}

/// The result of an audit: what every report format renders. Versioned: bump
/// [`REPORT_SCHEMA_VERSION`] on any incompatible change and document it in the README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    /// The inventory file audited.
    pub inventory: String,
    pub hosts: Vec<HostReport>,
    /// Every finding, waived ones included (with `waived` set), most severe first.
    pub findings: Vec<Finding>,
    pub fleet_score: score::Score,
    /// Waivers that no longer apply because they expired (`file:line: check host (expired DATE)`).
    #[serde(default)]
    pub expired_waivers: Vec<String>,
    /// The severity at or above which the audit fails.
    pub fail_on: Severity,
}

/// Version of the JSON report's schema.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One host in an audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub roles: Vec<String>,
    /// True when the host was reached and collected.
    pub reachable: bool,
    /// Why not, or which collectors failed (`host via bastion: stage: reason`).
    #[serde(default)]
    pub errors: Vec<String>,
    /// Absent for an unreachable host.
    pub score: Option<score::Score>,
    /// A short summary of the state (firewall managers, listeners, fail2ban, VPN...), as
    /// `key -> value` strings.
    #[serde(default)]
    pub summary: std::collections::BTreeMap<String, String>,
}

impl AuditReport {
    /// Un-waived findings at or above `fail_on`.
    pub fn failing(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| !f.is_waived() && f.severity >= self.fail_on)
    }

    /// The audit's exit status: 3 when some host was not reached or collected (it wins), 1
    /// when an un-waived finding is at or above `fail_on`, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.hosts.iter().any(|h| !h.reachable) {
            3
        } else if self.failing().next().is_some() {
            1
        } else {
            0
        }
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2026-11-24T14:05:00Z`).
pub fn fmt_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::fmt_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::fmt_time(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::fmt_time(951_782_400), "2000-02-29T00:00:00Z");
    }
}
