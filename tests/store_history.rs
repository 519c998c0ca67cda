//! The history database: snapshots written and read back, all-or-nothing writes, retention,
//! snapshot selection for `--since`, and drift between two hand-made snapshots whose states are
//! real `rampart::state::HostState` values (so the diff's JSON walk follows the real key names).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::IpAddr;

use rampart::posture::{Finding, Severity};
use rampart::state::{
    Action, Backend, Direction, Fail2ban, Firewall, HostState, Jail, Listener, Manager, Origin,
    PortRange, PortSet, Probed, Protocol, Rule, SocketProcess,
};
use rampart::store::{
    HostSnapshot, NewSnapshot, Retention, Since, Source, Store, StoreError, parse_since,
};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn db() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("nested/history.sqlite3")).expect("open");
    (dir, store)
}

fn listener(port: u16, proc_name: &str, pid: u32) -> Listener {
    Listener {
        protocol: Protocol::Tcp,
        address: None,
        interface: None,
        port,
        processes: vec![SocketProcess {
            name: proc_name.to_string(),
            pid,
        }],
    }
}

fn allow(port: u16, line: usize) -> Rule {
    let mut r = Rule::new(
        Direction::In,
        Action::Accept,
        Manager::Ufw,
        Origin {
            backend: Backend::IptablesNft,
            table: "filter".into(),
            chain: "ufw-user-input".into(),
            line: Some(line),
            handle: None,
        },
    );
    r.protocol = Some(Protocol::Tcp);
    r.dports = PortSet::Only(vec![PortRange::single(port)]);
    r
}

fn state(host: &str, ports: &[(u16, &str, u32)], rules: Vec<Rule>, banned: &[&str]) -> HostState {
    let mut s = HostState::unreachable(host, "test", "not collected in this test");
    s.errors.clear();
    s.collected_at = Some(T0);
    s.listeners = Probed::Ok(
        ports
            .iter()
            .map(|(p, n, pid)| listener(*p, n, *pid))
            .collect(),
    );
    s.firewall = Probed::Ok(Firewall {
        managers: vec![Manager::Ufw],
        rules,
        ..Firewall::default()
    });
    s.fail2ban = Probed::Ok(Fail2ban {
        running: true,
        version: Some("1.0.2".into()),
        jails: vec![Jail {
            name: "sshd".into(),
            banned: banned
                .iter()
                .map(|b| b.parse::<IpAddr>().unwrap())
                .collect(),
            ..Jail::default()
        }],
    });
    s
}

fn snap(at: i64, hosts: Vec<(HostState, bool)>, findings: Vec<Finding>) -> NewSnapshot {
    NewSnapshot {
        taken_at: at,
        source: Source::Audit,
        inventory: "inventory.toml".into(),
        hosts: hosts
            .iter()
            .map(|(s, up)| HostSnapshot::from_state(&s.host, *up, s).unwrap())
            .collect(),
        findings,
    }
}

