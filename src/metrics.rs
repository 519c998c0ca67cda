//! Prometheus metrics for `rampart watch --metrics ADDR` and `rampart console --metrics ADDR`.
//!
//! Owns: the figures of the latest collection (per-host score and reachability, findings by
//! host, check and severity, collection durations, alerts firing), their rendering in the
//! Prometheus text exposition format (version 0.0.4, with `# HELP` and `# TYPE`), and a tiny
//! HTTP/1.1 server that answers `GET /metrics` on the given address.
//!
//! The collectors (watch, the console's gatherer) call [`Metrics::record_round`] and
//! [`Metrics::record_alerts`]; a scrape only reads the last snapshot, so a slow scraper never
//! delays a collection and a collection never blocks a scrape for longer than a copy.
//!
//! Must not: open connections to hosts, or serve anything but `/metrics` (and a one-line `/`).
//! Label values come from the validated inventory and the check catalogue, and are escaped all
//! the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::alerts::Alert;
use crate::posture::Finding;
use crate::state::HostState;

/// The metrics server could not start.
#[derive(Debug, thiserror::Error)]
#[error("--metrics {addr}: cannot listen: {source}")]
pub struct MetricsError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// One host's figures from the latest round.
#[derive(Debug, Clone, Default, PartialEq)]
struct HostFigures {
    up: bool,
    /// `None` until the host has been collected once.
    score: Option<u32>,
    collection_secs: f64,
}

/// What a scrape shows: plain data, rendered by [`render`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    hosts: BTreeMap<String, HostFigures>,
    /// `(host, check, severity)` → un-waived findings.
    findings: BTreeMap<(String, String, &'static str), u64>,
    /// `(host, check, severity)` → waived findings.
    waived: BTreeMap<(String, String, &'static str), u64>,
    fleet_score: Option<u32>,
    /// `(alertname, host, severity)` → firing alerts.
    alerts: BTreeMap<(String, String, &'static str), u64>,
    rounds: u64,
    round_secs: f64,
    last_round_unix: i64,
}

/// The shared figures; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Snapshot>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the data is still plain.
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A copy of the current figures.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }

    /// Records one collection round: the states of this round with how long each host took,
    /// the findings evaluated on the fleet, and the round's wall time.
    pub fn record_round(
        &self,
        states: &[(HostState, Duration)],
        findings: &[Finding],
        round: Duration,
        now: i64,
    ) {
        self.with(|s| {
            for (st, took) in states {
                let h = s.hosts.entry(st.host.clone()).or_default();
                h.up = !st.is_unreachable();
                h.collection_secs = took.as_secs_f64();
            }
            s.findings.clear();
            s.waived.clear();
            for f in findings {
                let key = (f.host.clone(), f.check.clone(), f.severity.as_str());
                let map = if f.is_waived() {
                    &mut s.waived
                } else {
                    &mut s.findings
                };
                *map.entry(key).or_default() += 1;
            }
            let mut scores = Vec::new();
            let names: Vec<String> = s.hosts.keys().cloned().collect();
            for name in names {
                let score = crate::posture::score::host_score(&name, findings).score;
                if let Some(h) = s.hosts.get_mut(&name) {
                    // An unreachable host keeps no score of its own: its last findings may be
                    // stale, and a scraper should see "unknown", not a good number.
                    h.score = if h.up { Some(score) } else { None };
                    if h.up {
                        scores.push(score);
                    }
                }
            }
            s.fleet_score = Some(crate::posture::score::fleet_score(&scores, findings).score);
            s.rounds += 1;
            s.round_secs = round.as_secs_f64();
            s.last_round_unix = now;
        });
    }

    /// Records the alerts firing now (the engine's whole firing set, not a change).
    pub fn record_alerts<'a>(&self, firing: impl Iterator<Item = &'a Alert>) {
        let mut m: BTreeMap<(String, String, &'static str), u64> = BTreeMap::new();
        for a in firing {
            *m.entry((a.alert.clone(), a.host.clone(), a.severity.as_str()))
                .or_default() += 1;
        }
        self.with(|s| s.alerts = m);
    }
}

/// Runs `fut` and returns its output with how long it took.
pub async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = std::time::Instant::now();
    let out = fut.await;
    (out, t.elapsed())
}

