//! End to end: the real `rampart` binary in tmux against the practice lab. It opens, lists
//! every lab host, reaches a finding on a misconfigured host, opens its fix dialog (the plan
//! in words, the commands one key away); with `--read-only` the dialog does not open. It
//! draws the last stored snapshot before any host answers, shows the summary line and the
//! preview, the Changes view after a port opens, and an inventory's prod environment.
//!
//! Each console gets its own history (`XDG_DATA_HOME` in a temporary directory), so the
//! snapshots it stores and reads are its own.
//!
//! The lab comes from `common::ensure_lab()`.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use common::tmux::Tmux;
use std::time::{Duration, Instant};

const HOSTS: [&str; 8] = [
    "edge", "web1", "web2", "vpn1", "app1", "db1", "cache1", "fwd1",
];

/// A console in tmux with its own history directory (removed with it).
struct Console {
    tmux: Tmux,
    _data: tempfile::TempDir,
}

impl std::ops::Deref for Console {
    type Target = Tmux;
    fn deref(&self) -> &Tmux {
        &self.tmux
    }
}

/// The console on `inventory` in tmux, with extra arguments, its history in `data`.
fn console_on(inventory: &str, data: &std::path::Path, args: &[&str]) -> Tmux {
    let bin = env!("CARGO_BIN_EXE_rampart");
    let mut cmd = vec![
        "env".to_string(),
        format!("XDG_DATA_HOME={}", data.display()),
        bin.to_string(),
        "--inventory".into(),
        inventory.into(),
    ];
    cmd.extend(args.iter().map(|s| s.to_string()));
    Tmux::start(&format!("tui-{}", args.len()), &cmd.join(" "))
}

/// The console on the lab's inventory in tmux, with extra arguments and a fresh history.
fn console(args: &[&str]) -> Console {
    let data = tempfile::tempdir().expect("tempdir");
    let inventory = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml");
    Console {
        tmux: console_on(inventory, data.path(), args),
        _data: data,
    }
}

/// The lab's inventory with `edit` applied, written into `dir`.
fn inventory_copy(dir: &std::path::Path, edit: impl Fn(String) -> String) -> String {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml"))
        .expect("the lab inventory");
    let path = dir.join("inventory.toml");
    std::fs::write(&path, edit(base)).expect("write the inventory");
    path.display().to_string()
}

/// Stops a process started on a lab host when dropped, pass or fail.
struct Kill(String);

impl Drop for Kill {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("kill").arg(&self.0).status();
        }
    }
}

