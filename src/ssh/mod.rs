//! The SSH transport (russh): hops through bastions, strict host keys, authentication,
//! exec with caps and timeouts, bounded fan-out. It never shells out to `ssh`.

pub mod config;
pub mod known_hosts;
