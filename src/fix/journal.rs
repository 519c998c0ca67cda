//! The fix journal: an append-only JSONL audit log (`STATE_DIR/fixes.jsonl`). The intent
//! of a fix (local user, time, host, fix ID, exact commands) is written and fsync'd before
//! anything is sent; each command's result follows; the outcome closes the run. A run with
//! an intent and no outcome was interrupted (rampart was killed, the machine died):
//! [`Journal::unfinished`] finds it on the next start.
//!
//! A torn last line (a crash in the middle of a write) is skipped when reading, never fatal;
//! appends always start on a new line.
//!
//! With a history store attached ([`Journal::with_store`]), intents and outcomes are also
//! written to its `fix_journal` table (a row `running` before, completed after). The JSONL
//! file stays the authority for [`Journal::unfinished`]: it needs no database to be read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a fix run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// Applied and verified.
    Applied,
    /// Nothing to change: the fix is already in place.
    AlreadyApplied,
    /// Refused before anything was sent (lockout guard, precondition, read-only).
    Refused,
    /// A command failed, or verification did not see the fix; rolled back where a timer
    /// was armed.
    Failed,
    /// The host restored the saved state (the timer fired or the rollback ran at once).
    RolledBack,
    /// The run was interrupted (found on a later start with no outcome).
    Interrupted,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    Intent {
        run: String,
        time: String,
        user: String,
        host: String,
        fix: String,
        params: Vec<(String, String)>,
        /// The exact commands, as they will be sent.
        commands: Vec<String>,
        rollback_secs: Option<u64>,
        /// Unix seconds (matches the store's row).
        #[serde(default)]
        started: i64,
    },
    Command {
        run: String,
        time: String,
        what: String,
        command: String,
        exit_status: Option<u32>,
        stdout: String,
        stderr: String,
    },
    Outcome {
        run: String,
        time: String,
        host: String,
        fix: String,
        outcome: OutcomeKind,
        verified: bool,
        message: String,
    },
}

impl Record {
    pub fn run(&self) -> &str {
        match self {
            Record::Intent { run, .. }
            | Record::Command { run, .. }
            | Record::Outcome { run, .. } => run,
        }
    }
}

/// The journal could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("fix journal {}: {source}", .path.display())]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The append-only fix journal.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    store: Option<std::sync::Arc<std::sync::Mutex<StoreMirror>>>,
}

/// The store and the rows of the runs in progress.
#[derive(Debug)]
struct StoreMirror {
    store: crate::store::Store,
    /// run → (row id, outputs, exit statuses)
    open: std::collections::HashMap<String, (i64, String, Vec<Option<i32>>)>,
}

/// An intent with no outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub intent: Record,
    /// The commands recorded before the interruption.
    pub commands: Vec<Record>,
}

impl Journal {
    /// `STATE_DIR/fixes.jsonl`.
    pub fn default_path() -> PathBuf {
        crate::paths::state_dir().join("fixes.jsonl")
    }

    pub fn new(path: impl Into<PathBuf>) -> Journal {
        Journal {
            path: path.into(),
            store: None,
        }
    }

    /// Also writes intents and outcomes to the history store's fix journal. Rows a crash
    /// left `running` although this journal has their run's outcome (the process died
    /// between the JSONL line and its mirror) are closed with that outcome first.
    pub fn with_store(mut self, mut store: crate::store::Store) -> Journal {
        if let Err(e) = self.reconcile(&mut store) {
            tracing::warn!("fix journal store: {e}");
        }
        self.store = Some(std::sync::Arc::new(std::sync::Mutex::new(StoreMirror {
            store,
            open: std::collections::HashMap::new(),
        })));
        self
    }