#[test]
fn console_lists_the_lab_and_opens_a_fix_dialog() {
    let _lab = common::ensure_lab();
    let t = console(&[]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    // app1 runs without a firewall in the lab: its FW-NONE finding has a one-key fix.
    t.keys(&["2", "/", "FW-NONE", "Enter"]);
    let s = t.wait_for("the FW-NONE finding", |s| {
        s.contains("FW-NONE") && s.contains("app1") && s.contains("no host firewall")
    });
    assert!(s.contains("fix"), "{s}");
    t.keys(&["f"]);
    // The plan in words first: steps, rules before → after, admitted before → after, the
    // lockout guard's source and the rule that admits SSH afterwards, the rollback timer.
    let s = t.wait_for("the plan in words", |s| {
        s.contains("steps:") && s.contains("rollback timer:")
    });
    assert!(s.contains("fw-enable-default-deny"), "{s}");
    assert!(s.contains("1. save the current "), "{s}");
    assert!(s.contains("deny incoming by default"), "{s}");
    assert!(s.contains("firewall rules, before → after:"), "{s}");
    assert!(s.contains("→ drop"), "{s}");
    assert!(s.contains("admitted, before → after:"), "{s}");
    assert!(s.contains("22/tcp from anywhere: admitted"), "{s}");
    assert!(s.contains("lockout guard:"), "{s}");
    assert!(s.contains("still admitted afterwards by"), "{s}");
    assert!(s.contains("accept tcp dport 22 from 10.77.9.0/24"), "{s}");
    assert!(!s.contains("'ufw'"), "no raw commands yet:\n{s}");
    // The exact commands, one key away.
    t.keys(&["Tab"]);
    let s = t.wait_for("the exact commands", |s| {
        s.contains("commands, exactly as they will be sent")
    });
    assert!(s.contains("'ufw' 'default' 'deny' 'incoming'"), "{s}");
    t.keys(&["Tab"]);
    t.wait_for("the plan in words again", |s| s.contains("steps:"));
    t.keys(&["Escape"]);
    t.wait_for("the dialog closed", |s| s.contains("nothing was sent"));
    t.keys(&["q"]);
}

/// Instant start: an audit stores a snapshot; the console then starts on an inventory whose
/// bastion cannot be reached (a closed loopback port), so no host ever answers, and still
/// draws every host from the snapshot, marked stale, with its findings.
#[test]
fn stored_snapshot_is_drawn_before_any_host_answers() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let inv = inventory_copy(dir.path(), |s| s);
    let audit = Command::new(common::rampart_bin())
        .env("XDG_DATA_HOME", &data)
        .args(["--inventory", &inv, "audit", "--format", "json"])
        .output()
        .expect("audit");
    assert!(
        audit.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    // The same inventory file, its bastion now a closed port on loopback.
    inventory_copy(dir.path(), |s| {
        s.replace(
            "address = \"10.77.0.10\"\nroles = [\"bastion\"]",
            "address = \"127.0.0.1\"\nport = 1\nroles = [\"bastion\"]",
        )
    });
    let t = console_on(&inv, &data, &["--read-only"]);
    let s = t.wait_for("the stored snapshot", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("stale)")
    });
    let summary = s.lines().nth(1).unwrap_or_default();
    assert!(summary.contains("oldest data"), "{s}");
    // app1 sorts first (no score while unreachable; ties by name) and its stored findings
    // show in the preview.
    let s = t.wait_for("the preview of a stale host", |s| {
        s.contains("stale: stored") && s.contains("FW-NONE")
    });
    assert!(s.contains("preview: app1"), "{s}");
    t.wait_for("the hosts unreachable now", |s| s.contains("unreachable"));
    t.keys(&["q"]);
}

/// The summary line, and the preview of the selected host beside the table at 160x48.
#[test]
fn summary_line_and_preview_at_160x48() {
    let _lab = common::ensure_lab();
    let t = console(&["--read-only"]);
    t.resize(160, 48);
    let s = t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    let summary = s.lines().nth(1).unwrap_or_default().to_string();
    for part in [
        "fleet score ",
        " crit ",
        " high ",
        " alerts firing ",
        " unreachable ",
        "oldest data ",
    ] {
        assert!(summary.contains(part), "{part:?} in {summary:?}");
    }
    let s = t.wait_for("the preview", |s| {
        s.contains("preview: ") && s.contains("findings (")
    });
    assert!(s.contains("alerts ("), "{s}");
    // The preview follows the selection.
    t.keys(&["/", "db1", "Enter"]);
    t.wait_for("the preview of db1", |s| {
        s.contains("preview: db1") && s.contains("SEG-DB-EXPOSED")
    });
    t.keys(&["q"]);
}

