//! The fleet at a glance: what the summary line shows, computed from the console's state
//! in one place so the line, the tests and the preview agree. Pure.

use super::app::App;
use crate::posture::{FLEET, Severity, score};

/// The summary line's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// The fleet score over the hosts with data (fresh or stored); `None` when none has any.
    pub score: Option<u32>,
    /// The score minus the baseline's, and when the baseline was taken.
    pub trend: Option<(i64, i64)>,
    /// Un-waived critical and high findings.
    pub critical: usize,
    pub high: usize,
    /// Alerts firing (not resolved), and how many of them nobody acknowledged or silenced.
    pub firing: usize,
    pub open: usize,
    /// Hosts that could not be reached (or whose host key was refused).
    pub unreachable: usize,
    pub hosts: usize,
    /// Hosts drawn from the stored snapshot, not yet collected afresh.
    pub stale: usize,
    /// When the oldest data shown was collected (Unix seconds).
    pub oldest: Option<i64>,
    /// Hosts with no data at all yet.
    pub no_data: usize,
}

impl Summary {
    pub fn of(app: &App) -> Summary {
        let mut s = Summary {
            hosts: app.hosts.len(),
            stale: app.stale.len(),
            ..Summary::default()
        };
        for f in app.findings.iter().filter(|f| !f.is_waived()) {
            match f.severity {
                Severity::Critical => s.critical += 1,
                Severity::High => s.high += 1,
                _ => {}
            }
        }
        s.firing = app.alerts.len();
        s.open = app
            .alerts
            .iter()
            .filter(|a| !a.acknowledged && !a.is_silenced(app.now))
            .count();
        let mut scores = Vec::new();
        for h in &app.hosts {
            if app.conn_state(&h.name).is_failing() {
                s.unreachable += 1;
            }
            match app.data_time(&h.name) {
                Some(t) => s.oldest = Some(s.oldest.map_or(t, |o| o.min(t))),
                None if !app.states.contains_key(&h.name) => s.no_data += 1,
                None => {}
            }
            let has_data = app
                .states
                .get(&h.name)
                .is_some_and(|st| !st.is_unreachable());
            if has_data {
                scores.push(score::host_score(&h.name, &app.findings).score);
            }
        }
        let fleet_findings = app.findings.iter().any(|f| f.host == FLEET);
        if !scores.is_empty() || fleet_findings {
            let sc = score::fleet_score(&scores, &app.findings).score;
            s.score = Some(sc);
            if let Some((base, at)) = app.baseline {
                s.trend = Some((i64::from(sc) - i64::from(base), at));
            }
        }
        s
    }
}
