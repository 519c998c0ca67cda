//! Applying a confirmed plan: re-read the host and re-plan (refuse if anything changed),
//! journal the intent, arm the rollback, run the steps, re-verify by re-collecting (over a
//! fresh connection through the bastion when a rollback is armed), then cancel the rollback
//! or let the host restore itself. Progress is reported through a callback, one
//! [`Progress`] at a time; the journal records every command and the outcome.

use std::time::{Duration, Instant};

use super::build::{Expect, Step, remaining};
use super::journal::{Journal, OutcomeKind, Record, local_user};
use super::{FixError, FixPlan, guard, observe_access, plan_run, rollback};
use crate::collect::collect_named;
use crate::inventory::Inventory;
use crate::posture::checks::{CheckOptions, check_host};
use crate::ssh::{
    ExecOutput, HostSpec, ReadWrite, SshError, Transport, TransportOptions, WriteGrant,
};
use crate::state::{HostState, Probed};

/// How to open a fresh connection (new transport, new connection to the bastion too) for
/// re-verification. Never the pool the fix was sent through: a connection that survived
/// the change proves nothing about the next one.
#[derive(Debug, Clone)]
pub enum Fresh {
    /// `Transport::new(inventory, options)`.
    Inventory(TransportOptions),
    /// `Transport::from_specs(specs, options)` (tests, tools).
    Specs(Vec<HostSpec>, TransportOptions),
}

impl Fresh {
    pub fn connect(&self, inv: &Inventory) -> Result<Transport, SshError> {
        match self {
            Fresh::Inventory(o) => Transport::new(inv, o.clone()),
            Fresh::Specs(s, o) => Transport::from_specs(s.clone(), o.clone()),
        }
    }
}

/// What [`apply`] needs.
pub struct ApplyContext<'a> {
    pub inv: &'a Inventory,
    /// The pool the fix is sent through; its type is the proof that writing was granted.
    pub transport: &'a Transport<ReadWrite>,
    pub fresh: &'a Fresh,
    pub journal: &'a Journal,
}

/// Progress of a running fix (the console's `FixProgress`).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Step {
        message: String,
    },
    Output {
        line: String,
    },
    Finished {
        ok: bool,
        verified: bool,
        message: String,
    },
    Refused {
        reason: String,
    },
}

