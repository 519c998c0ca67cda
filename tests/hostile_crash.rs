//! Nothing lost: the history database (`rampart::store`) and the fix journal survive
//! `kill -9` at random points during writes, many times over the same files: never corrupt,
//! every completed record present, an interrupted fix found as unfinished and closed as
//! interrupted. A full disk under the history: a clear error, the audit still reports.
//!
//! The writers run in a child process (this test binary re-run with `RAMPART_HOSTILE_CHILD`
//! set), which the test kills with SIGKILL after a random delay. `RAMPART_CRASH_LOOPS`
//! (default 25) sets the number of kills per case.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hostile_support as hs;
use rampart::fix::Journal;
use rampart::fix::journal::{OutcomeKind, Record};
use rampart::store::{HostSnapshot, NewSnapshot, Source, Store};

const CHILD_ENV: &str = "RAMPART_HOSTILE_CHILD";
const HOSTS_PER_SNAPSHOT: usize = 3;

fn loops() -> usize {
    std::env::var("RAMPART_CRASH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}

/// The writer side: runs only in the child process.
#[test]
#[ignore = "the child half of the crash tests; runs only when they start it"]
fn crash_child() {
    let Ok(what) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (kind, dir) = what.split_once(':').unwrap();
    let dir = PathBuf::from(dir);
    let mut out = std::io::stdout().lock();
    let tag = std::process::id();
    match kind {
        "store" => {
            let mut store = Store::open(&dir.join("history.sqlite3")).unwrap();
            for i in 0u64.. {
                // States big enough that a write takes a while (several pages).
                let hosts = (0..HOSTS_PER_SNAPSHOT)
                    .map(|h| {
                        HostSnapshot::from_state(
                            &format!("h{h}"),
                            true,
                            &serde_json::json!({"tag": tag, "i": i, "pad": "x".repeat(20_000 + (i as usize % 7) * 3000)}),
                        )
                        .unwrap()
                    })
                    .collect();
                let id = store
                    .record(&NewSnapshot {
                        taken_at: 1_700_000_000 + i as i64,
                        source: Source::Audit,
                        inventory: format!("crash-{tag}-{i}"),
                        hosts,
                        findings: Vec::new(),
                    })
                    .unwrap();
                writeln!(out, "done {id}").unwrap();
                out.flush().unwrap();
            }
        }
        "journal" => {
            let store = Store::open(&dir.join("history.sqlite3")).unwrap();
            let j = Journal::new(dir.join("fixes.jsonl")).with_store(store);
            for i in 0u64.. {
                let run = format!("{tag}-{i}");
                j.append(&Record::Intent {
                    run: run.clone(),
                    time: "2025-01-01T00:00:00Z".into(),
                    user: "tester".into(),
                    host: "db1".into(),
                    fix: "f2b-start".into(),
                    params: Vec::new(),
                    commands: vec!["fail2ban-client start".into(); 4],
                    rollback_secs: None,
                    started: 1_700_000_000 + i as i64,
                })
                .unwrap();
                writeln!(out, "intent {run}").unwrap();
                out.flush().unwrap();
                j.append(&Record::Command {
                    run: run.clone(),
                    time: "2025-01-01T00:00:01Z".into(),
                    what: "start".into(),
                    command: "fail2ban-client start".into(),
                    exit_status: Some(0),
                    stdout: "y".repeat(5000),
                    stderr: String::new(),
                })
                .unwrap();
                j.append(&Record::Outcome {
                    run: run.clone(),
                    time: "2025-01-01T00:00:02Z".into(),
                    host: "db1".into(),
                    fix: "f2b-start".into(),
                    outcome: OutcomeKind::Applied,
                    verified: true,
                    message: "applied".into(),
                })
                .unwrap();
                writeln!(out, "done {run}").unwrap();
                out.flush().unwrap();
            }
        }
        other => panic!("unknown child kind {other}"),
    }
}

/// Starts the child writer, kills it with SIGKILL after `delay`, returns its stdout lines
/// (everything it reported as completed before dying).
fn run_and_kill(kind: &str, dir: &Path, delay: Duration) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1", "-q"])
        .env(CHILD_ENV, format!("{kind}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "the child ended on its own: {status}"
    );
    reader.join().unwrap()
}

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let r: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok", "{}", db.display());
}

fn random_delay() -> Duration {
    // The child needs ~100 ms to start; kill anywhere in its first ~half second of writes.
    Duration::from_millis(60 + fastrand::u64(0..500))
}

#[test]
fn history_survives_kill_9_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite3");
    let mut completed: BTreeSet<i64> = BTreeSet::new();
    let mut kills = 0;
    for _ in 0..loops() {
        let lines = run_and_kill("store", dir.path(), random_delay());
        kills += 1;
        for l in lines {
            if let Some(id) = l.strip_prefix("done ") {
                completed.insert(id.parse().unwrap());
            }
        }
        integrity_ok(&db);
        let store = Store::open(&db).unwrap();
        let present: BTreeMap<i64, _> = store
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let lost: Vec<&i64> = completed
            .iter()
            .filter(|id| !present.contains_key(id))
            .collect();
        assert!(lost.is_empty(), "completed snapshots lost: {lost:?}");
        // Every snapshot there is whole: all its hosts, each state intact (a torn write never
        // shows up as a partial snapshot).
        for id in present.keys() {
            let s = store.load(*id).unwrap();
            assert_eq!(s.hosts.len(), HOSTS_PER_SNAPSHOT, "snapshot {id}");
            for h in &s.hosts {
                assert!(h.state["pad"].as_str().unwrap().len() >= 20_000, "{id}");
            }
        }
    }
    assert!(
        completed.len() > kills,
        "the writer completed only {} snapshots in {kills} runs: the kills proved little",
        completed.len()
    );
    eprintln!(
        "figure: history kill -9 loops {kills}, snapshots completed {}, lost 0",
        completed.len()
    );
}

