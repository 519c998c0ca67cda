//! Collectors: read-only probes run over the transport, and the pure parsers that turn
//! their output into typed state (`crate::state`).
//!
//! Each source has its own module with a pure parser (`&str -> Result<T, ParseError>`, no
//! I/O). [`probes`] holds the static allow-list of read-only probe scripts and turns the
//! framed output of one combined script into a [`crate::state::HostState`]. Parsers never
//! do I/O; collectors never build mutating commands; remote text is passed through
//! [`clean`] before it enters state.

pub mod counters;
pub mod datastore;
pub mod django;
pub mod facts;
pub mod fail2ban;
pub mod firewall;
pub mod iptables;
pub mod listeners;
pub mod nft;
pub mod nginx;
pub mod probes;
pub mod services;
pub mod sshd;
pub mod tls;
pub mod ufw;
pub mod vpn;

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
