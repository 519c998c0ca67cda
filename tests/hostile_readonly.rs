//! Read-only, proven from the hosts' side. A `ForceCommand` recorder on every lab host logs
//! each command it receives, while: hostile inventories are loaded (nothing may reach a
//! host); `rampart audit` and `rampart watch` run; `rampart fix` is refused in read-only
//! mode and by a `read_only = true` inventory, and runs `--dry-run`; and a read-only console
//! in tmux is driven through every pane, command and key, fix keys included. Every command
//! recorded must rebuild exactly from the read-only allow-list: 0 outside.
//!
//! The recorder changes every sshd, so the test takes the lab exclusively and removes it
//! afterwards (also on failure).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use hostile_support as hs;

const HOSTS: [&str; 10] = [
    "edge", "web1", "web2", "vpn1", "app1", "db1", "cache1", "leg1", "fwd1", "dock1",
];

/// The console in tmux with its own XDG dirs (no agent), on `inventory`.
fn console(home: &std::path::Path, inventory: &std::path::Path, args: &[&str]) -> Tmux {
    let mut cmd = vec![
        format!("XDG_DATA_HOME={}/data", home.display()),
        format!("XDG_STATE_HOME={}/state", home.display()),
        format!("XDG_CONFIG_HOME={}/config", home.display()),
        common::rampart_bin().to_string(),
        "--inventory".into(),
        inventory.display().to_string(),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    Tmux::start(
        "hostile",
        &format!("env -u SSH_AUTH_SOCK {}", cmd.join(" ")),
    )
}

/// Every command recorded on every host, classified.
fn audit_records(lab: &common::Lab) -> (usize, Vec<String>, BTreeMap<String, usize>) {
    let mut total = 0;
    let mut outside = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for h in HOSTS {
        for c in hs::recorded(lab, h) {
            total += 1;
            match hs::classify(&c) {
                Ok(names) => {
                    for n in names {
                        *seen.entry(n).or_default() += 1;
                    }
                }
                Err(why) => {
                    let head: String = c.chars().take(300).collect();
                    outside.push(format!("{h}: {why}: {head:?}"));
                }
            }
        }
    }
    (total, outside, seen)
}

#[test]
fn read_only_runs_send_only_allow_listed_commands() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let inv_text = hs::lab_inventory_text(&lab, "");
    let inv = hs::write_inventory(home.path(), "lab.toml", &inv_text);
    let recorders = hs::Recorders::install(&lab, &HOSTS);

    // 1. Hostile inventories: rejected at load, so nothing reaches any host.
    let cases = hs::injection_cases();
    for (i, (field, value, text)) in cases.iter().enumerate() {
        let p = hs::write_inventory(home.path(), &format!("bad{i}.toml"), text);
        let out = hs::rampart(home.path())
            .arg("-i")
            .arg(&p)
            .args(["audit", "--no-history"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{field} {value:?}: {out:?}");
    }
    let (total, _, _) = audit_records(&lab);
    assert_eq!(total, 0, "a rejected inventory reached a host");

    // 2. The headless read-only commands.
    let out = hs::rampart(home.path())
        .arg("-i")
        .arg(&inv)
        .args(["audit", "--format", "json", "--no-history"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (o, _) = hs::output_within(
        {
            let mut c = hs::rampart(home.path());
            c.arg("-i")
                .arg(&inv)
                .args(["watch", "--json", "--duration", "8s"]);
            c
        },
        Duration::from_secs(60),
    );
    eprintln!("watch exited {:?}", o.status);
    // Fixes: refused in read-only mode (nothing sent), and as a dry run (reads only).
    let fix = |extra: &[&str], inv: &std::path::Path| {
        hs::rampart(home.path())
            .arg("-i")
            .arg(inv)
            .args(extra)
            .args(["fix", "--host", "db1", "--fix", "fw-restrict-to-segment"])
            .args(["--param", "port=5432", "--param", "segment=app", "--yes"])
            .output()
            .unwrap()
    };
    let out = fix(&["--read-only"], &inv);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{out:?}"
    );
    let ro_inv = hs::write_inventory(
        home.path(),
        "ro.toml",
        &inv_text.replace("read_only = false", "read_only = true"),
    );
    let out = fix(&[], &ro_inv);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = hs::rampart(home.path())
        .arg("-i")
        .arg(&inv)
        .args([
            "--read-only",
            "fix",
            "--host",
            "db1",
            "--fix",
            "fw-restrict-to-segment",
        ])
        .args([
            "--param",
            "port=5432",
            "--param",
            "segment=app",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // 3. The console, read-only, every pane, command and key.
    let t = console(home.path(), &inv, &["--read-only"]);
    t.wait_for("every host collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("READ-ONLY") && s.contains("refreshed")
    });
    let every_key = [
        "j", "j", "k", "G", "g", "PPage", "NPage", "C-f", "C-b", "Down", "Up", "Home", "End", "o",
        "o", "O", "b", "b", "b", "w", "f", "a", "s", "?", "Escape", "Enter", "Escape", "l", "h",
        "Right", "Left",
    ];
    for pane in ["1", "2", "3", "4"] {
        t.keys(&[pane]);
        t.keys(&every_key);
        t.keys(&["Tab", "BTab"]);
    }
    // The fix key on a finding that has a fix, in the Posture pane.
    t.keys(&["2", "/"]);
    t.literal("SEG-DB-EXPOSED");
    t.keys(&["Enter"]);
    t.wait_for("the finding", |s| s.contains("SEG-DB-EXPOSED"));
    t.keys(&["f", "Enter", "y", "Escape", "Escape"]);
    t.keys(&["2", "/"]);
    t.literal("FW-NONE");
    t.keys(&["Enter", "f", "Enter", "Escape", "Escape"]);
    // Commands, with completion.
    for cmd in [
        "fleet",
        "posture",
        "alerts",
        "traffic",
        "host db1",
        "host web2",
        "theme mono",
        "theme default",
        "refresh",
        "fix",
        "fix db1",
    ] {
        t.keys(&[":"]);
        t.literal(cmd);
        t.keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(150));
        t.keys(&["Escape"]);
    }
    t.keys(&[":", "f", "Tab", "Escape"]);
    // Live flows of a host (the traffic capture, a read-only probe), then back.
    t.keys(&["4", "j", "Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    t.keys(&["Escape", "r", "C-r"]);
    std::thread::sleep(Duration::from_secs(4));
    let s = t.screen();
    assert!(s.contains("READ-ONLY"), "{s}");
    assert!(!s.contains("commands, exactly as they will be sent"), "{s}");
    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(t);

    let (total, outside, seen) = audit_records(&lab);
    drop(recorders);
    eprintln!(
        "figure: read-only runs: {total} commands recorded on the hosts, {} outside the allow-list; probes seen {seen:?}",
        outside.len()
    );
    assert!(
        outside.is_empty(),
        "commands outside the allow-list: {outside:#?}"
    );
    // Enough was sent for the check to mean something: the audit, the console's
    // collections and the dry run reached every host.
    assert!(total >= 2 * HOSTS.len(), "only {total} commands recorded");
    assert!(
        seen.get("nft").copied().unwrap_or(0) >= 2 * HOSTS.len(),
        "{seen:?}"
    );
    // The defence probes (CrowdSec, IDS files, jail files, the host's own HTTPS page) ran
    // everywhere too, inside the allow-list.
    for p in ["crowdsec", "ids", "fail2ban-jails", "https-self"] {
        assert!(
            seen.get(p).copied().unwrap_or(0) >= 2 * HOSTS.len(),
            "{p}: {seen:?}"
        );
    }
}
