//! The firewall model at Kubernetes scale: parsing and normalizing 20,000 kube-proxy
//! iptables rules and an nft table with a 50,000-element set, and a whole host's exposure
//! evaluation (every listening port × every source posture asks about, 160 questions,
//! through the whole packet path) on each.
//!
//! Run: `cargo bench --bench firewall`. Peak memory: `cargo build --release --example
//! firewall-peak && /usr/bin/time -v target/release/examples/firewall-peak`.
//! Targets (issue 13; measurements, not assertions): ≤ 20 ms per whole-host evaluation at
//! 20,000 rules, ≤ 50 MB.

#![allow(clippy::panic)]

#[path = "firewall/gen.rs"]
mod generate;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart::firewall::assemble::{Inputs, assemble};
use rampart::firewall::eval::{Evaluator, HostNet};
use rampart::state::{Firewall, Packet, Probed, Protocol};

fn kube(save: &str) -> Firewall {
    assemble(&Inputs {
        iptables_nft: Probed::Ok(save),
        ..Inputs::default()
    })
}

fn nft(json: &str) -> Firewall {
    assemble(&Inputs {
        nft: Probed::Ok(json),
        ..Inputs::default()
    })
}

/// What posture asks of one host: every listening port from every source.
fn whole_host(fw: &Firewall) -> usize {
    let ev = Evaluator::new(fw, HostNet::unknown());
    let mut admitted = 0;
    for port in generate::listening_ports() {
        for src in generate::sources() {
            let v = ev.evaluate(&Packet {
                src,
                dst: None,
                iface: None,
                protocol: Protocol::Tcp,
                port,
            });
            admitted += usize::from(v.admitted());
        }
    }
    admitted
}

fn bench(c: &mut Criterion) {
    let save = generate::kube_proxy_save();
    let json = generate::nft_big_set();
    let k = kube(&save);
    let n = nft(&json);
    if k.rules.len() < 20_000 {
        panic!("kube-proxy ruleset has only {} rules", k.rules.len());
    }
    eprintln!(
        "kube-proxy: {} rules, {} chains; whole host admits {} of {} questions",
        k.rules.len(),
        k.chains.len(),
        whole_host(&k),
        generate::listening_ports().len() * generate::sources().len()
    );
    eprintln!(
        "nft set: {} rules; whole host admits {} questions",
        n.rules.len(),
        whole_host(&n)
    );
    let mut g = c.benchmark_group("firewall");
    g.sample_size(10);
    g.bench_function("parse-kube-proxy-20k", |b| {
        b.iter(|| kube(black_box(&save)))
    });
    g.bench_function("evaluate-host-kube-proxy-20k", |b| {
        b.iter(|| whole_host(black_box(&k)))
    });
    g.bench_function("parse-nft-set-50k", |b| b.iter(|| nft(black_box(&json))));
    g.bench_function("evaluate-host-nft-set-50k", |b| {
        b.iter(|| whole_host(black_box(&n)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
