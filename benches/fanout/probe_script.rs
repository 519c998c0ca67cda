//! Prints the exact text rampart sends to a host to collect its whole state (the framed
//! script of every probe in `rampart::collect::probes`, without sudo), so the peers in the
//! fan-out benchmark (Ansible, OpenSSH) run the very same commands. With probe names, only
//! those probes, framed alike (to try one probe on a host by hand).
//!
//! `cargo run --release --example fanout-probe-script [PROBE...] > script.sh`

use std::io::Write as _;

use anyhow::Context as _;
use rampart::collect::probes;

fn main() -> anyhow::Result<()> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let script = if names.is_empty() {
        probes::host_script()?
    } else {
        let mut chosen = Vec::new();
        for n in &names {
            let p = probes::PROBES
                .iter()
                .chain(std::iter::once(&probes::FINGERPRINT))
                .find(|p| p.name() == n)
                .with_context(|| format!("no probe named {n:?}"))?;
            chosen.push(p);
        }
        rampart::ssh::ReadCommand::framed("collect", &chosen)?
    };
    let mut out = std::io::stdout().lock();
    out.write_all(script.render(false).as_bytes())?;
    out.flush()?;
    Ok(())
}
