#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! firewalld fixes on the lab's fwd1 (real firewalld 1.3 on its own D-Bus): the labapp
//! zone's source 10.77.0.0/16 lets Redis in from the whole lab (SEG-DB-EXPOSED).
//! `fw-restrict-to-segment` rebinds the zone to the app segment through `firewall-cmd`,
//! runtime first and `--permanent` after re-verification; the finding clears in a fresh
//! audit, real connections agree, a second run sends nothing, and the lockout guard refuses
//! the same fix for SSH (which would move the admin segment out of its zone). fwd1 is put
//! back afterwards, pass or fail.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::Lab;
use common::Scratch as Env;

const HOST: &str = "fwd1";

fn sh(lab: &Lab, script: &str) -> String {
    let o = lab.exec(HOST, "sh", &["-c", script]);
    assert!(
        o.status.success(),
        "{HOST}: {script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SAVE: &str = "rm -rf /var/lib/rampart-test-fwd && mkdir -p /var/lib/rampart-test-fwd && \
    cp -a /etc/firewalld /var/lib/rampart-test-fwd/";
/// The saved permanent configuration back, and the runtime reloaded from it.
const RESTORE: &str = "[ -d /var/lib/rampart-test-fwd/firewalld ] && rm -rf /etc/firewalld && \
    cp -a /var/lib/rampart-test-fwd/firewalld /etc/firewalld && firewall-cmd --reload && \
    rm -rf /var/lib/rampart-test-fwd";

/// Puts fwd1's firewalld back when dropped, and waits (bounded) until the runtime shows the
/// designed binding again.
struct Restore<'a>(&'a Lab);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let o = self.0.exec(HOST, "sh", &["-c", RESTORE]);
        if !o.status.success() {
            eprintln!(
                "restoring {HOST} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let o = self.0.exec(
                HOST,
                "firewall-cmd",
                &["--zone", "labapp", "--list-sources"],
            );
            if String::from_utf8_lossy(&o.stdout).trim() == "10.77.0.0/16" {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{HOST}: labapp is not bound to 10.77.0.0/16 again after the restore");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fix(env: &Env, port: &str) -> Output {
    env.run(&[
        "fix",
        "--host",
        HOST,
        "--fix",
        "fw-restrict-to-segment",
        "--param",
        &format!("port={port}"),
        "--param",
        "segment=app",
        "--param",
        "rollback=60",
        "--yes",
    ])
}

/// The check IDs of fwd1's findings that name `port`, in a fresh audit.
fn findings(env: &Env, port: u16) -> Vec<String> {
    env.findings(HOST)
        .iter()
        .filter(|f| {
            f["title"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{port}/"))
        })
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

/// A TCP connect from `from`'s namespace to fwd1: "connected" or the error's name.
fn connect(lab: &Lab, from: &str, port: u16) -> String {
    lab.connect(from, "10.77.11.31", port)
}

#[test]
fn restrict_to_segment_rebinds_the_zone_runtime_then_permanent() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    sh(&lab, SAVE);
    let _restore = Restore(&lab);
    assert!(
        findings(&env, 6379).contains(&"SEG-DB-EXPOSED".to_string()),
        "fwd1 should show SEG-DB-EXPOSED for 6379 before the fix"
    );
    assert_eq!(connect(&lab, "web1", 6379), "connected");

    let first = fix(&env, "6379");
    assert!(first.status.success(), "{first:?}");
    let err = stderr(&first);
    assert!(err.contains("verified"), "{err}");
    assert!(err.contains("permanent: bind 10.77.11.0/24"), "{err}");

    assert!(
        !findings(&env, 6379).contains(&"SEG-DB-EXPOSED".to_string()),
        "SEG-DB-EXPOSED still there after the fix"
    );
    // Runtime and permanent agree: the zone is the app segment's only.
    for extra in [&[][..], &["--permanent"][..]] {
        let mut args = extra.to_vec();
        args.extend(["--zone", "labapp", "--list-sources"]);
        let o = lab.exec(HOST, "firewall-cmd", &args);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "10.77.11.0/24",
            "{extra:?}"
        );
    }
    // And the kernel agrees: the dmz is refused, the app segment still gets in.
    assert_ne!(connect(&lab, "web1", 6379), "connected");
    assert_eq!(connect(&lab, "app1", 6379), "connected");
    // SSH from the bastion was never touched.
    assert!(lab.ssh(HOST, "true").status.success());

    let second = fix(&env, "6379");
    assert!(second.status.success(), "{second:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("already in place: nothing to send"), "{out}");
}

#[test]
fn lockout_guard_refuses_a_zone_change_that_cuts_ssh() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    sh(&lab, SAVE);
    let _restore = Restore(&lab);
    // SSH is admitted by the admin zone (source 10.77.9.0/24); restricting 22 to the app
    // segment would rebind that zone to 10.77.11.0/24 and send the bastion to `public`.
    let o = fix(&env, "22");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains("lockout guard"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    let o = lab.exec(HOST, "firewall-cmd", &["--zone", "admin", "--list-sources"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10.77.9.0/24");
    assert!(lab.ssh(HOST, "true").status.success());
}
