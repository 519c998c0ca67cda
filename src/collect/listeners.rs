//! Listening sockets from `ss -H -tulpn` (also accepts the header line of `ss -tulpn`).
//! Pure: no I/O.

use std::net::IpAddr;

use super::{ParseError, check_size, clean};
use crate::state::{Listener, Protocol, SocketProcess};

const WHAT: &str = "ss -tulpn";

/// Splits "addr:port" as ss prints it: `0.0.0.0:22`, `[::]:22`, `*:80`,
/// `127.0.0.53%lo:53`, `[fe80::1]%eth0:546`.
fn split_local(s: &str) -> Option<(Option<IpAddr>, Option<String>, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = if port == "*" { 0 } else { port.parse().ok()? };
    let (host, iface) = match host.split_once('%') {
        Some((h, i)) => (h, Some(clean(i))),
        None => (host, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = if host == "*" {
        None
    } else {
        Some(host.parse::<IpAddr>().ok()?)
    };
    Some((addr, iface, port))
}

/// Reads `users:(("sshd",pid=123,fd=3),("sshd",pid=456,fd=3))`. Process names are
/// quoted and may hold anything, including quotes and parentheses.
fn parse_users(s: &str) -> Vec<SocketProcess> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("(\"") {
        rest = &rest[start + 2..];
        // The name ends at the first `",pid=` followed by a digit (names may hold
        // quotes and commas themselves).
        let mut from = 0;
        let mut found = None;
        while let Some(p) = rest[from..].find("\",pid=") {
            let at = from + p;
            if rest[at + 6..].starts_with(|c: char| c.is_ascii_digit()) {
                found = Some(at);
                break;
            }
            from = at + 6;
        }
        let Some(end) = found else { break };
        let name = &rest[..end];
        rest = &rest[end + 6..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        rest = &rest[digits.len()..];
        if let Ok(pid) = digits.parse::<u32>() {
            out.push(SocketProcess {
                name: clean(name),
                pid,
            });
        }
        if out.len() >= 64 {
            break;
        }
    }
    out
}

/// Parses `ss -H -tulpn` output.
pub fn parse(text: &str) -> Result<Vec<Listener>, ParseError> {
    check_size(WHAT, text)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with("Netid") {
            continue;
        }
        let fields: Vec<&str> = t.split_whitespace().collect();
        if fields.len() < 6 {
            return Err(ParseError::new(WHAT, n, "fewer than 6 columns"));
        }
        let protocol = match fields[0] {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => Protocol::Other(clean(other)),
        };
        let state = fields[1];
        if protocol == Protocol::Tcp && state != "LISTEN" {
            continue;
        }
        let Some((address, interface, port)) = split_local(fields[4]) else {
            return Err(ParseError::new(
                WHAT,
                n,
                format!("unreadable local address {:?}", clean(fields[4])),
            ));
        };
        // Everything after the peer column is the process list (names may hold spaces).
        let processes = t
            .find("users:(")
            .map(|p| parse_users(&t[p..]))
            .unwrap_or_default();
        out.push(Listener {
            protocol,
            address,
            interface,
            port,
            processes,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_scoped_and_bracketed_addresses() {
        let l = parse(
            "udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:((\"systemd-resolve\",pid=1,fd=3))\n\
             udp UNCONN 0 0 [fe80::1]%eth0:546 [::]:*\n",
        )
        .unwrap();
        assert_eq!(l[0].interface.as_deref(), Some("lo"));
        assert!(l[0].is_loopback());
        assert_eq!(l[1].address, Some("fe80::1".parse().unwrap()));
        assert_eq!(l[1].port, 546);
        assert!(l[1].processes.is_empty());
    }

    #[test]
    fn names_with_quotes_and_several_processes() {
        let p = parse_users("users:((\"a\\\",pid=x\",pid=7,fd=3),(\"nginx\",pid=8,fd=6))");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].pid, 8);
    }

    #[test]
    fn short_lines_are_errors() {
        assert!(parse("tcp LISTEN 0\n").is_err());
        assert!(parse("tcp LISTEN 0 5 nonsense 0.0.0.0:*\n").is_err());
    }
}
