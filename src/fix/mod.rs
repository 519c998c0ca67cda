//! One-key fixes that cannot lock you out.
//!
//! Owns: the fix catalogue ([`catalogue`]), typed parameters ([`params`]), the commands of
//! each fix built from the host's typed state ([`build`]), the lockout guard on the
//! normalized firewall model ([`guard`]), the host-side rollback timer ([`rollback`]), the
//! journal ([`journal`]) and the runner that applies a plan and verifies it ([`apply`]).
//! This is the only module that builds [`crate::ssh::MutatingCommand`]s.
//!
//! Must not: send anything before the guard passed and the intent is journaled; build a
//! command from remote or inventory text (only typed values: IPs, CIDRs, ports, checked
//! names, numbers); restart a daemon that carries live sessions (sshd is reloaded); cancel a
//! rollback timer before a fresh connection re-verified the host.
//!
//! # For the console runner
//! ```no_run
//! # async fn demo(inv: &rampart::inventory::Inventory,
//! #               t: rampart::ssh::Transport<rampart::ssh::ReadWrite>,
//! #               opts: rampart::ssh::TransportOptions) -> Result<(), rampart::fix::FixError> {
//! use rampart::fix::{self, ApplyContext, Fresh, Journal};
//! // Effect::PlanFix { host, fix, params } →
//! let plan = fix::prepare(&t, inv, "db1", "fw-restrict-to-segment",
//!     &[("port".into(), "5432".into()), ("segment".into(), "app".into())]).await?;
//! let view = plan.view(false); // AppUpdate::FixPlanned(view)
//! // Effect::ApplyFix { .. } → (keep `plan`, keyed by host and fix)
//! let fresh = Fresh::Inventory(opts);
//! let journal = Journal::new(Journal::default_path());
//! let ctx = ApplyContext { inv, transport: &t, fresh: &fresh, journal: &journal };
//! let outcome = fix::apply(&ctx, &plan, &mut |p| {
//!     let _update = rampart::tui::model::FixProgress::from(p); // AppUpdate::FixProgress
//! }).await?;
//! println!("{:?}: {}", outcome.kind, outcome.message);
//! # Ok(()) }
//! ```

pub mod apply;
pub mod build;
pub mod catalogue;
pub mod guard;
pub mod journal;
pub mod params;
pub mod plan;
pub mod rollback;

use std::net::IpAddr;

pub use apply::{ApplyContext, Fresh, Outcome, Progress, apply, apply_batch};
pub use build::{Expect, Step};
pub use catalogue::{FIXES, FixSpec, Risk, fix_spec};
pub use guard::GuardSource;
pub use journal::{Journal, OutcomeKind};
pub use params::{Params, split_param};
pub use rollback::{Rollback, RollbackKind};

use crate::inventory::Inventory;
use crate::ssh::{ReadCommand, SafeName, SshError, Transport};
use crate::state::HostState;

/// Why a fix was not planned or did not complete. Each names the host and the fix.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("unknown fix {0:?} (known: {known})", known = FIXES.iter().map(|f| f.id).collect::<Vec<_>>().join(", "))]
    UnknownFix(String),
    #[error("{fix}: --param {key}: {message}")]
    Param {
        fix: String,
        key: String,
        message: String,
    },
    #[error("{host}: no such host in the inventory")]
    UnknownHost { host: String },
    #[error("{host}: {fix}: precondition not met: {reason}")]
    Precondition {
        host: String,
        fix: String,
        reason: String,
    },
    #[error("{host}: {fix}: refused by the lockout guard, nothing was sent: {detail}")]
    Lockout {
        host: String,
        fix: String,
        detail: String,
    },
    #[error("{host}: could not be collected before the fix ({reason}); nothing was sent")]
    NotCollected { host: String, reason: String },
    #[error("{host}: {fix}: refused: {reason}; nothing was sent")]
    ReadOnly {
        host: String,
        fix: String,
        reason: String,
    },
    #[error(
        "{host}: {fix}: the host changed since the plan was confirmed; plan again (nothing was sent)"
    )]
    Changed { host: String, fix: String },
    #[error("{host}: {fix}: {stage}: {source}")]
    Transport {
        host: String,
        fix: String,
        stage: &'static str,
        #[source]
        source: Box<SshError>,
    },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
}

/// The probe that tells which address this host sees rampart's connection come from (the
/// bastion's address for a host behind one). Under sudo the environment is reset, so the
/// parent's (sudo's own) environment is read instead.
pub const ACCESS_PROBE: ReadCommand = ReadCommand::new(
    "fix-access",
    "c=$SSH_CONNECTION; [ -n \"$c\" ] || c=$(tr '\\0' '\\n' < /proc/$PPID/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p'); echo \"$c\"",
);

/// Parses `SSH_CONNECTION` ("client port server port") into the client address (pure).
pub fn parse_ssh_connection(text: &str) -> Option<IpAddr> {
    let first = text.split_whitespace().next()?;
    let addr = first.split('%').next()?;
    addr.parse().ok()
}