#[test]
fn fix_journal_survives_kill_9_and_reports_interrupted_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite3");
    let path = dir.path().join("fixes.jsonl");
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut interrupted_seen = 0;
    let mut kills = 0;
    for _ in 0..loops() {
        let lines = run_and_kill("journal", dir.path(), random_delay());
        kills += 1;
        let mut intents = BTreeSet::new();
        for l in &lines {
            if let Some(r) = l.strip_prefix("done ") {
                done.insert(r.to_string());
            } else if let Some(r) = l.strip_prefix("intent ") {
                intents.insert(r.to_string());
            }
        }
        integrity_ok(&db);
        let j = Journal::new(&path).with_store(Store::open(&db).unwrap());
        let recs = j.records().unwrap();
        // Every completed run is there with its outcome.
        let with_outcome: BTreeSet<String> = recs
            .iter()
            .filter(|r| matches!(r, Record::Outcome { .. }))
            .map(|r| r.run().to_string())
            .collect();
        let lost: Vec<&String> = done.difference(&with_outcome).collect();
        assert!(lost.is_empty(), "completed fixes lost: {lost:?}");
        // Whatever the kill interrupted is reported as unfinished (at most the one run in
        // flight), then closed as interrupted, as `rampart fix` and the console do.
        let unfinished = j.unfinished().unwrap();
        assert!(unfinished.len() <= 1, "{unfinished:?}");
        for u in &unfinished {
            let run = u.intent.run().to_string();
            assert!(!done.contains(&run), "{run} is done yet unfinished");
            let Record::Intent {
                host, fix, started, ..
            } = &u.intent
            else {
                panic!("not an intent");
            };
            j.abandon_in_store(
                host,
                fix,
                *started,
                "interrupted; reported on the next start",
            );
            j.append(&Record::Outcome {
                run: run.clone(),
                time: "2025-01-01T00:00:03Z".into(),
                host: host.clone(),
                fix: fix.clone(),
                outcome: OutcomeKind::Interrupted,
                verified: false,
                message: "interrupted".into(),
            })
            .unwrap();
            interrupted_seen += 1;
        }
        // A run whose intent was reported but not its end is either unfinished (now closed
        // as interrupted) or finished just before the kill: never missing.
        let recs = j.records().unwrap();
        for run in &intents {
            assert!(
                recs.iter()
                    .any(|r| r.run() == run && matches!(r, Record::Outcome { .. })),
                "{run} has no outcome"
            );
        }
        assert!(j.unfinished().unwrap().is_empty());
        // The store mirror: nothing left running.
        let store = Store::open(&db).unwrap();
        assert!(
            store.unfinished().unwrap().is_empty(),
            "store rows still running"
        );
    }
    assert!(done.len() > kills, "only {} runs completed", done.len());
    eprintln!(
        "figure: fix journal kill -9 loops {kills}, runs completed {}, interrupted and reported {interrupted_seen}, lost 0",
        done.len()
    );
}

