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
    let k = assemble(&Inputs {
        iptables_nft: Probed::Ok(&save),
        ..Inputs::default()
    });
    let n = assemble(&Inputs {
        nft: Probed::Ok(&json),
        ..Inputs::default()
    });
    let mut admitted = 0;
    for fw in [&k, &n] {
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