/// Escapes a label value: backslash, double quote and newline, as the text format requires.
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the figures in the Prometheus text format. Pure.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    header(
        &mut o,
        "rampart_build_info",
        "gauge",
        "rampart's version and commit; always 1.",
    );
    let _ = writeln!(
        o,
        "rampart_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        label(env!("RAMPART_COMMIT"))
    );
    header(
        &mut o,
        "rampart_host_up",
        "gauge",
        "1 when the host was reached and collected in the latest round, 0 when not.",
    );
    for (h, f) in &s.hosts {
        let _ = writeln!(
            o,
            "rampart_host_up{{host=\"{}\"}} {}",
            label(h),
            u8::from(f.up)
        );
    }
    header(
        &mut o,
        "rampart_host_score",
        "gauge",
        "Posture score of a reachable host, 0 to 100 (absent while it is unreachable).",
    );
    for (h, f) in &s.hosts {
        if let Some(score) = f.score {
            let _ = writeln!(o, "rampart_host_score{{host=\"{}\"}} {score}", label(h));
        }
    }
    header(
        &mut o,
        "rampart_fleet_score",
        "gauge",
        "Posture score of the fleet, 0 to 100.",
    );
    if let Some(score) = s.fleet_score {
        let _ = writeln!(o, "rampart_fleet_score {score}");
    }
    for (name, help, map) in [
        (
            "rampart_findings",
            "Open (un-waived) findings by host, check and severity.",
            &s.findings,
        ),
        (
            "rampart_findings_waived",
            "Findings a waiver covers, by host, check and severity.",
            &s.waived,
        ),
    ] {
        header(&mut o, name, "gauge", help);
        for ((host, check, sev), n) in map {
            let _ = writeln!(
                o,
                "{name}{{host=\"{}\",check=\"{}\",severity=\"{sev}\"}} {n}",
                label(host),
                label(check)
            );
        }
    }
    header(
        &mut o,
        "rampart_host_collection_duration_seconds",
        "gauge",
        "How long the latest collection of the host took (connecting included).",
    );
    for (h, f) in &s.hosts {
        let _ = writeln!(
            o,
            "rampart_host_collection_duration_seconds{{host=\"{}\"}} {}",
            label(h),
            f.collection_secs
        );
    }
    header(
        &mut o,
        "rampart_collection_duration_seconds",
        "gauge",
        "How long the latest collection round of the whole fleet took.",
    );
    header(
        &mut o,
        "rampart_last_collection_timestamp_seconds",
        "gauge",
        "Unix time the latest collection round finished (0: none yet).",
    );
    header(
        &mut o,
        "rampart_collections_total",
        "counter",
        "Collection rounds finished since rampart started.",
    );
    if s.rounds > 0 {
        let _ = writeln!(o, "rampart_collection_duration_seconds {}", s.round_secs);
    }
    let _ = writeln!(
        o,
        "rampart_last_collection_timestamp_seconds {}",
        s.last_round_unix
    );
    let _ = writeln!(o, "rampart_collections_total {}", s.rounds);
    header(
        &mut o,
        "rampart_alerts_firing",
        "gauge",
        "Alerts firing now by alert name, host and severity.",
    );
    for ((alert, host, sev), n) in &s.alerts {
        let _ = writeln!(
            o,
            "rampart_alerts_firing{{alertname=\"{}\",host=\"{}\",severity=\"{sev}\"}} {n}",
            label(alert),
            label(host)
        );
    }
    o
}

/// The largest request head read; anything longer is answered 431 and closed.
const MAX_REQUEST: usize = 8 * 1024;

/// Connections answered at once.
const MAX_CONNECTIONS: usize = 16;

/// Binds `addr` and serves `/metrics` in a background task until the runtime stops. Binding
/// happens here, so an address in use is an error now rather than a silent task failure.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| MetricsError { addr, source })?;
    // A scraper needs one connection; a flood of them gets closed rather than queued.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                // Out of file descriptors and the like: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                drop(sock);
                continue;
            };
            let m = metrics.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(sock, m)).await;
                drop(permit);
            });
        }
    });
    Ok((local, task))
}

/// The response to one request head: status line and body.
pub fn respond(head: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let first = head.lines().next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&metrics.snapshot()),
        ),
        ("GET" | "HEAD", "/") => ("200 OK", TEXT, "rampart metrics: see /metrics\n".into()),
        ("GET" | "HEAD", _) => ("404 Not Found", TEXT, "not found; see /metrics\n".into()),
        _ => ("405 Method Not Allowed", TEXT, "only GET\n".into()),
    }
}

