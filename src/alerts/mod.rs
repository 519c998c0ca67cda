//! Alerts: what is happening now. Detectors, deduplication and sinks (the console,
//! `rampart watch`, Prometheus Alertmanager, webhooks). Never blocks the console: sinks run
//! in their own tasks and report failures as state.

pub mod http;
