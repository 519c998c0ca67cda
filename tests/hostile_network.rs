//! Network faults against the lab's real programs. Each test breaks the lab on purpose
//! (exclusive lock) and puts it back, also when it fails (a guard undoes each fault).
//!
//! - a link down (web2's bridge port in rpl-core), SYNs dropped (an nft rule in app1), an
//!   sshd that stalls after its banner (a tiny server on app1:2222, a second inventory
//!   host), a frozen sshd (SIGSTOP on db1's listener), a command that never ends (`ss` bound
//!   over by `sleep` in web1's mount namespace): each fails at its own timeout, the rest of
//!   the fleet completes, and each recovers on the same transport once the fault clears;
//! - the link to the bastion flaps and the bastion's sshd restarts: hosts reconnect with
//!   backoff, and exactly one connection to the bastion remains (ours, and edge's view);
//! - 5 % loss on every lab link (nft `numgen random`) and 200 ms each way on the path to the
//!   bastion (a delaying relay: this kernel has no `sch_netem`): a full collection completes;
//! - `MaxSessions 1` on db1 and `MaxStartups 2:50:4` on edge: everything completes;
//! - a soak of repeated collections in one process (`RAMPART_SOAK_SECS`, default 45): no
//!   growth in memory, file descriptors, threads, sockets or the bastion's forwards.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hostile_support as hs;
use rampart::inventory::Inventory;
use rampart::ssh::{AgentChoice, ConnState, Transport, TransportOptions};
use rampart::state::HostState;

const ALL: [&str; 10] = [
    "edge", "web1", "web2", "vpn1", "app1", "db1", "cache1", "leg1", "fwd1", "dock1",
];

fn inventory(lab: &common::Lab, dir: &Path, extra: &str) -> Inventory {
    let p = hs::write_inventory(dir, "net.toml", &hs::lab_inventory_text(lab, extra));
    Inventory::load(&p).unwrap()
}

fn options(inv: &Inventory, dir: &Path) -> TransportOptions {
    TransportOptions {
        user_known_hosts: false,
        agent: AgentChoice::Off,
        default_identities: false,
        ssh_config: Some(Default::default()),
        command_log: Some(dir.join("commands.jsonl")),
        reconnect_base: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(2),
        reconnect_attempts: 30,
        ..TransportOptions::from_inventory(inv)
    }
}

fn ok(s: &HostState) -> bool {
    !s.is_unreachable() && s.errors.is_empty()
}

fn first_error(s: &HostState) -> String {
    s.errors
        .first()
        .map(|e| format!("{}: {}", e.stage, e.message))
        .unwrap_or_default()
}

/// Collects each host on its own task and times it.
async fn timed_collect(tr: &Transport, hosts: &[String]) -> Vec<(String, HostState, Duration)> {
    let t0 = Instant::now();
    let futs = hosts.iter().map(|h| {
        let tr = tr.clone();
        let h = h.clone();
        async move {
            let s = rampart::collect::collect_named(&tr, &h).await;
            (h, s, t0.elapsed())
        }
    });
    futures::future::join_all(futs).await
}

/// Undo actions run in reverse order when dropped: every fault is cleared even if an
/// assertion fails half-way.
#[derive(Default)]
struct Undo(Vec<(String, Box<dyn FnOnce() + Send>)>);

