//! `rampart watch`: headless and read-only. Collects the fleet every refresh, captures live
//! traffic on the selected hosts, runs the alert engine and prints each alert as it fires
//! and resolves (one JSON object per line with `--json`), while the inventory's
//! Alertmanagers and webhooks receive them too. Sink failures go to stderr, never stop it.
//!
//! Read-only by construction: only a `Transport<ReadOnly>` is made here.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;

use super::detect::Reachability;
use super::engine::{AlertEngine, AlertEvent, Change};
use super::sinks::Sinks;
use crate::inventory::Inventory;
use crate::posture::checks::{self, CheckOptions};
use crate::ssh::{ConnState, HostKeyPolicy, ReadOnly, Transport, TransportOptions};
use crate::state::{FleetState, HostState};
use crate::traffic::capture::{self, CaptureEvent, CaptureTask};

/// What `rampart watch` was asked.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub json: bool,
    /// Stop after this long; `None`: until interrupted.
    pub duration: Option<Duration>,
    /// Hosts to capture traffic on (a glob on names); `None` captures on none.
    pub capture: Option<String>,
    /// Capture this local interface with pnet instead of tcpdump over SSH (rampart runs on
    /// the jump host); its traffic is the host whose inventory address is on this machine.
    pub local_capture: Option<String>,
    pub accept_new: bool,
    /// Time between collections.
    pub refresh: Duration,
    /// Serve Prometheus metrics at this address (`/metrics`).
    pub metrics: Option<std::net::SocketAddr>,
}

