//! A plain-text table of every host's connection state, for `rampart audit --connect-only`
//! and the tests.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::ssh::transport::{ConnState, Transport};

/// One row: host, bastions, state, time to connect.
#[derive(Debug, Clone)]
pub struct ConnectRow {
    pub host: String,
    pub via: Vec<String>,
    pub state: ConnState,
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// Connects to every host at once and reports each one's state when it settled.
pub async fn connect_report<M>(transport: &Transport<M>) -> Vec<ConnectRow> {
    let futs = transport.hosts().into_iter().map(|h| async move {
        let started = Instant::now();
        let res = transport.connect(&h).await;
        let elapsed = started.elapsed();
        ConnectRow {
            via: transport.via(&h),
            state: transport
                .subscribe(&h)
                .map(|r| r.borrow().clone())
                .unwrap_or(ConnState::Idle),
            error: res.err().map(|e| e.to_string()),
            elapsed,
            host: h,
        }
    });
    futures::future::join_all(futs).await
}

/// Renders rows as an aligned table (remote text is sanitized).
pub fn render_table(rows: &[ConnectRow]) -> String {
    let mut out = String::new();
    let w = rows.iter().map(|r| r.host.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(out, "{:w$}  {:14}  {:>8}  STATE", "HOST", "VIA", "MS");
    for r in rows {
        let via = if r.via.is_empty() {
            "-".to_string()
        } else {
            r.via.join(">")
        };
        let detail = match &r.error {
            Some(e) => crate::sanitize::clean_line(e),
            None => r.state.to_string(),
        };
        let _ = writeln!(
            out,
            "{:w$}  {:14}  {:>8}  {}",
            r.host,
            via,
            r.elapsed.as_millis(),
            detail
        );
    }
    out
}

/// Connects to every host and prints the table to stdout; returns how many are not ready.
pub async fn print_connection_states<M>(transport: &Transport<M>) -> usize {
    let rows = connect_report(transport).await;
    print!("{}", render_table(&rows));
    rows.iter().filter(|r| r.error.is_some()).count()
}
