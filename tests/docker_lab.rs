#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! dock1 on the lab: PostgreSQL 15 in a real Docker container published with `-p
//! 5432:5432`, behind a ufw that allows 5432 only from the app segment. Docker's DNAT and
//! FORWARD rules let every segment in anyway (the ufw + Docker trap):
//!
//! - the audit reports SEG-DB-EXPOSED (critical) and FW-CONTAINER-BYPASS, with the container,
//!   the DNAT target and the accepting chain in the evidence, and the real kernel agrees (a
//!   real PostgreSQL login from the dmz works);
//! - `docker-user-restrict` clears both; then the dmz is refused by the kernel and the app
//!   segment still logs in; a second run sends nothing;
//! - its host-side rollback deletes exactly the rules it added;
//! - the lockout guard refuses a fix on dock1 that would cut SSH.
//!
//! dock1 is put back (rampart's DOCKER-USER rules removed) whatever happens.

mod common;

use common::Lab;
use common::Scratch as Env;
use std::process::Output;

const DOCK: &str = "dock1";
const DOCK_ADDR: &str = "10.77.12.31";
const DB_PASSWORD: &str = "rpl-planted-dock-pw-71be0c";

fn find<'a>(fs: &'a [serde_json::Value], check: &str) -> Option<&'a serde_json::Value> {
    fs.iter().find(|f| f["check"] == check)
}

