//! `lab down`: kill every process in the lab's namespaces (holders, daemons, SSH sessions),
//! delete the namespaces, the root namespace's link and route, and the state dir.
//! Only names with the lab's prefix and the lab's own /16 are ever touched.

use std::fs;
use std::time::Duration;

use super::LabError;
use super::config::LabConfig;
use super::sys::{self, Cmd};

pub fn down(cfg: &LabConfig) -> Result<Vec<String>, LabError> {
    let mut removed = Vec::new();
    let lock = if cfg.state_dir.exists() {
        let f = fs::File::create(cfg.lock_file()).map_err(LabError::io(
            "lab",
            "lock",
            &cfg.lock_file(),
        ))?;
        f.lock()
            .map_err(LabError::io("lab", "lock", &cfg.lock_file()))?;
        Some(f)
    } else {
        None
    };

    let prefix = format!("{}-", cfg.prefix);
    let mut namespaces: Vec<String> = fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    namespaces.sort();

    let mut pids: Vec<u32> = namespaces
        .iter()
        .flat_map(|ns| sys::netns_pids(ns))
        .collect();
    // Hosts whose named namespace is gone still have their holder's pid recorded.
    if let Ok(hosts) = fs::read_dir(cfg.state_dir.join("hosts")) {
        for h in hosts.flatten() {
            if let Some(holder) = sys::read_pid(&h.path().join("holder.pid"))
                && sys::comm(holder).as_deref() == Some("sleep")
            {
                pids.extend(sys::pids_sharing_netns(holder));
            }
        }
    }
    // Containers first, while dockerd can still stop them; then whatever the host's
    // processes started in other namespaces (a container's processes under their shim).
    if let Ok(hosts) = fs::read_dir(cfg.state_dir.join("hosts")) {
        for h in hosts.flatten() {
            if h.file_name() == super::docker::DOCKER_HOST
                && let Some(holder) = sys::read_pid(&h.path().join("holder.pid"))
                && sys::comm(holder).as_deref() == Some("sleep")
            {
                super::docker::remove_containers(super::docker::DOCKER_HOST, holder);
            }
        }
    }
    let below = sys::descendants(&pids);
    pids.extend(below);
    pids.sort_unstable();
    pids.dedup();
    if !pids.is_empty() {
        sys::terminate(&pids, Duration::from_secs(3));
        let left: Vec<u32> = pids.iter().copied().filter(|p| sys::alive(*p)).collect();
        if !left.is_empty()
            && !sys::wait_until(Duration::from_secs(3), || {
                left.iter().all(|p| !sys::alive(*p))
            })
        {
            return Err(LabError::Failed {
                host: "lab".into(),
                stage: "stop processes",
                detail: format!("processes still alive after SIGKILL: {left:?}"),
            });
        }
        // Let init reap them, so `ps` shows no leftovers (not even zombies) afterwards.
        let _ = sys::wait_until(Duration::from_secs(2), || {
            pids.iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        });
        removed.push(format!("stopped {} processes", pids.len()));
    }

    for ns in &namespaces {
        Cmd::new("lab", "delete netns", "ip")
            .args(["netns", "del", ns])
            .run()?;
    }
    if !namespaces.is_empty() {
        removed.push(format!(
            "deleted {} namespaces: {}",
            namespaces.len(),
            namespaces.join(" ")
        ));
    }

    let up = cfg.uplink();
    let link_exists = || {
        Cmd::new("lab", "probe link", "ip")
            .args(["link", "show", "dev", &up])
            .succeeds()
    };
    if link_exists() {
        // Normally gone with the bastion's namespace; namespace teardown is asynchronous.
        if !sys::wait_until(Duration::from_secs(3), || !link_exists()) {
            Cmd::new("lab", "delete link", "ip")
                .args(["link", "del", &up])
                .run()?;
        }
        removed.push(format!("removed link {up}"));
    }
    let route = Cmd::new("lab", "delete route", "ip")
        .args(["route", "del", "unreachable"])
        .arg(cfg.base.to_string());
    if route.succeeds() {
        removed.push(format!("removed route unreachable {}", cfg.base));
    }

    if cfg.state_dir.exists() {
        fs::remove_dir_all(&cfg.state_dir).map_err(LabError::io(
            "lab",
            "remove state dir",
            &cfg.state_dir,
        ))?;
        removed.push(format!("removed {}", cfg.state_dir.display()));
    }
    if lock.is_some() {
        let _ = fs::remove_file(cfg.lock_file());
    }
    Ok(removed)
}
