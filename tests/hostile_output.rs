//! Hostile output from a host. In web2's mount namespace only, wrapper scripts are bound
//! over real programs (`mount --bind`, undone afterwards): `ss` and `fail2ban-client` print
//! their real output plus names carrying ANSI/OSC sequences, C1 controls, bidi overrides
//! and invalid UTF-8; `nft` prints a 5000-deep nested JSON ruleset; `ps` prints a million
//! lines, 100 MB. web2's `/etc/os-release` gets an escape-laden PRETTY_NAME.
//!
//! Then `rampart audit` (text, markdown and JSON) and the read-only console run against it:
//! no panic, the audit's memory stays bounded (its peak RSS far below the 100 MB sent), no
//! control sequence reaches the terminal (the text reports hold no ESC, C1 or bidi
//! character; the console's tmux pane title stays its own), and web2 is flagged (its
//! output was cut at the cap).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostile_support as hs;

const HOST: &str = "web2";

/// (program, wrapper script). `$REAL` is the real program's path, which stays reachable
/// through a second bind mount at /etc/rampart-hostile/real-NAME.
const WRAPPERS: &[(&str, &str)] = &[
    (
        "ss",
        "#!/bin/sh\n\"$REAL\" \"$@\"\n\
         printf 'tcp   LISTEN 0      128          0.0.0.0:4444       0.0.0.0:*    users:((\"\\033]0;pwned\\007\\033[2J\\302\\233evil\\342\\200\\256kcatta\\377\\376\",pid=1,fd=3))\\n'\n",
    ),
    (
        "fail2ban-client",
        "#!/bin/sh\nif [ \"$1\" = status ] && [ -z \"$2\" ]; then\n\
         printf 'Status\\n|- Number of jail:\\t1\\n`- Jail list:\\tsshd\\033]0;pwned\\007\\342\\200\\256\\n'\n\
         exit 0; fi\n\"$REAL\" \"$@\"\n",
    ),
    (
        "nft",
        "#!/bin/sh\ncat /etc/rampart-hostile/deeply-nested.json\n",
    ),
    (
        "ps",
        "#!/bin/sh\nyes '    1 4026531840 flood  flood-flood-flood-flood-flood-flood-flood-flood-flood-flood-flood-flood-x' \
         | head -n 1000000\n",
    ),
];

struct Undo<'a> {
    lab: &'a common::Lab,
    mounted: Vec<String>,
    os_release: Option<Vec<u8>>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        for m in self.mounted.iter().rev() {
            let _ = self.lab.exec(HOST, "umount", &[m]);
        }
        if let Some(orig) = &self.os_release {
            let _ = std::fs::write(self.lab.host_path(HOST, "/etc/os-release"), orig);
        }
        let _ = hs::sh(self.lab, HOST, "rm -rf /etc/rampart-hostile");
    }
}

/// Runs the binary and samples its peak RSS (VmHWM) until it exits.
fn run_measured(mut cmd: Command) -> (std::process::Output, u64) {
    use std::io::Read as _;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let mut hwm = 0u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(v) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        {
            hwm = hwm.max(v);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the audit hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        std::process::Output {
            status,
            stdout: t1.join().unwrap(),
            stderr: t2.join().unwrap(),
        },
        hwm,
    )
}

fn assert_no_control(what: &str, text: &[u8]) {
    let s = String::from_utf8(text.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
    for (i, c) in s.char_indices() {
        let bad = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !bad,
            "{what}: {c:?} at byte {i}: {:?}",
            &s[i.saturating_sub(60)..(i + 20).min(s.len())]
        );
    }
}

