//! Test helper: a real OpenSSH sshd on a loopback address, with its own host key,
//! authorized_keys, config and debug log, for the transport's ugly cases.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use rampart::ssh::{AgentChoice, HostSpec, TransportOptions};

/// A key pair made with ssh-keygen.
pub struct KeyPair {
    pub private: PathBuf,
    pub public: String,
}

pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> KeyPair {
    let private = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&private)
        .status()
        .unwrap();
    assert!(status.success());
    let public = std::fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string();
    KeyPair { private, public }
}

/// `type base64` of a public key line.
pub fn key_part(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

static NEXT_ADDR: AtomicU8 = AtomicU8::new(10);

/// A distinct loopback address per sshd, so tests in one binary never share ports.
pub fn fresh_loopback() -> String {
    let n = NEXT_ADDR.fetch_add(1, Ordering::SeqCst);
    format!("127.0.{}.{}", std::process::id() % 200 + 1, n)
}

fn free_port(addr: &str) -> u16 {
    let l = TcpListener::bind(format!("{addr}:0")).unwrap();
    l.local_addr().unwrap().port()
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub port: u16,
    pub host_key: KeyPair,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

/// Options for an sshd.
#[derive(Clone, Default)]
pub struct SshdOptions {
    pub extra: Vec<String>,
    /// Sign the host key with this CA and serve the certificate.
    pub host_cert: Option<CertSpec>,
}

/// How to sign a host certificate: CA private key, principals (`-n`), validity (`-V`).
#[derive(Clone)]
pub struct CertSpec {
    pub ca: PathBuf,
    pub principals: String,
    pub validity: String,
}

impl Sshd {
    /// Starts sshd trusting `client` for root.
    pub fn start(client_pub: &str, opts: SshdOptions) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_ed25519", "ed25519", "");
        let addr = fresh_loopback();
        let port = free_port(&addr);
        let auth = dir.path().join("authorized_keys");
        std::fs::write(&auth, format!("{client_pub}\n")).unwrap();
        let config = dir.path().join("sshd_config");
        let log = dir.path().join("sshd.log");
        let mut text = format!(
            "ListenAddress {addr}:{port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nX11Forwarding yes\n\
             AllowAgentForwarding yes\nLogLevel DEBUG3\nPrintMotd no\n",
            host_key.private.display(),
            auth.display(),
            dir.path().join("sshd.pid").display(),
        );
        if let Some(cert) = &opts.host_cert {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-s"])
                .arg(&cert.ca)
                .args([
                    "-I",
                    "test-host",
                    "-h",
                    "-n",
                    &cert.principals,
                    "-V",
                    &cert.validity,
                ])
                .arg(host_key.private.with_extension("pub"))
                .status()
                .unwrap();
            assert!(status.success());
            let cert_path = dir.path().join("host_ed25519-cert.pub");
            assert!(cert_path.exists());
            text.push_str(&format!("HostCertificate {}\n", cert_path.display()));
        }
        for e in &opts.extra {
            text.push_str(e);
            text.push('\n');
        }
        std::fs::write(&config, text).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut s = Sshd {
            dir,
            addr,
            port,
            host_key,
            config,
            log,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        // sshd runs in a private mount namespace where root's ~/.bashrc is empty: bash
        // sources it for every command sshd runs, and this machine's one (pyenv init, which
        // serializes on a lock) can stall a session for a minute. Nothing outside this sshd
        // is affected.
        let empty_rc = self.dir.path().join("empty_bashrc");
        std::fs::write(&empty_rc, "").unwrap();
        let script = format!(
            "if [ -e /root/.bashrc ]; then mount --bind {} /root/.bashrc || exit 97; fi; \
             exec /usr/sbin/sshd -D -f {} -E {}",
            empty_rc.display(),
            self.config.display(),
            self.log.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_listening(&format!("{}:{}", self.addr, self.port));
    }

    /// Stops sshd and every session process it started.
    pub fn stop(&mut self) {
        let pid = self.pid();
        for c in children(pid) {
            signal(c, libc_sig::KILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) sshd and all its session processes.
    pub fn freeze(&self, on: bool) {
        let sig = if on { libc_sig::STOP } else { libc_sig::CONT };
        let pid = self.pid();
        for c in children(pid) {
            signal(c, sig);
        }
        signal(pid, sig);
    }

    pub fn known_hosts_line(&self) -> String {
        format!(
            "[{}]:{} {}",
            self.addr,
            self.port,
            key_part(&self.host_key.public)
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn spec(&self, name: &str, identity: &Path, known_hosts: &Path) -> HostSpec {
        let mut s = HostSpec::direct(name, &self.addr, self.port, "root");
        s.identity_files = vec![identity.to_path_buf()];
        s.known_hosts = vec![known_hosts.to_path_buf()];
        s
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.freeze(false);
        self.stop();
    }
}

mod libc_sig {
    pub const KILL: &str = "KILL";
    pub const STOP: &str = "STOP";
    pub const CONT: &str = "CONT";
}

fn signal(pid: u32, sig: &str) {
    if pid == 0 {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// All descendants of a process (from /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            break;
        };
        for e in rd.flatten() {
            let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            // Fields after the command name (which may hold spaces) start after ") ".
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            let ppid: u32 = rest
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if ppid == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

pub fn wait_listening(addr: &str) {
    let sa: SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("sshd did not listen on {addr}");
}

/// Options for tests: no user files, no agent unless asked, a temp command log.
pub fn test_options(dir: &Path) -> TransportOptions {
    TransportOptions {
        connect_timeout: Duration::from_secs(3),
        handshake_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        keepalive_interval: Duration::from_secs(2),
        keepalive_max: 2,
        user_known_hosts: false,
        agent: AgentChoice::Off,
        default_identities: false,
        command_log: Some(dir.join("commands.jsonl")),
        ssh_config: Some(Default::default()),
        ..TransportOptions::default()
    }
}

/// A client key and a known_hosts file in a temp dir.
pub struct Client {
    pub dir: tempfile::TempDir,
    pub key: KeyPair,
    pub known_hosts: PathBuf,
}

impl Client {
    pub fn new() -> Client {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "id_ed25519", "ed25519", "");
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, "").unwrap();
        Client {
            dir,
            key,
            known_hosts,
        }
    }

    pub fn trust(&self, sshd: &Sshd) {
        let mut text = std::fs::read_to_string(&self.known_hosts).unwrap();
        text.push_str(&sshd.known_hosts_line());
        text.push('\n');
        std::fs::write(&self.known_hosts, text).unwrap();
    }

    pub fn options(&self) -> TransportOptions {
        test_options(self.dir.path())
    }
}
