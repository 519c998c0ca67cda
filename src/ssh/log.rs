//! The local command log: one JSON line per command actually sent to a host.
//!
//! Owns: the record format and appending to the file (default
//! `$XDG_STATE_HOME/rampart/commands.jsonl`). Each record is written with one `write` call on a
//! file opened in append mode, so concurrent writers never interleave inside a line.
//!
//! Must not: record secrets (passphrases never pass through here; command text is built from
//! static probes and typed values only).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One command sent to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// RFC 3339, UTC, millisecond precision: when the command was sent.
    pub time: String,
    pub host: String,
    /// Bastions it went through, outermost first.
    pub via: Vec<String>,
    /// `read` or `mutating`.
    pub kind: String,
    /// Probe or fix name.
    pub name: String,
    /// The exact text sent.
    pub command: String,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub duration_ms: u64,
    pub truncated: bool,
    /// Why it did not complete (timeout, disconnect), if it did not.
    pub error: Option<String>,
}

/// Appends [`CommandRecord`]s to a JSONL file.
#[derive(Debug)]
pub struct CommandLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl CommandLog {
    pub fn new(path: PathBuf) -> CommandLog {
        CommandLog {
            path,
            lock: Mutex::new(()),
        }
    }

    /// The default location, under rampart's XDG state directory.
    pub fn default_path() -> PathBuf {
        crate::paths::state_dir().join("commands.jsonl")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record.
    pub fn append(&self, record: &CommandRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        line.push('\n');
        // The lock only orders writers of this process; O_APPEND keeps lines whole across
        // processes.
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(line.as_bytes())
    }

    /// Reads every record back (for tests and the audit trail view).
    pub fn read_all(path: &Path) -> std::io::Result<Vec<CommandRecord>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T14:01:15.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_points() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
        // Checked with `date -u -d @1795000000`.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn append_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = CommandLog::new(dir.path().join("a/b/commands.jsonl"));
        let rec = CommandRecord {
            time: rfc3339(SystemTime::now()),
            host: "db1".into(),
            via: vec!["edge".into()],
            kind: "read".into(),
            name: "uname".into(),
            command: "uname -s".into(),
            exit_status: Some(0),
            exit_signal: None,
            duration_ms: 3,
            truncated: false,
            error: None,
        };
        log.append(&rec).unwrap();
        log.append(&rec).unwrap();
        assert_eq!(
            CommandLog::read_all(log.path()).unwrap(),
            vec![rec.clone(), rec]
        );
    }
}
