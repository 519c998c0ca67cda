//! Helpers shared by the hostile-conditions suite (`tests/hostile_*.rs`): inventories that
//! point at the lab with absolute paths, running the binary with its own XDG dirs, the
//! host-side command recorder, sshd control inside a lab host, and the read-only allow-list
//! check that classifies every command a host recorded.
//!
//! Use: `mod common; mod hostile_support; use hostile_support as hs;`

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::common::{self, Lab};

/// The repository's own files.
pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// A fixture of this suite.
pub fn fixture(p: &str) -> PathBuf {
    repo("tests/fixtures/hostile").join(p)
}

/// The lab inventory (`inventory.toml`) with absolute key and known_hosts paths, so the
/// binary can run with XDG dirs of its own, plus `extra` TOML appended (e.g. a
/// `[transport]` table or more hosts).
pub fn lab_inventory_text(lab: &Lab, extra: &str) -> String {
    let text = std::fs::read_to_string(repo("inventory.toml")).unwrap();
    let text = text
        .replace(
            "${XDG_STATE_HOME}/rampart/lab/id_ed25519",
            &lab.client_key().display().to_string(),
        )
        .replace(
            "${XDG_STATE_HOME}/rampart/lab/known_hosts",
            &lab.known_hosts().display().to_string(),
        );
    // Tests never reach for a real Alertmanager.
    let text = text.replace("http://127.0.0.1:9093", "http://127.0.0.1:9");
    format!("{text}\n{extra}\n")
}

