//! The practice lab: real hosts (OpenSSH, ufw, nftables, fail2ban, nginx, WireGuard) each in
//! its own network and mount namespace on this machine.

use crate::cli::LabAction;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab is not built yet")]
    NotBuilt,
}

/// Runs `rampart lab up|down|status`.
pub fn run(_action: &LabAction) -> Result<(), LabError> {
    Err(LabError::NotBuilt)
}