/// A failure that stops `rampart watch` before it starts.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Transport(#[from] crate::ssh::SshError),
    #[error("--local-capture: {0}")]
    LocalCapture(#[from] capture::LocalCaptureError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

/// Parses `30s`, `10m`, `2h`, `1d` or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 10m, 2h)"))?;
    let mult = match unit {
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    let secs = n * mult;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("{s:?} is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One line of output for an alert change (`Fired` and `Resolved`; refreshes are not printed).
pub fn render_event(e: &AlertEvent, json: bool, now: i64) -> Option<String> {
    if e.change == Change::Refreshed {
        return None;
    }
    let a = &e.alert;
    if json {
        let v = serde_json::json!({
            "time": now,
            "alert": a.alert,
            "id": a.id,
            "host": a.host,
            "severity": a.severity.as_str(),
            "state": a.state.as_str(),
            "summary": a.summary,
            "evidence": a.evidence,
            "check": a.check,
            "first_seen": a.first_seen,
            "last_seen": a.last_seen,
            "count": a.count,
        });
        Some(v.to_string())
    } else {
        let word = match e.change {
            Change::Fired => "FIRING  ",
            _ => "RESOLVED",
        };
        Some(crate::sanitize::clean_line(&format!(
            "{} {word} {:<8} {:<8} {:<22} {}",
            crate::posture::fmt_time(now),
            a.severity.as_str(),
            a.host,
            a.alert,
            a.summary
        )))
    }
}

struct Watcher<'a, W: Write> {
    inv: &'a Inventory,
    opts: &'a WatchOptions,
    transport: Transport<ReadOnly>,
    engine: AlertEngine,
    sinks: Sinks,
    out: &'a mut W,
    captures: BTreeMap<String, CaptureTask>,
    /// Host → Unix seconds before which a failed capture is not retried.
    capture_retry: BTreeMap<String, i64>,
    fleet: FleetState,
    sink_problems: Vec<Option<String>>,
    tx: mpsc::Sender<CaptureEvent>,
    local_host: Option<String>,
    baseline_taken: bool,
    metrics: Option<crate::metrics::Metrics>,
    /// Incremental refresh: after the first round, an unchanged host costs one cheap exec.
    refresher: crate::collect::Refresher,
}

/// Runs `rampart watch` until the duration passes or the process is interrupted.
pub async fn run<W: Write>(
    inv: &Inventory,
    opts: &WatchOptions,
    out: &mut W,
) -> Result<(), WatchError> {
    let mut topts = TransportOptions::from_inventory(inv);
    if opts.accept_new {
        topts.host_keys = HostKeyPolicy::AcceptNew;
    }
    let transport: Transport<ReadOnly> = Transport::new(inv, topts)?;
    let metrics = match opts.metrics {
        Some(addr) => {
            let m = crate::metrics::Metrics::new();
            let (local, _task) = crate::metrics::serve(addr, m.clone()).await?;
            eprintln!("rampart: serving metrics at http://{local}/metrics");
            Some(m)
        }
        None => None,
    };
    let engine = AlertEngine::from_inventory(inv);
    let sinks = Sinks::from_inventory(inv, engine.thresholds().resend_secs);
    let (tx, mut rx) = mpsc::channel(256);
    let mut w = Watcher {
        inv,
        opts,
        transport,
        engine,
        sink_problems: vec![None; sinks.statuses().len()],
        sinks,
        out,
        captures: BTreeMap::new(),
        capture_retry: BTreeMap::new(),
        fleet: FleetState { hosts: Vec::new() },
        tx,
        local_host: None,
        baseline_taken: false,
        metrics,
        refresher: crate::collect::Refresher::default(),
    };
    if let Some(iface) = &opts.local_capture {
        let host = local_host(inv).unwrap_or_else(|| "local".to_string());
        let task = capture::spawn_local(iface, &host, w.tx.clone())?;
        w.captures.insert(host.clone(), task);
        w.local_host = Some(host);
    }
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let mut interval = tokio::time::interval(opts.refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interval.tick() => {
                if let Err(e) = w.refresh().await {
                    break Err(e);
                }
            }
            Some(ev) = rx.recv() => {
                if let Err(e) = w.capture_event(ev) {
                    break Err(e);
                }
            }
            _ = sleep => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    for (_, t) in std::mem::take(&mut w.captures) {
        t.stop().await;
    }
    w.sinks.flush(Duration::from_secs(3)).await;
    w.transport.close().await;
    result
}

/// The inventory host whose address is on one of this machine's interfaces.
fn local_host(inv: &Inventory) -> Option<String> {
    let local: Vec<std::net::IpAddr> = pnet::datalink::interfaces()
        .into_iter()
        .flat_map(|i| i.ips.into_iter().map(|n| n.ip()))
        .collect();
    inv.hosts
        .iter()
        .find(|h| h.address.ip().is_some_and(|a| local.contains(&a)))
        .map(|h| h.name.clone())
}

impl<W: Write> Watcher<'_, W> {
    fn emit(&mut self, events: &[AlertEvent]) -> Result<(), WatchError> {
        let now = crate::audit::now_secs();
        self.sinks.publish(events, now);
        for e in events {
            if let Some(line) = render_event(e, self.opts.json, now) {
                writeln!(self.out, "{line}")?;
            }
        }
        self.out.flush()?;
        Ok(())
    }

    fn capture_event(&mut self, ev: CaptureEvent) -> Result<(), WatchError> {
        let now = crate::audit::now_secs();
        match ev {
            CaptureEvent::Snapshot { host, snapshot } => {
                let events = self.engine.observe_flows(&host, &snapshot, now);
                self.emit(&events)?;
                if let Some(m) = &self.metrics {
                    m.record_alerts(self.engine.firing());
                }
                Ok(())
            }
            CaptureEvent::Failed { host, message } => {
                eprintln!("rampart: {host}: {}", crate::sanitize::clean_line(&message));
                self.captures.remove(&host);
                self.capture_retry.insert(host.clone(), now + 60);
                let events = self.engine.capture_stopped(&host, now);
                self.emit(&events)
            }
        }
    }

    async fn refresh(&mut self) -> Result<(), WatchError> {
        let inv = self.inv;
        let transport = self.transport.clone();
        let started = std::time::Instant::now();
        let refresher = &self.refresher;
        let timed: Vec<(HostState, Duration)> = futures::stream::iter(inv.hosts.iter())
            .map(|h| crate::metrics::timed(refresher.collect_host(&transport, h)))
            .buffer_unordered(crate::collect::MAX_IN_FLIGHT)
            .collect()
            .await;
        let states: Vec<HostState> = timed.iter().map(|(s, _)| s.clone()).collect();
        let am = crate::audit::alertmanager_ok(inv).await;
        let now = crate::audit::now_secs();
        for s in &states {
            if s.is_unreachable() {
                continue;
            }
            match self.fleet.hosts.iter().position(|h| h.host == s.host) {
                Some(i) => self.fleet.hosts[i] = s.clone(),
                None => self.fleet.hosts.push(s.clone()),
            }
        }
        let mut copts = CheckOptions::new(now).with_thresholds(&inv.alerting.thresholds);
        copts.alertmanager_ok = am;
        let findings = checks::evaluate(inv, &self.fleet, &copts);
        let conn = self.transport.states();
        let mut events = Vec::new();
        for s in &states {
            if let Some(c @ ConnState::HostKeyRefused { .. }) = conn.get(&s.host) {
                events.extend(self.engine.observe_reachability(
                    &s.host,
                    &Reachability::from(c),
                    now,
                ));
                continue;
            }
            let mine: Vec<crate::posture::Finding> = findings
                .iter()
                .filter(|f| f.host == s.host)
                .cloned()
                .collect();
            events.extend(self.engine.observe_state(s, &mine, now));
        }
        self.emit(&events)?;
        if let Some(m) = &self.metrics {
            m.record_round(&timed, &findings, started.elapsed(), now);
            m.record_alerts(self.engine.firing());
        }
        if !self.baseline_taken {
            // Said once, on stderr: later changes are measured against this collection.
            self.baseline_taken = true;
            let ok = states.iter().filter(|s| !s.is_unreachable()).count();
            eprintln!(
                "rampart: watching {} host(s) ({ok} collected); baseline taken",
                states.len()
            );
        }
        self.start_captures(&states, now);
        self.report_sinks();
        Ok(())
    }

    fn start_captures(&mut self, states: &[HostState], now: i64) {
        let Some(glob) = &self.opts.capture else {
            return;
        };
        self.captures.retain(|_, t| !t.is_finished());
        for s in states {
            let h = &s.host;
            if s.is_unreachable()
                || self.captures.contains_key(h)
                || self.local_host.as_deref() == Some(h.as_str())
                || !crate::posture::waivers::glob_match(glob, h)
                || self.capture_retry.get(h).is_some_and(|t| now < *t)
            {
                continue;
            }
            let task = capture::spawn_remote(self.transport.clone(), h, self.tx.clone());
            self.captures.insert(h.clone(), task);
        }
    }

    fn report_sinks(&mut self) {
        for (i, st) in self.sinks.statuses().into_iter().enumerate() {
            // Printed when a sink starts failing, when its error changes, and when it
            // recovers; not for every retry.
            let problem = st.borrow().problem();
            let key = st.borrow().last_error.clone();
            if let Some(slot) = self.sink_problems.get_mut(i)
                && *slot != key
            {
                match &problem {
                    Some(p) => eprintln!("rampart: {}", crate::sanitize::clean_line(p)),
                    None => eprintln!(
                        "rampart: alert sink {} is delivering again",
                        st.borrow().url
                    ),
                }
                *slot = key;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("0").is_err());
    }
}
