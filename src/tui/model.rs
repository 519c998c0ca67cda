//! The messages that cross the console's edge: [`AppUpdate`] comes in from whoever gathers
//! (collectors, the alert engine, the fix runner), [`Effect`] goes back out to them. Also the
//! small view structs the panes read until the modules that own those concepts land
//! (connection state, alerts, fix plans).
//!
//! Nothing here does I/O; these are plain values.

use crate::posture::{Finding, Severity};
use crate::state::{CounterRates, HostState};

/// Where the console's connection to one host stands.
///
/// A view of the transport's per-host state: the `ssh` module publishes its own type, and the
/// wiring in `main.rs` maps it onto this one, so the console does not depend on transport
/// internals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Not tried yet.
    #[default]
    Pending,
    /// Connecting (through the bastion when there is one).
    Connecting,
    /// Connected; collection running or done.
    Ok,
    /// An established connection dropped; the transport is trying again.
    Reconnecting { attempt: u32, reason: String },
    /// Could not be reached; the reason names the hop and stage.
    Unreachable { reason: String },
    /// The host key was not the one known; nothing was sent.
    HostKeyRefused { reason: String },
}

impl ConnState {
    /// The word shown in tables.
    pub fn label(&self) -> &'static str {
        match self {
            ConnState::Pending => "pending",
            ConnState::Connecting => "connecting",
            ConnState::Ok => "ok",
            ConnState::Reconnecting { .. } => "reconnecting",
            ConnState::Unreachable { .. } => "unreachable",
            ConnState::HostKeyRefused { .. } => "hostkey!",
        }
    }

    /// True for the states that mean "this host is in trouble".
    pub fn is_failing(&self) -> bool {
        matches!(
            self,
            ConnState::Unreachable { .. } | ConnState::HostKeyRefused { .. }
        )
    }

    /// The reason, for failing states.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ConnState::Unreachable { reason }
            | ConnState::HostKeyRefused { reason }
            | ConnState::Reconnecting { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<&crate::ssh::transport::ConnState> for ConnState {
    /// The transport's per-host state, as the console shows it.
    fn from(s: &crate::ssh::transport::ConnState) -> Self {
        use crate::ssh::transport::ConnState as T;
        match s {
            T::Idle => ConnState::Pending,
            T::Connecting | T::Authenticating => ConnState::Connecting,
            T::Ready { .. } => ConnState::Ok,
            T::Reconnecting { attempt, reason } => ConnState::Reconnecting {
                attempt: *attempt,
                reason: reason.clone(),
            },
            T::Failed { reason } => ConnState::Unreachable {
                reason: reason.clone(),
            },
            T::HostKeyRefused {
                fingerprint,
                location,
                reason,
            } => ConnState::HostKeyRefused {
                reason: match location {
                    Some(l) => format!("{reason} ({fingerprint}, {l})"),
                    None => format!("{reason} ({fingerprint})"),
                },
            },
        }
    }
}

/// An alert as the Alerts pane shows it. The alert engine (issue 8) owns the real thing; this
/// is the view it is mapped to.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable ID for deduplication, e.g. `HOST-UNREACHABLE:web1`.
    pub id: String,
    /// Kind of alert, e.g. `HOST-UNREACHABLE`, `DRIFT-NEW-PORT`.
    pub kind: String,
    pub host: String,
    pub severity: Severity,
    pub summary: String,
    /// Unix seconds.
    pub first_seen: i64,
    /// Unix seconds.
    pub last_seen: i64,
    pub count: u32,
    pub acknowledged: bool,
    /// Unix seconds; silenced while `now < silenced_until`.
    pub silenced_until: Option<i64>,
}

impl Alert {
    /// True while a silence covers the alert at `now`.
    pub fn is_silenced(&self, now: i64) -> bool {
        self.silenced_until.is_some_and(|t| now < t)
    }
}

/// How much a fix can hurt if it goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    /// Can cut access (firewall, sshd): the operator types the host name to confirm.
    High,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// What a fix would do on one host, computed by the fix module and passed in for confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct FixPlan {
    /// The fix ID, e.g. `fw-enable-default-deny`.
    pub fix: String,
    pub host: String,
    /// Parameters the plan was built from.
    pub params: Vec<(String, String)>,
    /// The exact commands, in order, as they will be sent.
    pub commands: Vec<String>,
    pub risk: Risk,
    /// Notes from planning (rollback timer armed, lockout guard result...).
    pub notes: Vec<String>,
    /// The plan in words: what the dialog shows first (the commands are one key away).
    /// (Boxed: it is large, and updates travel by value.)
    pub description: Box<crate::fix::plan::Description>,
}

/// The last stored snapshot of the fleet, as the console draws it before collecting.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// When it was taken, Unix seconds.
    pub taken_at: i64,
    /// What took it ("audit", "console").
    pub source: String,
    /// The hosts' states as stored (hosts no longer in the inventory are left out).
    pub states: Vec<HostState>,
    pub findings: Vec<Finding>,
}

