//! The host firewall: the model, the packet-path evaluator and one normalizer per backend.
//!
//! The collectors feed it raw outputs (`iptables-save` of every flavour, `nft -j list
//! ruleset`, `ufw status`, `ipset save`, addresses and routes); posture, fixes and the
//! lockout guard ask it questions. Everything here is pure: no I/O, and no command is
//! built here (only `crate::fix` builds mutating commands).
//!
//! - [`model`]: rules, chains, verdicts (plain data, re-exported by `crate::state`);
//! - [`eval`]: the evaluator, from prerouting through the routing decision to INPUT or
//!   FORWARD;
//! - [`iptables`], [`nft`], [`ufw`]: the backend normalizers;
//! - [`firewalld`]: firewalld's zones and services as `firewall-cmd` prints them (evidence;
//!   the verdict comes from its nft table);
//! - [`assemble`]: one [`model::Firewall`] from every backend's output.

pub mod assemble;
pub mod eval;
pub mod firewalld;
pub mod ipset;
pub mod iptables;
pub mod model;
pub mod nft;
pub mod ufw;

pub use model::*;