impl From<Progress> for crate::tui::model::FixProgress {
    fn from(p: Progress) -> Self {
        use crate::tui::model::FixProgress as F;
        match p {
            Progress::Step { message } => F::Step { message },
            Progress::Output { line } => F::Output { line },
            Progress::Finished {
                ok,
                verified,
                message,
            } => F::Finished {
                ok,
                verified,
                message,
            },
            Progress::Refused { reason } => F::Refused { reason },
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub run: String,
    pub host: String,
    pub fix: String,
    pub kind: OutcomeKind,
    pub verified: bool,
    pub message: String,
}

impl Outcome {
    /// Applied and verified, or nothing to do.
    pub fn ok(&self) -> bool {
        matches!(
            self.kind,
            OutcomeKind::Applied | OutcomeKind::AlreadyApplied
        )
    }
}

fn now() -> String {
    crate::posture::fmt_time(crate::audit::now_secs())
}

fn step(progress: &mut (dyn FnMut(Progress) + Send), message: impl Into<String>) {
    progress(Progress::Step {
        message: message.into(),
    });
}

/// Applies a confirmed plan. Returns the outcome (also journaled and reported as
/// [`Progress::Finished`]), or an error when the fix was refused before anything was sent
/// (reported as [`Progress::Refused`] and journaled as refused).
pub async fn apply(
    ctx: &ApplyContext<'_>,
    confirmed: &FixPlan,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome, FixError> {
    let host = confirmed.host.clone();
    let fix = confirmed.spec.id;
    let sudo = ctx.transport.spec(&host).is_some_and(|s| s.sudo);
    step(progress, format!("re-reading {host} before changing it"));
    let state = collect_named(ctx.transport, &host).await;
    let replanned = async {
        let sources = if state.is_unreachable() {
            Vec::new()
        } else {
            observe_access(ctx.transport, &host, fix).await?
        };
        let p = plan_run(
            ctx.inv,
            &state,
            fix,
            &confirmed.params,
            &sources,
            confirmed.run.clone(),
        )?;
        if p.rendered(sudo) != confirmed.rendered(sudo) {
            return Err(FixError::Changed {
                host: host.clone(),
                fix: fix.into(),
            });
        }
        Ok(p)
    }
    .await;
    let plan = match replanned {
        Ok(p) => p,
        Err(e) => {
            progress(Progress::Refused {
                reason: e.to_string(),
            });
            ctx.journal.append(&Record::Outcome {
                run: confirmed.run.as_str().into(),
                time: now(),
                host: host.clone(),
                fix: fix.into(),
                outcome: OutcomeKind::Refused,
                verified: false,
                message: e.to_string(),
            })?;
            return Err(e);
        }
    };
    let mut out = Outcome {
        run: plan.run.as_str().into(),
        host: host.clone(),
        fix: fix.into(),
        kind: OutcomeKind::AlreadyApplied,
        verified: true,
        message: String::new(),
    };
    if plan.is_noop() {
        out.message = format!("{fix} is already in place on {host}: nothing sent");
        return finish(ctx, out, progress);
    }
    let seq = plan.sequence();
    ctx.journal.append(&Record::Intent {
        run: out.run.clone(),
        time: now(),
        user: local_user(),
        host: host.clone(),
        fix: fix.into(),
        params: plan.params.clone(),
        commands: seq.iter().map(|s| s.command.render(sudo)).collect(),
        rollback_secs: plan.rollback.as_ref().map(|r| r.secs),
        started: crate::audit::now_secs(),
    })?;

    // Arm the rollback before the first change.
    let mut armed_at = None;
    if let Some(rb) = &plan.rollback {
        for s in &seq[..2] {
            step(progress, s.what.clone());
            match run(ctx, ctx.transport, &plan, s, progress).await {
                Ok(o) if o.exit_status == Some(0) => {}
                other => {
                    out.kind = OutcomeKind::Failed;
                    out.verified = false;
                    out.message = format!(
                        "could not arm the rollback ({}); nothing was changed",
                        describe(&other)
                    );
                    return finish(ctx, out, progress);
                }
            }
        }
        armed_at = Some((Instant::now(), rb.secs));
    }

    // The changes.
    for (k, s) in plan.steps.iter().enumerate() {
        step(
            progress,
            format!("{}/{}: {}", k + 1, plan.steps.len(), s.what),
        );
        let r = run(ctx, ctx.transport, &plan, s, progress).await;
        match r {
            Ok(o) if o.exit_status == Some(0) => {}
            Ok(o) => {
                let what = format!("step {} ({}) failed: {}", k + 1, s.what, describe(&Ok(o)));
                if armed_at.is_some() {
                    step(progress, format!("{what}; rolling back now"));
                    let rb = Step {
                        what: "roll back now".into(),
                        command: rollback::fire_now(&plan.run),
                    };
                    let back = run(ctx, ctx.transport, &plan, &rb, progress).await;
                    // Exit 3: the timer had already restored it.
                    let restored = matches!(&back, Ok(o) if matches!(o.exit_status, Some(0 | 3)));
                    out.kind = if restored {
                        OutcomeKind::RolledBack
                    } else {
                        OutcomeKind::Failed
                    };
                    out.message = if restored {
                        format!("{what}; the saved state was restored")
                    } else {
                        format!(
                            "{what}; rolling back failed ({}): the timer restores in at most {} s",
                            describe(&back),
                            plan.rollback.as_ref().map_or(0, |r| r.secs)
                        )
                    };
                } else {
                    out.kind = OutcomeKind::Failed;
                    out.message = what;
                }
                out.verified = false;
                return finish(ctx, out, progress);
            }
            Err(e) => {
                let what = format!("step {} ({}): {e}", k + 1, s.what);
                return match armed_at {
                    Some(armed) => {
                        step(
                            progress,
                            format!("{what}; waiting for the host to roll back on its own"),
                        );
                        out = await_self_rollback(ctx, out, armed, &what, progress).await;
                        finish(ctx, out, progress)
                    }
                    None => {
                        out.kind = OutcomeKind::Failed;
                        out.verified = false;
                        out.message = what;
                        finish(ctx, out, progress)
                    }
                };
            }
        }
    }

    // Verification.
    match armed_at {
        None => {
            step(progress, format!("re-collecting {host} to verify"));
            let st = collect_named(ctx.transport, &host).await;
            match verify(ctx.inv, &plan, &st) {
                Ok(notes) => {
                    out.kind = OutcomeKind::Applied;
                    out.message =
                        format!("{fix} applied on {host} and verified: {}", notes.join("; "));
                }
                Err(why) => {
                    out.kind = OutcomeKind::Failed;
                    out.verified = false;
                    out.message = format!(
                        "{fix} ran on {host} but verification failed: {why} (undo: {})",
                        plan.spec.rollback
                    );
                }
            }
            finish(ctx, out, progress)
        }
        Some(armed) => {
            step(
                progress,
                "re-verifying over a fresh connection (through the bastion)",
            );
            // Holding a Transport<ReadWrite> proves this run was granted writing; the fresh
            // pool gets the same grant (the inventory's own read_only is checked again).
            let fresh = WriteGrant::obtain(ctx.inv, false)
                .map_err(|r| r.to_string())
                .and_then(|g| {
                    ctx.fresh
                        .connect(ctx.inv)
                        .map(|t| t.with_write(g))
                        .map_err(|e| e.to_string())
                });
            let ft = match fresh {
                Ok(t) => t,
                Err(e) => {
                    out = await_self_rollback(ctx, out, armed, &e, progress).await;
                    return finish(ctx, out, progress);
                }
            };
            let st = collect_named(&ft, &host).await;
            if st.is_unreachable() {
                let why = st
                    .errors
                    .first()
                    .map(|e| format!("{}: {}", e.stage, e.message))
                    .unwrap_or_else(|| "unreachable".into());
                ft.close().await;
                out = await_self_rollback(
                    ctx,
                    out,
                    armed,
                    &format!("no fresh connection after the change ({why})"),
                    progress,
                )
                .await;
                return finish(ctx, out, progress);
            }
            // Made permanent only now that the runtime change is verified, still under
            // the timer: a failure here rolls back both.
            let verified = match verify(ctx.inv, &plan, &st) {
                Ok(notes) => {
                    let mut failed = None;
                    for s in &plan.persist {
                        step(progress, s.what.clone());
                        match run(ctx, &ft, &plan, s, progress).await {
                            Ok(o) if o.exit_status == Some(0) => {}
                            other => {
                                failed = Some(format!(
                                    "making it permanent failed ({}: {})",
                                    s.what,
                                    describe(&other)
                                ));
                                break;
                            }
                        }
                    }
                    match failed {
                        None => Ok(notes),
                        Some(why) => Err(why),
                    }
                }
                Err(why) => Err(why),
            };
            match verified {
                Ok(notes) => {
                    let cancel = Step {
                        what: "cancel the rollback timer".into(),
                        command: rollback::cancel(&plan.run),
                    };
                    step(progress, "verified; cancelling the rollback timer");
                    let r = run(ctx, &ft, &plan, &cancel, progress).await;
                    match r {
                        Ok(o) if o.exit_status == Some(0) => {
                            out.kind = OutcomeKind::Applied;
                            out.message = format!(
                                "{fix} applied on {host}, verified over a fresh connection, rollback cancelled: {}",
                                notes.join("; ")
                            );
                        }
                        Ok(o) if o.exit_status == Some(3) => {
                            out.kind = OutcomeKind::RolledBack;
                            out.verified = false;
                            out.message = format!(
                                "verification took longer than the {} s timer: the host already restored the saved state (raise --param rollback=SECS)",
                                armed.1
                            );
                        }
                        other => {
                            out.kind = OutcomeKind::Failed;
                            out.verified = false;
                            out.message = format!(
                                "verified, but cancelling the rollback failed ({}): the host restores the saved state when the timer ends",
                                describe(&other)
                            );
                        }
                    }
                }
                Err(why) => {
                    step(
                        progress,
                        format!("verification failed ({why}); rolling back now"),
                    );
                    let rb = Step {
                        what: "roll back now".into(),
                        command: rollback::fire_now(&plan.run),
                    };
                    let back = run(ctx, &ft, &plan, &rb, progress).await;
                    out.verified = false;
                    if matches!(&back, Ok(o) if matches!(o.exit_status, Some(0 | 3))) {
                        out.kind = OutcomeKind::RolledBack;
                        out.message =
                            format!("verification failed ({why}); the saved state was restored");
                    } else {
                        out.kind = OutcomeKind::Failed;
                        out.message = format!(
                            "verification failed ({why}); rolling back failed ({}): the timer restores it",
                            describe(&back)
                        );
                    }
                }
            }
            ft.close().await;
            finish(ctx, out, progress)
        }
    }
}

/// Access was lost (or never re-established): wait for the host's own timer, then check
/// over a fresh connection that SSH works again.
async fn await_self_rollback(
    ctx: &ApplyContext<'_>,
    mut out: Outcome,
    armed: (Instant, u64),
    why: &str,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Outcome {
    let deadline = armed.0 + Duration::from_secs(armed.1) + Duration::from_secs(3);
    let wait = deadline.saturating_duration_since(Instant::now());
    step(
        progress,
        format!(
            "{why}: the host restores its saved state on its own; checking again in {} s",
            wait.as_secs()
        ),
    );
    tokio::time::sleep(wait).await;
    out.verified = false;
    let mut last = String::new();
    for attempt in 0..3u64 {
        match ctx.fresh.connect(ctx.inv) {
            Ok(t) => {
                let st = collect_named(&t, &out.host).await;
                t.close().await;
                if !st.is_unreachable() {
                    out.kind = OutcomeKind::RolledBack;
                    out.message = format!(
                        "{why}; the host rolled back on its own and SSH works again (fresh connection)"
                    );
                    return out;
                }
                last = st
                    .errors
                    .first()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(2 + attempt * 2)).await;
    }
    out.kind = OutcomeKind::Failed;
    out.message = format!("{why}; still unreachable after the rollback timer ({last})");
    out
}

fn finish(
    ctx: &ApplyContext<'_>,
    out: Outcome,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome, FixError> {
    ctx.journal.append(&Record::Outcome {
        run: out.run.clone(),
        time: now(),
        host: out.host.clone(),
        fix: out.fix.clone(),
        outcome: out.kind,
        verified: out.verified,
        message: out.message.clone(),
    })?;
    progress(Progress::Finished {
        ok: out.ok(),
        verified: out.verified,
        message: out.message.clone(),
    });
    Ok(out)
}

fn describe(r: &Result<ExecOutput, SshError>) -> String {
    match r {
        Ok(o) => {
            let err =
                crate::sanitize::clean(String::from_utf8_lossy(&o.stderr).trim()).into_owned();
            let status = match (o.exit_status, &o.exit_signal) {
                (Some(s), _) => format!("exit {s}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => "no exit status".into(),
            };
            if err.is_empty() {
                status
            } else {
                format!("{status}: {err}")
            }
        }
        Err(e) => e.to_string(),
    }
}

/// Sends one command, journals it, reports its output.
async fn run(
    ctx: &ApplyContext<'_>,
    t: &Transport<ReadWrite>,
    plan: &FixPlan,
    s: &Step,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ExecOutput, SshError> {
    let sudo = t.spec(&plan.host).is_some_and(|x| x.sudo);
    let r = t.exec_mutating(&plan.host, &s.command).await;
    let (status, stdout, stderr) = match &r {
        Ok(o) => (
            o.exit_status,
            crate::sanitize::clean(&String::from_utf8_lossy(&o.stdout)).into_owned(),
            crate::sanitize::clean(&String::from_utf8_lossy(&o.stderr)).into_owned(),
        ),
        Err(e) => (None, String::new(), e.to_string()),
    };
    for line in stdout.lines().chain(stderr.lines()).take(40) {
        progress(Progress::Output {
            line: line.to_string(),
        });
    }
    // A journal that cannot be written is reported but does not stop a half-applied fix:
    // stopping here would leave the host changed and unverified.
    if let Err(e) = ctx.journal.append(&Record::Command {
        run: plan.run.as_str().into(),
        time: now(),
        what: s.what.clone(),
        command: s.command.render(sudo),
        exit_status: status,
        stdout,
        stderr,
    }) {
        progress(Progress::Output {
            line: format!("warning: {e}"),
        });
    }
    r
}

/// Checks a freshly collected state against the plan's expectations.
pub fn verify(inv: &Inventory, plan: &FixPlan, st: &HostState) -> Result<Vec<String>, String> {
    let Some(host) = inv.host(&plan.host) else {
        return Err(format!("{} is not in the inventory", plan.host));
    };
    let mut findings = Vec::new();
    check_host(
        inv,
        host,
        st,
        &CheckOptions::new(crate::audit::now_secs()),
        &mut findings,
    );
    let mut notes = Vec::new();
    for e in &plan.expect {
        match e {
            Expect::FindingsGone { checks, .. } => {
                let left = remaining(e, &plan.host, &findings);
                if let Some(f) = left.first() {
                    return Err(format!("{} still present: {}", f.check, f.title));
                }
                if !checks.is_empty() {
                    notes.push(format!("no {} finding", checks.join(" / ")));
                }
            }
            Expect::SshAdmitted { port } => match &st.firewall {
                Probed::Ok(fw) => {
                    guard::check(fw, &plan.sources, *port).map_err(|l| l.to_string())?;
                    notes.push(format!(
                        "SSH {port}/tcp still admitted from the guarded sources"
                    ));
                }
                other => return Err(format!("firewall not readable: {}", other.status_label())),
            },
            Expect::Banned { jail, ip, banned } => {
                let Probed::Ok(f) = &st.fail2ban else {
                    return Err(format!("fail2ban is {}", st.fail2ban.status_label()));
                };
                let Some(j) = f.jails.iter().find(|j| &j.name == jail) else {
                    return Err(format!("no jail {jail}"));
                };
                if j.banned.contains(ip) != *banned {
                    return Err(format!(
                        "{ip} is {} in {jail}",
                        if *banned {
                            "not banned"
                        } else {
                            "still banned"
                        }
                    ));
                }
                notes.push(format!(
                    "{ip} {} in {jail}",
                    if *banned { "banned" } else { "not banned" }
                ));
            }
        }
    }
    Ok(notes)
}

/// One fix on several hosts, one at a time (each re-verified), stopping at the first host
/// that does not end applied or already in place. Returns the outcomes so far and the
/// error that stopped the batch, if any.
pub async fn apply_batch(
    ctx: &ApplyContext<'_>,
    plans: &[FixPlan],
    progress: &mut (dyn FnMut(Progress) + Send),
) -> (Vec<Outcome>, Option<FixError>) {
    let mut outcomes = Vec::new();
    for p in plans {
        step(progress, format!("{}: {}", p.host, p.spec.id));
        match apply(ctx, p, progress).await {
            Ok(o) => {
                let ok = o.ok();
                outcomes.push(o);
                if !ok {
                    break;
                }
            }
            Err(e) => return (outcomes, Some(e)),
        }
    }
    (outcomes, None)
}
