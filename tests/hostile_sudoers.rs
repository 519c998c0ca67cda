//! Read-only proven by the host itself: `rampart audit --print-sudoers` prints a policy that
//! allows exactly the probes; a lab audit user under that policy (made in one host's private
//! /etc) is audited with `sudo = true`, and a mutating command is denied by sudo on the host.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use hostile_support as hs;
use serde_json::Value;

const HOST: &str = "web1";
const USER: &str = "rpaudit";

fn print_sudoers(home: &std::path::Path, user: &str) -> std::process::Output {
    hs::rampart(home)
        .args(["audit", "--print-sudoers", user])
        .output()
        .unwrap()
}

#[test]
fn the_policy_names_every_probe_once_and_parses() {
    let home = tempfile::tempdir().unwrap();
    let out = print_sudoers(home.path(), "rampart");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let aliases = text
        .lines()
        .filter(|l| l.starts_with("Cmnd_Alias "))
        .count();
    // Every probe, and the fingerprint of incremental refreshes.
    assert_eq!(
        aliases,
        rampart::collect::probes::PROBES.len() + 1,
        "{text}"
    );
    // One rule, for that user only, no wildcard command and no ALL command.
    let rules: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("rampart ALL"))
        .collect();
    assert_eq!(rules.len(), 1, "{text}");
    assert!(!rules[0].contains("NOPASSWD: ALL"), "{}", rules[0]);
    // visudo accepts it (sudo is one of the lab's packages).
    let f = home.path().join("rampart.sudoers");
    std::fs::write(&f, &text).unwrap();
    let v = std::process::Command::new("visudo")
        .arg("-cf")
        .arg(&f)
        .output()
        .expect("visudo (package sudo)");
    assert!(v.status.success(), "{v:?}\n{text}");
}

#[test]
fn bad_user_names_are_refused() {
    let home = tempfile::tempdir().unwrap();
    for bad in [
        "ALL",
        "root,evil",
        "a b",
        "-x",
        "x;id",
        "",
        "%wheel",
        "a\nb",
    ] {
        let out = print_sudoers(home.path(), bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
}

/// The audit user is removed and the policy deleted when dropped, even on failure.
struct AuditUser<'a> {
    lab: &'a common::Lab,
}

impl Drop for AuditUser<'_> {
    fn drop(&mut self) {
        let _ = hs::sh(
            self.lab,
            HOST,
            &format!(
                "rm -f /etc/sudoers.d/rampart /etc/ssh/authorized_keys/{USER}; userdel {USER}; \
                 sed -i '/ # rampart-hostile$/d' /etc/hosts"
            ),
        );
    }
}

#[test]
fn audit_user_under_the_policy_audits_and_is_denied_a_mutation() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let _user = AuditUser { lab: &lab };
    hs::sh(&lab, HOST, &format!("userdel {USER} 2>/dev/null; true"));
    // sudo looks its host's name up; a lab host has no DNS, so without this line each sudo
    // waits 10 s for the resolver (a real host has its name in /etc/hosts).
    hs::sh_ok(
        &lab,
        HOST,
        &format!(
            "grep -q ' {HOST} ' /etc/hosts || echo '127.0.1.1 {HOST} # rampart-hostile' >> /etc/hosts"
        ),
    );
    hs::sh_ok(
        &lab,
        HOST,
        // `*`: no password, but not a locked account (sshd without PAM refuses those).
        &format!("useradd --no-create-home --shell /bin/sh --password '*' {USER}"),
    );
    let pubkey = std::fs::read_to_string(lab.state_dir.join("id_ed25519.pub")).unwrap();
    std::fs::write(
        lab.host_path(HOST, &format!("/etc/ssh/authorized_keys/{USER}")),
        pubkey,
    )
    .unwrap();
    // sshd reads it as the user.
    hs::sh_ok(
        &lab,
        HOST,
        &format!("chmod 0644 /etc/ssh/authorized_keys/{USER}"),
    );
    let out = print_sudoers(home.path(), USER);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(lab.host_path(HOST, "/etc/sudoers.d/rampart"), &out.stdout).unwrap();
    hs::sh_ok(
        &lab,
        HOST,
        "chmod 0440 /etc/sudoers.d/rampart; visudo -c -f /etc/sudoers.d/rampart",
    );

    let inv = format!(
        "[defaults]\nuser = \"{USER}\"\nidentity_files = [\"{key}\"]\nknown_hosts = [\"{kh}\"]\n\
         bastion = \"edge\"\n\n[[host]]\nname = \"edge\"\naddress = \"10.77.0.10\"\n\
         roles = [\"bastion\"]\nbastion = \"none\"\nuser = \"root\"\n\n\
         [[host]]\nname = \"{HOST}\"\naddress = \"{addr}\"\nroles = [\"web\"]\nsudo = true\n",
        key = lab.client_key().display(),
        kh = lab.known_hosts().display(),
        addr = common::address(HOST),
    );
    let inv = hs::write_inventory(home.path(), "sudo.toml", &inv);
    let out = hs::rampart(home.path())
        .arg("-i")
        .arg(&inv)
        .args(["audit", "--hosts", HOST, "--format", "json", "--no-history"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {stderr}\n{}", String::from_utf8_lossy(&out.stdout)));
    let host = &doc["hosts"][0];
    assert_eq!(host["name"], HOST);
    assert_eq!(host["reachable"], true, "{host}");
    // Every probe ran as root through the policy: nothing was refused for privileges.
    assert_eq!(host["errors"], Value::Array(vec![]), "{host}");
    assert_eq!(host["summary"]["firewall"], "ufw", "{host}");
    // The audit of the well-configured web1 through sudo finds what root finds: nothing of
    // severity high.
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );

    // The host itself refuses anything else: a mutation, a probe with a command appended,
    // a shell.
    for cmd in [
        "sudo -n -- sh -c 'ufw disable'",
        "sudo -n ufw disable",
        "sudo -n -- sh -c 'PATH=$PATH:/usr/sbin:/sbin; sshd -T; ufw disable'",
        "sudo -n -- sh",
        "sudo -n -- id",
    ] {
        let r = hs::ssh_as(&lab, USER, HOST, cmd);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{cmd}: allowed! {err}");
        assert!(
            err.contains("a password is required") || err.contains("not allowed"),
            "{cmd}: {err}"
        );
    }
    let ufw = hs::exec_ok(&lab, HOST, "ufw", &["status"]);
    assert!(ufw.contains("Status: active"), "{ufw}");
    // A probe itself is allowed (the policy is not just "deny everything").
    let probe = rampart::collect::probes::PROBES
        .iter()
        .find(|p| p.name() == "sshd")
        .unwrap();
    let r = hs::ssh_as(&lab, USER, HOST, &probe.render(true));
    assert!(
        r.status.success() && String::from_utf8_lossy(&r.stdout).contains("permitrootlogin"),
        "{r:?}"
    );
}
