//! Incremental refresh on the practice lab: after each kind of change (a port opened, a
//! ufw rule added, a fail2ban ban, an sshd config edit, a daemon started where its tool
//! was installed but idle) a steady-state refresh through
//! `collect::Refresher` gives the state a full collection gives, and an unchanged host costs
//! one exec. Every change is put back by a drop guard, pass or fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use rampart::collect::{Refresher, collect_named};
use rampart::ssh::Transport;
use rampart::state::{HostState, Probed};

const HOST: &str = "web1";
/// A port nothing in the lab listens on, and an address nothing in the lab uses
/// (TEST-NET-1).
const PORT: u16 = 48_231;
const BANNED: &str = "192.0.2.77";
const DROP_IN: &str = "/etc/ssh/sshd_config.d/zz-rampart-incremental.conf";

/// The state without what changes by itself between two collections a moment apart
/// (uptime, traffic counters, the collection time, VPN transfer counters).
fn comparable(st: &HostState) -> HostState {
    let mut s = st.clone();
    s.collected_at = None;
    s.counters = Probed::NotInstalled { tool: "-".into() };
    s.vpn = Probed::NotInstalled { tool: "-".into() };
    if let Probed::Ok(f) = &mut s.facts {
        f.uptime_secs = None;
    }
    s
}

/// Refreshes, then collects in full, and checks both agree (retrying once: a process of
/// another lab host may start or end between the two).
async fn refresh_equals_full(
    t: &Transport,
    r: &Refresher,
    what: &str,
) -> (HostState, rampart::collect::RefreshReport) {
    refresh_equals_full_with(t, r, what, false).await
}

/// [`refresh_equals_full`], where the host's state may hold errors (a daemon that is not
/// what it says), as long as both collections agree on them.
async fn refresh_equals_full_with(
    t: &Transport,
    r: &Refresher,
    what: &str,
    errors_ok: bool,
) -> (HostState, rampart::collect::RefreshReport) {
    let mut last = String::new();
    for _ in 0..3 {
        let (inc, report) = r.collect_named(t, HOST).await;
        assert!(!report.full, "{what}: the refresh was a full collection");
        let full = collect_named(t, HOST).await;
        assert!(
            errors_ok || inc.errors.is_empty(),
            "{what}: {:?}",
            inc.errors
        );
        if comparable(&inc) == comparable(&full) {
            return (inc, report);
        }
        last = format!(
            "{what}: refresh {report:?}\nincremental: {:#?}\nfull: {:#?}",
            comparable(&inc),
            comparable(&full)
        );
    }
    panic!("{last}");
}

/// Puts a change back when dropped, pass or fail.
struct Undo<F: FnMut()>(F);
impl<F: FnMut()> Drop for Undo<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn listener(lab: &common::Lab) -> Child {
    Command::new("nsenter")
        .args(["--target", &lab.holder_pid(HOST).to_string(), "--net", "--"])
        .args([
            "/usr/bin/python3",
            "-c",
            &format!(
                "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', {PORT}))\ns.listen()\ntime.sleep(600)"
            ),
        ])
        .spawn()
        .expect("start a listener on web1")
}

