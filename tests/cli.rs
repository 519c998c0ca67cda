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

#[test]
fn version_names_the_commit_when_built_from_a_checkout() {
    let out = rampart(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("rampart {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // Tests run from a checkout; when git is there, build.rs put the commit in.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(h) = head
        && h.status.success()
    {
        let head = String::from_utf8_lossy(&h.stdout).trim().to_string();
        assert!(
            text.contains(&format!("(commit {head})")),
            "{text} vs {head}"
        );
    }
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for sub in ["init", "completions", "man"] {
        let out = rampart(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{sub}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bash = rampart(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = dir.path().join("rampart.bash");
    std::fs::write(&script, &bash.stdout).expect("write");
    // bash itself loads it and registers the completion; the words include the subcommands.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p rampart && COMP_WORDS=(rampart in) && COMP_CWORD=1 && _rampart rampart in rampart && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("-F _rampart rampart"), "{text}");
    assert!(text.lines().any(|l| l == "init"), "{text}");
    for (shell, marker) in [("zsh", "#compdef rampart"), ("fish", "complete -c rampart")] {
        let out = rampart(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
    let man = rampart(&["man"]);
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH rampart 1"), "{page}");
    for word in ["audit", "watch", "init", "\\-\\-inventory"] {
        assert!(page.contains(word), "man page lacks {word}");
    }
    assert_eq!(rampart(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn init_writes_a_loadable_inventory_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        "Host bastion\n  HostName 192.0.2.10\nHost web1 db1\n  ProxyJump bastion\nHost *\n  User ops\n",
    )
    .expect("write");
    let inv = dir.path().join("inventory.toml");
    let inv_s = inv.to_string_lossy().into_owned();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let out = rampart(&["-i", &inv_s, "init", "--from-ssh-config", &cfg_s]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("wrote") && stderr.contains("3 host(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("guessed: web1 has role web"), "{stderr}");
    let first = std::fs::read_to_string(&inv).expect("written");
    let loaded = rampart::inventory::Inventory::load(&inv).expect("loads");
    assert_eq!(
        loaded
            .host("db1")
            .and_then(|h| h.bastion.clone())
            .as_deref(),
        Some("bastion")
    );
    assert_eq!(loaded.defaults.user, "ops");

    std::fs::write(&cfg, "Host other\n").expect("write");
    let out = rampart(&["-i", &inv_s, "init", "--from-ssh-config", &cfg_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&inv).expect("kept"), first);
    let out = rampart(&["-i", &inv_s, "init", "--force", "--from-ssh-config", &cfg_s]);
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&inv)
            .expect("replaced")
            .contains("\"other\"")
    );

    let out = rampart(&["init", "--from-ansible", "/nonexistent/hosts.ini"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hosts.ini"));
}
