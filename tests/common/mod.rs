//! Shared helpers for integration tests that use the practice lab.
//!
//! `ensure_lab()` brings the lab up once per test process (with the built binary's
//! `rampart lab up`, which is idempotent) and returns a guard holding a *shared* file lock for
//! as long as the test uses the lab. Tests that break the lab on purpose (faults, a stopped
//! sshd, a link down) take `ensure_lab_exclusive()` instead, and must put things back before
//! dropping the guard: an exclusive holder waits until no test is using the lab, and nobody
//! uses it while they hold it. No test takes the lab down.
//!
//! Use: `mod common;` then `let lab = common::ensure_lab(); let out = lab.ssh("db1", "ufw status");`

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod ports;
pub mod tmux;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The hosts of the default lab: name and inventory address.
pub const HOSTS: [(&str, &str); 10] = [
    ("edge", "10.77.0.10"),
    ("web1", "10.77.10.11"),
    ("web2", "10.77.10.12"),
    ("vpn1", "10.77.10.20"),
    ("app1", "10.77.11.11"),
    ("db1", "10.77.12.11"),
    ("cache1", "10.77.12.21"),
    ("dock1", "10.77.12.31"),
    ("fwd1", "10.77.11.31"),
    ("leg1", "10.77.10.31"),
];

/// The private hosts (everything but the bastion).
pub const PRIVATE_HOSTS: [(&str, &str); 9] = [
    ("web1", "10.77.10.11"),
    ("web2", "10.77.10.12"),
    ("vpn1", "10.77.10.20"),
    ("app1", "10.77.11.11"),
    ("db1", "10.77.12.11"),
    ("cache1", "10.77.12.21"),
    ("dock1", "10.77.12.31"),
    ("fwd1", "10.77.11.31"),
    ("leg1", "10.77.10.31"),
];

pub const BASTION: &str = "10.77.0.10";

/// A second admin-segment address on the bastion that fail2ban does not ignore: use it as
/// the source of deliberately failed logins (`Lab::from_bastion_test_source`).
pub const TEST_SOURCE: &str = "10.77.9.99";

/// Whether this process already ran `lab up`.
static UP_DONE: Mutex<bool> = Mutex::new(false);

/// A lab in use. Holds the lab lock (shared or exclusive) until dropped.
pub struct Lab {
    _lock: File,
    pub state_dir: PathBuf,
}

/// The `rampart` binary under test.
pub fn rampart_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rampart")
}

fn lock_path() -> PathBuf {
    std::env::temp_dir().join("rampart-lab-tests.lock")
}

fn open_lock() -> File {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path())
        .expect("open the lab test lock")
}

fn bring_up_once() {
    let mut done = UP_DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let out = Command::new(rampart_bin())
        .args(["lab", "up"])
        .output()
        .expect("run rampart lab up");
    assert!(
        out.status.success(),
        "`rampart lab up` failed ({}); the lab tests need root.\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    *done = true;
}

/// Bring the lab up if needed and use it alongside other tests (shared lock).
pub fn ensure_lab() -> Lab {
    let lock = open_lock();
    lock.lock().expect("lock the lab");
    bring_up_once();
    // Downgrade to shared: unlock first, since converting a held lock is unspecified in std.
    lock.unlock().expect("unlock the lab");
    lock.lock_shared().expect("share the lab");
    Lab {
        _lock: lock,
        state_dir: rampart::lab::config::default_state_dir(),
    }
}

/// Bring the lab up if needed and use it alone (exclusive lock), e.g. to inject faults.
/// Restore what you break before the guard drops.
pub fn ensure_lab_exclusive() -> Lab {
    let lock = open_lock();
    lock.lock().expect("lock the lab");
    bring_up_once();
    Lab {
        _lock: lock,
        state_dir: rampart::lab::config::default_state_dir(),
    }
}

/// Address of a lab host by name.
pub fn address(host: &str) -> &'static str {
    HOSTS
        .iter()
        .find(|(n, _)| *n == host)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("no lab host {host}"))
}