#[tokio::test(flavor = "multi_thread")]
async fn steady_refresh_equals_full_collection_after_each_kind_of_change() {
    let lab = common::ensure_lab_exclusive();
    let t = lab.transport(None);
    let r = Refresher::new(Duration::from_secs(3600));

    let (first, report) = r.collect_named(&t, HOST).await;
    assert!(report.full && report.execs == 1, "{report:?}");
    assert!(first.errors.is_empty(), "{:?}", first.errors);

    // Processes coming and going outside web1 (here, in the test's own network namespace;
    // on a shared machine, other labs and builds) share the PID namespace with the lab's
    // hosts: they must not read as a change of web1.
    let mut churn = Command::new("sh")
        .args(["-c", "while :; do sleep 0.05; done"])
        .spawn()
        .expect("start a process churner");
    let _churn = Undo(move || {
        let _ = churn.kill();
        let _ = churn.wait();
    });

    // Unchanged: one exec, nothing watched runs again, the same state. A lab just brought up
    // is still settling (fail2ban writes its database and log, daemons start and end): a
    // watched probe that runs again then is right, so wait (bounded) for a quiet refresh.
    let (_, mut report) = refresh_equals_full(&t, &r, "unchanged").await;
    for _ in 0..15 {
        if report.execs == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        report = refresh_equals_full(&t, &r, "unchanged").await.1;
    }
    assert_eq!(report.execs, 1, "{report:?}");
    assert!(report.reran.is_empty(), "{report:?}");

    // A port opened.
    let mut child = listener(&lab);
    let mut child = Undo(move || {
        let _ = child.kill();
        let _ = child.wait();
    });
    let mut seen = false;
    for _ in 0..50 {
        let (st, _) = refresh_equals_full(&t, &r, "port opened").await;
        seen = st.listeners.ok().unwrap().iter().any(|l| l.port == PORT);
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the refresh never showed the new listener on {PORT}");
    (child.0)();

    // A rule added (ufw writes user.rules and reloads its chains).
    let rule = format!("{PORT}/tcp");
    let out = lab.exec(HOST, "ufw", &["allow", &rule]);
    assert!(out.status.success(), "{out:?}");
    let rule_undo = Undo(|| {
        let _ = lab.exec(HOST, "ufw", &["delete", "allow", &rule]);
    });
    let (st, report) = refresh_equals_full(&t, &r, "rule added").await;
    assert!(report.reran.contains(&"ufw-rules"), "{report:?}");
    let ufw = st.firewall.ok().unwrap().ufw.clone().unwrap();
    assert!(
        ufw.rules.iter().any(|u| u.to.starts_with(&rule)),
        "{:?}",
        ufw.rules
    );

    // A ban.
    let out = lab.exec(HOST, "fail2ban-client", &["set", "sshd", "banip", BANNED]);
    assert!(out.status.success(), "{out:?}");
    // The first ban makes fail2ban create its chain, which an unban leaves: restarting the
    // jail removes it, as before the test.
    let ban = Undo(|| {
        let _ = lab.exec(HOST, "fail2ban-client", &["set", "sshd", "unbanip", BANNED]);
        let _ = lab.exec(HOST, "fail2ban-client", &["reload", "--restart", "sshd"]);
    });
    let (st, report) = refresh_equals_full(&t, &r, "ban").await;
    assert!(report.reran.contains(&"fail2ban"), "{report:?}");
    let banned: std::net::IpAddr = BANNED.parse().unwrap();
    assert!(
        st.fail2ban
            .ok()
            .unwrap()
            .jails
            .iter()
            .any(|j| j.banned.contains(&banned)),
        "{:?}",
        st.fail2ban
    );

    // A config edit (an sshd drop-in; sshd -T reads it).
    let path = lab.host_path(HOST, DROP_IN);
    std::fs::write(&path, "MaxAuthTries 2\n").unwrap();
    let edit = Undo(|| {
        let _ = std::fs::remove_file(lab.host_path(HOST, DROP_IN));
    });
    let (st, report) = refresh_equals_full(&t, &r, "config edit").await;
    assert!(report.reran.contains(&"sshd"), "{report:?}");
    assert_eq!(st.sshd.ok().unwrap().max_auth_tries, Some(2));

    // A daemon started where its tool is installed but was idle: a process named
    // `crowdsec` in web1 (a copy of `sleep`; cscli then fails to reach an agent API, and
    // says so). The probe is watched only while it says no agent runs: it runs again, and
    // once the process is gone it reads "skipped" again.
    let dir = std::env::temp_dir().join(format!("rampart-incr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("crowdsec");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut daemon = Command::new("nsenter")
        .args(["--target", &lab.holder_pid(HOST).to_string(), "--net", "--"])
        .arg(&fake)
        .arg("600")
        .spawn()
        .expect("start a process named crowdsec on web1");
    let mut daemon = Undo(move || {
        let _ = daemon.kill();
        let _ = daemon.wait();
        let _ = std::fs::remove_dir_all(&dir);
    });
    let skipped = |st: &HostState| st.defences.crowdsec.ok().is_some_and(|c| !c.running);
    assert!(skipped(&first), "{:?}", first.defences.crowdsec);
    let (st, report) = refresh_equals_full_with(&t, &r, "daemon started", true).await;
    assert!(report.reran.contains(&"crowdsec"), "{report:?}");
    assert!(!skipped(&st), "{:?}", st.defences.crowdsec);
    (daemon.0)();
    let (st, _) = refresh_equals_full(&t, &r, "daemon ended").await;
    assert!(skipped(&st), "{:?}", st.defences.crowdsec);

    // Settled again: one exec.
    let (_, report) = refresh_equals_full(&t, &r, "settled").await;
    let (_, report2) = r.collect_named(&t, HOST).await;
    assert!(
        report.execs == 1 || report2.execs == 1,
        "{report:?} {report2:?}"
    );

    // Everything put back: the host's firewall, sshd and bans are as before the test, and
    // the refresh follows.
    drop(edit);
    drop(ban);
    drop(rule_undo);
    let (back, _) = refresh_equals_full(&t, &r, "put back").await;
    let (a, b) = (comparable(&first), comparable(&back));
    assert_eq!(a.firewall, b.firewall, "the test left the firewall changed");
    assert_eq!(a.sshd, b.sshd);
    assert_eq!(a.fail2ban, b.fail2ban);
    t.close().await;
}