fn rows(store: &Store, table: &str) -> i64 {
    let c = rusqlite::Connection::open(store.path()).unwrap();
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn write_and_read_back() {
    let (_d, mut store) = db();
    let web1 = state(
        "web1",
        &[(22, "sshd", 100), (80, "nginx", 200)],
        vec![allow(22, 1)],
        &[],
    );
    let mut f = Finding::new("FW-STALE-RULE", "web1", "allow 8443/tcp, nothing listens")
        .evidence("ufw: 8443/tcp ALLOW IN Anywhere");
    f.severity = Severity::Low;
    let s = snap(T0, vec![(web1.clone(), true)], vec![f.clone()]);
    let id = store.record(&s).unwrap();
    let back = store.load(id).unwrap();
    assert_eq!(back.meta.taken_at, T0);
    assert_eq!(back.meta.source, Source::Audit);
    assert_eq!((back.meta.hosts, back.meta.findings), (1, 1));
    assert_eq!(back.findings, vec![f]);
    let restored: HostState = serde_json::from_value(back.hosts[0].state.clone()).unwrap();
    assert_eq!(restored, web1);
    assert_eq!(store.latest().unwrap().map(|m| m.id), Some(id));
    // WAL mode is on, for every connection to the file.
    let c = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Private: history holds the fleet's security state.
    use std::os::unix::fs::PermissionsExt;
    let perm = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(perm & 0o077, 0, "history file mode {perm:o}");
    assert!(matches!(
        store.load(id + 1),
        Err(StoreError::NoSnapshot { .. })
    ));
}

#[test]
fn a_failed_write_leaves_nothing() {
    let (_d, mut store) = db();
    let good = snap(T0, vec![(state("web1", &[], vec![], &[]), true)], vec![]);
    store.record(&good).unwrap();
    // The second host row violates the (snapshot, host) key: the insert fails half-way, after
    // the snapshot row and the first host row were written.
    let web2 = state("web2", &[(22, "sshd", 1)], vec![], &[]);
    let bad = snap(
        T0 + 60,
        vec![(web2.clone(), true), (web2, true)],
        vec![Finding::new("FW-NONE", "web2", "no firewall")],
    );
    let err = store.record(&bad).expect_err("duplicate host must fail");
    assert!(err.to_string().contains("insert host state"), "{err}");
    assert_eq!(store.snapshots().unwrap().len(), 1);
    assert_eq!(rows(&store, "snapshots"), 1);
    assert_eq!(rows(&store, "host_states"), 1);
    assert_eq!(rows(&store, "findings"), 0);
}

#[test]
fn retention_by_age_and_count() {
    let (_d, mut store) = db();
    let mut ids = Vec::new();
    for day in 0..10 {
        let s = snap(
            T0 + day * 86_400,
            vec![(state("web1", &[(22, "sshd", 1)], vec![], &[]), true)],
            vec![Finding::new("FW-NONE", "web1", format!("day {day}"))],
        );
        ids.push(store.record(&s).unwrap());
    }
    let now = T0 + 9 * 86_400 + 3600;
    // Keep 5 days: the cutoff is day 4 + 1h, so days 0..=4 go.
    let removed = store
        .prune(
            &Retention {
                keep_days: Some(5),
                keep_snapshots: None,
            },
            now,
        )
        .unwrap();
    assert_eq!(removed, 5);
    let left: Vec<i64> = store.snapshots().unwrap().iter().map(|m| m.id).collect();
    assert_eq!(left, ids[5..]);
    let removed = store
        .prune(
            &Retention {
                keep_days: None,
                keep_snapshots: Some(2),
            },
            now,
        )
        .unwrap();
    assert_eq!(removed, 3);
    let left: Vec<i64> = store.snapshots().unwrap().iter().map(|m| m.id).collect();
    assert_eq!(left, ids[8..]);
    // Their states and findings went with them.
    assert_eq!(rows(&store, "host_states"), 2);
    assert_eq!(rows(&store, "findings"), 2);
    // Nothing to do is not an error.
    assert_eq!(store.prune(&Retention::default(), now).unwrap(), 0);
}

#[test]
fn since_selects_snapshots() {
    let (_d, mut store) = db();
    let empty = store.select(&Since::Previous, T0).expect_err("no history");
    assert!(empty.to_string().contains("no snapshots yet"), "{empty}");
    let mut ids = Vec::new();
    for h in 0..4 {
        let s = snap(T0 + h * 3600, vec![], vec![]);
        ids.push(store.record(&s).unwrap());
        if h == 0 {
            let one = store
                .select(&Since::Previous, T0)
                .expect_err("one snapshot");
            assert!(one.to_string().contains("only one snapshot"), "{one}");
        }
    }
    let now = T0 + 3 * 3600 + 60;
    assert_eq!(
        store.select(&Since::Previous, now).unwrap(),
        (ids[2], ids[3])
    );
    assert_eq!(
        store.select(&parse_since("2h").unwrap(), now).unwrap(),
        (ids[1], ids[3])
    );
    assert_eq!(
        store.select(&parse_since("1h30m").unwrap(), now).unwrap(),
        (ids[1], ids[3])
    );
    // Further back than the history goes: the oldest kept.
    assert_eq!(
        store.select(&parse_since("1w").unwrap(), now).unwrap(),
        (ids[0], ids[3])
    );
    assert_eq!(
        store
            .select(&parse_since(&format!("#{}", ids[0])).unwrap(), now)
            .unwrap(),
        (ids[0], ids[3])
    );
    assert!(matches!(
        store.select(&Since::Snapshot(999), now),
        Err(StoreError::NoSnapshot { id: 999, .. })
    ));
    // Only a minute back: that is the latest itself.
    assert!(store.select(&parse_since("30s").unwrap(), now).is_err());
}

#[test]
fn diff_reports_ports_rules_bans_and_findings() {
    let (_d, mut store) = db();
    let before = state(
        "web1",
        &[(22, "sshd", 100), (80, "nginx", 200)],
        vec![allow(22, 1), allow(80, 2)],
        &["203.0.113.9"],
    );
    // sshd restarted (new pid), nginx gone, postgres appeared; the 22 rule moved to line 2
    // (not a change), the 80 rule went, a 5432 rule came; one ban lifted, one new.
    let after = state(
        "web1",
        &[(22, "sshd", 4242), (5432, "postgres", 811)],
        vec![allow(5432, 1), allow(22, 2)],
        &["198.51.100.7"],
    );
    let mut fw_denied = state("db1", &[(5432, "postgres", 1)], vec![], &[]);
    let db1_before = fw_denied.clone();
    fw_denied.firewall = Probed::PermissionDenied {
        stage: "iptables-save".into(),
        message: "Permission denied (you must be root)".into(),
    };
    let app1 = state("app1", &[(8080, "java", 1)], vec![], &[]);
    let app1_down = HostState::unreachable("app1", "connect", "timed out");
    let stale = Finding::new("FW-STALE-RULE", "web1", "allow 80/tcp, nothing listens");
    let kept = Finding::new("SSH-PASSWORD-AUTH", "web1", "PasswordAuthentication yes");
    let exposed = Finding::new("FW-EXPOSED-PORT", "web1", "5432/tcp open to 0.0.0.0/0");
    let a = store
        .record(&snap(
            T0,
            vec![(before, true), (db1_before, true), (app1, true)],
            vec![stale.clone(), kept.clone()],
        ))
        .unwrap();
    let b = store
        .record(&snap(
            T0 + 3600,
            vec![(after, true), (fw_denied, true), (app1_down, false)],
            vec![kept, exposed.clone()],
        ))
        .unwrap();
    let d = store.diff(a, b).unwrap();
    assert_eq!(d.findings_new, vec![exposed]);
    assert_eq!(d.findings_resolved, vec![stale]);
    assert!(d.hosts_added.is_empty() && d.hosts_removed.is_empty());
    let host = |n: &str| d.hosts.iter().find(|h| h.host == n).unwrap();
    let web1 = host("web1");
    assert_eq!(web1.ports_opened, ["5432/tcp * (postgres)"]);
    assert_eq!(web1.ports_closed, ["80/tcp * (nginx)"]);
    assert_eq!(
        web1.rules_added,
        ["in accept tcp dport 5432 (ufw: iptables-nft filter/ufw-user-input)"]
    );
    assert_eq!(
        web1.rules_removed,
        ["in accept tcp dport 80 (ufw: iptables-nft filter/ufw-user-input)"]
    );
    assert_eq!(web1.bans_added, ["sshd: 198.51.100.7"]);
    assert_eq!(web1.bans_removed, ["sshd: 203.0.113.9"]);
    assert!(web1.notes.is_empty(), "{:?}", web1.notes);
    // A part that could not be read is not compared, and says why.
    let db1 = host("db1");
    assert!(db1.rules_added.is_empty() && db1.rules_removed.is_empty());
    assert_eq!(db1.notes.len(), 1, "{:?}", db1.notes);
    assert!(db1.notes[0].starts_with(&format!(
        "firewall rules not compared: not collected in snapshot {b} (permission denied: Permission denied"
    )));
    // An unreachable host did not close all its ports.
    let app1 = host("app1");
    assert!(app1.ports_closed.is_empty());
    assert_eq!(
        app1.notes,
        [format!(
            "not compared: the host was unreachable in snapshot {b}"
        )]
    );

    let text = d.to_text();
    assert!(text.starts_with(&format!(
        "Changes from snapshot {a} (2026-01-01T00:00:00Z, audit) to snapshot {b} (2026-01-01T01:00:00Z, audit)"
    )));
    assert!(
        text.contains("  new (1):\n    + HIGH FW-EXPOSED-PORT web1: 5432/tcp open to 0.0.0.0/0\n")
    );
    assert!(text.contains("web1:\n  ports opened (1):\n    + 5432/tcp * (postgres)\n  ports closed (1):\n    - 80/tcp * (nginx)\n"));
    let json: serde_json::Value = serde_json::from_str(&d.to_json().unwrap()).unwrap();
    assert_eq!(json["from"]["id"], a);
    assert_eq!(json["findings_new"][0]["check"], "FW-EXPOSED-PORT");
    assert_eq!(json["hosts"][2]["bans_added"][0], "sshd: 198.51.100.7");

    // The same state again an hour later (only pids differ): no changes.
    let again = store.load(a).unwrap();
    let mut copy = snap(T0 + 7200, vec![], again.findings.clone());
    copy.hosts = again.hosts.clone();
    *copy.hosts[0]
        .state
        .pointer_mut("/listeners/value/0/processes/0/pid")
        .expect("web1 has a listener with a process") = serde_json::json!(31337);
    let c = store.record(&copy).unwrap();
    let same = store.diff(a, c).unwrap();
    assert!(same.is_empty());
    assert!(same.to_text().ends_with("No changes.\n"));
}

#[test]
fn history_survives_reopening_and_refuses_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sqlite3");
    {
        let mut s = Store::open(&path).unwrap();
        s.record(&snap(T0, vec![], vec![])).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.snapshots().unwrap().len(), 1);
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(c);
    let e = Store::open(&path).expect_err("newer schema");
    assert!(e.to_string().contains("schema version 99"), "{e}");
}

