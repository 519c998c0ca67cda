//! rampart: a terminal operations console for the engineers who keep a fleet of Linux
//! servers safe.
//!
//! The data flows: inventory → transport (`ssh`) → collectors (`collect`) → typed state
//! (`state`) → posture and alerts → views → fixes (→ transport). Each module's own doc says
//! what it owns and what it must not do.

pub mod alerts;
pub mod audit;
pub mod cli;
pub mod collect;
pub mod console;
pub mod firewall;
pub mod fix;
pub mod inventory;
pub mod lab;
pub mod metrics;
pub mod paths;
pub mod posture;
pub mod report;
pub mod sanitize;
pub mod ssh;
pub mod state;
pub mod store;
pub mod traffic;
pub mod tui;
