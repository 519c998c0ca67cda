//! The hardening score: 0 to 100 per host and for the fleet, explainable line by line.
//!
//! A host starts at 100 and each un-waived finding costs a fixed number of points by severity
//! (critical 25, high 15, medium 8, low 3, info 0), never below 0. The fleet's score is the
//! mean of its hosts' scores, less the points of fleet-wide findings. Waived findings cost
//! nothing and are listed as waived. Unreachable hosts have no score (they are reported apart).

use serde::{Deserialize, Serialize};

use super::{FLEET, Finding, Severity};

/// Points a finding of each severity costs.
pub fn weight(s: Severity) -> u32 {
    match s {
        Severity::Critical => 25,
        Severity::High => 15,
        Severity::Medium => 8,
        Severity::Low => 3,
        Severity::Info => 0,
    }
}

/// A score and the lines that explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: u32,
    /// `(check, title, points)` for every finding that cost points.
    pub breakdown: Vec<(String, String, u32)>,
}

/// The score of one host from its findings (other hosts' findings are ignored).
pub fn host_score(host: &str, findings: &[Finding]) -> Score {
    let mut breakdown = Vec::new();
    let mut lost = 0u32;
    for f in findings.iter().filter(|f| f.host == host && !f.is_waived()) {
        let w = weight(f.severity);
        if w > 0 {
            breakdown.push((f.check.clone(), f.title.clone(), w));
        }
        lost = lost.saturating_add(w);
    }
    Score {
        score: 100u32.saturating_sub(lost),
        breakdown,
    }
}

/// The fleet's score: the mean of the given host scores, less fleet-wide findings.
pub fn fleet_score(host_scores: &[u32], findings: &[Finding]) -> Score {
    let mean = if host_scores.is_empty() {
        100
    } else {
        let sum: u64 = host_scores.iter().map(|s| u64::from(*s)).sum();
        (sum as f64 / host_scores.len() as f64).round() as u32
    };
    let fleet = host_score(FLEET, findings);
    let lost = 100 - fleet.score;
    Score {
        score: mean.saturating_sub(lost),
        breakdown: fleet.breakdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_explain_themselves() {
        let mut f = vec![
            Finding::new("FW-NONE", "a", "no firewall"),
            Finding::new("SSH-PASSWORD-AUTH", "a", "passwords"),
            Finding::new("FW-STALE-RULE", "b", "stale"),
            Finding::new("MON-ALERTING-MISSING", FLEET, "none"),
        ];
        let a = host_score("a", &f);
        assert_eq!(a.score, 60);
        assert_eq!(a.breakdown.len(), 2);
        assert_eq!(host_score("b", &f).score, 97);
        assert_eq!(host_score("c", &f).score, 100);
        let fleet = fleet_score(&[60, 97], &f);
        assert_eq!(fleet.score, 79 - 3);
        // A waived finding costs nothing.
        f[0].waived = Some(super::super::WaiverRef {
            justification: "x".into(),
            expires: "2099-01-01".into(),
            source: "w.toml:1".into(),
        });
        assert_eq!(host_score("a", &f).score, 85);
        // Never below zero.
        let many: Vec<Finding> = (0..10)
            .map(|i| Finding::new("FW-NONE", "z", format!("{i}")))
            .collect();
        assert_eq!(host_score("z", &many).score, 0);
    }
}