/// Run as a child by `a_killed_writer_leaves_whole_snapshots`: writes big snapshots until
/// killed (or for at most 60 s, so an orphan cannot run forever).
fn write_until_killed(path: &std::path::Path) {
    let mut store = Store::open(path).unwrap();
    let hosts: Vec<(HostState, bool)> = (0..20)
        .map(|i| {
            let ports: Vec<(u16, &str, u32)> = (0..30).map(|p| (1000 + p, "svc", 1)).collect();
            (
                state(&format!("h{i}"), &ports, vec![allow(22, 1)], &[]),
                true,
            )
        })
        .collect();
    let findings: Vec<Finding> = (0..50)
        .map(|i| Finding::new("FW-EXPOSED-PORT", "h1", format!("port {i}")))
        .collect();
    let start = std::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < std::time::Duration::from_secs(60) {
        store
            .record(&snap(T0 + n, hosts.clone(), findings.clone()))
            .unwrap();
        n += 1;
    }
}

#[test]
fn a_killed_writer_leaves_whole_snapshots() {
    if let Some(p) = std::env::var_os("RAMPART_STORE_CRASH_CHILD") {
        write_until_killed(std::path::Path::new(&p));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite3");
    Store::open(&path).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_writer_leaves_whole_snapshots",
            "--test-threads=1",
        ])
        .env("RAMPART_STORE_CRASH_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it commit a few snapshots, then SIGKILL it, most likely mid-transaction.
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = Store::open(&path).unwrap().snapshots().unwrap().len();
        if n >= 3 || start.elapsed() > std::time::Duration::from_secs(50) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let store = Store::open(&path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let metas = store.snapshots().unwrap();
    assert!(metas.len() >= 3, "{} snapshots", metas.len());
    for m in &metas {
        assert_eq!((m.hosts, m.findings), (20, 50), "snapshot {} is torn", m.id);
    }
    // Whatever was mid-flight left no orphan rows.
    let orphans: i64 = c
        .query_row(
            "SELECT (SELECT COUNT(*) FROM host_states WHERE snapshot_id NOT IN (SELECT id FROM snapshots))
                  + (SELECT COUNT(*) FROM findings WHERE snapshot_id NOT IN (SELECT id FROM snapshots))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}
