//! The practice lab: real hosts (OpenSSH, ufw, nftables, fail2ban, nginx, WireGuard) each in
//! its own network and mount namespace on this machine.
