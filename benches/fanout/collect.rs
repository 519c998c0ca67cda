//! The rampart side of the fan-out benchmark: collects the full state of every host of an
//! inventory that sits behind a bastion, first cold (new connections: bastion handshake,
//! one `direct-tcpip` channel and one handshake per host, one exec channel per host), then
//! warm (the same transport, connections held: one exec channel per host) a few times, in
//! one process. Prints one JSON object: wall time and this process's CPU (user + sys) per
//! phase, failed hosts, peak RSS, and the transport's command-log line count (exec
//! channels opened).
//!
//! Then an incremental round (`collect::Refresher`, full) and WARM_ROUNDS steady-state
//! refreshes of the unchanged hosts. Each phase also reports the target hosts' CPU (every
//! process in the namespaces `TARGETS_NETNS` lists, from /proc accounting: run it in the
//! lab's sandbox).
//!
//! `fanout-collect INVENTORY [WARM_ROUNDS]`. Used by benches/fanout/run.sh.

use std::time::Instant;

use anyhow::Context as _;
use rampart::collect::{Refresher, collect_fleet};
use rampart::inventory::Inventory;
use rampart::ssh::{Transport, TransportOptions};

/// This process's user + system CPU so far, in milliseconds (all threads), and its peak RSS
/// in KiB, from /proc (no libc call needed).
fn usage() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("/proc/self/stat: no ')'")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        f.get(i - 3)
            .context("/proc/self/stat: short")?
            .parse::<u64>()
            .context("/proc/self/stat: not a number")
    };
    // USER_HZ is 100 on every Linux architecture rampart builds for.
    let cpu_ms = (ticks(14)? + ticks(15)?) * 10;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok((cpu_ms, hwm))
}

/// CPU (ms, reaped children included) of every process in the target hosts' network
/// namespaces, listed one per line in the file `TARGETS_NETNS` names (run.sh writes it), when
/// the lab runs in this PID namespace (a sandbox). 0 without the file.
fn hosts_ms() -> u64 {
    let want: Vec<std::path::PathBuf> = std::env::var_os("TARGETS_NETNS")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.lines().map(std::path::PathBuf::from).collect())
        .unwrap_or_default();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut ticks = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if !want.contains(&ns) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += (14..=17)
            .filter_map(|i| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()))
            .sum::<u64>();
    }
    ticks * 10
}

struct Phase {
    wall_ms: f64,
    cpu_ms: u64,
    host_ms: u64,
    failed: usize,
    execs: usize,
}

async fn phase(
    t: &Transport,
    hosts: &[String],
    refresher: Option<&Refresher>,
) -> anyhow::Result<Phase> {
    let (cpu0, _) = usage()?;
    let h0 = hosts_ms();
    let started = Instant::now();
    let mut execs = hosts.len();
    let fleet = match refresher {
        None => collect_fleet(t, hosts).await,
        Some(r) => {
            use futures::StreamExt as _;
            let futs: Vec<_> = hosts.iter().map(|h| r.collect_named(t, h)).collect();
            let done: Vec<_> = futures::stream::iter(futs)
                .buffered(rampart::collect::MAX_IN_FLIGHT)
                .collect()
                .await;
            execs = done.iter().map(|(_, rep)| rep.execs).sum();
            // What made a host take a second exec: printed so the scale lab's steady rounds
            // can be read (stderr, next to the JSON line).
            let mut reran: Vec<&str> = done.iter().flat_map(|(_, rep)| rep.reran.clone()).collect();
            reran.sort_unstable();
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for r in reran {
                match counts.last_mut() {
                    Some((n, c)) if *n == r => *c += 1,
                    _ => counts.push((r, 1)),
                }
            }
            if !counts.is_empty() {
                eprintln!("fanout-collect: ran again (probe, hosts): {counts:?}");
            }
            rampart::state::FleetState {
                hosts: done.into_iter().map(|(s, _)| s).collect(),
            }
        }
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (cpu1, _) = usage()?;
    // Let the hosts' sshd reap the sessions' shells before reading their accounting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let host_ms = hosts_ms().saturating_sub(h0);
    let failed = fleet.hosts.iter().filter(|h| h.is_unreachable()).count();
    for h in fleet.hosts.iter().filter(|h| h.is_unreachable()) {
        eprintln!("fanout-collect: {}: {:?}", h.host, h.errors);
    }
    Ok(Phase {
        wall_ms,
        cpu_ms: cpu1 - cpu0,
        host_ms,
        failed,
        execs,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: fanout-collect INVENTORY [WARM_ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let inv = Inventory::load(std::path::Path::new(&path))?;
    // Every host reached through a bastion: the bastion itself is a hop, not a target.
    let hosts: Vec<String> = inv
        .hosts
        .iter()
        .filter(|h| h.bastion.is_some())
        .map(|h| h.name.clone())
        .collect();
    let log = std::env::temp_dir().join(format!("rampart-fanout-{}.jsonl", std::process::id()));
    let mut opts = TransportOptions::from_inventory(&inv);
    opts.command_log = Some(log.clone());
    let (cpu_setup0, _) = usage()?;
    let t = Transport::new(&inv, opts)?;
    let (cpu_setup1, _) = usage()?;
    let cold = phase(&t, &hosts, None).await?;
    let mut warm = Vec::new();
    for _ in 0..rounds {
        warm.push(phase(&t, &hosts, None).await?);
    }
    // Incremental refresh: one full round (the baseline), then steady rounds on unchanged
    // hosts.
    let refresher = Refresher::new(std::time::Duration::from_secs(3600));
    let _ = phase(&t, &hosts, Some(&refresher)).await?;
    let mut steady = Vec::new();
    for _ in 0..rounds {
        steady.push(phase(&t, &hosts, Some(&refresher)).await?);
    }
    steady.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let st = steady.get(steady.len() / 2);
    t.close().await;
    let (cpu_total, rss) = usage()?;
    let execs = std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
    let _ = std::fs::remove_file(&log);
    warm.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let w = warm.get(warm.len() / 2);
    println!(
        "{{\"hosts\":{},\"setup_cpu_ms\":{},\"cold_ms\":{:.1},\"cold_cpu_ms\":{},\"cold_failed\":{},\
         \"warm_rounds\":{},\"warm_ms\":{:.1},\"warm_min_ms\":{:.1},\"warm_cpu_ms\":{},\"warm_failed\":{},\
         \"total_cpu_ms\":{},\"peak_rss_kb\":{},\"exec_channels\":{},\
         \"cold_host_ms\":{},\"warm_host_ms\":{},\"steady_ms\":{:.1},\"steady_cpu_ms\":{},\
         \"steady_host_ms\":{},\"steady_execs\":{},\"steady_failed\":{}}}",
        hosts.len(),
        cpu_setup1 - cpu_setup0,
        cold.wall_ms,
        cold.cpu_ms,
        cold.failed,
        warm.len(),
        w.map_or(0.0, |p| p.wall_ms),
        warm.first().map_or(0.0, |p| p.wall_ms),
        w.map_or(0, |p| p.cpu_ms),
        warm.iter().map(|p| p.failed).max().unwrap_or(0),
        cpu_total,
        rss,
        execs,
        cold.host_ms,
        w.map_or(0, |p| p.host_ms),
        st.map_or(0.0, |p| p.wall_ms),
        st.map_or(0, |p| p.cpu_ms),
        st.map_or(0, |p| p.host_ms),
        st.map_or(0, |p| p.execs),
        steady.iter().map(|p| p.failed).max().unwrap_or(0),
    );
    Ok(())
}
