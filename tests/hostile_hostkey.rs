//! Attacks on the connection, against the lab's real sshd:
//!
//! - host-key substitution: another sshd with another key answers at web2's address; and a
//!   bastion that forwards web2's connection to web1's sshd (DNAT on edge). Both refused
//!   before authentication: the impostor sees no login and runs no command, and the error
//!   names the host and why;
//! - protocol hygiene, read from sshd's DEBUG3 log: no PTY, X11 or agent-forwarding request
//!   is ever made, only `exec`; strict key exchange (Terrapin) is in use; compression is off.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::path::Path;
use std::process::Command;

use hostile_support as hs;
use serde_json::Value;

fn audit_json(home: &Path, inv: &Path, host: &str) -> (Value, String) {
    let out = hs::rampart(home)
        .arg("-i")
        .arg(inv)
        .args(["audit", "--hosts", host, "--format", "json", "--no-history"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(3),
        "unreachable host: exit 3; {stderr}"
    );
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn host_error(doc: &Value) -> String {
    doc["hosts"][0]["errors"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Lines of a host's log written after `from` bytes.
fn log_since(lab: &common::Lab, host: &str, path: &str, from: u64) -> String {
    let text = std::fs::read(lab.host_path(host, path)).unwrap_or_default();
    String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned()
}

fn log_len(lab: &common::Lab, host: &str, path: &str) -> u64 {
    std::fs::metadata(lab.host_path(host, path))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
fn a_different_sshd_at_a_hosts_address_is_refused_before_login() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));

    // The impostor: web2's sshd config with a fresh host key, DEBUG3 logging and the
    // recorder as its ForceCommand, in place of web2's own sshd.
    hs::sh_ok(
        &lab,
        "web2",
        "rm -f /etc/ssh/impostor_key /etc/ssh/impostor_key.pub; \
         ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/impostor_key; \
         printf '#!/bin/sh\\necho \"$SSH_ORIGINAL_COMMAND\" >> /var/log/impostor-commands.log\\n' \
           > /etc/ssh/impostor-recorder.sh; chmod 755 /etc/ssh/impostor-recorder.sh; \
         : > /var/log/impostor.log; : > /var/log/impostor-commands.log",
    );
    struct Restore<'a>(&'a common::Lab);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = hs::sh(
                self.0,
                "web2",
                "[ -f /run/impostor.pid ] && kill $(cat /run/impostor.pid); sleep 0.3; \
                 rm -f /etc/ssh/impostor_key /etc/ssh/impostor_key.pub /run/impostor.pid \
                 /etc/ssh/impostor-recorder.sh",
            );
            if !hs::sshd_answers(self.0, "web2") {
                hs::start_sshd(self.0, "web2");
            }
        }
    }
    let _restore = Restore(&lab);
    hs::signal(hs::sshd_pid(&lab, "web2"), "TERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    hs::exec_ok(
        &lab,
        "web2",
        "/usr/sbin/sshd",
        &[
            "-E",
            "/var/log/impostor.log",
            "-o",
            "HostKey=/etc/ssh/impostor_key",
            "-o",
            "PidFile=/run/impostor.pid",
            "-o",
            "LogLevel=DEBUG3",
            "-o",
            "ForceCommand=/etc/ssh/impostor-recorder.sh",
        ],
    );
    hs::wait_sshd(&lab, "web2");

    let (doc, _) = audit_json(home.path(), &inv, "web2");
    let err = host_error(&doc);
    assert_eq!(doc["hosts"][0]["reachable"], false);
    assert!(err.contains("web2"), "the error names the host: {err}");
    assert!(
        err.contains("host key") && (err.contains("changed") || err.contains("known_hosts")),
        "the error says why: {err}"
    );
    // Nothing reached the impostor beyond the key exchange.
    let log = log_since(&lab, "web2", "/var/log/impostor.log", 0);
    assert!(
        log.contains("Connection from"),
        "the impostor was reached: {log}"
    );
    for never in [
        "Accepted",
        "userauth-request",
        "input_userauth_request",
        "session_new",
    ] {
        assert!(!log.contains(never), "impostor log has {never:?}");
    }
    let cmds = log_since(&lab, "web2", "/var/log/impostor-commands.log", 0);
    assert!(cmds.is_empty(), "commands reached the impostor: {cmds}");
    eprintln!("figure: host-key substitution refused before login: {err}");
}

#[test]
fn a_bastion_forwarding_to_another_sshd_is_refused() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    "rpl-edge",
                    "nft",
                    "delete table ip rampart_hostile",
                ])
                .status();
        }
    }
    let _restore = Restore;
    let out = lab.in_bastion_netns(
        "nft",
        &["add table ip rampart_hostile; \
           add chain ip rampart_hostile out { type nat hook output priority -100; }; \
           add rule ip rampart_hostile out ip daddr 10.77.10.12 tcp dport 22 dnat to 10.77.10.11:22"],
    );
    assert!(out.status.success(), "{out:?}");
    let before = log_len(&lab, "web1", "/var/log/auth.log");

    let (doc, _) = audit_json(home.path(), &inv, "web2");
    let err = host_error(&doc);
    assert!(err.contains("web2"), "{err}");
    assert!(err.contains("host key"), "{err}");
    // web1's sshd answered in web2's place, and saw no login.
    let log = log_since(&lab, "web1", "/var/log/auth.log", before);
    assert!(
        log.contains("Connection from 10.77.9.10"),
        "DNAT did not happen: {log}"
    );
    assert!(
        !log.contains("Accepted"),
        "a login reached the wrong host: {log}"
    );
    eprintln!("figure: bastion redirect refused: {err}");
}

#[test]
fn no_pty_x11_or_agent_request_strict_kex_and_no_compression() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));
    let dropin = hs::sshd_dropin(
        &lab,
        "web1",
        "00-rampart-hostile-debug.conf",
        "LogLevel DEBUG3\n",
    );
    struct Restore<'a>(&'a common::Lab, std::path::PathBuf);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.1);
            hs::reload_sshd(self.0, "web1");
        }
    }
    let _restore = Restore(&lab, dropin);
    hs::reload_sshd(&lab, "web1");
    let before = log_len(&lab, "web1", "/var/log/auth.log");
    let out = hs::rampart(home.path())
        .arg("-i")
        .arg(&inv)
        .args([
            "audit",
            "--hosts",
            "web1",
            "--format",
            "json",
            "--no-history",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );
    let log = log_since(&lab, "web1", "/var/log/auth.log", before);
    assert!(log.contains("Accepted publickey"), "{log}");
    assert!(log.contains("req exec"), "no exec request logged: {log}");
    for never in [
        "pty-req",
        "x11-req",
        "auth-agent-req",
        "req shell",
        "req subsystem",
    ] {
        assert!(!log.contains(never), "sshd saw {never}");
    }
    assert!(
        log.contains("strict KEX"),
        "strict key exchange not in use (Terrapin): {log}"
    );
    let comp: Vec<&str> = log.lines().filter(|l| l.contains("compression:")).collect();
    assert!(!comp.is_empty(), "{log}");
    for l in comp {
        assert!(l.contains("compression: none"), "{l}");
    }
}
