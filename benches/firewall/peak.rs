//! Peak memory of the firewall model at Kubernetes scale (see benches/firewall.rs): builds
//! both generated rulesets, evaluates a whole host on each, and prints the process's peak
//! resident set (`VmHWM`). Run under `/usr/bin/time -v` for a second opinion.

#![allow(clippy::print_stdout)]

#[path = "gen.rs"]
mod generate;

use rampart::firewall::assemble::{Inputs, assemble};
use rampart::firewall::eval::{Evaluator, HostNet};
use rampart::state::{Packet, Probed, Protocol};

fn main() {
    let save = generate::kube_proxy_save();
    let json = generate::nft_big_set();
    let t = std::time::Instant::now();
    let k = assemble(&Inputs {
        iptables_nft: Probed::Ok(&save),
        ..Inputs::default()
    });
    let parse_k = t.elapsed();
    let t = std::time::Instant::now();
    let n = assemble(&Inputs {
        nft: Probed::Ok(&json),
        ..Inputs::default()
    });
    let parse_n = t.elapsed();
    println!("parse: kube-proxy {parse_k:?}, nft set {parse_n:?} (one run, wall time)");
    let mut admitted = 0;
    for fw in [&k, &n] {
        let t = std::time::Instant::now();
        let ev = Evaluator::new(fw, HostNet::unknown());
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
        println!(
            "whole host ({} questions): {:?} (one run, wall time)",
            generate::listening_ports().len() * generate::sources().len(),
            t.elapsed()
        );
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "kube-proxy rules {}, nft rules {}, admitted {admitted}; {hwm}",
        k.rules.len(),
        n.rules.len()
    );
}
