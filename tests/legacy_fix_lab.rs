#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `fw-close-port` on the lab's leg1 (iptables-legacy + ipset, ufw installed but inactive):
//! node exporter's 9100 is let in from the admin-src set by INPUT, and from everywhere
//! through nat REDIRECT 9180 → 9100 and INPUT's `--ctstate DNAT` accept (FW-EXPOSED-PORT).
//!
//! - the fix inserts one commented drop first in leg1's legacy INPUT; the finding clears in
//!   a fresh audit and real connects that got through before (the bastion to 9100, the dmz
//!   to 9180) no longer do; SSH through the bastion still works; a second run sends nothing;
//! - the lockout guard refuses the same fix for SSH's port 22 and nothing is sent.
//!
//! leg1's legacy tables are put back (saved before, restored with iptables-legacy-restore)
//! whatever happens, so other tests still see the exposure.

mod common;

use std::process::Output;

use common::Lab;
use common::Scratch as Env;

const HOST: &str = "leg1";
const ADDR: &str = "10.77.10.31";

const SAVE: &str = "set -e; rm -rf /var/lib/rampart-test-leg; mkdir -p /var/lib/rampart-test-leg; \
    iptables-legacy-save > /var/lib/rampart-test-leg/v4; \
    ip6tables-legacy-save > /var/lib/rampart-test-leg/v6";
const RESTORE: &str = "set -e; [ -s /var/lib/rampart-test-leg/v4 ]; \
    iptables-legacy-restore -w < /var/lib/rampart-test-leg/v4; \
    if grep -q '^\\*' /var/lib/rampart-test-leg/v6; then \
    ip6tables-legacy-restore -w < /var/lib/rampart-test-leg/v6; fi; \
    rm -rf /var/lib/rampart-test-leg";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// leg1's legacy tables saved now, put back when dropped (pass or fail).
struct PutBack<'a>(&'a Lab);

impl<'a> PutBack<'a> {
    fn save(lab: &'a Lab) -> PutBack<'a> {
        let o = lab.exec(HOST, "sh", &["-c", SAVE]);
        assert!(o.status.success(), "saving {HOST}'s tables: {}", text(&o));
        PutBack(lab)
    }
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        let o = self.0.exec(HOST, "sh", &["-c", RESTORE]);
        if !o.status.success() {
            eprintln!("putting {HOST}'s tables back failed: {}", text(&o));
        }
    }
}