/// A port opened on a lab host shows in the Changes view (the console stores a snapshot at
/// once when something changed), with its evidence on Enter.
#[test]
fn changes_view_shows_a_port_that_opened() {
    let lab = common::ensure_lab_exclusive();
    let t = console(&["--read-only"]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    let port = 18800 + (std::process::id() % 90) as u16;
    let out = lab.exec(
        "app1",
        "sh",
        &[
            "-c",
            &format!(
                "cd /tmp && setsid /usr/bin/python3 -m http.server {port} --bind 0.0.0.0 >/dev/null 2>&1 </dev/null & echo $!"
            ),
        ],
    );
    // Closed again whatever happens: the lab goes back to its designed state.
    let _server = Kill(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let wanted = format!("{port}/tcp");
    let mut found = None;
    for _ in 0..8 {
        t.keys(&["r"]);
        t.wait_for("a refresh", |s| s.contains("│ refreshed"));
        std::thread::sleep(Duration::from_secs(2));
        t.keys(&["c"]);
        let deadline = Instant::now() + Duration::from_secs(4);
        while Instant::now() < deadline {
            let s = t.screen();
            if s.contains("port opened") && s.contains(&wanted) {
                found = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if found.is_some() {
            break;
        }
        t.keys(&["Escape"]);
    }
    let s =
        found.unwrap_or_else(|| panic!("no 'port opened {wanted}' in Changes:\n{}", t.screen()));
    assert!(s.contains("Changes ["), "{s}");
    assert!(s.contains("app1"), "{s}");
    // Enter on the entry: its evidence.
    let row = s
        .lines()
        .position(|l| l.contains("port opened") && l.contains(&wanted))
        .expect("the row");
    let first = s
        .lines()
        .position(|l| l.contains("WHEN"))
        .expect("the header")
        + 1;
    t.keys(&["g"]);
    for _ in first..row {
        t.keys(&["j"]);
    }
    t.keys(&["Enter"]);
    t.wait_for("the evidence", |s| {
        s.contains("evidence") && s.contains(&format!("now listening: {wanted}"))
    });
    t.keys(&["q"]);
}

/// `[console] environment = "prod"`: the badge in the status bar, and the frame in the
/// theme's production colour (compared with the same console without an environment).
#[test]
fn prod_environment_colours_the_badge_and_the_frame() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory_copy(dir.path(), |s| {
        s.replace("[console]\n", "[console]\nenvironment = \"prod\"\n")
    });
    let prod = console_on(&inv, &dir.path().join("data"), &["--read-only"]);
    let plain = console(&["--read-only"]);
    for t in [&prod, &*plain] {
        t.wait_for("the hosts", |s| HOSTS.iter().all(|h| s.contains(h)));
    }
    let s = prod.wait_for("the PROD badge", |s| s.contains(" PROD "));
    assert!(s.contains("READ-ONLY"), "{s}");
    let styled = prod.screen_styled();
    let badge = styled
        .lines()
        .find(|l| l.contains(" PROD "))
        .expect("the status line");
    // The style changes tmux writes right before the badge: the badge's own style.
    let mut before = &badge[..badge.find(" PROD ").expect("PROD")];
    let mut sgr = String::new();
    while let Some(p) = before.rfind("\x1b[") {
        let seq = &before[p..];
        if !seq.ends_with('m') || seq.contains(' ') {
            break;
        }
        sgr.insert_str(0, seq);
        before = &before[..p];
    }
    assert!(
        sgr.contains("48;") || sgr.contains("[41") || sgr.contains(";41"),
        "a background colour on the badge: {sgr:?} in {badge:?}"
    );
    // Third line: the top border of the Fleet pane.
    let border = |t: &Tmux| {
        t.screen_styled()
            .lines()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    assert_ne!(
        border(&prod),
        border(&plain),
        "the frame is coloured for prod"
    );
    assert!(!plain.screen().contains(" PROD "));
    prod.keys(&["q"]);
    plain.keys(&["q"]);
}

#[test]
fn read_only_console_never_opens_the_fix_dialog() {
    let _lab = common::ensure_lab();
    let t = console(&["--read-only"]);
    t.wait_for("the hosts", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("READ-ONLY")
    });
    t.keys(&["2", "/", "SEG-DB-EXPOSED", "Enter"]);
    // The filter line itself shows the text: wait for the finding's row.
    t.wait_for("the SEG-DB-EXPOSED finding", |s| {
        s.contains("SEG-DB-EXPOSED") && s.contains("5432/tcp is reachable")
    });
    t.keys(&["f"]);
    let s = t.wait_for("the refusal", |s| {
        s.contains("READ-ONLY: fixes are disabled")
    });
    assert!(!s.contains("commands, exactly as they will be sent"), "{s}");
    t.keys(&["q"]);
}

/// One key plus confirmation fixes a deliberate misconfiguration from the console, and the
/// re-verification shows the finding gone. web2's fail2ban is stopped in the lab; `f2b-start`
/// is low risk (y confirms). The test stops fail2ban again afterwards (the designed state).
#[test]
fn console_fixes_a_finding_with_one_key_and_verifies() {
    let lab = common::ensure_lab_exclusive();
    let t = console(&[]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    t.keys(&["2", "/", "IPS-FAIL2BAN-DOWN", "Enter"]);
    t.wait_for("the web2 finding", |s| {
        s.contains("IPS-FAIL2BAN-DOWN") && s.contains("fail2ban is installed but not running")
    });
    t.keys(&["f"]);
    let s = t.wait_for("the fix dialog", |s| s.contains("steps:"));
    assert!(s.contains("f2b-start"), "{s}");
    t.keys(&["Tab"]);
    let s = t.wait_for("the exact commands", |s| {
        s.contains("commands, exactly as they will be sent")
    });
    assert!(
        s.contains("fail2ban-client"),
        "the exact command is shown:\n{s}"
    );
    t.keys(&["y"]);
    let s = t.wait_for("the verified result", |s| {
        s.contains("verified: the finding is gone")
            || s.contains("fix finished")
            || s.contains("failed")
    });
    t.keys(&["q"]);
    // An independent re-audit of web2 agrees: fail2ban runs now.
    let audit = Command::new(common::rampart_bin())
        .args([
            "--inventory",
            concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml"),
        ])
        .args([
            "audit",
            "--format",
            "json",
            "--no-history",
            "--hosts",
            "web2",
        ])
        .output()
        .expect("audit");
    let report = String::from_utf8_lossy(&audit.stdout).into_owned();
    // Restore the designed misconfiguration before asserting, so a failure leaves the lab as
    // the other tests expect it.
    let _ = lab.exec("web2", "fail2ban-client", &["stop"]);
    assert!(
        s.contains("verified: the finding is gone") || s.contains("fix finished: "),
        "{s}"
    );
    assert!(!s.contains("NOT verified") && !s.contains("failed"), "{s}");
    assert!(
        report.contains("RATE-LIMIT-MISSING"),
        "the audit ran: {report}"
    );
    assert!(!report.contains("IPS-FAIL2BAN-DOWN"), "{report}");
}

/// Live rates for every host, and the live flow view of one: the capture shows connections
/// made to it while the view is open, and closing the view leaves no tcpdump on the host.
#[test]
fn traffic_pane_shows_rates_and_a_live_flow_view() {
    let lab = common::ensure_lab();
    let t = console(&["--read-only"]);
    t.wait_for("the hosts", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    // Rates need two samples: refresh once more now.
    t.keys(&["4", "r"]);
    t.wait_for("a rate sample for every host", |s| {
        !s.contains("no samples yet") && s.contains("RX/s")
    });
    // web1 is the second row of the Traffic pane (inventory order).
    t.keys(&["g", "j", "Enter"]);
    t.wait_for("the flow view of web1", |s| {
        s.contains("web1:") && s.contains("flows tracked")
    });
    // Traffic to web1 from the bastion while the capture runs.
    for _ in 0..5 {
        let _ = lab.in_bastion_netns(
            "curl",
            &[
                "-sk",
                "-o",
                "/dev/null",
                "--max-time",
                "3",
                "https://10.77.10.11/",
            ],
        );
    }
    let s = t.wait_for("connections in the flow view", |s| {
        s.contains("10.77.9.10") && s.contains("443")
    });
    assert!(s.contains("SYN"), "{s}");
    t.keys(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The PID namespace is the machine's: look only at web1's network namespace.
        let pids = Command::new("ip")
            .args(["netns", "pids", "rpl-web1"])
            .output()
            .expect("ip netns pids");
        let tcpdump = String::from_utf8_lossy(&pids.stdout).lines().any(|pid| {
            std::fs::read_to_string(format!("/proc/{}/comm", pid.trim()))
                .is_ok_and(|c| c.trim() == "tcpdump")
        });
        if !tcpdump {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tcpdump still runs on web1 after the view closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    t.keys(&["q"]);
}

/// An Alertmanager that cannot be reached shows in the status bar as soon as an alert has to
/// go out: the lab's inventory with the sink aimed at a closed loopback port, then a port
/// opened on a lab host (DRIFT-NEW-PORT). The console keeps working meanwhile.
#[test]
fn an_unreachable_alertmanager_shows_in_the_status_bar() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml"))
        .expect("the lab inventory");
    let (head, tail) = base.split_at(base.find("[alerting]").expect("an [alerting] table"));
    let rest = &tail[tail.find("[console]").expect("a [console] table")..];
    let rest = rest.replace("refresh_secs = 15", "refresh_secs = 2");
    let inv = dir.path().join("inventory.toml");
    std::fs::write(
        &inv,
        format!("{head}[alerting]\nalertmanager = [\"http://127.0.0.1:1\"]\n\n{rest}"),
    )
    .expect("write the inventory");
    let cmd = format!(
        "{} --inventory {} --read-only",
        env!("CARGO_BIN_EXE_rampart"),
        inv.display()
    );
    let t = Tmux::start("tui-sink", &cmd);
    // With a 2 s refresh on ten hosts the status bar may say "refreshing…" at every look:
    // every host counted ok says a collection finished just as well.
    let all_ok = format!(
        "hosts {n} ok / 0 failing / {n} total",
        n = common::HOSTS.len()
    );
    let s = t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && (s.contains("│ refreshed") || s.contains(&all_ok))
    });
    assert!(!s.contains("SINK FAILING"), "nothing was sent yet:\n{s}");
    let port = 18900 + (std::process::id() % 90) as u16;
    let out = lab.exec(
        "app1",
        "sh",
        &[
            "-c",
            &format!(
                "cd /tmp && setsid /usr/bin/python3 -m http.server {port} --bind 0.0.0.0 >/dev/null 2>&1 </dev/null & echo $!"
            ),
        ],
    );
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Two refresh rounds of ten hosts (the port seen, then its alert sent and refused):
        // bounded generously, a loaded CI machine takes longer than a workstation.
        let s = t.wait_for_secs("the failing sink in the status bar", 150, |s| {
            s.contains("SINK FAILING 1/1")
        });
        assert!(s.contains("READ-ONLY"), "{s}");
        // The alert is looked at while the port is still open: once it closes, the next
        // round resolves the alert.
        t.keys(&["3"]);
        t.wait_for_secs("the alert in the Alerts pane", 90, |s| {
            s.contains("DRIFT-NEW-PORT") && s.contains(&format!("{port}/tcp"))
        });
    }));
    // Close the port whatever happened: the lab goes back to its designed state.
    let _ = Command::new("kill").arg(&pid).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    t.keys(&["q"]);
}

/// With `--mouse`, a real terminal's clicks (SGR mouse reports, as xterm and tmux send them)
/// select the row under the pointer and open the tab under it.
#[test]
fn mouse_clicks_select_a_row_and_open_a_tab() {
    let _lab = common::ensure_lab();
    let t = console(&["--read-only", "console", "--mouse"]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("│ refreshed")
    });
    // Screen line 7 (1-based) is the third host row: tab line, summary line, border,
    // header, then rows.
    let s = t.screen();
    let third = s.lines().nth(6).expect("a seventh line").to_string();
    let host = HOSTS
        .iter()
        .find(|h| third.contains(&format!(" {h} ")))
        .unwrap_or_else(|| panic!("no host on line 7: {third:?}"));
    t.literal("\x1b[<0;20;7M\x1b[<0;20;7m");
    t.wait_for("the clicked row selected", |s| {
        s.lines()
            .nth(6)
            .is_some_and(|l| l.contains('▶') && l.contains(host))
    });
    let top = s.lines().next().expect("a tab line").to_string();
    let col = top.find("2 Posture").expect("the Posture tab") + 2;
    let col = top[..col].chars().count() + 1;
    t.literal(&format!("\x1b[<0;{col};1M\x1b[<0;{col};1m"));
    t.wait_for("the Posture pane", |s| {
        s.contains("Posture [") && s.contains("CHECK")
    });
    t.keys(&["q"]);
}
