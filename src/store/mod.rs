//! The embedded history: snapshots of the fleet's state and findings, and the fix journal,
//! in one SQLite database (`data_dir()/history.sqlite3` unless told otherwise).
//!
//! Every audit, and console collections (throttled: see [`timeline`]), record a [`NewSnapshot`]; `rampart
//! diff` compares two of them ([`diff`]). Each snapshot is written in one transaction and the
//! database runs in WAL mode with full syncs, so a crash or a kill at any moment leaves either
//! the whole snapshot or none of it, never a torn history. Retention ([`Retention`]) prunes old
//! snapshots; the fix journal ([`journal`]) is an audit log and is never pruned.
//!
//! Host state is stored as JSON (`serde_json::Value`) so history does not break when the
//! state types grow; the diff walks that JSON by the key names `crate::state` uses. This
//! module never connects to a host and never decides what to collect.

pub mod diff;
pub mod journal;
pub mod timeline;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::posture::Finding;

pub use diff::{Diff, HostDiff, Since, SinceError, diff_snapshots, parse_since};
pub use journal::{FixIntent, FixOutcome, FixState, JournalEntry};

/// The database schema version, in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// The file name of the history database inside the data directory.
pub const FILE_NAME: &str = "history.sqlite3";

/// Where the history lives by default: `$XDG_DATA_HOME/rampart/history.sqlite3`.
pub fn default_path() -> PathBuf {
    crate::paths::data_dir().join(FILE_NAME)
}

/// Seconds since the Unix epoch, from the system clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2026-03-01T12:00:00Z` from Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let d = crate::posture::waivers::Date::from_unix(secs);
    let s = secs.rem_euclid(86_400);
    format!("{d}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// What took a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `rampart audit`.
    Audit,
    /// A console refresh.
    Console,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Audit => "audit",
            Source::Console => "console",
        }
    }

    fn parse(s: &str) -> Option<Source> {
        match s {
            "audit" => Some(Source::Audit),
            "console" => Some(Source::Console),
            _ => None,
        }
    }
}

/// One host's state in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSnapshot {
    pub host: String,
    /// False when the host could not be reached or collected.
    pub reachable: bool,
    /// The host's state (`crate::state::HostState`) as JSON.
    pub state: serde_json::Value,
}

impl HostSnapshot {
    /// A host snapshot from any serializable state (normally `crate::state::HostState`).
    pub fn from_state<T: Serialize>(
        host: &str,
        reachable: bool,
        state: &T,
    ) -> Result<HostSnapshot, StoreError> {
        Ok(HostSnapshot {
            host: host.to_string(),
            reachable,
            state: serde_json::to_value(state).map_err(|e| StoreError::Encode {
                what: format!("the state of {host}"),
                source: e,
            })?,
        })
    }
}

/// A snapshot to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSnapshot {
    /// Unix seconds.
    pub taken_at: i64,
    pub source: Source,
    /// The inventory file the fleet came from.
    pub inventory: String,
    pub hosts: Vec<HostSnapshot>,
    pub findings: Vec<Finding>,
}

/// A recorded snapshot's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub id: i64,
    /// Unix seconds.
    pub taken_at: i64,
    pub source: Source,
    pub inventory: String,
    pub hosts: usize,
    pub findings: usize,
}

/// A recorded snapshot, in full.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub hosts: Vec<HostSnapshot>,
    pub findings: Vec<Finding>,
}

/// How much history to keep. `None` = no limit on that axis; both apply when both are set.
/// The fix journal is never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Retention {
    /// Delete snapshots older than this many days.
    pub keep_days: Option<u32>,
    /// Keep at most this many snapshots (the newest).
    pub keep_snapshots: Option<u32>,
}

impl Default for Retention {
    /// 90 days and at most 5000 snapshots (a console refreshing every minute stores 1440 a day;
    /// the cap keeps the file bounded either way).
    fn default() -> Self {
        Retention {
            keep_days: Some(90),
            keep_snapshots: Some(5000),
        }
    }
}

