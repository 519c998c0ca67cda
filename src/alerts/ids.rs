//! IDS alerts across collections: each collection reads only the tails of the IDS files
//! (bounded, `crate::collect::ids`); this memory counts every alert once (by its
//! identity), keeps what was seen in the last hour, bounded, and hands that window to
//! [`super::detect::ids_alerts`]. At the first collection (the baseline) only alerts whose
//! own time is known and within the hour count; the rest are marked seen.

use std::collections::{BTreeSet, VecDeque};

use super::detect::{self, Condition};
use crate::state::{IdsAlert, IdsLog};

/// How long an IDS alert keeps its rampart alert firing after it was seen.
pub const HOLD_SECS: i64 = 3600;
/// Identities remembered (older ones are forgotten first).
const MAX_SEEN: usize = 50_000;
/// Alerts kept in the window.
const MAX_RECENT: usize = 10_000;

#[derive(Debug, Default)]
pub struct IdsMemory {
    seen: BTreeSet<String>,
    order: VecDeque<String>,
    recent: VecDeque<(i64, IdsAlert, String)>,
    baseline_done: bool,
}

fn identity(path: &str, a: &IdsAlert) -> String {
    format!(
        "{path}|{}|{}:{}:{}|{:?}:{:?}|{:?}:{:?}|{}",
        a.timestamp, a.gid, a.sid, a.rev, a.src, a.src_port, a.dst, a.dst_port, a.signature
    )
}

impl IdsMemory {
    /// Takes one collection's IDS files; returns the conditions that hold now.
    pub fn observe(&mut self, logs: &[IdsLog], now: i64) -> Vec<Condition> {
        for log in logs {
            for a in &log.alerts {
                let id = identity(&log.path, a);
                if !self.seen.insert(id.clone()) {
                    continue;
                }
                self.order.push_back(id);
                if self.order.len() > MAX_SEEN
                    && let Some(old) = self.order.pop_front()
                {
                    self.seen.remove(&old);
                }
                let at = if self.baseline_done {
                    now
                } else {
                    match a.time {
                        Some(t) if t >= now - HOLD_SECS && t <= now + 300 => t,
                        _ => continue,
                    }
                };
                self.recent.push_back((at, a.clone(), log.path.clone()));
                if self.recent.len() > MAX_RECENT {
                    self.recent.pop_front();
                }
            }
        }
        self.baseline_done = true;
        while self.recent.front().is_some_and(|r| r.0 < now - HOLD_SECS) {
            self.recent.pop_front();
        }
        let window: Vec<(i64, IdsAlert, String)> = self.recent.iter().cloned().collect();
        detect::ids_alerts(&window)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{IdsEngine, IdsFormat};

    fn alert(ts: &str, time: Option<i64>, sid: u64, prio: u32) -> IdsAlert {
        IdsAlert {
            engine: IdsEngine::Suricata,
            time,
            timestamp: ts.into(),
            gid: 1,
            sid,
            rev: 1,
            signature: "ET SCAN test".into(),
            category: None,
            priority: Some(prio),
            proto: Some("TCP".into()),
            src: Some("203.0.113.9".parse().unwrap()),
            src_port: Some(5555),
            dst: Some("10.0.0.1".parse().unwrap()),
            dst_port: Some(22),
            action: None,
        }
    }

    fn log(alerts: Vec<IdsAlert>) -> IdsLog {
        IdsLog {
            path: "/var/log/suricata/eve.json".into(),
            format: IdsFormat::SuricataEve,
            size: None,
            inode: None,
            cut: false,
            alerts,
            skipped: 0,
        }
    }

    #[test]
    fn baseline_keeps_only_recent_timed_alerts_then_dedupes_and_expires() {
        let mut m = IdsMemory::default();
        let now = 10_000;
        let old = alert("old", Some(now - 2 * HOLD_SECS), 1, 1);
        let untimed = alert("untimed", None, 2, 1);
        let fresh = alert("fresh", Some(now - 60), 3, 1);
        let c = m.observe(
            &[log(vec![old.clone(), untimed.clone(), fresh.clone()])],
            now,
        );
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].severity, crate::posture::Severity::High);
        // The same lines again (the tail is re-read): nothing new, still one alert.
        let c = m.observe(&[log(vec![old, untimed, fresh.clone()])], now + 10);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].summary.contains("(1 in the last hour)"),
            "{}",
            c[0].summary
        );
        // Two new events of the same rule and pair: counted into the same alert.
        let again = alert("again", None, 3, 1);
        let again2 = alert("again2", None, 3, 2);
        let c = m.observe(&[log(vec![fresh, again, again2])], now + 20);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].summary.contains("(3 in the last hour)"),
            "{}",
            c[0].summary
        );
        // An hour later with nothing new: resolved.
        let c = m.observe(&[log(vec![])], now + 20 + HOLD_SECS + 1);
        assert!(c.is_empty());
    }
}
