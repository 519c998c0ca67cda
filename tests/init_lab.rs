#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `rampart init --from-ssh-config` on the ssh_config `rampart lab up` writes, then
//! `rampart audit` on the result with no hand edits: every lab host is reached through the
//! bastion, the roles are the lab's own (or, where a name says nothing, left to a human and
//! said so), and the lab's deliberate misconfigurations that do not depend on network
//! segments (which an ssh_config cannot say) are all found.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

#[test]
fn an_inventory_imported_from_the_lab_ssh_config_audits_the_lab() {
    let lab = common::ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("imported.toml");
    let out = Command::new(common::rampart_bin())
        .arg("-i")
        .arg(&inv)
        .args(["init", "--from-ssh-config"])
        .arg(lab.ssh_config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("guessed:"),
        "says what it guessed: {stderr}"
    );
    assert!(stderr.contains("needs a human:"), "{stderr}");

    let loaded = rampart::inventory::Inventory::load(&inv).unwrap();
    let lab_inv = rampart::inventory::Inventory::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml"),
    )
    .unwrap();
    for h in &lab_inv.hosts {
        let got = loaded
            .host(&h.name)
            .unwrap_or_else(|| panic!("{} not imported", h.name));
        // A name that says nothing of the role (dock1, fwd1, leg1) is left to a human, and
        // said so: "no role for dock1, fwd1, leg1: give each its roles ...".
        let named = stderr.lines().any(|l| {
            l.split_once("no role for ")
                .and_then(|(_, rest)| rest.split_once(':'))
                .is_some_and(|(names, _)| names.split(", ").any(|n| n == h.name))
        });
        let left_to_a_human = got.roles.is_empty() && named;
        if !left_to_a_human {
            assert_eq!(got.roles, h.roles, "{}", h.name);
        }
        assert_eq!(got.bastion, h.bastion, "{}", h.name);
        assert_eq!(got.address, h.address, "{}", h.name);
    }
    assert_eq!(loaded.hosts.len(), lab_inv.hosts.len());

    let out = Command::new(common::rampart_bin())
        .arg("-i")
        .arg(&inv)
        .args(["audit", "--format", "json", "--no-history"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 1: findings (the lab is misconfigured on purpose); 2 or 3 would be a bad inventory or
    // an unreachable host.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), common::HOSTS.len());
    assert!(hosts.iter().all(|h| h["reachable"] == true), "{hosts:?}");
    let found: BTreeSet<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["host"].as_str().unwrap().to_string(),
                f["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // docs/lab.md's deliberate misconfigurations, less SEG-DB-EXPOSED (it needs segments).
    for (h, c) in [
        ("app1", "FW-NONE"),
        ("web2", "IPS-FAIL2BAN-DOWN"),
        ("web2", "RATE-LIMIT-MISSING"),
        ("web2", "TLS-CERT-EXPIRING"),
        ("vpn1", "SSH-PASSWORD-AUTH"),
        ("vpn1", "VPN-PEER-STALE"),
        ("edge", "IDS-MISSING"),
    ] {
        assert!(
            found.contains(&(h.to_string(), c.to_string())),
            "{h} {c} not found; found {found:?}"
        );
    }
}