/// The history database could not be used. Messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: cannot create the history directory: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: cannot create the history database: {source}", path.display())]
    CreateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: SQLite refused write-ahead logging (journal mode {mode}); put the history on a local file system",
        path.display()
    )]
    NoWal { path: PathBuf, mode: String },
    #[error("{}: cannot open the history database: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{}: the history database has schema version {found}, newer than this rampart understands ({SCHEMA_VERSION}); upgrade rampart or point it at another file",
        path.display()
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error("{}: {stage}: {source}", path.display())]
    Sql {
        path: PathBuf,
        stage: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: snapshot {id}: stored {what} is not valid: {source}",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        id: i64,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: no snapshot {id} (see the IDs `rampart diff` lists)", path.display())]
    NoSnapshot { path: PathBuf, id: i64 },
    #[error("{}: {message}", path.display())]
    NotEnoughHistory { path: PathBuf, message: String },
    #[error("{}: fix journal entry {id}: {message}", path.display())]
    Journal {
        path: PathBuf,
        id: i64,
        message: String,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    taken_at    INTEGER NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('audit', 'console')),
    inventory   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_taken_at ON snapshots (taken_at);
CREATE TABLE IF NOT EXISTS host_states (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    host        TEXT    NOT NULL,
    reachable   INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    PRIMARY KEY (snapshot_id, host)
);
CREATE TABLE IF NOT EXISTS findings (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    host        TEXT    NOT NULL,
    check_id    TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    waived      INTEGER NOT NULL,
    finding     TEXT    NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
);
CREATE INDEX IF NOT EXISTS findings_check ON findings (check_id, host);
CREATE TABLE IF NOT EXISTS fix_journal (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    INTEGER NOT NULL,
    local_user    TEXT    NOT NULL,
    host          TEXT    NOT NULL,
    fix_id        TEXT    NOT NULL,
    commands      TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT,
    output        TEXT,
    exit_statuses TEXT,
    verification  TEXT
);
CREATE INDEX IF NOT EXISTS fix_journal_state ON fix_journal (state);
";

