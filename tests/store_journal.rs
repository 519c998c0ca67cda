//! The fix journal: intent rows before a fix, completion after, and rows left `running` by a
//! process that died are listed by `unfinished()` (also after reopening the database).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use rampart::store::{FixIntent, FixOutcome, FixState, Store, StoreError};
use serde_json::json;

fn intent(host: &str, fix: &str, at: i64) -> FixIntent {
    FixIntent {
        started_at: at,
        local_user: "alice".into(),
        host: host.into(),
        fix_id: fix.into(),
        commands: json!([["ufw", "delete", "allow", "8443/tcp"], ["ufw", "reload"]]),
    }
}

fn done(state: FixState, at: i64) -> FixOutcome {
    FixOutcome {
        finished_at: at,
        state,
        outcome: "port 8443 closed".into(),
        output: "Rule deleted\nFirewall reloaded\n".into(),
        exit_statuses: vec![Some(0), Some(0)],
        verification: Some("8443/tcp no longer admitted from 0.0.0.0/0".into()),
    }
}

#[test]
fn intents_outcomes_and_unfinished_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    let (a, b, c);
    {
        let mut s = Store::open(&path).unwrap();
        a = s
            .journal_begin(&intent("web1", "fw-close-port", 100))
            .unwrap();
        b = s
            .journal_begin(&intent("web2", "fw-close-port", 200))
            .unwrap();
        c = s
            .journal_begin(&intent("db1", "fw-enable-default-deny", 300))
            .unwrap();
        let running = s.unfinished().unwrap();
        assert_eq!(running.iter().map(|e| e.id).collect::<Vec<_>>(), [a, b, c]);
        assert_eq!(running[0].intent.commands[0][0], "ufw");
        assert!(
            running
                .iter()
                .all(|e| e.state == FixState::Running && e.outcome.is_none())
        );
        s.journal_finish(a, &done(FixState::Succeeded, 110))
            .unwrap();
        let mut failed = done(FixState::Failed, 310);
        failed.exit_statuses = vec![Some(0), None];
        s.journal_finish(c, &failed).unwrap();
        // The process "dies" here with b still running.
    }
    let mut s = Store::open(&path).unwrap();
    let left = s.unfinished().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, b);
    assert_eq!(left[0].intent.host, "web2");
    assert_eq!(left[0].intent.local_user, "alice");

    let all = s.journal(10).unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [c, b, a]);
    let first = s.journal_entry(a).unwrap().unwrap();
    assert_eq!(first.state, FixState::Succeeded);
    assert_eq!(first.outcome, Some(done(FixState::Succeeded, 110)));
    let third = s.journal_entry(c).unwrap().unwrap();
    assert_eq!(third.outcome.unwrap().exit_statuses, vec![Some(0), None]);

    // Completing twice, completing as running, or completing a missing row: errors.
    let again = s.journal_finish(a, &done(FixState::Failed, 120));
    assert!(
        matches!(&again, Err(StoreError::Journal { message, .. }) if message.contains("already completed (succeeded)")),
        "{again:?}"
    );
    assert!(s.journal_finish(b, &done(FixState::Running, 1)).is_err());
    let missing = s.journal_finish(999, &done(FixState::Abandoned, 1));
    assert!(
        matches!(&missing, Err(StoreError::Journal { message, .. }) if message == "no such entry")
    );
    // A person closes the interrupted one.
    s.journal_finish(b, &done(FixState::Abandoned, 900))
        .unwrap();
    assert!(s.unfinished().unwrap().is_empty());
    assert_eq!(s.journal(1).unwrap()[0].id, c, "newest first, limited");
}
