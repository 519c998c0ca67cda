//! Prints the exact text rampart sends to a host to collect its whole state (the framed
//! script of every probe in `rampart::collect::probes`, without sudo), so the peers in the
//! fan-out benchmark (Ansible, OpenSSH) run the very same commands.
//!
//! `cargo run --release --example fanout-probe-script > script.sh`

use std::io::Write as _;

fn main() -> anyhow::Result<()> {
    let script = rampart::collect::probes::host_script()?;
    let mut out = std::io::stdout().lock();
    out.write_all(script.render(false).as_bytes())?;
    out.flush()?;
    Ok(())
}