/// An open history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when needed) the history at [`default_path`].
    pub fn open_default() -> Result<Store, StoreError> {
        Store::open(&default_path())
    }

    /// Opens (creating when needed) the history database at `path`. The directory is created
    /// private (0700) and the file private (0600): history holds the fleet's security state.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            // SQLite gives its -wal and -shm files the main file's permissions.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::CreateFile {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.init()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, stage: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql {
            path: self.path.clone(),
            stage,
            source,
        }
    }

    fn init(&self) -> Result<(), StoreError> {
        // Another rampart (the console, an audit from cron) may hold the write lock briefly.
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(self.sql("set busy timeout"))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(self.sql("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal {
                path: self.path.clone(),
                mode,
            });
        }
        // FULL: a fix's intent row must be on disk before the fix runs, even across power loss.
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(self.sql("set pragmas"))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql("read schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        if version < SCHEMA_VERSION {
            // IMMEDIATE takes the write lock up front, so a concurrent writer (the console
            // while an audit starts) makes this wait for the busy timeout instead of failing.
            self.conn
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(self.sql("create tables"))?;
        }
        Ok(())
    }

    /// Records a snapshot in one transaction and returns its ID. On any error nothing of it
    /// is stored.
    pub fn record(&mut self, snap: &NewSnapshot) -> Result<i64, StoreError> {
        let path = self.path.clone();
        let sql = |stage: &'static str| {
            let path = path.clone();
            move |source| StoreError::Sql {
                path: path.clone(),
                stage,
                source,
            }
        };
        // Encode first: a value that cannot be encoded must not leave half a snapshot.
        let mut states = Vec::with_capacity(snap.hosts.len());
        for h in &snap.hosts {
            states.push(
                serde_json::to_string(&h.state).map_err(|source| StoreError::Encode {
                    what: format!("the state of {}", h.host),
                    source,
                })?,
            );
        }
        let mut findings = Vec::with_capacity(snap.findings.len());
        for f in &snap.findings {
            findings.push(
                serde_json::to_string(f).map_err(|source| StoreError::Encode {
                    what: format!("finding {}", f.key()),
                    source,
                })?,
            );
        }
        // IMMEDIATE: wait for another writer up front rather than fail when upgrading a read.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin snapshot"))?;
        tx.execute(
            "INSERT INTO snapshots (taken_at, source, inventory) VALUES (?1, ?2, ?3)",
            params![snap.taken_at, snap.source.as_str(), snap.inventory],
        )
        .map_err(sql("insert snapshot"))?;
        let id = tx.last_insert_rowid();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO host_states (snapshot_id, host, reachable, state) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql("prepare host state"))?;
            for (h, state) in snap.hosts.iter().zip(&states) {
                ins.execute(params![id, h.host, h.reachable, state])
                    .map_err(sql("insert host state"))?;
            }
            let mut ins = tx
                .prepare(
                    "INSERT INTO findings (snapshot_id, seq, host, check_id, severity, title, waived, finding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql("prepare finding"))?;
            for (seq, (f, json)) in snap.findings.iter().zip(&findings).enumerate() {
                ins.execute(params![
                    id,
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    f.host,
                    f.check,
                    f.severity.as_str(),
                    f.title,
                    f.is_waived(),
                    json
                ])
                .map_err(sql("insert finding"))?;
            }
        }
        tx.commit().map_err(sql("commit snapshot"))?;
        Ok(id)
    }

    /// Every snapshot's header, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotMeta>, StoreError> {
        self.metas("", [])
    }

    fn metas<P: rusqlite::Params>(
        &self,
        filter: &str,
        p: P,
    ) -> Result<Vec<SnapshotMeta>, StoreError> {
        let q = format!(
            "SELECT s.id, s.taken_at, s.source, s.inventory,
                    (SELECT COUNT(*) FROM host_states h WHERE h.snapshot_id = s.id),
                    (SELECT COUNT(*) FROM findings f WHERE f.snapshot_id = s.id)
             FROM snapshots s {filter} ORDER BY s.taken_at, s.id"
        );
        let mut st = self.conn.prepare(&q).map_err(self.sql("list snapshots"))?;
        let rows = st
            .query_map(p, |r| {
                let source: String = r.get(2)?;
                Ok(SnapshotMeta {
                    id: r.get(0)?,
                    taken_at: r.get(1)?,
                    source: Source::parse(&source).unwrap_or(Source::Audit),
                    inventory: r.get(3)?,
                    hosts: usize::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    findings: usize::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                })
            })
            .map_err(self.sql("list snapshots"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql("list snapshots"))
    }

    /// One snapshot's header.
    pub fn meta(&self, id: i64) -> Result<SnapshotMeta, StoreError> {
        self.metas("WHERE s.id = ?1", [id])?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NoSnapshot {
                path: self.path.clone(),
                id,
            })
    }

    /// The newest snapshot's header, if any.
    pub fn latest(&self) -> Result<Option<SnapshotMeta>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql("find the latest snapshot"))?;
        id.map(|id| self.meta(id)).transpose()
    }

    /// A snapshot in full: its hosts' states and its findings.
    pub fn load(&self, id: i64) -> Result<Snapshot, StoreError> {
        let meta = self.meta(id)?;
        let corrupt = |what: &'static str| {
            let path = self.path.clone();
            move |source| StoreError::Corrupt {
                path: path.clone(),
                id,
                what,
                source,
            }
        };
        let mut st = self
            .conn
            .prepare(
                "SELECT host, reachable, state FROM host_states WHERE snapshot_id = ?1 ORDER BY host",
            )
            .map_err(self.sql("read host states"))?;
        let raw: Vec<(String, bool, String)> = st
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.sql("read host states"))?
            .collect::<Result<_, _>>()
            .map_err(self.sql("read host states"))?;
        let mut hosts = Vec::with_capacity(raw.len());
        for (host, reachable, state) in raw {
            hosts.push(HostSnapshot {
                host,
                reachable,
                state: serde_json::from_str(&state).map_err(corrupt("host state"))?,
            });
        }
        let mut st = self
            .conn
            .prepare("SELECT finding FROM findings WHERE snapshot_id = ?1 ORDER BY seq")
            .map_err(self.sql("read findings"))?;
        let raw: Vec<String> = st
            .query_map([id], |r| r.get(0))
            .map_err(self.sql("read findings"))?
            .collect::<Result<_, _>>()
            .map_err(self.sql("read findings"))?;
        let mut findings = Vec::with_capacity(raw.len());
        for f in raw {
            findings.push(serde_json::from_str(&f).map_err(corrupt("finding"))?);
        }
        Ok(Snapshot {
            meta,
            hosts,
            findings,
        })
    }

    /// Deletes snapshots beyond the retention limits (with their states and findings, in one
    /// transaction) and returns how many went. `now` is Unix seconds.
    pub fn prune(&mut self, retention: &Retention, now: i64) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sql = move |stage: &'static str| {
            let path = path.clone();
            move |source| StoreError::Sql {
                path: path.clone(),
                stage,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin prune"))?;
        let mut removed = 0;
        if let Some(days) = retention.keep_days {
            let cutoff = now.saturating_sub(i64::from(days).saturating_mul(86_400));
            removed += tx
                .execute("DELETE FROM snapshots WHERE taken_at < ?1", [cutoff])
                .map_err(sql("prune by age"))?;
        }
        if let Some(n) = retention.keep_snapshots {
            removed += tx
                .execute(
                    "DELETE FROM snapshots WHERE id NOT IN
                       (SELECT id FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT ?1)",
                    [i64::from(n)],
                )
                .map_err(sql("prune by count"))?;
        }
        tx.commit().map_err(sql("commit prune"))?;
        Ok(removed)
    }

    /// The two snapshots `rampart diff --since` compares: the one `since` names (the newest
    /// taken at or before `now - duration`, else the oldest kept; or an ID; or the one before
    /// the latest) and the latest.
    pub fn select(&self, since: &Since, now: i64) -> Result<(i64, i64), StoreError> {
        let all = self.snapshots()?;
        let not_enough = |message: String| StoreError::NotEnoughHistory {
            path: self.path.clone(),
            message,
        };
        let Some(latest) = all.last() else {
            return Err(not_enough(
                "no snapshots yet; run `rampart audit` (twice) to have something to compare"
                    .to_string(),
            ));
        };
        let from = match since {
            Since::Previous => all.iter().rev().nth(1).map(|m| m.id).ok_or_else(|| {
                not_enough(format!(
                    "only one snapshot ({}); run `rampart audit` again to compare",
                    latest.id
                ))
            })?,
            Since::Snapshot(id) => self.meta(*id)?.id,
            Since::Ago(secs) => {
                let cutoff = now.saturating_sub(i64::try_from(*secs).unwrap_or(i64::MAX));
                all.iter()
                    .rev()
                    .find(|m| m.taken_at <= cutoff)
                    .or_else(|| all.first())
                    .map_or(latest.id, |m| m.id)
            }
        };
        if from == latest.id {
            return Err(not_enough(format!(
                "snapshot {from} is the latest; nothing newer to compare it with"
            )));
        }
        Ok((from, latest.id))
    }

    /// Compares two recorded snapshots.
    pub fn diff(&self, from: i64, to: i64) -> Result<Diff, StoreError> {
        let a = self.load(from)?;
        let b = self.load(to)?;
        Ok(diff_snapshots(&a, &b))
    }
}

/// The local user running rampart, for the fix journal: `$USER`, `$LOGNAME`, else the uid.
pub fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(|u| format!("uid {u}")))
        })
        .unwrap_or_else(|| "unknown".to_string())
}
