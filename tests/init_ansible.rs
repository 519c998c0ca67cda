#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `rampart init --from-ansible` against Ansible's own reading of the sample inventories:
//! `ansible-inventory --list` (ansible-core from PyPI, in the venv `.ci/run` makes) must still
//! print what the fixtures hold, and importing its JSON must give the same inventory as
//! importing the INI or YAML file directly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// `ansible-inventory`: `$RAMPART_ANSIBLE_INVENTORY`, the CI venv, or the fan-out bench's.
fn ansible_inventory() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RAMPART_ANSIBLE_INVENTORY") {
        return Some(PathBuf::from(p));
    }
    [
        PathBuf::from("/opt/rampart-ci/ansible/bin/ansible-inventory"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fanout/.venv/bin/ansible-inventory"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn init(args: &[&str], source: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["init", "--stdout"])
        .args(args)
        .arg(source)
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("rampart-init-test-state"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The hosts of an inventory as loaded, by name, without their line numbers (file order
/// differs: Ansible's JSON lists groups alphabetically).
fn hosts(text: &str) -> Vec<serde_json::Value> {
    let inv = rampart::inventory::Inventory::parse(text, Path::new("imported.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut v: Vec<serde_json::Value> = inv
        .hosts
        .iter()
        .map(|h| {
            let mut j = serde_json::to_value(h).unwrap();
            j.as_object_mut().unwrap().remove("line");
            j
        })
        .collect();
    v.sort_by_key(|h| h["name"].as_str().unwrap_or("").to_string());
    v
}

#[test]
fn ansible_inventory_list_output_imports_like_the_source() {
    let Some(ai) = ansible_inventory() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs ansible-core into /opt/rampart-ci/ansible (.ci/run)"
        );
        eprintln!("skipped: no ansible-inventory (install ansible-core, see .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (src, map) in [
        ("hosts.ini", vec![]),
        ("hosts.yml", vec!["--role-map", "payments=app,frontend=web"]),
    ] {
        let out = Command::new(&ai)
            .arg("-i")
            .arg(fixture(src))
            .arg("--list")
            .env("ANSIBLE_LOCAL_TEMP", dir.path())
            .env("ANSIBLE_HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let live: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let kept: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("{src}.list.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            live, kept,
            "{src}: Ansible reads it differently from the fixture now"
        );
        let json = dir.path().join(format!("{src}.json"));
        std::fs::write(&json, &out.stdout).unwrap();
        let args = [map.as_slice(), &["--from-ansible"]].concat();
        let from_json = init(&args, &json);
        let from_source = init(&args, &fixture(src));
        let (a, b) = (hosts(&from_json), hosts(&from_source));
        assert_eq!(a, b, "{src}");
        assert_eq!(a.len(), 6, "{src}");
        assert!(
            a.iter().filter(|h| !h["bastion"].is_null()).count() >= 3,
            "{src}: hosts behind the bastion: {a:?}"
        );
    }
}
