//! Alert sinks beyond the console: Prometheus Alertmanager (`POST /api/v2/alerts`) and
//! generic JSON webhooks. Each URL has its own worker task; [`Sinks::publish`] only queues
//! (never blocks, never fails), the worker posts with the bounded HTTP client off the async
//! runtime, retries with exponential backoff, and publishes its health as [`SinkStatus`] on a
//! `watch` channel (for the status bar and `rampart watch`'s stderr).
//!
//! A sink may authenticate (`[alerting.auth."URL"]` in the inventory: basic auth or a bearer
//! token from a file or an environment variable, a custom CA, a client certificate); see
//! [`super::secret`]. A failure is reported with its stage (config, connect, TLS, auth, HTTP
//! status) and never with a secret.
//!
//! Alertmanager gets every firing alert again every `resend_secs` (it forgets alerts whose
//! `endsAt` passes) and resolved ones once with `endsAt`; a webhook gets each change once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, watch};

use super::engine::{Alert, AlertEvent, AlertState, Change};

/// How long one POST may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Changes kept for a webhook that is down (the oldest are dropped beyond this).
pub const MAX_QUEUED: usize = 10_000;

/// What kind of receiver a URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Alertmanager,
    Webhook,
}

/// A sink's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStatus {
    pub url: String,
    /// Failures since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    /// Unix seconds of the last accepted POST.
    pub last_ok: Option<i64>,
    /// Resolved alerts or changes waiting to be delivered.
    pub queued: usize,
}

impl SinkStatus {
    /// One line for a status bar, `None` while healthy.
    pub fn problem(&self) -> Option<String> {
        (self.failures > 0).then(|| {
            format!(
                "alert sink {} failing ({}x): {}",
                self.url,
                self.failures,
                self.last_error.as_deref().unwrap_or("?")
            )
        })
    }
}

fn rfc3339(secs: i64) -> String {
    crate::ssh::log::rfc3339(
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0)),
    )
}

/// One alert as Alertmanager's API v2 takes it (`postableAlert`). Labels identify the alert:
/// alertname, severity, host, check, plus `rampart_id` so two alerts of one kind on one host
/// (two new ports) stay two.
pub fn alertmanager_alert(a: &Alert, resend_secs: u64) -> serde_json::Value {
    let ends = match a.state {
        AlertState::Resolved => a.resolved_at.unwrap_or(a.last_seen),
        // Expires by itself if rampart stops re-sending (three missed re-sends).
        AlertState::Firing => a.last_seen + (resend_secs.max(1) * 3) as i64 + 60,
    };
    json!({
        "labels": {
            "alertname": a.alert,
            "severity": a.severity.as_str(),
            "host": a.host,
            "check": a.check,
            "rampart_id": a.id,
        },
        "annotations": {
            "summary": crate::sanitize::clean_line(&a.summary),
            "evidence": crate::sanitize::clean(&a.evidence.join("\n")).into_owned(),
        },
        "startsAt": rfc3339(a.first_seen),
        "endsAt": rfc3339(ends),
        "generatorURL": "",
    })
}

/// One change as the webhook sends it.
pub fn webhook_event(e: &AlertEvent) -> serde_json::Value {
    let a = &e.alert;
    json!({
        "alert": a.alert,
        "id": a.id,
        "host": a.host,
        "severity": a.severity.as_str(),
        "check": a.check,
        "state": a.state.as_str(),
        "change": match e.change { Change::Fired => "fired", Change::Refreshed => "refreshed", Change::Resolved => "resolved" },
        "summary": a.summary,
        "evidence": a.evidence,
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
        "count": a.count,
        "acknowledged": a.acknowledged,
    })
}

#[derive(Debug, Default)]
struct Queue {
    /// Alertmanager: firing alerts by ID (latest version) and resolved ones to deliver.
    firing: BTreeMap<String, Alert>,
    resolved: BTreeMap<String, Alert>,
    /// Webhook: changes to deliver, oldest first.
    changes: std::collections::VecDeque<serde_json::Value>,
    /// Something new to send now (not just a periodic re-send).
    dirty: bool,
}

