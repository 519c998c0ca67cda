//! Collectors: read-only probes run over the transport, and the pure parsers that turn
//! their output into typed state (`crate::state`).
//!
//! Each source has its own module with a pure parser (`&str -> Result<T, ParseError>`, no
//! I/O). [`probes`] holds the static allow-list of read-only probe scripts and turns the
//! framed output of one combined script into a [`crate::state::HostState`]. Parsers never
//! do I/O; collectors never build mutating commands; remote text is passed through
//! [`clean`] before it enters state.
//!
//! [`Refresher`] owns incremental refresh (the console's and `watch`'s loops): a steady
//! refresh of an unchanged host is one exec of the fingerprint and the always-fresh probes;
//! see [`probes`] for how a probe declares what makes it run again. It must never show a
//! part as fresh that the fingerprint cannot vouch for: on any doubt the probe runs.

pub mod containers;
pub mod counters;
pub mod crowdsec;
pub mod datastore;
pub mod django;
pub mod facts;
pub mod fail2ban;
pub mod https;
pub mod ids;
pub mod jails;
pub mod listeners;
pub mod nginx;
pub mod probes;
pub mod services;
pub mod sshd;
pub mod tls;
pub mod vpn;

// The firewall normalizers moved to `crate::firewall`; these keep their old paths.
pub use crate::firewall::assemble as firewall;
pub use crate::firewall::{iptables, nft, ufw};

use crate::inventory::Host;
use crate::ssh::Transport;
use crate::state::{FleetState, HostState, StateError};

/// Collects one host: one exec channel running the framed script of every probe, its
/// frames parsed into state. Never fails: an unreachable host gives a state whose parts
/// all say why.
pub async fn collect_host<M>(transport: &Transport<M>, host: &Host) -> HostState {
    collect_named(transport, &host.name).await
}

/// [`collect_host`] by the host's name in the transport.
pub async fn collect_named<M>(transport: &Transport<M>, host: &str) -> HostState {
    let script = match probes::host_script() {
        Ok(s) => s,
        Err(e) => return HostState::unreachable(host, "script", &e.to_string()),
    };
    let mut state = match transport.exec(host, &script).await {
        Ok(out) => {
            let frames = script.parse_frames(&out.stdout, &out.stderr);
            let mut st = probes::state_from_frames(host, &frames);
            if out.truncated {
                st.errors.push(StateError {
                    stage: "exec".into(),
                    message: "output went over the transport's cap and was cut; raise \
                              [transport] output_cap"
                        .into(),
                });
            }
            st
        }
        Err(e) => HostState::unreachable(host, &e.stage().to_string(), &e.to_string()),
    };
    state.collected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    state
}

/// Hosts collected at once. The transport already bounds handshakes per sshd and channels
/// per connection; this bounds the work in flight so each command's timeout measures one
/// host's work rather than a queue of hundreds (at 200 lab hosts on 2 cores, starting every
/// collection at once made them all time out), and memory follows this number, not the
/// fleet's size.
pub const MAX_IN_FLIGHT: usize = 64;

/// Collects every named host concurrently, at most [`MAX_IN_FLIGHT`] at once, in the order
/// given.
pub async fn collect_fleet<M>(transport: &Transport<M>, hosts: &[String]) -> FleetState {
    use futures::StreamExt as _;
    // Made up front (a lazy map would make the returned future's Send bound depend on a
    // higher-ranked closure, which callers spawning it cannot satisfy); run as buffered.
    let futs: Vec<_> = hosts.iter().map(|h| collect_named(transport, h)).collect();
    FleetState {
        hosts: futures::stream::iter(futs)
            .buffered(MAX_IN_FLIGHT)
            .collect()
            .await,
    }
}

/// A full collection runs at the latest this long after the last one, whatever the
/// fingerprints say ([`Refresher`]).
pub const FULL_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// What one [`Refresher`] collection of a host did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// A full collection (first time, after a failure, or [`FULL_EVERY`] elapsed).
    pub full: bool,
    /// Exec channels opened on the host (1, or 2 when a watched probe had to run again).
    pub execs: usize,
    /// The watched probes that ran again in an incremental refresh.
    pub reran: Vec<&'static str>,
}

