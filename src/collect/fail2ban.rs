//! fail2ban: `fail2ban-client status`, then `fail2ban-client status JAIL` for each jail.
//! Pure: no I/O.

use std::net::IpAddr;

use super::{ParseError, check_size, clean};
use crate::state::{Fail2ban, Jail};

const WHAT: &str = "fail2ban-client status";

/// What `fail2ban-client status` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overview {
    /// The server answered with its jail list.
    Running { jails: Vec<String> },
    /// The client could not reach the server (not running).
    NotRunning,
    /// The socket exists but only root may use it.
    PermissionDenied(String),
}

/// The value after the last `:` of a tree line like "|  |- Total failed:\t3".
fn value_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)?;
    line[at + key.len()..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
}

/// Parses the overview.
pub fn parse_overview(text: &str) -> Result<Overview, ParseError> {
    check_size(WHAT, text)?;
    if text.contains("Permission denied to socket") || text.contains("you must be root") {
        let line = text
            .lines()
            .find(|l| l.contains("ermission denied"))
            .unwrap_or_default();
        return Ok(Overview::PermissionDenied(clean(line.trim())));
    }
    if text.contains("Failed to access socket path") || text.contains("Is fail2ban running?") {
        return Ok(Overview::NotRunning);
    }
    for line in text.lines() {
        if let Some(v) = value_after(line, "Jail list") {
            let jails = v
                .split(',')
                .map(str::trim)
                .filter(|j| !j.is_empty())
                .map(clean)
                .collect();
            return Ok(Overview::Running { jails });
        }
    }
    Err(ParseError::new(
        WHAT,
        0,
        "no \"Jail list\" line and no known error",
    ))
}

fn num(line: &str, key: &str, n: usize) -> Result<Option<u64>, ParseError> {
    match value_after(line, key) {
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ParseError::new(WHAT, n, format!("{key} is not a number"))),
        None => Ok(None),
    }
}

/// Parses `fail2ban-client status JAIL`.
pub fn parse_jail(name: &str, text: &str) -> Result<Jail, ParseError> {
    check_size(WHAT, text)?;
    let mut jail = Jail {
        name: clean(name),
        ..Jail::default()
    };
    let mut saw = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(v) = num(line, "Currently failed", n)? {
            jail.currently_failed = v;
            saw = true;
        } else if let Some(v) = num(line, "Total failed", n)? {
            jail.total_failed = v;
        } else if let Some(v) = num(line, "Currently banned", n)? {
            jail.currently_banned = v;
        } else if let Some(v) = num(line, "Total banned", n)? {
            jail.total_banned = v;
        } else if let Some(v) = value_after(line, "File list") {
            jail.files = v.split_whitespace().map(clean).collect();
        } else if let Some(v) = value_after(line, "Journal matches") {
            jail.journal_matches = Some(clean(v));
        } else if let Some(v) = value_after(line, "Banned IP list") {
            jail.banned = v
                .split_whitespace()
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .collect();
        }
    }
    if !saw {
        return Err(ParseError::new(
            WHAT,
            0,
            format!("no \"Currently failed\" line for jail {}", clean(name)),
        ));
    }
    Ok(jail)
}

/// Parses the version line ("1.0.2", or "Fail2Ban v1.0.2").
pub fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.chars().next().is_some_and(|c| c.is_ascii_digit()) || l.starts_with("Fail2Ban v")
        })
        .map(|l| clean(l.trim_start_matches("Fail2Ban v")))
}

/// Builds the state from the overview, the version, and each jail's status text.
pub fn build(overview: &Overview, version: Option<String>, jails: Vec<Jail>) -> Fail2ban {
    Fail2ban {
        running: matches!(overview, Overview::Running { .. }),
        version,
        jails,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_is_its_own_answer() {
        let o = parse_overview(
            "ERROR  Permission denied to socket: /var/run/fail2ban/fail2ban.sock, (you must be root)\n",
        )
        .unwrap();
        assert!(matches!(o, Overview::PermissionDenied(_)));
    }

    #[test]
    fn jail_without_counts_is_an_error() {
        assert!(parse_jail("sshd", "Sorry but the jail 'sshd' does not exist\n").is_err());
        assert!(parse_jail("x", "|  |- Currently failed:\tmany\n").is_err());
    }
}