/// Progress of a running fix, reported by the fix runner.
#[derive(Debug, Clone, PartialEq)]
pub enum FixProgress {
    /// A step started ("arming rollback", "running 2/4", "re-verifying").
    Step { message: String },
    /// A line of output from the host.
    Output { line: String },
    /// The fix ended. `verified` is true when a re-collection shows the finding gone.
    Finished {
        ok: bool,
        verified: bool,
        message: String,
    },
    /// The fix was refused before anything was sent (lockout guard, read-only transport).
    Refused { reason: String },
}

/// One typed update from the gathering side. The console "eats" these one at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum AppUpdate {
    /// A host's connection state changed.
    Connection { host: String, state: ConnState },
    /// A host's state was collected.
    HostState(Box<HostState>),
    /// Findings were recomputed for the whole fleet (replaces the previous set).
    Findings(Vec<Finding>),
    /// New counter rates for a host (one sample of its traffic history).
    Traffic { host: String, rates: CounterRates },
    /// An alert fired or fired again (same `id`: updated in place).
    AlertRaised(Alert),
    /// The alert's condition cleared.
    AlertResolved { id: String },
    /// A refresh of the fleet began, at Unix seconds `at`.
    RefreshStarted { at: i64 },
    /// The refresh ended.
    RefreshFinished { at: i64 },
    /// The plan for a requested fix (answer to [`Effect::PlanFix`]): opens the dialog.
    FixPlanned(FixPlan),
    /// The planner could not build a plan (precondition not met, unknown fix).
    FixPlanFailed {
        host: String,
        fix: String,
        reason: String,
    },
    /// Progress of the running fix.
    FixProgress(FixProgress),
    /// The wall clock, Unix seconds (the event loop sends its own; tests inject a fixed one).
    Clock { now: i64 },
    /// A message for the status line (sink failures, warnings).
    Message(String),
    /// The health of every alert sink (Alertmanager, webhooks), sent when it changes; the
    /// status bar shows the failing ones.
    SinkHealth(Vec<crate::alerts::SinkStatus>),
    /// The last snapshot stored in the history, sent once at start before any host answers:
    /// drawn at once, each host marked stale with its age until fresh state replaces it.
    Stored(Box<Stored>),
    /// The fleet score the trend compares with (from the history), and when it was taken.
    Baseline { score: u32, at: i64 },
    /// The drift timeline from the history (answer to [`Effect::Changes`]).
    Changes(Box<crate::store::timeline::Timeline>),
    /// The latest summary of a host's live capture (answer to [`Effect::FlowView`]), about
    /// once a second while the flow view is open.
    Flows {
        host: String,
        snapshot: Box<crate::traffic::FlowSnapshot>,
    },
}

/// What the console asks its runner to do. The console never does it itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    /// Re-collect every host now.
    Refresh,
    /// Build the plan for a fix; the answer comes back as [`AppUpdate::FixPlanned`].
    PlanFix {
        host: String,
        fix: String,
        params: Vec<(String, String)>,
    },
    /// The operator confirmed the plan: apply it.
    ApplyFix {
        host: String,
        fix: String,
        params: Vec<(String, String)>,
    },
    /// The operator acknowledged an alert.
    AcknowledgeAlert {
        id: String,
    },
    /// The operator silenced an alert until Unix seconds `until`.
    SilenceAlert {
        id: String,
        until: i64,
    },
    /// Read the drift timeline from the history, since a duration ago or a snapshot.
    Changes {
        since: crate::store::Since,
    },
    /// Start (`Some`) or stop (`None`) the live flow view of a host.
    FlowView {
        host: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::transport::ConnState as T;

    #[test]
    fn transport_states_map_onto_the_view() {
        assert_eq!(ConnState::from(&T::Idle), ConnState::Pending);
        assert_eq!(ConnState::from(&T::Authenticating), ConnState::Connecting);
        assert_eq!(
            ConnState::from(&T::Ready { strict_kex: true }),
            ConnState::Ok
        );
        let failed = ConnState::from(&T::Failed {
            reason: "db1 via edge: connect: timed out".into(),
        });
        assert!(failed.is_failing());
        assert_eq!(failed.reason(), Some("db1 via edge: connect: timed out"));
        let refused = ConnState::from(&T::HostKeyRefused {
            fingerprint: "SHA256:abc".into(),
            location: Some("known_hosts:3".into()),
            reason: "changed".into(),
        });
        assert_eq!(
            refused,
            ConnState::HostKeyRefused {
                reason: "changed (SHA256:abc, known_hosts:3)".into()
            }
        );
        let again = ConnState::from(&T::Reconnecting {
            attempt: 2,
            reason: "eof".into(),
        });
        assert!(!again.is_failing());
        assert_eq!(again.label(), "reconnecting");
    }
}