/// What a refresh remembers of a host: every probe's last complete frame, the fingerprint
/// tokens it was taken under, and when each watched probe and the last full collection ran.
#[derive(Debug, Clone)]
struct HostCache {
    frames: Vec<crate::ssh::Frame>,
    tokens: Vec<(&'static str, u64)>,
    ran_at: Vec<(&'static str, std::time::Instant)>,
    full_at: std::time::Instant,
}

/// Incremental refresh. The first collection of a host is full (the [`probes::FINGERPRINT`]
/// probe and every probe, one exec). After that, one exec runs the fingerprint (which reads
/// the listening sockets) and every probe not in [`probes::WATCHES`] (counters, rulesets, VPN
/// handshakes: always fresh), or whose watch does not hold ([`probes::Watch::holds`]);
/// a watched probe runs again, in a second exec, only when its token changed, it expired, its
/// last frame was incomplete, or the fingerprint could not be read. Every other part comes
/// from the host's last frames, which the fingerprint says still describe it, so the state is
/// the one a full collection would give. A full collection runs every `full_every` anyway,
/// and after any failure (the cache is dropped).
///
/// Shared by reference between concurrent collections (a mutex around the per-host caches,
/// never held across an await).
#[derive(Debug)]
pub struct Refresher {
    hosts: std::sync::Mutex<std::collections::HashMap<String, HostCache>>,
    full_every: std::time::Duration,
}

impl Default for Refresher {
    fn default() -> Self {
        Refresher::new(FULL_EVERY)
    }
}

impl Refresher {
    pub fn new(full_every: std::time::Duration) -> Refresher {
        Refresher {
            hosts: std::sync::Mutex::new(std::collections::HashMap::new()),
            full_every,
        }
    }

    fn take(&self, host: &str) -> Option<HostCache> {
        self.hosts.lock().ok().and_then(|mut m| m.remove(host))
    }

    fn put(&self, host: &str, c: HostCache) {
        if let Ok(mut m) = self.hosts.lock() {
            m.insert(host.to_string(), c);
        }
    }

    /// Forgets a host: its next collection is full.
    pub fn forget(&self, host: &str) {
        drop(self.take(host));
    }

    /// Forgets every host: the next collection of each is full.
    pub fn clear(&self) {
        if let Ok(mut m) = self.hosts.lock() {
            m.clear();
        }
    }

    /// Collects one host incrementally; see [`Refresher`].
    pub async fn collect_host<M>(&self, transport: &Transport<M>, host: &Host) -> HostState {
        self.collect_named(transport, &host.name).await.0
    }

    /// [`Refresher::collect_host`] by name, with what it did.
    pub async fn collect_named<M>(
        &self,
        transport: &Transport<M>,
        host: &str,
    ) -> (HostState, RefreshReport) {
        let now = std::time::Instant::now();
        let cache = self
            .take(host)
            .filter(|c| now.duration_since(c.full_at) < self.full_every);
        let (state, cache, report) = match cache {
            Some(c) => incremental(transport, host, c, now).await,
            None => full(transport, host, now).await,
        };
        if let Some(c) = cache {
            self.put(host, c);
        }
        (stamp(state), report)
    }
}

fn stamp(mut state: HostState) -> HostState {
    state.collected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    state
}

/// Runs probes in one exec: their frames, or the host's state saying why not.
async fn run<M>(
    transport: &Transport<M>,
    host: &str,
    probes: &[&crate::ssh::ReadCommand],
) -> Result<Vec<crate::ssh::Frame>, HostState> {
    let script = crate::ssh::ReadCommand::framed("collect", probes)
        .map_err(|e| HostState::unreachable(host, "script", &e.to_string()))?;
    match transport.exec(host, &script).await {
        Ok(out) if out.truncated => {
            let frames = script.parse_frames(&out.stdout, &out.stderr);
            let mut st = probes::state_from_frames(host, &frames);
            st.errors.push(StateError {
                stage: "exec".into(),
                message: "output went over the transport's cap and was cut; raise \
                          [transport] output_cap"
                    .into(),
            });
            Err(st)
        }
        Ok(out) => Ok(script.parse_frames(&out.stdout, &out.stderr)),
        Err(e) => Err(HostState::unreachable(
            host,
            &e.stage().to_string(),
            &e.to_string(),
        )),
    }
}

fn tokens_of(frames: &[crate::ssh::Frame]) -> Option<Vec<(&'static str, u64)>> {
    frames
        .iter()
        .find(|f| f.name == probes::FINGERPRINT.name() && f.exit_status == Some(0))
        .and_then(|f| probes::fingerprint_tokens(&String::from_utf8_lossy(&f.stdout)))
}

async fn full<M>(
    transport: &Transport<M>,
    host: &str,
    now: std::time::Instant,
) -> (HostState, Option<HostCache>, RefreshReport) {
    let report = RefreshReport {
        full: true,
        execs: 1,
        reran: Vec::new(),
    };
    let mut all: Vec<&crate::ssh::ReadCommand> = vec![&probes::FINGERPRINT];
    all.extend(probes::PROBES.iter());
    let frames = match run(transport, host, &all).await {
        Ok(f) => f,
        Err(st) => return (st, None, report),
    };
    let state = probes::state_from_frames(host, &frames);
    // Without a readable fingerprint every watched probe reruns next time (empty tokens
    // never match), which is a full collection's cost but never a stale answer.
    let cache = HostCache {
        tokens: tokens_of(&frames).unwrap_or_default(),
        ran_at: probes::WATCHES.iter().map(|w| (w.probe, now)).collect(),
        frames: frames
            .into_iter()
            .filter(|f| f.name != probes::FINGERPRINT.name())
            .collect(),
        full_at: now,
    };
    (state, Some(cache), report)
}

async fn incremental<M>(
    transport: &Transport<M>,
    host: &str,
    mut cache: HostCache,
    now: std::time::Instant,
) -> (HostState, Option<HostCache>, RefreshReport) {
    // A watch with `only_while` holds only while the host's last frame says so.
    let watches: Vec<&probes::Watch> = probes::WATCHES
        .iter()
        .filter(|w| w.holds(&cache.frames))
        .collect();
    let watched = |name: &str| watches.iter().any(|w| w.probe == name);
    let mut first: Vec<&crate::ssh::ReadCommand> = vec![&probes::FINGERPRINT];
    first.extend(probes::PROBES.iter().filter(|p| !watched(p.name())));
    let mut report = RefreshReport {
        full: false,
        execs: 1,
        reran: Vec::new(),
    };
    let fresh = match run(transport, host, &first).await {
        Ok(f) => f,
        Err(st) => return (st, None, report),
    };
    let tokens = tokens_of(&fresh);
    let stale: Vec<&'static str> = watches
        .iter()
        .filter(|w| {
            let token = |t: &[(&str, u64)]| t.iter().find(|(n, _)| *n == w.probe).map(|x| x.1);
            let changed = match &tokens {
                Some(t) => token(t).is_none() || token(t) != token(&cache.tokens),
                None => true,
            };
            let expired = cache
                .ran_at
                .iter()
                .find(|(n, _)| *n == w.probe)
                .is_none_or(|(_, at)| now.duration_since(*at).as_secs() >= w.expires);
            let incomplete = !cache
                .frames
                .iter()
                .any(|f| f.name == w.probe && f.complete());
            changed || expired || incomplete
        })
        .map(|w| w.probe)
        .collect();
    let mut rerun = Vec::new();
    if !stale.is_empty() {
        let cmds: Vec<&crate::ssh::ReadCommand> = probes::PROBES
            .iter()
            .filter(|p| stale.contains(&p.name()))
            .collect();
        if !cmds.is_empty() {
            report.execs = 2;
            rerun = match run(transport, host, &cmds).await {
                Ok(f) => f,
                Err(st) => return (st, None, report),
            };
        }
        report.reran = stale.clone();
    }
    // This round's frames replace the cached ones of the same probes.
    let mut frames: Vec<crate::ssh::Frame> = fresh
        .into_iter()
        .chain(rerun)
        .filter(|f| f.name != probes::FINGERPRINT.name())
        .collect();
    for f in std::mem::take(&mut cache.frames) {
        if !frames.iter().any(|g| g.name == f.name) {
            frames.push(f);
        }
    }
    let state = probes::state_from_frames(host, &frames);
    for name in &stale {
        match cache.ran_at.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = now,
            None => cache.ran_at.push((name, now)),
        }
    }
    cache.tokens = tokens.unwrap_or_default();
    cache.frames = frames;
    (state, Some(cache), report)
}

/// A parser could not understand a probe's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: line {line}: {message}")]
pub struct ParseError {
    /// The output being parsed: "iptables-save", "ss -tulpn", ...
    pub what: &'static str,
    /// 1-based line of the output (0 when the whole text is at fault).
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(what: &'static str, line: usize, message: impl Into<String>) -> Self {
        ParseError {
            what,
            line,
            message: message.into(),
        }
    }
}

/// Remote text entering state: control characters and bidi overrides made visible.
pub fn clean(s: &str) -> String {
    crate::sanitize::clean(s).into_owned()
}

/// The most text any parser accepts; probes cap their own output well below this, so more
/// means something is wrong and parsing it would only cost memory.
pub const MAX_INPUT: usize = 16 * 1024 * 1024;

pub(crate) fn check_size(what: &'static str, text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_INPUT {
        return Err(ParseError::new(
            what,
            0,
            format!(
                "output is {} bytes, more than the {MAX_INPUT} accepted",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Well-known service names as nft, ufw and /etc/services print them.
pub(crate) fn service_port(name: &str) -> Option<u16> {
    Some(match name {
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "tftp" => 69,
        "http" | "www" => 80,
        "kerberos" => 88,
        "pop3" => 110,
        "sunrpc" => 111,
        "ntp" => 123,
        "netbios-ns" => 137,
        "netbios-dgm" => 138,
        "netbios-ssn" => 139,
        "imap2" | "imap" => 143,
        "snmp" => 161,
        "ldap" => 389,
        "https" => 443,
        "microsoft-ds" => 445,
        "submissions" => 465,
        "syslog" => 514,
        "submission" => 587,
        "ldaps" => 636,
        "rsync" => 873,
        "imaps" => 993,
        "pop3s" => 995,
        "openvpn" => 1194,
        "ms-sql-s" => 1433,
        "nfs" => 2049,
        "mysql" => 3306,
        "rdp" | "ms-wbt-server" => 3389,
        "postgresql" => 5432,
        "amqp" => 5672,
        "x11" => 6000,
        "redis" => 6379,
        "http-alt" | "webcache" => 8080,
        "zabbix-agent" => 10050,
        "zabbix-trapper" => 10051,
        "nrpe" => 5666,
        "mongodb" => 27017,
        "wireguard" => 51820,
        _ => return None,
    })
}

/// Splits a rule line into words the way a shell would: whitespace separates, single and
/// double quotes group, backslash escapes inside double quotes and outside quotes.
pub(crate) fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("backslash at end of line".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("backslash at end of line".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_handles_both_quotes() {
        let w = shell_words(
            r#"-A x -j LOG --log-prefix "[UFW BLOCK] " -m comment --comment 'dapp_Nginx%20Full'"#,
        )
        .unwrap();
        assert_eq!(w[5], "[UFW BLOCK] ");
        assert_eq!(w[9], "dapp_Nginx%20Full");
        assert!(shell_words("a \"b").is_err());
        assert_eq!(shell_words("a \"\" b").unwrap(), vec!["a", "", "b"]);
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = "x".repeat(MAX_INPUT + 1);
        assert!(check_size("t", &big).is_err());
        assert!(check_size("t", "small").is_ok());
    }
}
