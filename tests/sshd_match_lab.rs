//! sshd judged per source, checked against the real daemons of the lab: what rampart says
//! about passwords on db1 (a `Match Address` block for the admin network) and app1
//! (`PasswordAuthentication yes` under `AuthenticationMethods publickey`) must agree with
//! the methods each sshd really offers to a connection from the bastion's admin address.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use serde_json::Value;

/// The methods `host`'s sshd offers a client from the bastion (10.77.9.10, in the admin
/// segment), read from the "none" authentication attempt's answer.
fn offered_methods(lab: &common::Lab, host: &str) -> Vec<String> {
    // The client runs on the bastion itself, so the connection comes from its admin address,
    // the source the Match block names. No key is offered and no password typed.
    let cmd = format!(
        "timeout 15 ssh -v -o BatchMode=yes -o PreferredAuthentications=none \
         -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o ConnectTimeout=10 nobody-{host}@{} true",
        common::address(host)
    );
    let out = lab.ssh("edge", &cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("Authentications that can continue:"))
        .unwrap_or_else(|| panic!("{host}: no method list in ssh -v output:\n{err}"));
    line.rsplit(':')
        .next()
        .unwrap_or("")
        .trim()
        .split(',')
        .map(str::to_string)
        .collect()
}

fn audit_findings() -> Vec<Value> {
    let inv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml");
    let out = Command::new(common::rampart_bin())
        .arg("--inventory")
        .arg(inv)
        .args(["audit", "--format", "json"])
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join("rampart-sshd-match-lab-data"),
        )
        .output()
        .expect("run rampart audit");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit JSON: {e}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["findings"].as_array().cloned().unwrap_or_default()
}

#[test]
fn password_verdicts_agree_with_what_each_sshd_offers_the_admin_network() {
    let lab = common::ensure_lab();
    let findings = audit_findings();
    let says_passwords = |host: &str| {
        findings
            .iter()
            .any(|f| f["host"] == host && f["check"] == "SSH-PASSWORD-AUTH")
    };

    // db1: `sshd -T` says no, the Match block says yes for 10.77.9.0/24, and sshd agrees.
    let db1 = offered_methods(&lab, "db1");
    assert!(db1.contains(&"password".to_string()), "db1 offers {db1:?}");
    assert!(says_passwords("db1"), "{findings:#?}");
    let f = findings
        .iter()
        .find(|f| f["host"] == "db1" && f["check"] == "SSH-PASSWORD-AUTH")
        .unwrap();
    let ev = f["evidence"].to_string();
    assert!(
        ev.contains("Match Address 10.77.9.0/24") && ev.contains("sshd_config:"),
        "{ev}"
    );

    // app1: PasswordAuthentication yes, but only publickey is offered, and rampart is quiet.
    let app1 = offered_methods(&lab, "app1");
    assert_eq!(app1, ["publickey"], "app1 offers {app1:?}");
    assert!(!says_passwords("app1"), "{findings:#?}");

    // web1: no Match block, passwords off, and neither sshd nor rampart says otherwise.
    let web1 = offered_methods(&lab, "web1");
    assert!(
        !web1.contains(&"password".to_string()),
        "web1 offers {web1:?}"
    );
    assert!(!says_passwords("web1"), "{findings:#?}");
}
