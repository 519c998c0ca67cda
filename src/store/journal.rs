//! The fix journal: a row is written *before* a fix runs (its intent: who, where, which fix,
//! the exact commands) with state `running`, and completed afterwards with the outcome. A row
//! still `running` after the process is gone means a fix was interrupted part-way: the console
//! lists [`Store::unfinished`] rows at start so a person checks those hosts.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Where a journalled fix stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixState {
    /// The intent was written; the fix started and has not been completed.
    Running,
    /// Every command succeeded and verification passed.
    Succeeded,
    /// A command or the verification failed.
    Failed,
    /// The fix was undone (by the rollback timer or by hand).
    RolledBack,
    /// A person closed a row left `running` by a process that died.
    Abandoned,
}

impl FixState {
    pub fn as_str(self) -> &'static str {
        match self {
            FixState::Running => "running",
            FixState::Succeeded => "succeeded",
            FixState::Failed => "failed",
            FixState::RolledBack => "rolled_back",
            FixState::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> Option<FixState> {
        Some(match s {
            "running" => FixState::Running,
            "succeeded" => FixState::Succeeded,
            "failed" => FixState::Failed,
            "rolled_back" => FixState::RolledBack,
            "abandoned" => FixState::Abandoned,
            _ => return None,
        })
    }
}

/// What is about to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixIntent {
    /// Unix seconds.
    pub started_at: i64,
    /// Who runs it (see [`super::local_user`]).
    pub local_user: String,
    pub host: String,
    pub fix_id: String,
    /// The exact commands, as the fix module describes them.
    pub commands: serde_json::Value,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixOutcome {
    /// Unix seconds.
    pub finished_at: i64,
    /// Anything but `Running`.
    pub state: FixState,
    /// One line for a person.
    pub outcome: String,
    /// What the commands printed (sanitized by the caller).
    pub output: String,
    /// One exit status per command run (`null` when it was killed or never ran).
    pub exit_statuses: Vec<Option<i32>>,
    /// What verification saw, if it ran.
    pub verification: Option<String>,
}

/// One journal row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: i64,
    pub intent: FixIntent,
    pub state: FixState,
    /// Set once completed.
    pub outcome: Option<FixOutcome>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "id, started_at, local_user, host, fix_id, commands, state, finished_at, outcome, output, exit_statuses, verification";

impl Store {
    /// Writes the intent row (state `running`) and returns its ID. Call it before the first
    /// command of the fix is sent; it is synced to disk when this returns.
    pub fn journal_begin(&mut self, intent: &FixIntent) -> Result<i64, StoreError> {
        let commands =
            serde_json::to_string(&intent.commands).map_err(|source| StoreError::Encode {
                what: format!("the commands of fix {}", intent.fix_id),
                source,
            })?;
        self.conn
            .execute(
                "INSERT INTO fix_journal (started_at, local_user, host, fix_id, commands, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                params![
                    intent.started_at,
                    intent.local_user,
                    intent.host,
                    intent.fix_id,
                    commands
                ],
            )
            .map_err(self.sql("write fix intent"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Completes a `running` row. Completing a row twice, or with state `Running`, is an error.
    pub fn journal_finish(&mut self, id: i64, outcome: &FixOutcome) -> Result<(), StoreError> {
        if outcome.state == FixState::Running {
            return Err(StoreError::Journal {
                path: self.path.clone(),
                id,
                message: "cannot complete a fix with state `running`".to_string(),
            });
        }
        let exits =
            serde_json::to_string(&outcome.exit_statuses).map_err(|source| StoreError::Encode {
                what: format!("the exit statuses of fix journal entry {id}"),
                source,
            })?;
        let n = self
            .conn
            .execute(
                "UPDATE fix_journal SET state = ?2, finished_at = ?3, outcome = ?4, output = ?5,
                        exit_statuses = ?6, verification = ?7
                 WHERE id = ?1 AND state = 'running'",
                params![
                    id,
                    outcome.state.as_str(),
                    outcome.finished_at,
                    outcome.outcome,
                    outcome.output,
                    exits,
                    outcome.verification
                ],
            )
            .map_err(self.sql("complete fix journal entry"))?;
        if n == 1 {
            return Ok(());
        }
        let state: Option<String> = self
            .conn
            .query_row("SELECT state FROM fix_journal WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql("read fix journal entry"))?;
        Err(StoreError::Journal {
            path: self.path.clone(),
            id,
            message: match state {
                None => "no such entry".to_string(),
                Some(s) => format!("already completed ({s})"),
            },
        })
    }

    /// Rows still `running`, oldest first: fixes whose process died before completing them.
    pub fn unfinished(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_rows("WHERE state = 'running' ORDER BY id", [])
    }

    /// The newest `limit` journal rows, newest first.
    pub fn journal(&self, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_rows(
            "ORDER BY id DESC LIMIT ?1",
            [i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// One journal row.
    pub fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>, StoreError> {
        Ok(self.journal_rows("WHERE id = ?1", [id])?.into_iter().next())
    }

    fn journal_rows<P: rusqlite::Params>(
        &self,
        tail: &str,
        p: P,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM fix_journal {tail}"))
            .map_err(self.sql("read fix journal"))?;
        let rows: Vec<Row> = st
            .query_map(p, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })
            .map_err(self.sql("read fix journal"))?
            .collect::<Result<_, _>>()
            .map_err(self.sql("read fix journal"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (
            id,
            started_at,
            local_user,
            host,
            fix_id,
            commands,
            state,
            fin,
            outcome,
            output,
            exits,
            verification,
        ) in rows
        {
            let bad = |what: &str| StoreError::Journal {
                path: self.path.clone(),
                id,
                message: format!("stored {what} is not valid"),
            };
            let state = FixState::parse(&state).ok_or_else(|| bad("state"))?;
            let commands = serde_json::from_str(&commands).map_err(|_| bad("commands"))?;
            let outcome = match (state, fin) {
                (FixState::Running, _) | (_, None) => None,
                (state, Some(finished_at)) => Some(FixOutcome {
                    finished_at,
                    state,
                    outcome: outcome.unwrap_or_default(),
                    output: output.unwrap_or_default(),
                    exit_statuses: match exits {
                        Some(e) => serde_json::from_str(&e).map_err(|_| bad("exit statuses"))?,
                        None => Vec::new(),
                    },
                    verification,
                }),
            };
            out.push(JournalEntry {
                id,
                intent: FixIntent {
                    started_at,
                    local_user,
                    host,
                    fix_id,
                    commands,
                },
                state,
                outcome,
            });
        }
        Ok(out)
    }
}