fn evidence(f: &serde_json::Value) -> String {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A real PostgreSQL login to dock1 from a lab host (psql over the network): `Ok` with 42,
/// or what psql said.
fn pg_login_from(lab: &Lab, host: &str) -> Result<(), String> {
    let o = lab.exec(
        host,
        "env",
        &[
            &format!("PGPASSWORD={DB_PASSWORD}"),
            "PGCONNECT_TIMEOUT=5",
            "psql",
            "-X",
            "-h",
            DOCK_ADDR,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            "SELECT 41+1",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.success() && out.trim() == "42" {
        Ok(())
    } else {
        Err(format!(
            "{host}: {} {}{}",
            o.status,
            out.trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// A login that must work: tried again for up to a minute (a loaded machine, a container
/// that was just started), with psql's last words on failure.
fn logs_in(lab: &Lab, host: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match pg_login_from(lab, host) {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("{host} should log in to dock1's PostgreSQL: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_secs(2)),
        }
    }
}

/// A login the firewall must stop: the connection times out (dropped), not refused by
/// PostgreSQL's own authentication.
fn is_dropped(lab: &Lab, host: &str) {
    match pg_login_from(lab, host) {
        Ok(()) => panic!("{host} still logs in to dock1's 5432"),
        Err(e) => assert!(
            e.contains("timeout expired") || e.contains("timed out"),
            "{e}"
        ),
    }
}

/// Removes rampart's DOCKER-USER rules on dock1 when dropped, pass or fail.
struct PutBack<'a>(&'a Lab);

const REMOVE_OURS: &str = "for t in iptables-nft iptables-legacy; do command -v $t >/dev/null || continue; \
    $t -w -S DOCKER-USER 2>/dev/null | grep -F rampart-docker-user-restrict > /tmp/rampart-test-du || true; \
    [ -s /tmp/rampart-test-du ] || continue; \
    { echo '*filter'; sed 's/^-A /-D /' /tmp/rampart-test-du; echo COMMIT; } | $t-restore -w --noflush; done; \
    rm -f /tmp/rampart-test-du";

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        let o = self.0.exec(DOCK, "sh", &["-c", REMOVE_OURS]);
        if !o.status.success() {
            eprintln!(
                "putting dock1 back failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// `rampart fix --host dock1 --fix docker-user-restrict --param port=5432 MODE`.
fn restrict_5432(env: &Env, mode: &str) -> Output {
    env.run(&[
        "fix",
        "--host",
        DOCK,
        "--fix",
        "docker-user-restrict",
        "--param",
        "port=5432",
        mode,
    ])
}

fn docker_user(lab: &Lab) -> String {
    let o = lab.exec(DOCK, "iptables-nft", &["-w", "-S", "DOCKER-USER"]);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_docker_published_database_is_exposed_the_kernel_agrees_and_the_fix_closes_it() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    let _put_back = PutBack(&lab);

    // The model: critical exposure and the bypass, with the whole path as evidence.
    let before = env.findings(DOCK);
    let seg = find(&before, "SEG-DB-EXPOSED")
        .unwrap_or_else(|| panic!("no SEG-DB-EXPOSED on dock1: {before:#?}"));
    assert_eq!(seg["severity"], "critical");
    assert_eq!(seg["fix"], "docker-user-restrict");
    let ev = evidence(seg);
    assert!(ev.contains("published by container lab-pg"), "{ev}");
    assert!(ev.contains("dnat to 172.17."), "{ev}");
    assert!(ev.contains("filter/FORWARD"), "{ev}");
    let bypass = find(&before, "FW-CONTAINER-BYPASS")
        .unwrap_or_else(|| panic!("no FW-CONTAINER-BYPASS on dock1: {before:#?}"));
    let ev = evidence(bypass);
    assert!(ev.contains("*:5432->5432/tcp"), "{ev}");
    assert!(ev.contains("without Docker's NAT"), "{ev}");

    // The kernel agrees: a real login from the dmz (web1) and from the app segment (app1).
    logs_in(&lab, "web1");
    logs_in(&lab, "app1");

    // The fix: a readable plan first (dry run sends nothing).
    let dry = restrict_5432(&env, "--dry-run");
    assert!(dry.status.success(), "{dry:?}");
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("DOCKER-USER"), "{plan}");
    assert!(plan.contains("--ctorigdstport"), "{plan}");
    assert!(plan.contains("172.17.0.0/16"), "{plan}");
    assert!(
        !docker_user(&lab).contains("rampart"),
        "a dry run changed DOCKER-USER"
    );

    let first = restrict_5432(&env, "--yes");
    assert!(first.status.success(), "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("verified"),
        "{first:?}"
    );
    let after = env.findings(DOCK);
    for check in ["SEG-DB-EXPOSED", "FW-CONTAINER-BYPASS"] {
        assert!(find(&after, check).is_none(), "{check} left: {after:#?}");
    }
    // The kernel agrees again: the dmz is refused, the app segment still logs in.
    is_dropped(&lab, "web1");
    logs_in(&lab, "app1");

    // A second run sends nothing.
    let second = restrict_5432(&env, "--yes");
    assert!(second.status.success(), "{second:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("already in place: nothing to send"), "{out}");
}

/// The host's own restore script (what the rollback timer runs) deletes exactly the rules
/// the run added and leaves one that was there before.
#[test]
fn the_rollback_deletes_only_what_the_run_added() {
    let lab = common::ensure_lab_exclusive();
    let _put_back = PutBack(&lab);
    let rule = |src: &str| {
        format!(
            "iptables-nft -w -I DOCKER-USER 1 -s {src} -p tcp -m conntrack --ctorigdstport 5432 \
             -m comment --comment rampart-docker-user-restrict -j RETURN"
        )
    };
    use rampart::fix::rollback::RollbackKind;
    let dir = lab.host_path(DOCK, "/var/lib/rampart-test-rb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("save.sh"),
        RollbackKind::DockerUser.save_script_text(),
    )
    .unwrap();
    std::fs::write(
        dir.join("restore.sh"),
        RollbackKind::DockerUser.restore_script_text(),
    )
    .unwrap();
    let script = format!(
        "set -e; {old}; rm -rf /var/lib/rampart/fix/rb-test; \
         echo restore | sh /var/lib/rampart-test-rb/save.sh rb-test >/dev/null; \
         {new}; sh /var/lib/rampart-test-rb/restore.sh rb-test; \
         iptables-nft -w -S DOCKER-USER; rm -rf /var/lib/rampart/fix/rb-test /var/lib/rampart-test-rb",
        old = rule("10.77.9.1/32"),
        new = rule("10.77.9.2/32"),
    );
    let o = lab.exec(DOCK, "sh", &["-c", &script]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("10.77.9.1/32"),
        "the older rule went too:\n{out}"
    );
    assert!(
        !out.contains("10.77.9.2/32"),
        "the run's rule stayed:\n{out}"
    );
}

/// The lockout guard on dock1: closing SSH's own port is refused before anything is sent.
#[test]
fn the_guard_refuses_a_fix_that_would_cut_ssh_on_dock1() {
    let lab = common::ensure_lab();
    let env = Env::new(&lab);
    let o = env.run(&[
        "fix",
        "--host",
        DOCK,
        "--fix",
        "fw-close-port",
        "--param",
        "port=22",
        "--yes",
    ]);
    assert!(!o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lock"), "{err}");
    // Nothing changed: SSH through the bastion still works.
    assert_eq!(lab.ssh_ok(DOCK, "echo up").trim(), "up");
}

/// The containers probe as a user Docker refuses (not root, not in the docker group): the
/// host says "permission denied", and rampart reports that, not "no containers".
#[test]
fn a_user_docker_refuses_gets_permission_denied_not_an_empty_list() {
    let lab = common::ensure_lab();
    let probe = rampart::collect::probes::PROBES
        .iter()
        .find(|p| p.name() == "containers")
        .expect("the containers probe");
    let (_, script) = probe.probes()[0];
    let out = lab.exec(DOCK, "runuser", &["-u", "nobody", "--", "sh", "-c", script]);
    let frame = rampart::ssh::command::Frame {
        name: "containers".into(),
        exit_status: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    };
    let st = rampart::collect::probes::state_from_frames(DOCK, &[frame]);
    match &st.containers {
        rampart::state::Probed::PermissionDenied { stage, message } => {
            assert_eq!(stage, "containers");
            assert!(
                message.contains("permission denied while trying to connect"),
                "{message}"
            );
        }
        other => panic!("expected permission denied, got {other:?}"),
    }
    // The same probe as root sees the container.
    let out = lab.exec(DOCK, "sh", &["-c", script]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"name\":\"/lab-pg\""),
        "{out:?}"
    );
}
