//! The lab suite's checks on a machine that also runs other things: a second lab-like
//! environment (its own network namespace, with another prefix) running its own WireGuard
//! userspace daemon (boringtun). The lab's process checks must not count the foreign daemon,
//! collection must not see it, and `lab down` must neither touch it nor leave the lab down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The foreign environment: a network namespace and a boringtun in it, removed when dropped.
struct Foreign {
    ns: String,
    iface: String,
    daemon: Child,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_file(format!("/var/run/wireguard/{}.sock", self.iface));
    }
}

fn boringtun() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("boringtun-cli"))
        .find(|p| p.is_file());
    in_path
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cargo/bin/boringtun-cli"))
                .filter(|p| p.is_file())
        })
        .expect("boringtun-cli (rampart lab up installs it)")
}

fn foreign() -> Foreign {
    let ns = format!("rpx-iso-{}", std::process::id());
    let iface = format!("wgx{}", std::process::id() % 10_000);
    let out = Command::new("ip")
        .args(["netns", "add", &ns])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let daemon = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(boringtun())
        .args(["-f", "--disable-drop-privileges", "-l", "/dev/null", &iface])
        .spawn()
        .expect("start the foreign boringtun");
    let f = Foreign { ns, iface, daemon };
    let sock = PathBuf::from(format!("/var/run/wireguard/{}.sock", f.iface));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "the foreign boringtun never made {sock:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    f
}

#[test]
fn the_suites_checks_hold_beside_a_foreign_boringtun_and_a_second_environment() {
    let lab = common::ensure_lab_exclusive();
    let restore = common::LabRestore;
    let f = foreign();
    let daemon = common::Proc::of(f.daemon.id()).expect("the foreign daemon runs");

    // The lab's own processes, scoped by namespace: the foreign daemon is not one of them,
    // and the lab still has its own boringtun (in vpn1's or edge's namespace).
    let procs = common::lab_processes();
    assert!(!procs.iter().any(|p| p.pid == daemon.pid), "{procs:?}");
    assert!(!common::lab_namespaces().contains(&f.ns));

    // The lab's own status check passes.
    let status = Command::new(common::rampart_bin())
        .args(["lab", "status"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );

    // Collection sees the lab host's WireGuard, not the foreign one.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let st = rt.block_on(async {
        let t = lab.transport(None);
        let st = rampart::collect::collect_named(&t, "vpn1").await;
        t.close().await;
        st
    });
    let vpn = st.vpn.ok().expect("vpn1's VPN state");
    let wg = vpn.wireguard.ok().expect("vpn1's WireGuard state");
    assert!(!wg.is_empty(), "vpn1 has its own interface");
    assert!(!wg.iter().any(|w| w.name == f.iface), "{wg:?}");

    // `lab down` takes every process of the lab and only those; the foreign environment
    // stays. The lab is brought back by `restore`, pass or fail.
    let down = Command::new(common::rampart_bin())
        .args(["lab", "down"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    let left: Vec<_> = procs.iter().filter(|p| p.alive()).collect();
    assert!(left.is_empty(), "lab processes left: {left:?}");
    assert!(daemon.alive(), "lab down killed the foreign boringtun");
    assert!(
        PathBuf::from("/run/netns").join(&f.ns).exists(),
        "lab down removed the foreign namespace"
    );
    drop(restore);
    let status = Command::new(common::rampart_bin())
        .args(["lab", "status"])
        .output()
        .unwrap();
    assert!(status.status.success(), "the lab did not come back");
}
