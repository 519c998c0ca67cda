//! The Changes view's own state and actions: the drift timeline from the history, fleet-wide
//! or for one host, with the selected entry's evidence one key away.
//!
//! A newcomer changing this view reads this file and `render/changes.rs`; nothing else keeps
//! its state. The timeline itself comes from the runner ([`crate::store::timeline`]).

use crate::store::Since;
use crate::store::timeline::{Change, Timeline};

/// How far back `c` looks when no `since` is given: "what changed since yesterday".
pub const DEFAULT_SINCE: Since = Since::Ago(86_400);

/// The Changes view's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesState {
    /// What was asked for.
    pub since: Since,
    /// The latest timeline, once the runner answered.
    pub timeline: Option<Timeline>,
    /// Only this host's entries; `None` = the whole fleet.
    pub host: Option<String>,
    /// The selected row among [`ChangesState::rows`].
    pub row: usize,
    /// The selected entry's evidence is open.
    pub evidence: bool,
}

impl Default for ChangesState {
    fn default() -> Self {
        ChangesState {
            since: DEFAULT_SINCE,
            timeline: None,
            host: None,
            row: 0,
            evidence: false,
        }
    }
}

impl ChangesState {
    /// A request for the timeline since `since`, scoped to `host` (the old one is dropped).
    pub fn ask(&mut self, since: Since, host: Option<String>) {
        *self = ChangesState {
            since,
            host,
            ..ChangesState::default()
        };
    }

    /// The answer arrived.
    pub fn arrived(&mut self, t: Timeline) {
        self.timeline = Some(t);
        self.row = 0;
        self.evidence = false;
    }

    /// Indexes into the timeline's changes, in scope.
    pub fn rows(&self) -> Vec<usize> {
        let Some(t) = &self.timeline else {
            return Vec::new();
        };
        (0..t.changes.len())
            .filter(|i| {
                self.host
                    .as_ref()
                    .is_none_or(|h| t.changes.get(*i).is_some_and(|c| &c.host == h))
            })
            .collect()
    }

    /// The selected row, clamped.
    pub fn clamped_row(&self) -> Option<usize> {
        let n = self.rows().len();
        (n > 0).then(|| self.row.min(n - 1))
    }

    pub fn selected(&self) -> Option<&Change> {
        let rows = self.rows();
        let i = *rows.get(self.clamped_row()?)?;
        self.timeline.as_ref()?.changes.get(i)
    }

    /// Moves the selection by `delta` rows (closing the evidence of the old one).
    pub fn move_by(&mut self, delta: i64) {
        let n = self.rows().len() as i64;
        if n == 0 {
            return;
        }
        let cur = self.row.min(n as usize - 1) as i64;
        self.row = (cur + delta).clamp(0, n - 1) as usize;
    }

    pub fn move_to(&mut self, row: usize) {
        self.row = row.min(self.rows().len().saturating_sub(1));
    }

    /// The selected entry's host only ↔ the whole fleet.
    pub fn toggle_scope(&mut self) {
        if self.host.take().is_none() {
            self.host = self.selected().map(|c| c.host.clone());
        }
        self.row = 0;
        self.evidence = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::timeline::ChangeKind;

    fn change(host: &str, what: &str) -> Change {
        Change {
            at: 10,
            host: host.into(),
            kind: ChangeKind::PortOpened,
            what: what.into(),
            evidence: vec![format!("now listening: {what}")],
        }
    }

    #[test]
    fn scope_narrows_to_the_selected_host_and_back() {
        let mut s = ChangesState::default();
        s.arrived(Timeline {
            since: "since 1d ago".into(),
            from: None,
            to: None,
            changes: vec![
                change("web1", "80/tcp"),
                change("db1", "5432/tcp"),
                change("web1", "8080/tcp"),
            ],
            note: None,
        });
        assert_eq!(s.rows().len(), 3);
        s.move_by(1);
        assert_eq!(s.selected().map(|c| c.host.as_str()), Some("db1"));
        s.toggle_scope();
        assert_eq!(s.rows(), vec![1]);
        s.toggle_scope();
        assert_eq!(s.rows().len(), 3);
        s.move_by(10);
        assert_eq!(s.selected().map(|c| c.what.as_str()), Some("8080/tcp"));
    }
}
