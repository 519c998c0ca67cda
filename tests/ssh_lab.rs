//! The transport against the practice lab: every private host through the bastion (edge)
//! from the shipped `inventory.toml`, with key-file auth and with agent auth; the connection
//! state table; a stopped sshd failing fast while the rest complete; hosts reconnecting after
//! the bastion's sshd is restarted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart::inventory::Inventory;
use rampart::ssh::report::{connect_report, render_table};
use rampart::ssh::{AgentChoice, ConnState, ErrorKind, ReadCommand, Transport, TransportOptions};

const HOSTNAME: ReadCommand = ReadCommand::new("hostname", "cat /proc/sys/kernel/hostname");

fn inventory() -> Inventory {
    Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml")).unwrap()
}

/// Options for the lab: the inventory's settings, nothing from the user's own ~/.ssh.
fn lab_options(inv: &Inventory, log_dir: &Path) -> TransportOptions {
    TransportOptions {
        user_known_hosts: false,
        agent: AgentChoice::Off,
        default_identities: false,
        ssh_config: Some(Default::default()),
        command_log: Some(log_dir.join("commands.jsonl")),
        ..TransportOptions::from_inventory(inv)
    }
}

fn expected_hostnames(lab: &common::Lab) -> Vec<(String, String)> {
    common::HOSTS
        .iter()
        .map(|(h, _)| {
            let out = lab.exec(h, "cat", &["/proc/sys/kernel/hostname"]);
            (
                h.to_string(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_host_through_the_bastion_with_key_file() {
    let lab = common::ensure_lab();
    let inv = inventory();
    let tmp = tempfile::tempdir().unwrap();
    let tr = Transport::new(&inv, lab_options(&inv, tmp.path())).unwrap();
    let rows = connect_report(&tr).await;
    let table = render_table(&rows);
    eprintln!("{table}");
    for r in &rows {
        assert!(r.error.is_none(), "{}: {:?}\n{table}", r.host, r.error);
        assert_eq!(r.state, ConnState::Ready { strict_kex: true }, "{}", r.host);
        if r.host != "edge" {
            assert_eq!(r.via, vec!["edge".to_string()], "{}", r.host);
        }
    }
    let hosts: Vec<String> = tr.hosts();
    assert_eq!(hosts.len(), common::HOSTS.len());
    let results = tr.exec_many(&hosts, &HOSTNAME).await;
    let expected = expected_hostnames(&lab);
    for (h, r) in results {
        let out = r.unwrap_or_else(|e| panic!("{e}"));
        let want = &expected.iter().find(|(n, _)| *n == h).unwrap().1;
        assert_eq!(&String::from_utf8_lossy(&out.stdout), want, "{h}");
    }
    tr.close().await;
}

struct Agent(Child, PathBuf);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_host_through_the_bastion_with_agent() {
    let lab = common::ensure_lab();
    let inv = inventory();
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent(child, sock.clone());
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = Command::new("ssh-add")
        .arg(lab.client_key())
        .env("SSH_AUTH_SOCK", &sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut inv_agent = inv.clone();
    for h in &mut inv_agent.hosts {
        h.identity_files.clear();
    }
    let opts = TransportOptions {
        agent: AgentChoice::Socket(agent.1.clone()),
        ..lab_options(&inv, tmp.path())
    };
    let tr = Transport::new(&inv_agent, opts).unwrap();
    for h in tr.hosts() {
        assert!(tr.spec(&h).unwrap().identity_files.is_empty());
    }
    let results = tr.exec_many(&tr.hosts(), &HOSTNAME).await;
    for (h, r) in results {
        assert!(r.is_ok(), "{h}: {}", r.unwrap_err());
    }
    tr.close().await;
    drop(agent);
}

/// PIDs of the sshd processes (listener and sessions) living in a lab host's network
/// namespace: never a name match across the machine.
fn sshd_pids_of(lab: &common::Lab, host: &str) -> Vec<u32> {
    let holder = lab.holder_pid(host);
    let ns = std::fs::read_link(format!("/proc/{holder}/ns/net")).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "sshd" {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .as_ref()
            == Some(&ns)
        {
            out.push(pid);
        }
    }
    out
}

fn kill_pids(pids: &[u32]) {
    for p in pids {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .status();
    }
}

fn start_sshd(lab: &common::Lab, host: &str) {
    let out = lab.exec(host, "/usr/sbin/sshd", &["-E", "/var/log/auth.log"]);
    assert!(out.status.success(), "restart sshd on {host}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_sshd_fails_fast_while_others_complete_then_bastion_restart_reconnects() {
    let lab = common::ensure_lab_exclusive();
    let inv = inventory();
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = lab_options(&inv, tmp.path());
    opts.connect_timeout = Duration::from_secs(3);
    opts.reconnect_base = Duration::from_millis(200);
    opts.reconnect_max = Duration::from_secs(1);
    opts.reconnect_attempts = 20;
    let tr = Transport::new(&inv, opts).unwrap();

    // db1's sshd is down: the bastion's forward is refused; the others answer.
    let db1 = sshd_pids_of(&lab, "db1");
    assert!(!db1.is_empty());
    kill_pids(&db1);
    let t0 = Instant::now();
    let results = tr.exec_many(&tr.hosts(), &HOSTNAME).await;
    start_sshd(&lab, "db1");
    for (h, r) in &results {
        if h == "db1" {
            let e = r.as_ref().unwrap_err();
            assert!(matches!(*e.kind, ErrorKind::Forward(_)), "{e}");
            assert!(e.to_string().starts_with("db1 via edge: "), "{e}");
        } else {
            assert!(r.is_ok(), "{h}: {}", r.as_ref().unwrap_err());
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(15));
    // db1 works again once its sshd is back.
    let mut ok = false;
    for _ in 0..20 {
        if tr.exec("db1", &HOSTNAME).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ok, "db1 did not come back");

    // The bastion's sshd and all its sessions die and come back: every host reconnects.
    let edge = sshd_pids_of(&lab, "edge");
    kill_pids(&edge);
    tokio::time::sleep(Duration::from_millis(300)).await;
    start_sshd(&lab, "edge");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = tr.states();
        if states.values().all(ConnState::is_ready) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all hosts reconnected: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results = tr.exec_many(&tr.hosts(), &HOSTNAME).await;
    for (h, r) in results {
        assert!(r.is_ok(), "{h}: {}", r.unwrap_err());
    }
    tr.close().await;
}
