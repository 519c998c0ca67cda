//! The practice lab: real hosts (OpenSSH, ufw, nftables, fail2ban, nginx, node exporter,
//! WireGuard via boringtun) each in its own network, mount and UTS namespace on this machine.
//!
//! Owns: `rampart lab up|down|status` ([`run`]), the lab's design ([`config`]), and every
//! namespace, link, process and file under the lab's state dir. It must not touch anything
//! else on the machine: no address outside the lab's /16, no link or namespace without the
//! lab's prefix, nothing in the real /etc, /var or /root/.ssh (hosts see private overlays).
//!
//! How a host is made: a holder process (`ip netns exec NS unshare --mount --uts sleep
//! infinity`) owns the host's namespaces; /etc and /var are overlayfs over the real ones with
//! the upper layer in the state dir, /run is a private tmpfs. Files are written through
//! `/proc/HOLDER/root/...` and daemons start with `nsenter --target HOLDER`, so SSH sessions
//! inherit the host's own view: `ufw status`, `nft list ruleset`, `ss -tlnp` show that host.

pub mod config;
pub mod docker;
mod down;
pub mod stack;
mod status;
mod sys;
mod up;

use std::path::PathBuf;
use std::time::Instant;

pub use config::{Daemon, HostSpec, LabConfig, Misconfiguration, Segment, misconfigurations};
pub use status::{DaemonState, HostStatus, LabStatus, render_status};

/// What `rampart lab` was asked to do (defined with the command line): `Up { hosts }` makes
/// or repairs the lab, idempotently (`hosts`: light scale hosts besides the named ones;
/// `None` keeps however many there are now, `Some(0)` removes them); `Down` removes every
/// namespace, link, process and file of the lab; `Status` shows each host and fails if
/// anything is down.
pub use crate::cli::LabAction as LabCommand;

/// Why a lab command failed. Each names the host (or `lab`) and the stage.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "rampart lab {0} must run as root: the lab is network namespaces, links and mounts \
         that only root can make, inspect or remove (try: sudo rampart lab {0})"
    )]
    NotRoot(&'static str),
    #[error("lab configuration: {0}")]
    Config(String),
    #[error("{host}: {stage}: `{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Command {
        host: String,
        stage: &'static str,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{host}: {stage}: {}: {source}", .path.display())]
    Io {
        host: String,
        stage: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{host}: {stage}: {detail}")]
    Failed {
        host: String,
        stage: &'static str,
        detail: String,
    },
    /// `lab status` found something down; the status table was already printed.
    #[error("lab is not healthy: {0}")]
    Unhealthy(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl LabError {
    /// Exit status for the command line: 2 for usage and configuration (including not being
    /// root), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::NotRoot(_) | LabError::Config(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(
        host: &str,
        stage: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> LabError {
        let host = host.to_owned();
        let path = path.to_owned();
        move |source| LabError::Io {
            host,
            stage,
            path,
            source,
        }
    }
}

/// `rampart lab up|down|status` with the default configuration (prefix `rpl`, 10.77.0.0/16,
/// state in `${XDG_STATE_HOME:-~/.local/state}/rampart/lab`). Prints to stdout.
pub fn run(cmd: &LabCommand) -> Result<(), LabError> {
    run_with(&LabConfig::default(), cmd)
}

/// [`run`] with an explicit configuration.
pub fn run_with(cfg: &LabConfig, cmd: &LabCommand) -> Result<(), LabError> {
    let verb = match cmd {
        LabCommand::Up { .. } => "up",
        LabCommand::Down => "down",
        LabCommand::Status => "status",
    };
    if sys::effective_uid() != Some(0) {
        return Err(LabError::NotRoot(verb));
    }
    cfg.validate()?;
    let started = Instant::now();
    match cmd {
        LabCommand::Up { hosts } => {
            let mut cfg = cfg.clone();
            cfg.scale_hosts = match hosts {
                Some(n) => *n,
                None => up::current_scale_hosts(&cfg),
            };
            cfg.validate()?;
            let made = up::up(&cfg)?;
            if made.is_empty() {
                println!("lab already up: nothing to do");
            } else {
                for line in &made {
                    println!("{line}");
                }
            }
            let st = status::collect(&cfg);
            print!("{}", render_status(&cfg, &st));
            println!("lab up in {:.1}s", started.elapsed().as_secs_f64());
            match st.problems().first() {
                None => Ok(()),
                Some(_) => Err(LabError::Unhealthy(st.problems().join("; "))),
            }
        }
        LabCommand::Down => {
            let removed = down::down(cfg)?;
            if removed.is_empty() {
                println!("no lab found: nothing to remove");
            }
            for line in &removed {
                println!("{line}");
            }
            println!("lab down in {:.1}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        LabCommand::Status => {
            let mut cfg = cfg.clone();
            cfg.scale_hosts = up::current_scale_hosts(&cfg);
            let st = status::collect(&cfg);
            print!("{}", render_status(&cfg, &st));
            let problems = st.problems();
            if problems.is_empty() {
                Ok(())
            } else {
                Err(LabError::Unhealthy(problems.join("; ")))
            }
        }
    }
}