impl Lab {
    /// The real transport to every lab host, private ones through edge: the lab's key and
    /// known_hosts only (no agent, no user files), 60 s per command, the command log at `log`.
    pub fn transport(&self, log: Option<&Path>) -> rampart::ssh::Transport {
        use rampart::ssh::transport::{HostSpec, TransportOptions};
        let specs = HOSTS
            .iter()
            .map(|(name, addr)| {
                let mut s = HostSpec::direct(name, addr, 22, "root");
                if *name != "edge" {
                    s.via = Some("edge".into());
                }
                s.identity_files = vec![self.client_key()];
                s.known_hosts = vec![self.known_hosts()];
                s
            })
            .collect();
        let opts = TransportOptions {
            user_known_hosts: false,
            agent: rampart::ssh::AgentChoice::Off,
            default_identities: false,
            command_log: log.map(Path::to_path_buf),
            command_timeout: std::time::Duration::from_secs(60),
            ..TransportOptions::default()
        };
        rampart::ssh::Transport::from_specs(specs, opts).expect("lab transport")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }
    pub fn client_key(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }
    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.state_dir.join("ca").join("ca.crt")
    }

    /// The system `ssh` as the tests must use it: strict host keys with the lab's known_hosts,
    /// the lab key only, no prompts; private hosts through `-J root@edge`. `-F ssh_config` is
    /// given too because ssh passes `-F` (not `-o`) on to the jump connection, whose host key
    /// must be checked against the same file.
    pub fn ssh_command(&self, host: &str, command: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.ssh_config());
        if host != "edge" {
            c.args(["-J", &format!("root@{BASTION}")]);
        }
        c.args(["-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(self.client_key())
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
            .arg(format!("root@{}", address(host)))
            .arg(command);
        c
    }

    /// Run `command` on `host` over SSH and return its output, whatever the exit status.
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        self.ssh_command(host, command).output().expect("run ssh")
    }

    /// Like [`Lab::ssh`] but the command must succeed; returns stdout.
    pub fn ssh_ok(&self, host: &str, command: &str) -> String {
        let out = self.ssh(host, command);
        assert!(
            out.status.success(),
            "ssh {host} {command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host's holder process: its namespaces are the host's.
    pub fn holder_pid(&self, host: &str) -> u32 {
        let p = self.state_dir.join("hosts").join(host).join("holder.pid");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .parse()
            .expect("holder pid")
    }

    /// A path inside the host's own view of the filesystem (its /etc, /var and /run), as seen
    /// from the test: e.g. to drop a file into `/etc/ssh/sshd_config.d/`.
    pub fn host_path(&self, host: &str, path: &str) -> PathBuf {
        Path::new("/proc")
            .join(self.holder_pid(host).to_string())
            .join("root")
            .join(path.trim_start_matches('/'))
    }

    /// Run a program inside the host's namespaces directly (no SSH): for test set-up and
    /// checks that must not depend on the transport under test.
    pub fn exec(&self, host: &str, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["--target", &self.holder_pid(host).to_string()])
            .args(["--mount", "--net", "--uts", "--", program])
            .args(args)
            .output()
            .expect("run nsenter")
    }

    /// A TCP connect (3 s) from `from`'s namespace to `addr`:`port`: "connected", or the
    /// name of Python's error (`TimeoutError` when dropped, `ConnectionRefusedError`).
    pub fn connect(&self, from: &str, addr: &str, port: u16) -> String {
        let o = self.exec(
            from,
            "python3",
            &[
                "-c",
                "import socket, sys\n\
                 try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close(); print('connected')\n\
                 except OSError as e:\n    print(type(e).__name__)",
                addr,
                &port.to_string(),
            ],
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Run a program in the bastion's network namespace from [`TEST_SOURCE`]-capable
    /// context (e.g. `ssh -b 10.77.9.99 ...` to fail logins on purpose).
    pub fn in_bastion_netns(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", "rpl-edge", program])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }
}

/// A process by pid and start time (clock ticks after boot, stat(5) field 22): a pid reused
/// by another process after this one ended is not the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    pub fn of(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let start = rest.split_whitespace().nth(19)?.parse().ok()?;
        Some(Proc { pid, start })
    }

    /// Still running: the same process (not a reused pid), and not a zombie (a daemon
    /// orphaned to a PID 1 that does not reap, as in `dev/sandbox`, stays one).
    pub fn alive(&self) -> bool {
        let state = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next().map(str::to_string))
            });
        Proc::of(self.pid) == Some(*self) && !matches!(state.as_deref(), Some("Z" | "X"))
    }
}

/// The network namespaces of this lab: `/run/netns/rpl-*` (the lab's prefix), never another
/// environment's.
pub fn lab_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("rpl-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every process of this lab: those in its network namespaces (holders, daemons, sessions),
/// by pid and start time. Scoped by namespace, never by a process name, so another
/// WireGuard daemon or another lab on the machine is never counted.
pub fn lab_processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for ns in lab_namespaces() {
        let Ok(o) = Command::new("ip").args(["netns", "pids", &ns]).output() else {
            continue;
        };
        for p in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            if let Some(pr) = p.parse().ok().and_then(Proc::of)
                && !out.contains(&pr)
            {
                out.push(pr);
            }
        }
    }
    out
}

/// Brings the lab back up when dropped, pass or fail: for a test that takes the lab down
/// (or breaks it beyond what the test itself puts back). Hold it inside the lab guard.
pub struct LabRestore;

impl Drop for LabRestore {
    fn drop(&mut self) {
        let out = Command::new(rampart_bin()).args(["lab", "up"]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "bringing the lab back failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("bringing the lab back failed: {e}"),
        }
    }
}

/// A scratch state and data dir and a copy of the shipped inventory naming the lab's files by
/// absolute path: `rampart` run through it never touches the user's history or journal.
/// Test files add their own helpers with `impl common::Scratch { ... }`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub inventory: PathBuf,
}

impl Scratch {
    pub fn new(lab: &Lab) -> Scratch {
        let dir = tempfile::tempdir().expect("scratch dir");
        let shipped =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventory.toml"))
                .expect("read inventory.toml");
        let text = shipped.replace(
            "${XDG_STATE_HOME}/rampart/lab",
            &lab.state_dir.display().to_string(),
        );
        let inventory = dir.path().join("inventory.toml");
        std::fs::write(&inventory, text).expect("write the scratch inventory");
        Scratch { dir, inventory }
    }

    /// `XDG_STATE_HOME` of the runs (journal, command log).
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `rampart -i INVENTORY ARGS` with the scratch dirs and no standard input.
    pub fn rampart(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rampart_bin());
        c.arg("-i")
            .arg(&self.inventory)
            .args(args)
            .env("XDG_STATE_HOME", self.state())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .stdin(std::process::Stdio::null());
        c
    }

    /// The host's findings in a fresh `audit --format json --hosts HOST` (exit 0 or 1).
    pub fn findings(&self, host: &str) -> Vec<serde_json::Value> {
        let out = self.dir.path().join("audit.json");
        let o = self.run(&[
            "audit",
            "--format",
            "json",
            "--hosts",
            host,
            "-o",
            out.to_str().expect("utf-8 scratch path"),
        ]);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "audit {host}: {o:?}"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("the audit's report"))
                .expect("the report is JSON");
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["host"] == host)
            .cloned()
            .collect()
    }

    /// Runs it, echoing the command and its output to the test's log.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.rampart(args).output().expect("run rampart");
        eprintln!(
            "$ rampart {}\n-> {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}