/// The guarded sources of a host, as its sshd sees rampart's connection now.
pub async fn observe_access<M>(
    t: &Transport<M>,
    host: &str,
    fix: &str,
) -> Result<Vec<GuardSource>, FixError> {
    let out = t
        .exec(host, &ACCESS_PROBE)
        .await
        .map_err(|source| FixError::Transport {
            host: host.into(),
            fix: fix.into(),
            stage: "reading the connection's source",
            source: Box::new(source),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let via = t.via(host);
    let why = match via.last() {
        Some(b) => format!("the bastion {b}, as {host} sees it"),
        None => "rampart's own source, as the host sees it".to_string(),
    };
    Ok(parse_ssh_connection(&text)
        .map(|addr| vec![GuardSource { addr, why }])
        .unwrap_or_default())
}

/// A plan: what a fix would do on one host, exactly. Made by [`plan`] or [`prepare`],
/// shown for confirmation, then given to [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct FixPlan {
    /// This run's ID (journal, and the host's rollback directory).
    pub run: SafeName,
    pub spec: &'static FixSpec,
    pub host: String,
    /// The parameters as given.
    pub params: Vec<(String, String)>,
    pub typed: Params,
    pub risk: Risk,
    /// Armed before the first step, when the fix can cut access.
    pub rollback: Option<Rollback>,
    /// The changes, in order. Empty: the fix is already in place.
    pub steps: Vec<Step>,
    /// After re-verification over a fresh connection, before the rollback is cancelled:
    /// the steps that make the change permanent (firewalld's `--permanent`).
    pub persist: Vec<Step>,
    pub notes: Vec<String>,
    pub expect: Vec<Expect>,
    /// The sources the lockout guard protected.
    pub sources: Vec<GuardSource>,
    pub ssh_port: u16,
    /// The plan in words (steps, rules and admitted ports before → after, guard, rollback),
    /// for the person confirming it.
    pub description: plan::Description,
}

impl FixPlan {
    /// True when nothing needs to change.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every command in the order it is sent: save and arm the rollback, the changes, then
    /// (after a fresh connection re-verified) the cancel of the rollback.
    pub fn sequence(&self) -> Vec<Step> {
        let mut v = Vec::new();
        if self.is_noop() {
            return v;
        }
        if let Some(r) = &self.rollback {
            v.push(Step {
                what: format!("save the {} for the rollback", r.kind.label()),
                command: rollback::save(r.kind, &self.run),
            });
            v.push(Step {
                what: format!(
                    "arm the rollback timer: the host restores them in {} s",
                    r.secs
                ),
                command: rollback::arm(&self.run, r.secs),
            });
        }
        v.extend(self.steps.iter().cloned());
        v.extend(self.persist.iter().map(|s| Step {
            what: format!("after re-verifying over a fresh connection: {}", s.what),
            command: s.command.clone(),
        }));
        if self.rollback.is_some() {
            v.push(Step {
                what: "after re-verifying over a fresh connection: cancel the rollback timer"
                    .into(),
                command: rollback::cancel(&self.run),
            });
        }
        v
    }

    /// The exact text of every command (with `sudo` as the host's spec says), with what it
    /// does and the data it feeds on standard input.
    pub fn rendered(&self, sudo: bool) -> Vec<String> {
        self.sequence()
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let mut line = format!("{}. {}\n   {}", k + 1, s.what, s.command.render(sudo));
                if let Some(input) = s.command.stdin_bytes() {
                    if s.command.name() == "fix-rollback-save" {
                        line.push_str(&format!(
                            "\n   stdin: the restore script ({} bytes)",
                            input.len()
                        ));
                    } else {
                        line.push_str("\n   stdin:");
                        for l in String::from_utf8_lossy(input).lines() {
                            line.push_str("\n     | ");
                            line.push_str(l);
                        }
                    }
                }
                line
            })
            .collect()
    }

    /// The plan as the console's fix dialog shows it.
    pub fn view(&self, sudo: bool) -> crate::tui::model::FixPlan {
        let mut notes = self.notes.clone();
        match &self.rollback {
            Some(r) => notes.push(format!(
                "rollback timer: the host restores the {} after {} s unless rampart re-verifies over a fresh connection",
                r.kind.label(),
                r.secs
            )),
            None if !self.is_noop() => notes.push(format!("rollback: {}", self.spec.rollback)),
            None => {}
        }
        crate::tui::model::FixPlan {
            fix: self.spec.id.to_string(),
            host: self.host.clone(),
            params: self.params.clone(),
            commands: self
                .sequence()
                .iter()
                .map(|s| s.command.render(sudo))
                .collect(),
            risk: self.risk.into(),
            notes,
            description: Box::new(self.description.clone()),
        }
    }
}

