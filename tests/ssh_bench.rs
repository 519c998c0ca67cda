//! Benchmark (ignored by default): cold connection to every lab host through the bastion,
//! then `true` on each, measured in-process. Run with
//! `cargo test --release --test ssh_bench -- --ignored --nocapture`
//! (`RAMPART_BENCH_RUNS` sets the number of runs, default 10). Prints figures; asserts only
//! that every run reached every host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use rampart::inventory::Inventory;
use rampart::ssh::{AgentChoice, ReadCommand, Transport, TransportOptions};

const TRUE: ReadCommand = ReadCommand::new("true", "true");

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "{name}: runs {} min {:.1} ms median {:.1} ms mean {:.1} ms max {:.1} ms",
        v.len(),
        ms(v[0]),
        ms(v[v.len() / 2]),
        mean,
        ms(v[v.len() - 1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn cold_connect_every_lab_host() {
    let _lab = common::ensure_lab();
    let inv =
        Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let runs: usize = std::env::var("RAMPART_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut connect = Vec::new();
    let mut total = Vec::new();
    for _ in 0..runs {
        let opts = TransportOptions {
            user_known_hosts: false,
            agent: AgentChoice::Off,
            default_identities: false,
            ssh_config: Some(Default::default()),
            command_log: Some(tmp.path().join("commands.jsonl")),
            ..TransportOptions::from_inventory(&inv)
        };
        let t0 = Instant::now();
        let tr = Transport::new(&inv, opts).unwrap();
        for (h, r) in tr.connect_all().await {
            assert!(r.is_ok(), "{h}: {}", r.unwrap_err());
        }
        connect.push(t0.elapsed());
        for (h, r) in tr.exec_many(&tr.hosts(), &TRUE).await {
            assert!(r.is_ok(), "{h}: {}", r.unwrap_err());
        }
        total.push(t0.elapsed());
        tr.close().await;
    }
    stats("connect (6 hosts, 5 through edge)", connect);
    stats("connect + `true` on each", total);
}