struct Worker {
    url: String,
    kind: SinkKind,
    client: Arc<super::http::SinkClient>,
    queue: Mutex<Queue>,
    notify: Notify,
    status: watch::Sender<SinkStatus>,
}

/// The sinks of one run. Dropping it stops the workers.
pub struct Sinks {
    workers: Vec<Arc<Worker>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field(
                "urls",
                &self.workers.iter().map(|w| &w.url).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Sinks {
    /// Starts a worker per URL (inside a tokio runtime), without authentication.
    pub fn start(alertmanagers: &[String], webhooks: &[String], resend_secs: u64) -> Sinks {
        Sinks::start_with_auth(alertmanagers, webhooks, &BTreeMap::new(), resend_secs)
    }

    /// Starts a worker per URL; `auth` holds the authentication of the URLs that need it.
    pub fn start_with_auth(
        alertmanagers: &[String],
        webhooks: &[String],
        auth: &BTreeMap<String, super::secret::SinkAuth>,
        resend_secs: u64,
    ) -> Sinks {
        let mut workers = Vec::new();
        let mut tasks = Vec::new();
        let all = alertmanagers
            .iter()
            .map(|u| (u, SinkKind::Alertmanager))
            .chain(webhooks.iter().map(|u| (u, SinkKind::Webhook)));
        for (url, kind) in all {
            let (status, _) = watch::channel(SinkStatus {
                url: url.clone(),
                ..SinkStatus::default()
            });
            let client = super::http::SinkClient::new(
                auth.get(url.as_str())
                    .unwrap_or(&super::secret::SinkAuth::default()),
                POST_TIMEOUT,
            );
            let w = Arc::new(Worker {
                url: url.clone(),
                kind,
                client: Arc::new(client),
                queue: Mutex::new(Queue::default()),
                notify: Notify::new(),
                status,
            });
            tasks.push(tokio::spawn(run_worker(Arc::clone(&w), resend_secs)));
            workers.push(w);
        }
        Sinks { workers, tasks }
    }

    /// Sinks from the inventory's `[alerting]`.
    pub fn from_inventory(inv: &crate::inventory::Inventory, resend_secs: u64) -> Sinks {
        Sinks::start_with_auth(
            &inv.alerting.alertmanager,
            &inv.alerting.webhook,
            &inv.alerting.auth,
            resend_secs,
        )
    }

    /// Queues changes for every sink. Never blocks. Silenced alerts are not sent (a resolve
    /// still is, so the receiver does not keep a stale alert).
    pub fn publish(&self, events: &[AlertEvent], now: i64) {
        if events.is_empty() {
            return;
        }
        for w in &self.workers {
            let mut q = w.queue.lock().unwrap_or_else(|e| e.into_inner());
            for e in events {
                let a = &e.alert;
                match w.kind {
                    SinkKind::Alertmanager => match e.change {
                        Change::Resolved => {
                            q.firing.remove(&a.id);
                            q.resolved.insert(a.id.clone(), a.clone());
                            q.dirty = true;
                        }
                        Change::Fired | Change::Refreshed => {
                            if a.is_silenced(now) {
                                q.firing.remove(&a.id);
                            } else {
                                q.dirty |=
                                    e.change == Change::Fired || !q.firing.contains_key(&a.id);
                                q.firing.insert(a.id.clone(), a.clone());
                            }
                        }
                    },
                    SinkKind::Webhook => {
                        if e.change == Change::Refreshed
                            || (a.is_silenced(now) && e.change != Change::Resolved)
                        {
                            continue;
                        }
                        if q.changes.len() >= MAX_QUEUED {
                            q.changes.pop_front();
                        }
                        q.changes.push_back(webhook_event(e));
                        q.dirty = true;
                    }
                }
            }
            drop(q);
            w.notify.notify_one();
        }
    }

    /// Follows each sink's health.
    pub fn statuses(&self) -> Vec<watch::Receiver<SinkStatus>> {
        self.workers.iter().map(|w| w.status.subscribe()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Waits (at most `timeout`) until nothing new is left to deliver; true when all is sent.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self.workers.iter().any(|w| {
                let q = w.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.dirty
                    || !q.resolved.is_empty()
                    || !q.changes.is_empty()
                    || w.status.borrow().failures > 0
            });
            if !pending {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn now_secs() -> i64 {
    crate::audit::now_secs()
}

async fn run_worker(w: Arc<Worker>, resend_secs: u64) {
    let resend = Duration::from_secs(resend_secs.max(1));
    let mut attempt: u32 = 0;
    let mut last_sent = tokio::time::Instant::now();
    loop {
        // Wait for something new, the re-send period, or the retry delay.
        let wait = if attempt > 0 {
            crate::ssh::transport::backoff(Duration::from_secs(1), MAX_BACKOFF, attempt)
        } else {
            resend.saturating_sub(last_sent.elapsed())
        };
        let dirty = {
            let q = w.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.dirty
        };
        if attempt > 0 {
            // Back off whatever arrives meanwhile (it is merged into the queue).
            tokio::time::sleep(wait).await;
        } else if !dirty {
            let _ = tokio::time::timeout(wait, w.notify.notified()).await;
        }
        let (body, resolved_ids, n_changes) = {
            let mut q = w.queue.lock().unwrap_or_else(|e| e.into_inner());
            let periodic = last_sent.elapsed() >= resend;
            if !q.dirty && !periodic && attempt == 0 {
                continue;
            }
            q.dirty = false;
            match w.kind {
                SinkKind::Alertmanager => {
                    let alerts: Vec<serde_json::Value> = q
                        .firing
                        .values()
                        .chain(q.resolved.values())
                        .map(|a| alertmanager_alert(a, resend_secs))
                        .collect();
                    let ids: Vec<String> = q.resolved.keys().cloned().collect();
                    (serde_json::Value::Array(alerts), ids, 0)
                }
                SinkKind::Webhook => {
                    let batch: Vec<serde_json::Value> =
                        q.changes.iter().take(500).cloned().collect();
                    let n = batch.len();
                    (json!({"source": "rampart", "alerts": batch}), Vec::new(), n)
                }
            }
        };
        let empty = match &body {
            serde_json::Value::Array(a) => a.is_empty(),
            other => other["alerts"].as_array().is_none_or(|a| a.is_empty()),
        };
        if empty {
            last_sent = tokio::time::Instant::now();
            attempt = 0;
            continue;
        }
        let url = match w.kind {
            SinkKind::Alertmanager => format!("{}/api/v2/alerts", w.url.trim_end_matches('/')),
            SinkKind::Webhook => w.url.clone(),
        };
        let client = Arc::clone(&w.client);
        let posted = tokio::task::spawn_blocking(move || client.post_json(&url, &body)).await;
        let result = match posted {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.detail()),
            Err(e) => Err(e.to_string()),
        };
        let queued;
        {
            let mut q = w.queue.lock().unwrap_or_else(|e| e.into_inner());
            if result.is_ok() {
                for id in &resolved_ids {
                    q.resolved.remove(id);
                }
                let n = n_changes.min(q.changes.len());
                q.changes.drain(..n);
                if !q.changes.is_empty() {
                    q.dirty = true;
                }
            } else {
                q.dirty = true;
            }
            queued = q.resolved.len() + q.changes.len();
        }
        match result {
            Ok(()) => {
                attempt = 0;
                last_sent = tokio::time::Instant::now();
                w.status.send_modify(|s| {
                    s.failures = 0;
                    s.last_error = None;
                    s.last_ok = Some(now_secs());
                    s.queued = queued;
                });
            }
            Err(msg) => {
                attempt = attempt.saturating_add(1);
                tracing::warn!("alert sink {}: {msg}", w.url);
                w.status.send_modify(|s| {
                    s.failures = s.failures.saturating_add(1);
                    s.last_error = Some(msg.clone());
                    s.queued = queued;
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::alerts::detect::Reachability;
    use crate::alerts::engine::AlertEngine;
    use crate::alerts::thresholds::Thresholds;

    fn events() -> Vec<AlertEvent> {
        let mut e = AlertEngine::new(Thresholds::default());
        e.observe_reachability(
            "db1",
            &Reachability::Unreachable {
                reason: "connect: timed out".into(),
            },
            1_700_000_000,
        )
    }

    #[test]
    fn alertmanager_payload_has_the_labels_and_times() {
        let ev = events();
        let v = alertmanager_alert(&ev[0].alert, 60);
        assert_eq!(v["labels"]["alertname"], "HOST-UNREACHABLE");
        assert_eq!(v["labels"]["severity"], "high");
        assert_eq!(v["labels"]["host"], "db1");
        assert_eq!(v["labels"]["check"], "transport");
        assert_eq!(v["annotations"]["evidence"], "connect: timed out");
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20.000Z");
        let mut resolved = ev[0].alert.clone();
        resolved.state = AlertState::Resolved;
        resolved.resolved_at = Some(1_700_000_100);
        assert_eq!(
            alertmanager_alert(&resolved, 60)["endsAt"],
            "2023-11-14T22:15:00.000Z"
        );
    }

    /// A loopback HTTP server that fails the first `fail` requests with 503, then accepts;
    /// returns the bodies it accepted.
    fn server(fail: usize, want: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut n = 0;
            while got.len() < want {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = vec![0u8; 65536];
                let mut len = 0;
                // Read headers and the body (content-length).
                loop {
                    let k = s.read(&mut buf[len..]).unwrap();
                    len += k;
                    let text = String::from_utf8_lossy(&buf[..len]).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let cl: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if len >= i + 4 + cl || k == 0 {
                            break;
                        }
                    }
                    if k == 0 {
                        break;
                    }
                }
                n += 1;
                let text = String::from_utf8_lossy(&buf[..len]).to_string();
                let status = if n <= fail { 503 } else { 200 };
                if status == 200 {
                    got.push(text.split("\r\n\r\n").nth(1).unwrap_or("").to_string());
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            got
        });
        (url, h)
    }

    #[tokio::test]
    async fn webhook_retries_with_backoff_and_reports_failures() {
        let (url, h) = server(1, 1);
        let sinks = Sinks::start(&[], std::slice::from_ref(&url), 60);
        let mut st = sinks.statuses().remove(0);
        sinks.publish(&events(), 1_700_000_000);
        // The first POST fails: the status says so.
        tokio::time::timeout(Duration::from_secs(10), st.wait_for(|s| s.failures == 1))
            .await
            .unwrap()
            .unwrap();
        assert!(st.borrow().problem().unwrap().contains("HTTP 503"));
        // Then the retry is delivered.
        tokio::time::timeout(
            Duration::from_secs(10),
            st.wait_for(|s| s.last_ok.is_some()),
        )
        .await
        .unwrap()
        .unwrap();
        let bodies = h.join().unwrap();
        let v: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(v["alerts"][0]["alert"], "HOST-UNREACHABLE");
        assert_eq!(v["alerts"][0]["state"], "firing");
        assert!(sinks.flush(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn a_dead_sink_never_blocks_publish() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let sinks = Sinks::start(std::slice::from_ref(&url), &[], 60);
        // publish only queues: a thousand calls against a dead URL return at once.
        for _ in 0..1000 {
            sinks.publish(&events(), 1_700_000_000);
        }
        let mut st = sinks.statuses().remove(0);
        tokio::time::timeout(Duration::from_secs(10), st.wait_for(|s| s.failures >= 1))
            .await
            .unwrap()
            .unwrap();
        assert!(!sinks.flush(Duration::from_millis(100)).await);
    }
}
