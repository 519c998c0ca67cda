//! The host's side of a collection, probe by probe: the CPU (user + sys) the host spends and
//! the wall time, for each probe alone, for a full collection, and for a steady-state
//! incremental refresh (`collect::Refresher` on an unchanged host), over the real transport.
//!
//! Host CPU is read from `/proc` accounting: the sum of utime + stime + cutime + cstime of
//! every process in the host's network namespace (its sshd, the session's shells and the
//! probes they reaped, and the daemons a probe talks to, such as fail2ban-server), before and
//! after `ROUNDS` execs, less the host's idle rate measured over as long just before. Ticks
//! are 10 ms, hence the rounds. Run it inside a sandbox (`dev/sandbox NAME ...`) on a lab
//! whose processes are visible in the PID namespace (`rampart lab up` in the same sandbox).
//!
//! `fanout-probe-cost INVENTORY HOST [ROUNDS]`; prints a Markdown table. Used by
//! benches/fanout/run.sh (`probe_cost.md`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rampart::collect::{Refresher, probes};
use rampart::inventory::Inventory;
use rampart::ssh::{ReadCommand, Transport, TransportOptions};

/// The probes as they were before issue 17, for the "before" rows.
const OLD_UFW: ReadCommand = ReadCommand::new(
    "old-ufw",
    "PATH=$PATH:/usr/sbin:/sbin; command -v ufw >/dev/null 2>&1 || exit 127; ufw status verbose",
);
const OLD_FAIL2BAN: ReadCommand = ReadCommand::new(
    "old-fail2ban",
    "command -v fail2ban-client >/dev/null 2>&1 || exit 127; \
     s=$(fail2ban-client status 2>&1); rc=$?; printf '%s\\n' \"$s\"; \
     [ \"$rc\" -eq 0 ] || exit \"$rc\"; \
     for j in $(printf '%s\\n' \"$s\" | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do \
     printf '### jail %s\\n' \"$j\"; fail2ban-client status \"$j\" 2>&1; done",
);
const OLD_FIREWALLD: ReadCommand = ReadCommand::new(
    "old-firewalld",
    "command -v firewall-cmd >/dev/null 2>&1 || exit 127; firewall-cmd --state 2>&1; exit 0",
);
const EMPTY: ReadCommand = ReadCommand::new("empty", "true");

/// CPU ticks (1/100 s) of every process in a network namespace, reaped children included.
fn netns_ticks(netns: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut sum = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"));
        if ns
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .as_deref()
            != Some(netns)
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14-17 of stat(5); `rest` starts at field 3.
        sum += (14..=17)
            .filter_map(|i| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()))
            .sum::<u64>();
    }
    sum
}

struct Cost {
    cpu_ms: f64,
    wall_ms: f64,
    execs: f64,
}

/// Runs `f` `rounds` times; host CPU and wall per round, idle rate subtracted.
async fn measure<F, Fut>(netns: &str, rounds: usize, idle_per_ms: f64, mut f: F) -> Cost
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let t0 = netns_ticks(netns);
    let started = Instant::now();
    let mut execs = 0;
    for _ in 0..rounds {
        execs += f().await;
    }
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    // Let the last session's processes be reaped before reading.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t1 = netns_ticks(netns);
    let cpu = (t1.saturating_sub(t0) * 10) as f64 - idle_per_ms * (wall + 200.0);
    Cost {
        cpu_ms: cpu.max(0.0) / rounds as f64,
        wall_ms: wall / rounds as f64,
        execs: execs as f64 / rounds as f64,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: fanout-probe-cost INVENTORY HOST [ROUNDS]";
    let path = args.next().context(usage)?;
    let host = args.next().context(usage)?;
    let rounds: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let inv = Inventory::load(std::path::Path::new(&path))?;
    let holder: PathBuf = rampart::lab::config::default_state_dir()
        .join("hosts")
        .join(&host)
        .join("holder.pid");
    let pid = std::fs::read_to_string(&holder)
        .with_context(|| format!("{}: is the lab up in this sandbox?", holder.display()))?;
    let netns = std::fs::read_link(format!("/proc/{}/ns/net", pid.trim()))?
        .to_string_lossy()
        .into_owned();
    let t = Transport::new(&inv, TransportOptions::from_inventory(&inv))?;
    let one = |cmd: ReadCommand| {
        let t = &t;
        let host = host.clone();
        async move {
            let framed = ReadCommand::framed("probe", &[&cmd]).unwrap_or(cmd);
            let _ = t.exec(&host, &framed).await;
            1
        }
    };
    // Connect, warm the host's page cache, then the idle rate over two seconds.
    let _ = one(EMPTY).await;
    let i0 = netns_ticks(&netns);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_per_ms = (netns_ticks(&netns).saturating_sub(i0) * 10) as f64 / 2000.0;

    let mut rows: Vec<(String, Cost)> = Vec::new();
    rows.push((
        "empty exec (`true`): the session itself".into(),
        measure(&netns, rounds, idle_per_ms, || one(EMPTY)).await,
    ));
    let mut cmds: Vec<&ReadCommand> = vec![&probes::FINGERPRINT];
    cmds.extend(probes::PROBES.iter());
    for p in cmds {
        let c = measure(&netns, rounds, idle_per_ms, || one(p.clone())).await;
        rows.push((format!("probe `{}`", p.name()), c));
    }
    for p in [&OLD_UFW, &OLD_FAIL2BAN, &OLD_FIREWALLD] {
        let c = measure(&netns, rounds, idle_per_ms, || one(p.clone())).await;
        rows.push((format!("before: `{}`", p.name()), c));
    }
    let full = Refresher::new(Duration::ZERO);
    rows.push((
        "full collection (fingerprint + every probe, one exec)".into(),
        measure(&netns, rounds, idle_per_ms, || async {
            full.collect_named(&t, &host).await.1.execs
        })
        .await,
    ));
    let steady = Refresher::new(Duration::from_secs(3600));
    let _ = steady.collect_named(&t, &host).await;
    rows.push((
        "steady-state refresh, host unchanged".into(),
        measure(&netns, rounds, idle_per_ms, || async {
            steady.collect_named(&t, &host).await.1.execs
        })
        .await,
    ));
    t.close().await;

    println!(
        "Host {host}, {rounds} rounds each, idle rate {:.3} ms CPU per s subtracted.\n",
        idle_per_ms * 1000.0
    );
    println!("| what | host CPU per run | wall per run | execs per run |");
    println!("|---|---|---|---|");
    for (what, c) in rows {
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1} |",
            c.cpu_ms, c.wall_ms, c.execs
        );
    }
    Ok(())
}