impl From<Risk> for crate::tui::model::Risk {
    fn from(r: Risk) -> Self {
        match r {
            Risk::Low => crate::tui::model::Risk::Low,
            Risk::Medium => crate::tui::model::Risk::Medium,
            Risk::High => crate::tui::model::Risk::High,
        }
    }
}

/// A new run ID: time and randomness, a checked name.
pub fn new_run_id() -> Result<SafeName, FixError> {
    let secs = crate::audit::now_secs();
    let id = format!("r{secs}-{:08x}", fastrand::u32(..));
    SafeName::new(&id).map_err(|e| FixError::Param {
        fix: String::new(),
        key: "run".into(),
        message: e.to_string(),
    })
}

/// Checks a fix ID and its parameters without touching any host (for the CLI's early
/// usage errors).
pub fn check_request(fix: &str, params: &[(String, String)]) -> Result<Params, FixError> {
    let spec = fix_spec(fix).ok_or_else(|| FixError::UnknownFix(fix.into()))?;
    params::parse(spec, params)
}

/// Plans a fix on a host from its collected state (pure). `sources` are the addresses the
/// lockout guard protects (from [`observe_access`]).
pub fn plan(
    inv: &Inventory,
    state: &HostState,
    fix: &str,
    params: &[(String, String)],
    sources: &[GuardSource],
) -> Result<FixPlan, FixError> {
    plan_run(inv, state, fix, params, sources, new_run_id()?)
}

/// [`plan`] with a given run ID (re-planning at apply time keeps the confirmed one).
pub fn plan_run(
    inv: &Inventory,
    state: &HostState,
    fix: &str,
    params: &[(String, String)],
    sources: &[GuardSource],
    run: SafeName,
) -> Result<FixPlan, FixError> {
    let spec = fix_spec(fix).ok_or_else(|| FixError::UnknownFix(fix.into()))?;
    let typed = params::parse(spec, params)?;
    let host = inv.host(&state.host).ok_or_else(|| FixError::UnknownHost {
        host: state.host.clone(),
    })?;
    if state.is_unreachable() {
        let reason = state
            .errors
            .first()
            .map(|e| format!("{}: {}", e.stage, e.message))
            .unwrap_or_else(|| "unreachable".into());
        return Err(FixError::NotCollected {
            host: state.host.clone(),
            reason,
        });
    }
    let input = build::Input {
        inv,
        host,
        state,
        params: &typed,
        sources,
        now: crate::audit::now_secs(),
    };
    let b = build::build(spec, &input)?;
    let mut notes = b.notes;
    if let Some(sim) = &b.simulated
        && !b.steps.is_empty()
    {
        if sources.is_empty() {
            return Err(FixError::Lockout {
                host: host.name.clone(),
                fix: spec.id.into(),
                detail: "the address rampart connects from is unknown, so the firewall change cannot be checked".into(),
            });
        }
        match guard::check(sim, sources, b.ssh_port) {
            Ok(n) => notes.extend(n),
            Err(l) => {
                return Err(FixError::Lockout {
                    host: host.name.clone(),
                    fix: spec.id.into(),
                    detail: l.to_string(),
                });
            }
        }
    }
    if host.read_only {
        notes.push(format!(
            "{} is read_only in the inventory: this plan cannot be applied",
            host.name
        ));
    }
    let rollback = b.rollback.map(|kind| Rollback {
        kind,
        secs: typed
            .rollback_secs
            .unwrap_or(catalogue::DEFAULT_ROLLBACK_SECS),
    });
    let before = match &state.firewall {
        crate::state::Probed::Ok(fw) => Some(fw),
        _ => None,
    };
    let description = plan::describe(
        &b.steps,
        rollback.as_ref(),
        state,
        before.filter(|_| b.simulated.is_some()),
        b.simulated.as_ref(),
        sources,
        b.ssh_port,
    );
    Ok(FixPlan {
        run,
        spec,
        host: host.name.clone(),
        params: params.to_vec(),
        rollback,
        typed,
        risk: spec.risk,
        steps: b.steps,
        persist: b.persist,
        notes,
        expect: b.expect,
        sources: sources.to_vec(),
        ssh_port: b.ssh_port,
        description,
    })
}

/// Collects the host now (read-only), reads the connection's source and plans: what the
/// console runner calls for `Effect::PlanFix`.
pub async fn prepare<M>(
    t: &Transport<M>,
    inv: &Inventory,
    host: &str,
    fix: &str,
    params: &[(String, String)],
) -> Result<FixPlan, FixError> {
    check_request(fix, params)?;
    if inv.host(host).is_none() {
        return Err(FixError::UnknownHost { host: host.into() });
    }
    let state = crate::collect::collect_named(t, host).await;
    let sources = if state.is_unreachable() {
        Vec::new()
    } else {
        observe_access(t, host, fix).await?
    };
    plan(inv, &state, fix, params, &sources)
}

#[cfg(test)]
mod tests;
