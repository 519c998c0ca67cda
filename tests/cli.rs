#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The real binary's command line: help texts, and exit status 2 with a one-line
//! `file:line: key: message` error for bad inventories.

use std::process::Command;

fn rampart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("rampart-cli-test-state"),
        )
        .output()
        .expect("run rampart")
}

fn write(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("inv.toml");
    std::fs::write(&p, text).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in ["audit", "watch", "fix", "diff", "lab", "demo", "console"] {
        let out = rampart(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Example"),
            "{sub} --help has no example:\n{text}"
        );
    }
    let out = rampart(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit status"));
}

#[test]
fn usage_errors_exit_2() {
    let out = rampart(&["audit", "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    let out = rampart(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_inventories_exit_2_with_file_line_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, usize, &str)] = &[
        (
            "[[host]]\nname = \"a\"\naddress = \"-oProxyCommand=x\"\n",
            3,
            "host.a.address",
        ),
        (
            "[[host]]\nname = \"a\"\nadress = \"10.0.0.1\"\n",
            3,
            "adress",
        ),
        ("[[host]]\nname = \"a;b\"\n", 2, "host.name"),
        (
            "[[host]]\nname = \"a\"\nbastion = \"b\"\n",
            3,
            "host.a.bastion",
        ),
        ("[segments]\nx = [\"10.0.0.0/99\"]\n", 2, "segments.x"),
        ("[[host]]\nname = \"a\"\nport = 99999\n", 3, "host.a.port"),
        (
            "[[host]]\nname = \"a\"\n[[host]]\nname = \"a\"\n",
            4,
            "host.name",
        ),
    ];
    for (text, line, key) in cases {
        let path = write(&dir, text);
        let out = rampart(&["--inventory", &path, "audit"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("inv.toml:{line}: {key}")),
            "{text:?}: {err}"
        );
    }
    let out = rampart(&["--inventory", "/nonexistent/inv.toml", "audit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/inv.toml"));
}
