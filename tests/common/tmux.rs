//! The real `rampart` binary in a detached tmux session: type keys, read the screen.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sessions started by this test process, so concurrent tests never share a session name.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A tmux session running one command; killed when dropped.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a 120x40 session under TERM=tmux-256color.
    /// `tag` keeps concurrent sessions of different tests apart.
    pub fn start(tag: &str, command: &str) -> Tmux {
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let session = format!("rampart-{tag}-{}-{n}", std::process::id());
        // Tests start sessions concurrently; when no tmux server runs yet, two clients race
        // to start one and the loser fails ("server exited unexpectedly"). Try again.
        let mut last = String::new();
        for _ in 0..10 {
            let out = Command::new("tmux")
                .args(["new-session", "-d", "-x", "120", "-y", "40", "-s", &session])
                .arg(command)
                .env("TERM", "tmux-256color")
                .output()
                .expect("tmux runs");
            if out.status.success() {
                return Tmux { session };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("tmux new-session failed: {last}");
    }

    /// Sends keys one by one (tmux key names: `Enter`, `Escape`, `j`...).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let status = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .expect("tmux send-keys");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    /// Types text literally (no key-name interpretation).
    pub fn literal(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.session, text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes, as SGR escape sequences.
    pub fn screen_styled(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-e", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane -e");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Resizes the session's window (the program sees SIGWINCH).
    pub fn resize(&self, width: u16, height: u16) {
        let status = Command::new("tmux")
            .args(["resize-window", "-t", &self.session])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .status()
            .expect("tmux resize-window");
        assert!(status.success());
    }

    /// True while the session (and so the program) still runs.
    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Waits until the screen satisfies `pred`, or fails with the last screen.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_secs(what, 40, pred)
    }

    /// [`Tmux::wait_for`] with its own bound, for what takes whole refresh rounds of the
    /// full lab on a loaded machine.
    pub fn wait_for_secs(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}