/// leg1's legacy INPUT chain, as `iptables-legacy -S INPUT` prints it.
fn input(lab: &Lab) -> String {
    let o = lab.exec(HOST, "iptables-legacy", &["-w", "-S", "INPUT"]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A TCP connect from `from`'s namespace to leg1.
fn connect(lab: &Lab, from: &str, port: u16) -> String {
    lab.connect(from, ADDR, port)
}

fn fix(env: &Env, port: &str, extra: &str) -> Output {
    env.run(&[
        "fix",
        "--host",
        HOST,
        "--fix",
        "fw-close-port",
        "--param",
        &format!("port={port}"),
        "--param",
        "rollback=60",
        extra,
    ])
}

fn exposed(env: &Env, port: u16) -> bool {
    env.findings(HOST).iter().any(|f| {
        f["check"] == "FW-EXPOSED-PORT"
            && f["title"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("{port}/"))
    })
}

/// Every mutating command the runs of `env` sent (from its command log).
fn mutating_sent(env: &Env) -> Vec<String> {
    let path = env.state().join("rampart").join("commands.jsonl");
    let Ok(log) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "mutating")
        .map(|r| r["command"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn close_port_drops_the_redirected_exporter_in_the_legacy_tables() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    let _put_back = PutBack::save(&lab);

    assert!(exposed(&env, 9100), "leg1 should show FW-EXPOSED-PORT 9100");
    // The kernel agrees: the bastion (admin-src) reaches 9100, the dmz reaches it as 9180.
    assert_eq!(connect(&lab, "edge", 9100), "connected");
    assert_eq!(connect(&lab, "web1", 9180), "connected");

    // The plan in words, sent nowhere.
    let dry = fix(&env, "9100", "--dry-run");
    assert!(dry.status.success(), "{dry:?}");
    let plan = text(&dry);
    assert!(plan.contains("iptables-legacy"), "{plan}");
    assert!(plan.contains("rampart:fw-close-port"), "{plan}");
    assert!(
        !input(&lab).contains("rampart"),
        "a dry run changed leg1's INPUT"
    );

    let first = fix(&env, "9100", "--yes");
    assert!(first.status.success(), "{first:?}");
    assert!(text(&first).contains("verified"), "{}", text(&first));
    let rules = input(&lab);
    assert!(
        rules
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("--dport 9100")
                && l.contains("rampart:fw-close-port")
                && l.ends_with("-j DROP")),
        "the drop is not first in INPUT:\n{rules}"
    );
    assert!(!exposed(&env, 9100), "FW-EXPOSED-PORT 9100 left");
    // The kernel agrees: neither way in connects any more; SSH still does.
    for (from, port) in [("edge", 9100), ("web1", 9180), ("web1", 9100)] {
        let got = connect(&lab, from, port);
        assert!(
            got == "TimeoutError" || got == "timeout" || got == "ConnectionRefusedError",
            "{from} → {port}: {got}"
        );
    }
    assert_eq!(lab.ssh_ok(HOST, "echo up").trim(), "up");

    // A second run sends nothing.
    let sent = mutating_sent(&env).len();
    let second = fix(&env, "9100", "--yes");
    assert!(second.status.success(), "{second:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("already in place: nothing to send"), "{out}");
    assert_eq!(
        mutating_sent(&env).len(),
        sent,
        "the second run sent something"
    );
}

#[test]
fn the_guard_refuses_closing_ssh_on_leg1_and_nothing_is_sent() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    let _put_back = PutBack::save(&lab);
    let before = input(&lab);
    let o = fix(&env, "22", "--yes");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lockout guard"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    // The source checked and the rule that would refuse it are named.
    assert!(err.contains("rampart:fw-close-port"), "{err}");
    assert!(err.contains("SSH (22/tcp) from "), "{err}");
    assert!(mutating_sent(&env).is_empty(), "{:?}", mutating_sent(&env));
    assert_eq!(input(&lab), before);
    assert_eq!(lab.ssh_ok(HOST, "echo up").trim(), "up");
}

/// The host's own save and restore scripts (what the rollback timer runs): a rule added
/// after the save is gone after the restore, and the tables are what they were.
#[test]
fn the_rollback_restores_the_saved_legacy_tables() {
    use rampart::fix::rollback::RollbackKind;
    let lab = common::ensure_lab_exclusive();
    let _put_back = PutBack::save(&lab);
    let before = input(&lab);
    let dir = lab.host_path(HOST, "/var/lib/rampart-test-rb");
    std::fs::create_dir_all(&dir).unwrap();
    let kind = RollbackKind::IptablesLegacy;
    std::fs::write(dir.join("save.sh"), kind.save_script_text()).unwrap();
    std::fs::write(dir.join("restore.sh"), kind.restore_script_text()).unwrap();
    let script = "set -e; rm -rf /var/lib/rampart/fix/rb-test; \
         echo restore | sh /var/lib/rampart-test-rb/save.sh rb-test; \
         test -s /var/lib/rampart/fix/rb-test/legacy.v4; test -s /var/lib/rampart/fix/rb-test/legacy.v6; \
         iptables-legacy -w -I INPUT 1 ! -i lo -p tcp --dport 9100 -m conntrack --ctstate NEW \
         -m comment --comment rampart:fw-close-port -j DROP; \
         ip6tables-legacy -w -I INPUT 1 -p tcp --dport 9100 -j DROP; \
         sh /var/lib/rampart-test-rb/restore.sh rb-test; \
         ip6tables-legacy -w -S INPUT; \
         rm -rf /var/lib/rampart/fix/rb-test /var/lib/rampart-test-rb";
    let o = lab.exec(HOST, "sh", &["-c", script]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("9100"),
        "the IPv6 rule stayed: {}",
        text(&o)
    );
    assert_eq!(input(&lab), before, "the IPv4 INPUT is not what was saved");
}