    /// Closes the store's `running` rows whose run has an outcome in the JSONL journal.
    fn reconcile(&self, store: &mut crate::store::Store) -> Result<(), String> {
        use crate::store::journal::FixOutcome;
        let rows = store.unfinished().map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(());
        }
        let recs = self.records().map_err(|e| e.to_string())?;
        for row in rows {
            let run = recs.iter().find_map(|r| match r {
                Record::Intent {
                    run,
                    host,
                    fix,
                    started,
                    ..
                } if *host == row.intent.host
                    && *fix == row.intent.fix_id
                    && *started == row.intent.started_at =>
                {
                    Some(run.as_str())
                }
                _ => None,
            });
            let Some(run) = run else { continue };
            let Some((outcome, verified, message)) = recs.iter().find_map(|r| match r {
                Record::Outcome {
                    run: r_run,
                    outcome,
                    verified,
                    message,
                    ..
                } if r_run == run => Some((*outcome, *verified, message)),
                _ => None,
            }) else {
                continue;
            };
            store
                .journal_finish(
                    row.id,
                    &FixOutcome {
                        finished_at: crate::audit::now_secs(),
                        state: store_state(outcome),
                        outcome: message.clone(),
                        output: String::new(),
                        exit_statuses: Vec::new(),
                        verification: Some(if verified {
                            "verified by re-collecting".into()
                        } else {
                            "not verified".into()
                        }),
                    },
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Mirrors a record into the store. A store failure is returned as a message for the
    /// caller to report; the JSONL line is already on disk.
    fn mirror(&self, rec: &Record) -> Result<(), String> {
        use crate::store::journal::{FixIntent, FixOutcome};
        let Some(m) = &self.store else {
            return Ok(());
        };
        let mut m = m.lock().map_err(|_| "store lock poisoned".to_string())?;
        match rec {
            Record::Intent {
                run,
                user,
                host,
                fix,
                commands,
                started,
                ..
            } => {
                let id = m
                    .store
                    .journal_begin(&FixIntent {
                        started_at: *started,
                        local_user: user.clone(),
                        host: host.clone(),
                        fix_id: fix.clone(),
                        commands: serde_json::json!(commands),
                    })
                    .map_err(|e| e.to_string())?;
                m.open.insert(run.clone(), (id, String::new(), Vec::new()));
            }
            Record::Command {
                run,
                command,
                exit_status,
                stdout,
                stderr,
                ..
            } => {
                if let Some((_, out, exits)) = m.open.get_mut(run) {
                    out.push_str(&format!("$ {command}\n{stdout}{stderr}"));
                    exits.push(exit_status.and_then(|s| i32::try_from(s).ok()));
                }
            }
            Record::Outcome {
                run,
                outcome,
                verified,
                message,
                ..
            } => {
                let Some((id, output, exits)) = m.open.remove(run) else {
                    return Ok(());
                };
                let state = store_state(*outcome);
                m.store
                    .journal_finish(
                        id,
                        &FixOutcome {
                            finished_at: crate::audit::now_secs(),
                            state,
                            outcome: message.clone(),
                            output,
                            exit_statuses: exits,
                            verification: Some(if *verified {
                                "verified by re-collecting".into()
                            } else {
                                "not verified".into()
                            }),
                        },
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Closes the store's rows a crash left `running` for this host and fix, started at
    /// `started` (the unfinished JSONL run they belong to).
    pub fn abandon_in_store(&self, host: &str, fix: &str, started: i64, message: &str) {
        use crate::store::journal::{FixOutcome, FixState};
        let Some(m) = &self.store else { return };
        let Ok(mut m) = m.lock() else { return };
        let Ok(rows) = m.store.unfinished() else {
            return;
        };
        for r in rows.iter().filter(|r| {
            r.intent.host == host && r.intent.fix_id == fix && r.intent.started_at == started
        }) {
            let _ = m.store.journal_finish(
                r.id,
                &FixOutcome {
                    finished_at: crate::audit::now_secs(),
                    state: FixState::Abandoned,
                    outcome: message.to_string(),
                    output: String::new(),
                    exit_statuses: Vec::new(),
                    verification: None,
                },
            );
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it before returning.
    pub fn append(&self, rec: &Record) -> Result<(), JournalError> {
        let err = |source| JournalError {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut line = serde_json::to_string(rec)
            .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        // A previous crash may have left a torn line: start ours on a fresh one.
        let len = f.metadata().map_err(err)?.len();
        if len > 0 && !ends_with_newline(&self.path, len) {
            line.insert(0, '\n');
        }
        f.write_all(line.as_bytes()).map_err(err)?;
        f.sync_data().map_err(err)?;
        if let Err(e) = self.mirror(rec) {
            tracing::warn!("fix journal store: {e}");
        }
        Ok(())
    }

    /// Every readable record, in order (torn or foreign lines skipped).
    pub fn records(&self) -> Result<Vec<Record>, JournalError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(JournalError {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Record>(l).ok())
            .collect())
    }

    /// Runs with an intent and no outcome, oldest first.
    pub fn unfinished(&self) -> Result<Vec<Unfinished>, JournalError> {
        let recs = self.records()?;
        let mut out: Vec<Unfinished> = Vec::new();
        for r in &recs {
            match r {
                Record::Intent { .. } => out.push(Unfinished {
                    intent: r.clone(),
                    commands: Vec::new(),
                }),
                Record::Command { run, .. } => {
                    if let Some(u) = out.iter_mut().find(|u| u.intent.run() == run) {
                        u.commands.push(r.clone());
                    }
                }
                Record::Outcome { run, .. } => out.retain(|u| u.intent.run() != run),
            }
        }
        Ok(out)
    }
}

/// The store's state for a journal outcome.
fn store_state(outcome: OutcomeKind) -> crate::store::journal::FixState {
    use crate::store::journal::FixState;
    match outcome {
        OutcomeKind::Applied | OutcomeKind::AlreadyApplied => FixState::Succeeded,
        OutcomeKind::RolledBack => FixState::RolledBack,
        OutcomeKind::Interrupted => FixState::Abandoned,
        OutcomeKind::Failed | OutcomeKind::Refused => FixState::Failed,
    }
}

fn ends_with_newline(path: &Path, len: u64) -> bool {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1)).is_ok() && f.read_exact(&mut b).is_ok() && b[0] == b'\n'
}

/// The local user running rampart, for the journal.
pub fn local_user() -> String {
    for v in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(v)
            && !u.is_empty()
        {
            return crate::sanitize::clean(&u).into_owned();
        }
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn intent(run: &str) -> Record {
        Record::Intent {
            run: run.into(),
            time: "t".into(),
            user: "u".into(),
            host: "db1".into(),
            fix: "f2b-start".into(),
            params: vec![],
            commands: vec!["'true'".into()],
            rollback_secs: None,
            started: 1,
        }
    }

    fn outcome(run: &str) -> Record {
        Record::Outcome {
            run: run.into(),
            time: "t".into(),
            host: "db1".into(),
            fix: "f2b-start".into(),
            outcome: OutcomeKind::Applied,
            verified: true,
            message: "ok".into(),
        }
    }

    #[test]
    fn unfinished_runs_survive_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("fixes.jsonl"));
        assert!(j.unfinished().unwrap().is_empty());
        j.append(&intent("a")).unwrap();
        j.append(&outcome("a")).unwrap();
        j.append(&intent("b")).unwrap();
        // A crash mid-write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .unwrap();
        f.write_all(b"{\"record\":\"outcome\",\"run\":\"b\",\"ti")
            .unwrap();
        drop(f);
        let u = j.unfinished().unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].intent.run(), "b");
        // The next append starts on its own line and is readable.
        j.append(&intent("c")).unwrap();
        let runs: Vec<String> = j
            .unfinished()
            .unwrap()
            .iter()
            .map(|u| u.intent.run().to_string())
            .collect();
        assert_eq!(runs, ["b", "c"]);
        j.append(&outcome("b")).unwrap();
        assert_eq!(j.unfinished().unwrap().len(), 1);
    }

    #[test]
    fn store_rows_follow_the_runs() {
        use crate::store::journal::FixState;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.db");
        let j = Journal::new(dir.path().join("fixes.jsonl"))
            .with_store(crate::store::Store::open(&db).unwrap());
        j.append(&intent("a")).unwrap();
        j.append(&Record::Command {
            run: "a".into(),
            time: "t".into(),
            what: "w".into(),
            command: "'true'".into(),
            exit_status: Some(0),
            stdout: "out\n".into(),
            stderr: String::new(),
        })
        .unwrap();
        j.append(&intent("b")).unwrap();
        j.append(&outcome("a")).unwrap();
        let store = crate::store::Store::open(&db).unwrap();
        let rows = store.journal(10).unwrap();
        assert_eq!(rows.len(), 2);
        let a = rows
            .iter()
            .find(|r| r.state == FixState::Succeeded)
            .unwrap();
        assert_eq!(a.outcome.as_ref().unwrap().exit_statuses, vec![Some(0)]);
        assert_eq!(store.unfinished().unwrap().len(), 1);
        j.abandon_in_store("db1", "f2b-start", 1, "interrupted");
        assert!(store.unfinished().unwrap().is_empty());
    }
}