async fn answer(mut sock: tokio::net::TcpStream, metrics: Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST {
            sock.write_all(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            )
            .await?;
            // Read (a bounded amount of) what the client still sends, so that closing does
            // not reset the connection before it has read the answer.
            sock.shutdown().await?;
            let mut drained = 0usize;
            while drained < 64 * 1024 {
                match tokio::time::timeout(Duration::from_secs(1), sock.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => drained += n,
                    _ => break,
                }
            }
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let (status, ctype, body) = respond(&head, &metrics);
    let is_head = head.starts_with("HEAD ");
    let mut resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    if !is_head {
        resp.push_str(&body);
    }
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn state(host: &str, up: bool) -> HostState {
        let mut s = HostState::unreachable(host, "connect", "refused");
        if up {
            // Parts not collected but no connection error: reached.
            s.errors.clear();
        }
        s
    }

    #[test]
    fn renders_each_family_with_help_and_type() {
        let m = Metrics::new();
        let findings = vec![
            Finding::new("FW-EXPOSED-PORT", "web1", "5432/tcp open"),
            Finding::new("FW-EXPOSED-PORT", "web1", "6379/tcp open"),
            Finding::new("SSH-PASSWORD-AUTH", "db1", "passwords"),
        ];
        m.record_round(
            &[
                (state("web1", true), Duration::from_millis(250)),
                (state("db1", true), Duration::from_millis(300)),
                (state("app1", false), Duration::from_secs(5)),
            ],
            &findings,
            Duration::from_secs(5),
            1_700_000_000,
        );
        let text = render(&m.snapshot());
        assert!(
            text.contains("rampart_host_up{host=\"web1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("rampart_host_up{host=\"app1\"} 0\n"));
        assert!(
            text.contains(
                "rampart_findings{host=\"web1\",check=\"FW-EXPOSED-PORT\",severity=\"high\"} 2\n"
            ),
            "{text}"
        );
        // 100 - 2 x 15 (high)
        assert!(
            text.contains("rampart_host_score{host=\"web1\"} 70\n"),
            "{text}"
        );
        assert!(!text.contains("rampart_host_score{host=\"app1\"}"));
        assert!(text.contains("rampart_host_collection_duration_seconds{host=\"db1\"} 0.3\n"));
        assert!(text.contains("rampart_collections_total 1\n"));
        assert!(text.contains("rampart_last_collection_timestamp_seconds 1700000000\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(name.starts_with("rampart_"), "{line}");
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no TYPE for {name}"
            );
        }
    }

    #[test]
    fn a_second_round_replaces_resolved_findings() {
        let m = Metrics::new();
        let f = vec![Finding::new("FW-NONE", "web1", "no firewall")];
        let st = [(state("web1", true), Duration::from_secs(1))];
        m.record_round(&st, &f, Duration::from_secs(1), 1);
        m.record_round(&st, &[], Duration::from_secs(1), 2);
        let text = render(&m.snapshot());
        assert!(!text.contains("FW-NONE"), "{text}");
        assert!(text.contains("rampart_host_score{host=\"web1\"} 100\n"));
        assert!(text.contains("rampart_collections_total 2\n"));
    }

    #[tokio::test]
    async fn serves_metrics_over_http_and_refuses_huge_requests() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let m = Metrics::new();
        m.record_round(
            &[(state("web1", true), Duration::from_millis(10))],
            &[],
            Duration::from_millis(10),
            5,
        );
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("content-type: text/plain; version=0.0.4"));
        assert!(resp.contains("rampart_host_up{host=\"web1\"} 1\n"));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(&vec![b'A'; MAX_REQUEST + 2048]).await.unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
        // The address in use is an error naming it, not a silent failure.
        let e = serve(addr, Metrics::new()).await.unwrap_err();
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        task.abort();
    }

    #[test]
    fn alerts_firing_follow_the_engine() {
        use crate::alerts::{AlertEngine, Reachability, Thresholds};
        let mut engine = AlertEngine::new(Thresholds::default());
        let m = Metrics::new();
        let down = Reachability::Unreachable {
            reason: "connect: refused".into(),
        };
        let fired = engine.observe_reachability("db1", &down, 100);
        assert!(!fired.is_empty());
        m.record_alerts(engine.firing());
        let text = render(&m.snapshot());
        let line = text
            .lines()
            .find(|l| l.starts_with("rampart_alerts_firing{"))
            .unwrap_or_else(|| panic!("no alert series:\n{text}"));
        assert!(line.contains("host=\"db1\""), "{line}");
        assert!(line.ends_with(" 1"), "{line}");
        engine.observe_reachability("db1", &Reachability::Reachable, 200);
        m.record_alerts(engine.firing());
        assert!(
            !render(&m.snapshot()).contains("rampart_alerts_firing{"),
            "resolved alerts are gone"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn only_get_metrics_is_served() {
        let m = Metrics::new();
        assert_eq!(respond("GET /metrics HTTP/1.1\r\n", &m).0, "200 OK");
        assert_eq!(respond("GET /metrics?x=1 HTTP/1.1\r\n", &m).0, "200 OK");
        assert_eq!(
            respond("GET /etc/passwd HTTP/1.1\r\n", &m).0,
            "404 Not Found"
        );
        assert_eq!(
            respond("POST /metrics HTTP/1.1\r\n", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond("", &m).0, "405 Method Not Allowed");
    }
}