impl Undo {
    fn push(&mut self, what: &str, f: impl FnOnce() + Send + 'static) {
        self.0.push((what.to_string(), Box::new(f)));
    }
    /// Clears one fault now (by name).
    fn clear(&mut self, what: &str) {
        if let Some(i) = self.0.iter().position(|(w, _)| w == what) {
            let (_, f) = self.0.remove(i);
            f();
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        while let Some((_, f)) = self.0.pop() {
            f();
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn holder(host: &str) -> u32 {
    let p = rampart::lab::config::default_state_dir()
        .join("hosts")
        .join(host)
        .join("holder.pid");
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

fn in_host(host: &str, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .args([
            "--target",
            &holder(host).to_string(),
            "--mount",
            "--net",
            "--uts",
            "--",
        ])
        .args(args)
        .output()
        .unwrap()
}

/// A server that answers with an SSH banner and then says nothing, in app1's namespace.
fn banner_staller() -> Child {
    Command::new("ip")
        .args(["netns", "exec", "rpl-app1", "python3", "-c"])
        .arg(
            "import socket\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('10.77.11.11', 2222))\n\
             s.listen(16)\n\
             held = []\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   c.sendall(b'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n')\n\
             \x20   held.append(c)\n",
        )
        .spawn()
        .unwrap()
}

const STALL_HOST: &str =
    "[[host]]\nname = \"stall\"\naddress = \"10.77.11.11\"\nport = 2222\nroles = [\"app\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_at_its_own_timeout_the_rest_complete_and_all_recover() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(
        &lab,
        dir.path(),
        &format!(
            "{STALL_HOST}\n[transport]\nconnect_timeout_secs = 3\ncommand_timeout_secs = 8\n\
             keepalive_secs = 1\nkeepalive_max = 3\n"
        ),
    );
    let tr = Transport::new(&inv, options(&inv, dir.path())).unwrap();
    let hosts: Vec<String> = tr.hosts();
    let mut undo = Undo::default();

    // A command that never ends on web1: its `ss` is `sleep` in web1's mount namespace.
    let ss = String::from_utf8(in_host("web1", &["sh", "-c", "command -v ss"]).stdout).unwrap();
    let ss = ss.trim().to_string();
    std::fs::write(
        lab.host_path("web1", "/etc/rampart-hostile-hang"),
        "#!/bin/sh\nexec sleep 100000\n",
    )
    .unwrap();
    hs::sh_ok(&lab, "web1", "chmod 755 /etc/rampart-hostile-hang");
    hs::exec_ok(
        &lab,
        "web1",
        "mount",
        &["--bind", "/etc/rampart-hostile-hang", &ss],
    );
    {
        let ss = ss.clone();
        undo.push("hang", move || {
            let _ = in_host("web1", &["umount", &ss]);
            let _ = in_host("web1", &["rm", "-f", "/etc/rampart-hostile-hang"]);
        });
    }
    // web2's link is down.
    run("ip", &["-n", "rpl-core", "link", "set", "web2", "down"]);
    undo.push("link", || {
        let _ = Command::new("ip")
            .args(["-n", "rpl-core", "link", "set", "web2", "up"])
            .status();
    });
    // app1 drops SYNs to its sshd.
    hs::exec_ok(
        &lab,
        "app1",
        "nft",
        &["add table inet rampart_hostile; \
             add chain inet rampart_hostile input { type filter hook input priority -10; }; \
             add rule inet rampart_hostile input tcp dport 22 tcp flags & (syn | ack) == syn drop"],
    );
    undo.push("syn", || {
        let _ = in_host("app1", &["nft", "delete table inet rampart_hostile"]);
    });
    // db1's sshd is frozen.
    let db1_sshd = hs::sshd_pid(&lab, "db1");
    hs::signal(db1_sshd, "STOP");
    undo.push("frozen", move || hs::signal(db1_sshd, "CONT"));
    // A server that stalls after its banner.
    let mut staller = banner_staller();
    std::thread::sleep(Duration::from_millis(500));

    let results = timed_collect(&tr, &hosts).await;
    let mut faults = 0;
    for (h, s, took) in &results {
        let err = first_error(s);
        eprintln!("{h}: {took:?} {err}");
        match h.as_str() {
            "edge" | "vpn1" | "cache1" | "leg1" | "fwd1" | "dock1" => assert!(ok(s), "{h}: {err}"),
            "web1" => {
                assert!(err.contains("timed out"), "{h}: {err}");
                assert!(*took < Duration::from_secs(8 * 3), "{h} took {took:?}");
                faults += 1;
            }
            "web2" | "app1" => {
                assert!(s.is_unreachable(), "{h}");
                assert!(*took < Duration::from_secs(3 * 4), "{h} took {took:?}");
                faults += 1;
            }
            "db1" | "stall" => {
                assert!(s.is_unreachable(), "{h}");
                assert!(
                    err.to_lowercase().contains("handshake") || err.contains("timed out"),
                    "{h}: {err}"
                );
                assert!(*took < Duration::from_secs(6 * 3), "{h} took {took:?}");
                faults += 1;
            }
            other => panic!("unexpected host {other}"),
        }
    }
    assert_eq!(faults, 5);
    // The command that never ended was killed on the host too (remote timeout): no
    // `sleep 100000` holds a session there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holder = lab.holder_pid("web1");
    let sleepers: Vec<u32> = hs::pids_in_netns(&lab, "web1", "sleep")
        .into_iter()
        .filter(|p| *p != holder)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("100000"))
        })
        .collect();
    assert!(sleepers.is_empty(), "web1 still runs {sleepers:?}");

