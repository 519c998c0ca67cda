//! End to end: the real `rampart` binary in tmux against the practice lab. It opens, lists
//! every lab host, reaches a finding on a misconfigured host, opens its fix dialog; with
//! `--read-only` the dialog does not open.
//!
//! The lab comes from `common::ensure_lab()`.

// Test helpers may fail loudly: a failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::process::Command;

use common::tmux::Tmux;
use std::time::{Duration, Instant};

const HOSTS: [&str; 7] = ["edge", "web1", "web2", "vpn1", "app1", "db1", "cache1"];

/// The console on the lab's inventory in tmux, with extra arguments.
fn console(args: &[&str]) -> Tmux {
    let bin = env!("CARGO_BIN_EXE_rampart");
    let inventory = concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml");
    let mut cmd = vec![bin.to_string(), "--inventory".into(), inventory.into()];
    cmd.extend(args.iter().map(|s| s.to_string()));
    Tmux::start(&format!("tui-{}", args.len()), &cmd.join(" "))
}

#[test]
fn console_lists_the_lab_and_opens_a_fix_dialog() {
    let _lab = common::ensure_lab();
    let t = console(&[]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("refreshed")
    });
    // app1 runs without a firewall in the lab: its FW-NONE finding has a one-key fix.
    t.keys(&["2", "/", "FW-NONE", "Enter"]);
    let s = t.wait_for("the FW-NONE finding", |s| {
        s.contains("FW-NONE") && s.contains("app1") && s.contains("no host firewall")
    });
    assert!(s.contains("fix"), "{s}");
    t.keys(&["f"]);
    let s = t.wait_for("the fix dialog", |s| {
        s.contains("commands, exactly as they will be sent")
    });
    assert!(s.contains("fw-enable-default-deny"), "{s}");
    t.keys(&["Escape"]);
    t.wait_for("the dialog closed", |s| s.contains("nothing was sent"));
    t.keys(&["q"]);
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
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("refreshed")
    });
    t.keys(&["2", "/", "IPS-FAIL2BAN-DOWN", "Enter"]);
    t.wait_for("the web2 finding", |s| {
        s.contains("IPS-FAIL2BAN-DOWN") && s.contains("fail2ban is installed but not running")
    });
    t.keys(&["f"]);
    let s = t.wait_for("the fix dialog", |s| {
        s.contains("commands, exactly as they will be sent")
    });
    assert!(s.contains("f2b-start"), "{s}");
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
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("refreshed")
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
    let s = t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("refreshed")
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
        t.wait_for("the failing sink in the status bar", |s| {
            s.contains("SINK FAILING 1/1")
        })
    }));
    // Close the port whatever happened: the lab goes back to its designed state.
    let _ = Command::new("kill").arg(&pid).status();
    let s = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(s.contains("READ-ONLY"), "{s}");
    t.keys(&["3"]);
    t.wait_for("the alert in the Alerts pane", |s| {
        s.contains("DRIFT-NEW-PORT") && s.contains(&format!("{port}/tcp"))
    });
    t.keys(&["q"]);
}

/// With `--mouse`, a real terminal's clicks (SGR mouse reports, as xterm and tmux send them)
/// select the row under the pointer and open the tab under it.
#[test]
fn mouse_clicks_select_a_row_and_open_a_tab() {
    let _lab = common::ensure_lab();
    let t = console(&["--read-only", "console", "--mouse"]);
    t.wait_for("every lab host, collected", |s| {
        HOSTS.iter().all(|h| s.contains(h)) && s.contains("refreshed")
    });
    // Screen line 6 (1-based) is the third host row: tab line, border, header, then rows.
    let s = t.screen();
    let third = s.lines().nth(5).expect("a sixth line").to_string();
    let host = HOSTS
        .iter()
        .find(|h| third.contains(&format!(" {h} ")))
        .unwrap_or_else(|| panic!("no host on line 6: {third:?}"));
    t.literal("\x1b[<0;20;6M\x1b[<0;20;6m");
    t.wait_for("the clicked row selected", |s| {
        s.lines()
            .nth(5)
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
