//! Running the lab's system programs (`ip`, `nsenter`, `ssh-keygen`, daemons) with typed
//! arguments, and reading process and namespace facts from /proc.
//!
//! Every command is a program plus an argument vector: no shell, no string built from data.
//! This module knows nothing about the lab's design; `up`, `status` and `down` decide what to run.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::LabError;

/// A program with its arguments, and which host and stage it serves (for errors).
#[derive(Debug, Clone)]
pub struct Cmd {
    host: String,
    stage: &'static str,
    program: OsString,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(host: &str, stage: &'static str, program: impl AsRef<OsStr>) -> Self {
        Self {
            host: host.to_owned(),
            stage,
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            stdin: None,
        }
    }

    /// `nsenter` into a host's namespaces (mount, network, UTS) through its holder process.
    pub fn in_host(
        host: &str,
        stage: &'static str,
        holder: u32,
        program: impl AsRef<OsStr>,
    ) -> Self {
        Self::new(host, stage, "nsenter")
            .arg("--target")
            .arg(holder.to_string())
            .args(["--mount", "--net", "--uts", "--"])
            .arg(program)
    }

    /// `ip netns exec NS program` (network namespace only).
    pub fn in_netns(
        host: &str,
        stage: &'static str,
        netns: &str,
        program: impl AsRef<OsStr>,
    ) -> Self {
        Self::new(host, stage, "ip")
            .args(["netns", "exec", netns])
            .arg(program)
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// How the command reads in an error message.
    pub fn display(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c
    }

    fn error(&self, status: String, stderr: &[u8]) -> LabError {
        LabError::Command {
            host: self.host.clone(),
            stage: self.stage,
            command: self.display(),
            status,
            stderr: String::from_utf8_lossy(stderr).trim().to_owned(),
        }
    }

    /// Run to completion; fail unless it exits 0. Returns stdout.
    pub fn run(&self) -> Result<String, LabError> {
        let out = self.output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(self.error(out.status.to_string(), &out.stderr))
        }
    }

    /// Run to completion and return the whole output, whatever the exit status.
    pub fn output(&self) -> Result<Output, LabError> {
        let mut c = self.command();
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().map_err(|e| self.error(e.to_string(), b""))?;
        if let (Some(data), Some(mut sink)) = (&self.stdin, child.stdin.take()) {
            use std::io::Write as _;
            sink.write_all(data)
                .map_err(|e| self.error(format!("writing stdin: {e}"), b""))?;
        }
        child
            .wait_with_output()
            .map_err(|e| self.error(e.to_string(), b""))
    }

    /// True when it runs and exits 0 (for probes such as "does this link exist").
    pub fn succeeds(&self) -> bool {
        self.output().map(|o| o.status.success()).unwrap_or(false)
    }

    /// Start a long-lived process detached from our terminal and our pipes: its own process
    /// group, stdin from /dev/null, stdout and stderr appended to `log`.
    pub fn spawn_detached(&self, log: &Path) -> Result<Child, LabError> {
        let open = || {
            File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| LabError::Io {
                    host: self.host.clone(),
                    stage: self.stage,
                    path: log.to_owned(),
                    source: e,
                })
        };
        // A new session (setsid(1) execs in place: the child is not a group leader, so it
        // keeps its pid): lab processes outlive the shell or session that ran `lab up`, as
        // daemons do, instead of dying with it.
        let mut c = Command::new("setsid");
        c.arg(&self.program).args(&self.args);
        c.stdin(Stdio::null()).stdout(open()?).stderr(open()?);
        c.spawn().map_err(|e| self.error(e.to_string(), b""))
    }

    /// Run a program that daemonizes itself (sshd, nginx, fail2ban-client start): wait for the
    /// foreground part, with its output going to `log` so a daemon keeping the descriptors
    /// open cannot block us.
    pub fn run_daemonizing(&self, log: &Path) -> Result<(), LabError> {
        let mut child = self.spawn_detached(log)?;
        let status = child.wait().map_err(|e| self.error(e.to_string(), b""))?;
        if status.success() {
            Ok(())
        } else {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(self.error(status.to_string(), tail.join("\n").as_bytes()))
        }
    }
}

/// The inode of a network namespace file (`/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn ns_inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// True when `pid` is a live (not zombie) process whose network namespace is `netns`.
pub fn alive_in_netns(pid: u32, netns: &str) -> bool {
    if !alive(pid) {
        return false;
    }
    let proc_ns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    match (ns_inode(&proc_ns), ns_inode(&netns_path(netns))) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the last ')' (the command name may contain spaces or parens).
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z" && s != "X")
}

/// The short command name of a process.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Resident memory of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Read a pid file; `None` if it is missing or does not hold a number.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|p| *p > 1)
}

/// Every process in a network namespace (`ip netns pids`).
pub fn netns_pids(netns: &str) -> Vec<u32> {
    Cmd::new("lab", "list processes", "ip")
        .args(["netns", "pids", netns])
        .run()
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every process sharing `pid`'s network namespace, found by scanning /proc. Catches a host's
/// processes even when its named namespace was deleted under them.
pub fn pids_sharing_netns(pid: u32) -> Vec<u32> {
    let Some(ns) = ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|p| ns_inode(Path::new(&format!("/proc/{p}/ns/net"))) == Some(ns))
        .collect()
}

/// The parent of a process, from /proc/PID/stat.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID ...": the fields after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A process's ancestors, nearest first (at most 64, never pid 1 or 0).
pub fn ancestors(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut p = pid;
    while let Some(pp) = parent(p) {
        if pp <= 1 || out.len() >= 64 || out.contains(&pp) {
            break;
        }
        out.push(pp);
        p = pp;
    }
    out
}

/// Every live descendant of `roots` (not the roots themselves), found by scanning /proc:
/// processes in other namespaces that a lab process started (a container's processes,
/// children of their containerd shim) count too.
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|p| Some((p, parent(p)?)))
        .collect();
    let mut out: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            if !roots.contains(child) && !out.contains(child) {
                out.push(*child);
                frontier.push(*child);
            }
        }
    }
    out
}

/// Send a signal to processes by id (TERM, then KILL for what is left after `grace`).
pub fn terminate(pids: &[u32], grace: Duration) {
    let live: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    if live.is_empty() {
        return;
    }
    signal("TERM", &live);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if live.iter().all(|p| !alive(*p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = live.into_iter().filter(|p| alive(*p)).collect();
    if !left.is_empty() {
        signal("KILL", &left);
    }
}

/// `kill -SIG pid...`; errors are ignored because a process may exit on its own meanwhile.
pub fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Cmd::new("lab", "signal", "kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .output();
}

/// Our effective uid, from /proc (no libc call needed).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Find a program on PATH or in the given extra directories.
pub fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_their_arguments_verbatim() {
        let c = Cmd::in_host("web1", "test", 42, "ufw").args(["allow", "from", "a b;c"]);
        assert_eq!(
            c.display(),
            "nsenter --target 42 --mount --net --uts -- ufw allow from a b;c"
        );
    }

    #[test]
    fn failing_command_names_host_and_stage() {
        let err = Cmd::new("db1", "probe", "false").run().unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("db1: probe: `false` failed"), "{msg}");
    }

    #[test]
    fn our_own_process_is_alive_and_has_rss() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(rss_kib(me).unwrap() > 0);
        assert!(effective_uid().is_some());
    }
}