    // Clear the faults: each host recovers on the same transport, on its own.
    undo.clear("hang");
    undo.clear("link");
    undo.clear("syn");
    undo.clear("frozen");
    let _ = staller.kill();
    let _ = staller.wait();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    while !pending.is_empty() {
        let res = timed_collect(&tr, &pending).await;
        pending = res
            .into_iter()
            .filter(|(_, s, _)| !ok(s))
            .map(|(h, s, _)| {
                eprintln!("still failing: {h}: {}", first_error(&s));
                h
            })
            .collect();
        assert!(
            Instant::now() < deadline,
            "not recovered after the faults cleared: {pending:?}"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    tr.close().await;
    drop(undo);
    eprintln!(
        "figure: network faults injected and survived 5 (link down, SYN drop, banner stall, SIGSTOP, endless command)"
    );
}

/// Our process's established TCP connections to the bastion's sshd (from /proc/self/fd and
/// /proc/net/tcp: the sockets this process holds).
fn own_connections_to_bastion() -> usize {
    let mut inodes = std::collections::HashSet::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(t) = std::fs::read_link(e.path()) {
            let t = t.to_string_lossy().into_owned();
            if let Some(i) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(i.to_string());
            }
        }
    }
    // 10.77.0.10:22 in /proc/net/tcp's little-endian hex; state 01 = ESTABLISHED.
    let text = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[2] == "0A004D0A:0016" && f[3] == "01" && inodes.contains(f[9])
        })
        .count()
}

