//! Alerts: what is happening now. Detectors ([`detect`]), the engine that deduplicates,
//! resolves, acknowledges and silences ([`engine`]), thresholds from the inventory
//! ([`thresholds`]), sinks (the console through [`engine::AlertEvent::to_update`],
//! Prometheus Alertmanager and webhooks in [`sinks`]) and the headless `rampart watch`
//! ([`watch`]). Never blocks the console: sinks run in their own tasks and report failures
//! as state.
//!
//! # Use (the console's runner)
//! ```no_run
//! # async fn demo(inv: &rampart::inventory::Inventory, state: rampart::state::HostState,
//! #   findings: Vec<rampart::posture::Finding>) {
//! use rampart::alerts::{AlertEngine, Sinks};
//! let mut engine = AlertEngine::from_inventory(inv);
//! let sinks = Sinks::from_inventory(inv, engine.thresholds().resend_secs);
//! // After each host's collection (its findings only):
//! let events = engine.observe_state(&state, &findings, rampart::audit::now_secs());
//! sinks.publish(&events, rampart::audit::now_secs());
//! for e in &events { let _update = e.to_update(); /* send to the console */ }
//! # }
//! ```

pub mod detect;
pub mod engine;
pub mod http;
pub mod ids;
pub mod secret;
pub mod sinks;
pub mod thresholds;
pub mod watch;

pub use detect::{Condition, Reachability};
pub use engine::{Alert, AlertEngine, AlertEvent, AlertState, Change};
pub use sinks::{SinkStatus, Sinks};
pub use thresholds::Thresholds;