/// Writes an inventory into `dir` and returns its path.
pub fn write_inventory(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The binary with its data, state and config dirs under `home` (history, command log,
/// journal never touch the user's), and no ssh-agent.
pub fn rampart(home: &Path) -> Command {
    let mut c = Command::new(common::rampart_bin());
    c.env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", home);
    c
}

/// Runs `program args` in a host and requires success; returns stdout.
pub fn exec_ok(lab: &Lab, host: &str, program: &str, args: &[&str]) -> String {
    let out = lab.exec(host, program, args);
    assert!(
        out.status.success(),
        "{host}: {program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell snippet in a host (nsenter, not SSH).
pub fn sh(lab: &Lab, host: &str, script: &str) -> Output {
    lab.exec(host, "/bin/sh", &["-c", script])
}

pub fn sh_ok(lab: &Lab, host: &str, script: &str) -> String {
    exec_ok(lab, host, "/bin/sh", &["-c", script])
}

/// The pid of a host's listening sshd.
pub fn sshd_pid(lab: &Lab, host: &str) -> u32 {
    let p = lab.host_path(host, "/run/sshd.pid");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

/// PIDs of every sshd process (listener and sessions) in a host's network namespace.
pub fn sshd_pids(lab: &Lab, host: &str) -> Vec<u32> {
    pids_in_netns(lab, host, "sshd")
}

/// Processes named `comm` in a host's network namespace: never a name match across the
/// machine.
pub fn pids_in_netns(lab: &Lab, host: &str, comm: &str) -> Vec<u32> {
    let ns = std::fs::read_link(format!("/proc/{}/ns/net", lab.holder_pid(host))).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if c.trim() == comm
            && std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .as_ref()
                == Some(&ns)
        {
            out.push(pid);
        }
    }
    out
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Whether the host's sshd answers with its banner on port 22 (checked from inside the
/// host, so no firewall or route is involved).
pub fn sshd_answers(lab: &Lab, host: &str) -> bool {
    // /dev/tcp is a bash feature.
    let out = lab.exec(
        host,
        "/bin/bash",
        &[
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/22 || exit 1; timeout 2 head -c 4 <&3",
        ],
    );
    out.status.success() && out.stdout.starts_with(b"SSH-")
}

/// Waits until the host's sshd answers (after a HUP or a restart).
pub fn wait_sshd(lab: &Lab, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !sshd_answers(lab, host) {
        assert!(Instant::now() < deadline, "{host}: sshd does not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes a host's sshd re-read its configuration (SIGHUP: it re-executes itself; running
/// sessions are separate processes and stay).
pub fn reload_sshd(lab: &Lab, host: &str) {
    signal(sshd_pid(lab, host), "HUP");
    std::thread::sleep(Duration::from_millis(200));
    wait_sshd(lab, host);
}

/// Starts a host's sshd again as the lab does.
pub fn start_sshd(lab: &Lab, host: &str) {
    let out = lab.exec(host, "/usr/sbin/sshd", &["-E", "/var/log/auth.log"]);
    assert!(out.status.success(), "start sshd on {host}: {out:?}");
    wait_sshd(lab, host);
}

/// A drop-in in a host's `/etc/ssh/sshd_config.d/` (read before the main file, so it wins).
pub fn sshd_dropin(lab: &Lab, host: &str, name: &str, text: &str) -> PathBuf {
    let p = lab.host_path(host, &format!("/etc/ssh/sshd_config.d/{name}"));
    std::fs::write(&p, text).unwrap();
    p
}

// --- The host-side command recorder -------------------------------------------------------

/// Where a host's recorder writes: one record per command, NUL-terminated (commands span
/// lines).
pub const RECORDER_LOG: &str = "/var/log/rampart-recorder.log";
const RECORDER_SCRIPT: &str = "/etc/ssh/rampart-recorder.sh";
const RECORDER_DROPIN: &str = "00-rampart-recorder.conf";

/// Installs a `ForceCommand` recorder on a host: every command a client asks for is
/// appended to [`RECORDER_LOG`], then run as it would have been. Undo with
/// [`remove_recorder`].
pub fn install_recorder(lab: &Lab, host: &str) {
    let script = lab.host_path(host, RECORDER_SCRIPT);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\0' \"$SSH_ORIGINAL_COMMAND\" >> {RECORDER_LOG}\n\
             exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"
        ),
    )
    .unwrap();
    sh_ok(
        lab,
        host,
        &format!("chmod 755 {RECORDER_SCRIPT}; : > {RECORDER_LOG}"),
    );
    sshd_dropin(
        lab,
        host,
        RECORDER_DROPIN,
        &format!("ForceCommand {RECORDER_SCRIPT}\n"),
    );
    reload_sshd(lab, host);
}

pub fn remove_recorder(lab: &Lab, host: &str) {
    let _ = std::fs::remove_file(
        lab.host_path(host, &format!("/etc/ssh/sshd_config.d/{RECORDER_DROPIN}")),
    );
    let _ = std::fs::remove_file(lab.host_path(host, RECORDER_SCRIPT));
    reload_sshd(lab, host);
}

/// Every command the host's recorder saw since it was installed.
pub fn recorded(lab: &Lab, host: &str) -> Vec<String> {
    let raw = std::fs::read(lab.host_path(host, RECORDER_LOG)).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|c| !c.is_empty())
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// Removes the recorder on every host when dropped (also when the test panics).
pub struct Recorders<'a> {
    pub lab: &'a Lab,
    pub hosts: Vec<&'static str>,
}

impl<'a> Recorders<'a> {
    pub fn install(lab: &'a Lab, hosts: &[&'static str]) -> Recorders<'a> {
        let r = Recorders {
            lab,
            hosts: Vec::new(),
        };
        let mut r = r;
        for h in hosts {
            install_recorder(lab, h);
            r.hosts.push(h);
        }
        r
    }
}

impl Drop for Recorders<'_> {
    fn drop(&mut self) {
        for h in &self.hosts {
            remove_recorder(self.lab, h);
        }
    }
}

// --- The read-only allow-list -------------------------------------------------------------

/// Undoes POSIX `sh` single quoting of one word (`'...'` with `'\''` for a quote).
pub fn sh_unquote(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = word;
    loop {
        rest = rest.strip_prefix('\'')?;
        let end = rest.find('\'')?;
        out.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        if rest.is_empty() {
            return Some(out);
        }
        rest = rest.strip_prefix("\\'")?;
        out.push('\'');
    }
}

/// Every read-only command rampart has (its allow-list): the collection probes, the
/// traffic capture, the fix access probe and the refresh fingerprint.
pub fn allow_list() -> Vec<rampart::ssh::ReadCommand> {
    let mut v: Vec<rampart::ssh::ReadCommand> = rampart::collect::probes::PROBES.to_vec();
    v.push(rampart::traffic::capture::CAPTURE.clone());
    v.push(rampart::fix::ACCESS_PROBE.clone());
    v.push(rampart::collect::probes::FINGERPRINT.clone());
    v
}

/// Classifies one recorded command: `Ok(names of the allow-listed probes it consists of)`
/// when it is exactly an allow-listed probe, or a framed script of allow-listed probes
/// (with or without sudo), optionally under the remote `timeout` wrapper; `Err(why)`
/// otherwise. The check rebuilds the text from the allow-list and compares it whole.
pub fn classify(recorded: &str) -> Result<Vec<String>, String> {
    // The remote timeout wrapper (`... timeout -s KILL N ... sh -c '<inner>'`): take N and
    // the quoted inner text, and accept it only if the wrapper rebuilds exactly.
    let inner = match (recorded.find("KILL "), recorded.find(" sh -c '")) {
        (Some(k), Some(q)) if k < q => {
            let secs: u64 = recorded[k + 5..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| "bad timeout".to_string())?;
            let inner = sh_unquote(&recorded[q + 7..]).ok_or_else(|| "bad quoting".to_string())?;
            if rampart::ssh::command::with_remote_timeout(&inner, secs) != recorded {
                return Err("the timeout wrapper does not rebuild".into());
            }
            inner
        }
        _ => recorded.to_string(),
    };
    let list = allow_list();
    for sudo in [false, true] {
        if let Some(p) = list.iter().find(|p| p.render(sudo) == inner) {
            return Ok(vec![p.name().to_string()]);
        }
    }
    // A framed script: find its nonce and probe names, rebuild it from the allow-list with
    // the same probes in the same order, and compare the whole text.
    let marker = "@@rampart:";
    let start = inner
        .find(marker)
        .ok_or_else(|| "not an allow-listed probe".to_string())?;
    let nonce: String = inner[start + marker.len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let begin = format!("printf '%s\\n' '@@rampart:{nonce}:begin:");
    let mut names = Vec::new();
    for line in inner.lines() {
        if let Some(rest) = line.strip_prefix(&begin)
            && let Some(name) = rest.split('\'').next()
        {
            names.push(name.to_string());
        }
    }
    let mut parts = Vec::new();
    for n in &names {
        let p = list
            .iter()
            .find(|p| p.name() == n)
            .ok_or_else(|| format!("frame {n:?} is not an allow-listed probe"))?;
        parts.push(p);
    }
    let rebuilt = rampart::ssh::ReadCommand::framed("check", &parts)
        .map_err(|e| format!("cannot frame: {e}"))?;
    let own = rebuilt.nonce().unwrap_or_default().to_string();
    for sudo in [false, true] {
        if rebuilt.render(sudo).replace(&own, &nonce) == inner {
            return Ok(names);
        }
    }
    Err("a framed script that differs from the allow-listed probes".into())
}

/// Runs a program with a deadline; kills it (by its own pid) when the deadline passes.
pub fn output_within(mut cmd: Command, limit: Duration) -> (Output, bool) {
    use std::io::Read as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        Output {
            status,
            stdout: t_out.join().unwrap(),
            stderr: t_err.join().unwrap(),
        },
        killed,
    )
}

/// The system `ssh` as `user` (not root) to a lab host, through the bastion as root, with
/// the lab's strict host keys and key.
pub fn ssh_as(lab: &Lab, user: &str, host: &str, command: &str) -> Output {
    let mut c = Command::new("ssh");
    c.arg("-F").arg(lab.ssh_config());
    if host != "edge" {
        c.args(["-J", &format!("root@{}", common::BASTION)]);
    }
    c.args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.known_hosts().display()
        ))
        .args(["-o", "IdentitiesOnly=yes", "-i"])
        .arg(lab.client_key())
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .arg(format!("{user}@{}", common::address(host)))
        .arg(command);
    c.output().expect("run ssh")
}