/// Established connections on edge's port 22 from the operator's side (10.77.0.1).
fn edge_connections_from_outside() -> usize {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rpl-edge",
            "ss",
            "-Htn",
            "state",
            "established",
        ])
        .args(["( sport = :22 and dst 10.77.0.1 )"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

async fn wait_all_ready(tr: &Transport, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let states = tr.states();
        if states.values().all(ConnState::is_ready) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all hosts reconnected: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_flap_and_bastion_restart_reconnect_without_piling_up() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(
        &lab,
        dir.path(),
        "[transport]\nconnect_timeout_secs = 3\nkeepalive_secs = 1\nkeepalive_max = 2\n",
    );
    let tr = Transport::new(&inv, options(&inv, dir.path())).unwrap();
    let hosts = tr.hosts();
    for (h, s, _) in timed_collect(&tr, &hosts).await {
        assert!(ok(&s), "{h}: {}", first_error(&s));
    }
    assert_eq!(own_connections_to_bastion(), 1);
    let mut undo = Undo::default();
    let mut saw_reconnecting = false;

    for round in 0..2 {
        // The link to the bastion goes down long enough for keepalive to give up.
        let mut rx = tr.subscribe("db1").unwrap();
        run("ip", &["link", "set", "rpl-up", "down"]);
        undo.push("flap", || {
            let _ = Command::new("ip")
                .args(["link", "set", "rpl-up", "up"])
                .status();
        });
        let watch = tokio::time::timeout(Duration::from_secs(8), async {
            loop {
                if matches!(
                    *rx.borrow_and_update(),
                    ConnState::Reconnecting { .. } | ConnState::Failed { .. }
                ) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false);
        saw_reconnecting |= watch;
        undo.clear("flap");
        wait_all_ready(&tr, Duration::from_secs(40)).await;
        for (h, s, _) in timed_collect(&tr, &hosts).await {
            assert!(ok(&s), "round {round}: {h}: {}", first_error(&s));
        }
        assert_eq!(own_connections_to_bastion(), 1, "round {round}");
    }
    assert!(
        saw_reconnecting,
        "the hosts never noticed the link going down"
    );

    // The bastion's sshd and all its sessions die and come back.
    let pids = hs::sshd_pids(&lab, "edge");
    for p in &pids {
        hs::signal(*p, "KILL");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    hs::start_sshd(&lab, "edge");
    wait_all_ready(&tr, Duration::from_secs(40)).await;
    for (h, s, _) in timed_collect(&tr, &hosts).await {
        assert!(ok(&s), "after restart: {h}: {}", first_error(&s));
    }
    assert_eq!(own_connections_to_bastion(), 1);
    // The restarted sshd sees exactly one connection from us: no pile-up of retries.
    assert_eq!(edge_connections_from_outside(), 1);
    tr.close().await;
    eprintln!("figure: bastion link flaps 2 and sshd restart 1 survived, 1 connection after each");
}

/// A TCP relay on loopback that holds every chunk `delay` before passing it on, in both
/// directions (this machine's kernel has no `sch_netem`, so `tc netem` is not available).
async fn delaying_relay(target: &'static str, delay: Duration) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    async fn pump(
        mut r: tokio::net::tcp::OwnedReadHalf,
        mut w: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        tokio::spawn(async move {
            while let Some((at, buf)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                if w.write_all(&buf).await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let Ok(s) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let _ = c.set_nodelay(true);
            let _ = s.set_nodelay(true);
            let (cr, cw) = c.into_split();
            let (sr, sw) = s.into_split();
            tokio::spawn(pump(cr, sw, delay));
            tokio::spawn(pump(sr, cw, delay));
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_and_latency_on_every_link_still_collect_everything() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    // 200 ms each way on the path to the bastion: rampart reaches edge through the relay.
    let port = delaying_relay("10.77.0.10:22", Duration::from_millis(200)).await;
    let kh = std::fs::read_to_string(lab.known_hosts()).unwrap();
    let edge_key = kh
        .lines()
        .find(|l| l.starts_with("edge,"))
        .and_then(|l| l.split_once(' '))
        .map(|(_, k)| k.to_string())
        .unwrap();
    let extra_kh = dir.path().join("relay_known_hosts");
    std::fs::write(
        &extra_kh,
        format!("[127.0.0.1]:{port},[edge]:{port} {edge_key}\n"),
    )
    .unwrap();
    let text = hs::lab_inventory_text(&lab, "").replacen(
        "address = \"10.77.0.10\"",
        &format!("address = \"127.0.0.1\"\nport = {port}"),
        1,
    );
    let p = hs::write_inventory(dir.path(), "relay.toml", &text);
    let inv = Inventory::load(&p).unwrap();
    // 5 % of packets dropped on every lab link: forwarded between edge and the hosts (in
    // the router), and arriving at edge's sshd from outside.
    let mut undo = Undo::default();
    let drop_rule = |ns: &str, hook: &str, extra: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "nft"])
            .arg(format!(
                "add table inet rampart_hostile; \
                 add chain inet rampart_hostile lossy {{ type filter hook {hook} priority -10; }}; \
                 add rule inet rampart_hostile lossy {extra} numgen random mod 100 < 5 drop"
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{ns}: {out:?}");
    };
    drop_rule("rpl-core", "forward", "");
    undo.push("core", || {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                "rpl-core",
                "nft",
                "delete table inet rampart_hostile",
            ])
            .status();
    });
    drop_rule("rpl-edge", "input", "tcp dport 22");
    undo.push("edge", || {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                "rpl-edge",
                "nft",
                "delete table inet rampart_hostile",
            ])
            .status();
    });
    let mut opts = options(&inv, dir.path());
    opts.known_hosts.push(extra_kh);
    let tr = Transport::new(&inv, opts).unwrap();
    let hosts = tr.hosts();
    let res = timed_collect(&tr, &hosts).await;
    for (h, s, took) in &res {
        eprintln!("loss+latency {h}: {took:?}");
        assert!(ok(s), "{h}: {}", first_error(s));
    }
    // The loss was real: the router dropped packets.
    let counters = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rpl-core",
            "nft",
            "list table inet rampart_hostile",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&counters.stdout));
    tr.close().await;
    drop(undo);
    eprintln!(
        "figure: 5% loss on every lab link + 200 ms each way to the bastion: 6 of 6 hosts collected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_1_and_max_startups_2_still_complete() {
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&lab, dir.path(), "");
    let db1 = hs::sshd_dropin(&lab, "db1", "00-rampart-hostile.conf", "MaxSessions 1\n");
    let edge = hs::sshd_dropin(
        &lab,
        "edge",
        "00-rampart-hostile.conf",
        "MaxStartups 2:50:4\n",
    );
    struct Restore<'a>(&'a common::Lab, Vec<std::path::PathBuf>);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            for p in &self.1 {
                let _ = std::fs::remove_file(p);
            }
            hs::reload_sshd(self.0, "db1");
            hs::reload_sshd(self.0, "edge");
        }
    }
    let _restore = Restore(&lab, vec![db1, edge]);
    hs::reload_sshd(&lab, "db1");
    hs::reload_sshd(&lab, "edge");
    // Three transports at once (each its own bastion connection and handshakes), each
    // collecting every host twice concurrently: more channels than db1 allows, more
    // handshakes than the bastion lets start.
    let mut jobs = Vec::new();
    for i in 0..3 {
        let d = dir.path().join(format!("t{i}"));
        std::fs::create_dir(&d).unwrap();
        // What is tested is that everything completes, not how fast: a loaded machine (ten
        // lab hosts on two cores) may take longer than the lab's 5 s to answer a channel
        // open that db1's MaxSessions 1 queues behind another.
        let opts = TransportOptions {
            connect_timeout: Duration::from_secs(20),
            ..options(&inv, &d)
        };
        let tr = Transport::new(&inv, opts).unwrap();
        jobs.push(tokio::spawn(async move {
            let hosts = tr.hosts();
            let (a, b) = tokio::join!(
                rampart::collect::collect_fleet(&tr, &hosts),
                rampart::collect::collect_fleet(&tr, &hosts)
            );
            tr.close().await;
            a.hosts.into_iter().chain(b.hosts).collect::<Vec<_>>()
        }));
    }
    let mut n = 0;
    for j in jobs {
        for s in j.await.unwrap() {
            assert!(ok(&s), "{}: {}", s.host, first_error(&s));
            n += 1;
        }
    }
    assert_eq!(n, 3 * 2 * ALL.len());
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Forwarded connections edge holds to private hosts' sshd (one per host we reach).
fn edge_forwards() -> usize {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            "rpl-edge",
            "ss",
            "-Htn",
            "state",
            "established",
        ])
        .args(["( dport = :22 and src 10.77.9.10 )"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_of_repeated_collections_does_not_grow() {
    let secs: u64 = std::env::var("RAMPART_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(45);
    let lab = common::ensure_lab_exclusive();
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(&lab, dir.path(), "");
    let tr = Transport::new(&inv, options(&inv, dir.path())).unwrap();
    let hosts = tr.hosts();
    // Warm up: connections made, allocator and runtime at their working size.
    for _ in 0..5 {
        let f = rampart::collect::collect_fleet(&tr, &hosts).await;
        assert!(f.hosts.iter().all(ok));
    }
    let base = (
        rss_kib(),
        fds(),
        threads(),
        own_connections_to_bastion(),
        edge_forwards(),
    );
    let t0 = Instant::now();
    let mut rounds = 0;
    let mut peak_rss = base.0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let f = rampart::collect::collect_fleet(&tr, &hosts).await;
        for s in &f.hosts {
            assert!(ok(s), "round {rounds}: {}: {}", s.host, first_error(s));
        }
        rounds += 1;
        peak_rss = peak_rss.max(rss_kib());
    }
    let end = (
        rss_kib(),
        fds(),
        threads(),
        own_connections_to_bastion(),
        edge_forwards(),
    );
    eprintln!(
        "figure: soak {secs} s, {rounds} collections of 6 hosts: rss {} -> {} KiB (peak {peak_rss}), \
         fds {} -> {}, threads {} -> {}, bastion connections {} -> {}, bastion forwards {} -> {}",
        base.0, end.0, base.1, end.1, base.2, end.2, base.3, end.3, base.4, end.4
    );
    assert!(rounds >= 5, "only {rounds} rounds");
    assert_eq!(base.3, 1);
    assert_eq!(end.3, 1, "connections to the bastion grew");
    assert_eq!(end.4, base.4, "forwards through the bastion grew");
    assert!(end.1 <= base.1 + 2, "fds grew: {} -> {}", base.1, end.1);
    assert!(end.2 <= base.2 + 2, "threads grew: {} -> {}", base.2, end.2);
    // Memory: allocator noise is allowed; a leak per collection is not (with ~1 MiB of
    // probe output per round, a leak shows within a few rounds).
    assert!(
        end.0 <= base.0 + 16 * 1024,
        "memory grew: {} -> {} KiB in {rounds} rounds",
        base.0,
        end.0
    );
    tr.close().await;
}