/// A full disk under the history database: the audit says so on stderr and still prints
/// its report and exit status.
#[test]
fn full_disk_under_history_is_a_clear_error_and_the_audit_reports() {
    let lab = common::ensure_lab();
    let home = tempfile::tempdir().unwrap();
    let full = home.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let m = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "rampart-hostile-full"])
        .arg(&full)
        .status()
        .unwrap();
    assert!(m.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(full.clone());
    // Fill it.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", full.join("filler").display()))
        .stderr(Stdio::null())
        .status();
    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));
    let out = hs::rampart(home.path())
        .arg("-i")
        .arg(&inv)
        .args(["audit", "--format", "json", "--history"])
        .arg(full.join("history.sqlite3"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The findings' exit status, not a crash or a usage error.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hosts"].as_array().unwrap().len(), common::HOSTS.len());
    assert!(
        stderr.contains("history not recorded") && stderr.contains("history.sqlite3"),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("full") || stderr.contains("No space"),
        "the error should say the disk is full: {stderr}"
    );
}

/// Regression (found by the kill loop): killed after the JSONL outcome but before its
/// mirror into the store, a fix stayed `running` in the store for ever. Attaching the store
/// now closes such rows from the JSONL outcome.
#[test]
fn store_row_left_running_after_a_journaled_outcome_is_closed() {
    use rampart::store::journal::{FixIntent, FixState};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite3");
    let mut store = Store::open(&db).unwrap();
    let row = store
        .journal_begin(&FixIntent {
            started_at: 42,
            local_user: "tester".into(),
            host: "db1".into(),
            fix_id: "f2b-start".into(),
            commands: serde_json::json!(["fail2ban-client start"]),
        })
        .unwrap();
    // The JSONL side got both lines (the crash came before the mirror of the outcome).
    let j = Journal::new(dir.path().join("fixes.jsonl"));
    j.append(&Record::Intent {
        run: "r1".into(),
        time: "t".into(),
        user: "tester".into(),
        host: "db1".into(),
        fix: "f2b-start".into(),
        params: Vec::new(),
        commands: vec!["fail2ban-client start".into()],
        rollback_secs: None,
        started: 42,
    })
    .unwrap();
    j.append(&Record::Outcome {
        run: "r1".into(),
        time: "t".into(),
        host: "db1".into(),
        fix: "f2b-start".into(),
        outcome: OutcomeKind::Applied,
        verified: true,
        message: "applied".into(),
    })
    .unwrap();
    assert_eq!(store.unfinished().unwrap().len(), 1);
    drop(store);
    let _j = Journal::new(dir.path().join("fixes.jsonl")).with_store(Store::open(&db).unwrap());
    let store = Store::open(&db).unwrap();
    assert!(store.unfinished().unwrap().is_empty());
    let e = store.journal_entry(row).unwrap().unwrap();
    assert_eq!(e.state, FixState::Succeeded);
}