// --- Inventory injection cases ------------------------------------------------------------

/// Hostile values: options, shell syntax, line breaks, NUL, other controls.
pub const HOSTILE_VALUES: &[&str] = &[
    "-oProxyCommand=touch /tmp/rampart-pwned",
    "-p2222",
    "x; touch /tmp/rampart-pwned",
    "x && id",
    "x | id",
    "$(touch /tmp/rampart-pwned)",
    "${IFS}id",
    "`touch /tmp/rampart-pwned`",
    "x\nid",
    "x\rid",
    "x\u{0}id",
    "x id",
    "x\tid",
    "'x'",
    "\"x\"",
    "x\u{1b}[31m",
    "x\u{202e}di",
    "../../etc/passwd",
    "x>/tmp/rampart-pwned",
    "",
];

/// A small valid inventory; `{F}` marks where one field's hostile value goes.
const BASE: &str = r#"
[defaults]
user = "root"
bastion = "edge"
[segments]
admin = ["10.77.9.0/24"]
dmz = ["10.77.10.0/24"]
[[host]]
name = "edge"
address = "10.77.0.10"
roles = ["bastion"]
bastion = "none"
[[host]]
name = "web1"
address = "10.77.10.11"
roles = ["web"]
"#;

/// Every injection case: (field, hostile value, inventory text). The value is written as a
/// TOML string (escaped by the toml crate, so `\n` and NUL reach the loader as themselves);
/// ports and CIDRs get it too, where a number or a network is expected.
pub fn injection_cases() -> Vec<(String, String, String)> {
    let fields: &[(&str, &str, &str)] = &[
        ("host name", "name = \"web1\"", "name = {F}"),
        ("address", "address = \"10.77.10.11\"", "address = {F}"),
        ("user", "roles = [\"web\"]", "roles = [\"web\"]\nuser = {F}"),
        ("default user", "user = \"root\"", "user = {F}"),
        ("port", "roles = [\"web\"]", "roles = [\"web\"]\nport = {F}"),
        (
            "bastion",
            "roles = [\"web\"]",
            "roles = [\"web\"]\nbastion = {F}",
        ),
        ("role", "roles = [\"web\"]", "roles = [{F}]"),
        ("segment CIDR", "dmz = [\"10.77.10.0/24\"]", "dmz = [{F}]"),
        (
            "segment name",
            "dmz = [\"10.77.10.0/24\"]",
            "{K} = [\"10.77.10.0/24\"]",
        ),
    ];
    let mut out = Vec::new();
    for (field, find, replace) in fields {
        let mut values: Vec<String> = HOSTILE_VALUES.iter().map(|v| v.to_string()).collect();
        // Valid-looking prefixes carrying the payload, for fields that parse numbers/nets.
        if *field == "address" || *field == "segment CIDR" {
            // (Not "" or "-p2222": "10.77.10.11-p2222" is a well-formed DNS name.)
            for v in HOSTILE_VALUES
                .iter()
                .filter(|v| !v.is_empty() && **v != "-p2222")
            {
                values.push(format!("10.77.10.11{v}"));
            }
            values.push("10.77.10.0/33".into());
            values.push("10.77.10.11/24".into());
        }
        if *field == "port" {
            values.extend(["22 ", "22;", "0", "-1", "65536", "1e3"].map(String::from));
        }
        for v in values {
            if v.is_empty() && *field == "role" {
                continue;
            }
            let lit = toml::Value::String(v.clone()).to_string();
            let rep = if replace.contains("{K}") {
                // A TOML key: quoted so that any text can be one.
                replace.replace("{K}", &lit)
            } else {
                replace.replace("{F}", &lit)
            };
            out.push((field.to_string(), v, BASE.replacen(find, &rep, 1)));
        }
        if *field == "port" {
            for n in ["-1", "0", "65536", "99999999999"] {
                out.push((
                    field.to_string(),
                    n.to_string(),
                    BASE.replacen(find, &format!("roles = [\"web\"]\nport = {n}"), 1),
                ));
            }
        }
    }
    out
}