#[test]
fn hostile_output_is_bounded_sanitized_and_flagged() {
    let lab = common::ensure_lab_exclusive();
    let home = tempfile::tempdir().unwrap();
    let mut undo = Undo {
        lab: &lab,
        mounted: Vec::new(),
        os_release: std::fs::read(lab.host_path(HOST, "/etc/os-release")).ok(),
    };
    hs::sh_ok(&lab, HOST, "mkdir -p /etc/rampart-hostile");
    std::fs::copy(
        hs::fixture("nft/deeply-nested.json"),
        lab.host_path(HOST, "/etc/rampart-hostile/deeply-nested.json"),
    )
    .unwrap();
    for (prog, script) in WRAPPERS {
        let real = hs::sh_ok(&lab, HOST, &format!("command -v {prog}"))
            .trim()
            .to_string();
        assert!(real.starts_with('/'), "{prog}: {real}");
        // Keep the real program reachable, then put the wrapper in its place.
        let keep = format!("/etc/rampart-hostile/real-{prog}");
        let wrap = format!("/etc/rampart-hostile/{prog}");
        std::fs::write(lab.host_path(HOST, &keep), b"").unwrap();
        hs::exec_ok(&lab, HOST, "mount", &["--bind", &real, &keep]);
        undo.mounted.push(keep.clone());
        std::fs::write(
            lab.host_path(HOST, &wrap),
            script.replace("\"$REAL\"", &format!("\"{keep}\"")),
        )
        .unwrap();
        hs::sh_ok(&lab, HOST, &format!("chmod 755 {wrap}"));
        hs::exec_ok(&lab, HOST, "mount", &["--bind", &wrap, &real]);
        undo.mounted.push(real);
    }
    std::fs::write(
        lab.host_path(HOST, "/etc/os-release"),
        "PRETTY_NAME=\"Debian\x1b]0;pwned\x07\x1b[31m \u{202e}21 \u{9b}6n\"\nID=debian\n",
    )
    .unwrap();
    // The wrappers are live in web2 only.
    let ss = hs::sh_ok(&lab, HOST, "ss -H -tln");
    assert!(ss.contains("4444"), "{ss}");
    assert!(!hs::sh_ok(&lab, "web1", "ss -H -tln").contains("4444"));

    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));
    let mut texts = Vec::new();
    for format in ["text", "markdown", "json"] {
        let mut c = hs::rampart(home.path());
        c.arg("-i").arg(&inv).args([
            "audit",
            "--hosts",
            "web*",
            "--no-history",
            "--format",
            format,
        ]);
        let (out, hwm_kib) = run_measured(c);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1) | Some(3)),
            "{format}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("audit --format {format}: exit {code:?}, peak RSS {hwm_kib} KiB");
        // The 100 MB never sat in memory: a small multiple of the 4 MiB output cap.
        assert!(hwm_kib < 96 * 1024, "{format}: peak RSS {hwm_kib} KiB");
        assert_no_control(&format!("{format} stderr"), &out.stderr);
        if format != "json" {
            assert_no_control(&format!("{format} report"), &out.stdout);
        }
        texts.push((format, out.stdout));
    }
    let json: serde_json::Value = serde_json::from_slice(&texts[2].1).unwrap();
    let web2 = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == HOST)
        .unwrap()
        .clone();
    let errors = web2["errors"].to_string();
    assert!(
        errors.contains("cap") || errors.contains("cut"),
        "web2 is not flagged: {web2}"
    );
    let web1 = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "web1")
        .unwrap();
    assert_eq!(
        web1["errors"],
        serde_json::json!([]),
        "web1 suffered: {web1}"
    );
    // The escape-laden names arrived, made visible (the JSON keeps them as data).
    let text = String::from_utf8_lossy(&texts[0].1);
    assert!(text.contains("web2"), "{text}");

    // The console: the pane title stays its own, the screen shows no OSC payload applied.
    let session = format!("rampart-hostile-out-{}", std::process::id());
    let cmdline = format!(
        "env -u SSH_AUTH_SOCK XDG_DATA_HOME={h}/data XDG_STATE_HOME={h}/state {bin} --read-only -i {inv}",
        h = home.path().display(),
        bin = common::rampart_bin(),
        inv = inv.display()
    );
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            &session,
            &cmdline,
        ])
        .env("TERM", "tmux-256color")
        .status()
        .unwrap();
    assert!(ok.success());
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .status();
        }
    }
    let _kill = Kill(session.clone());
    let screen = |s: &str| {
        String::from_utf8_lossy(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", s])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = screen(&session);
        if s.contains("web2") && s.contains("refreshed") {
            break;
        }
        assert!(Instant::now() < deadline, "console did not collect:\n{s}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Open web2's detail (listeners, services, OS) and the posture pane.
    for keys in [
        &["/", "web2", "Enter", "Enter"][..],
        &["Escape", "2"][..],
        &["1"][..],
    ] {
        Command::new("tmux")
            .args(["send-keys", "-t", &session])
            .args(keys)
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let title = String::from_utf8_lossy(
            &Command::new("tmux")
                .args(["display", "-p", "-t", &session, "#{pane_title}"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned();
        assert!(
            !title.contains("pwned"),
            "an OSC title reached the terminal: {title}"
        );
    }
    let s = screen(&session);
    assert!(s.contains("web2"), "{s}");
    drop(undo);
    eprintln!(
        "figure: hostile output cases survived 6 (ANSI/OSC, C1, bidi, invalid UTF-8, 100 MB / 1M lines, 5000-deep nft JSON)"
    );
}
