//! Traffic counters: `/proc/net/dev`, the Tcp lines of `/proc/net/snmp`, and the
//! conntrack count and maximum. Pure: no I/O.

use super::{ParseError, check_size, clean};
use crate::state::{Conntrack, InterfaceCounters, TcpCounters};

/// Parses `/proc/net/dev`.
pub fn parse_net_dev(text: &str) -> Result<Vec<InterfaceCounters>, ParseError> {
    const WHAT: &str = "/proc/net/dev";
    check_size(WHAT, text)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((name, rest)) = line.split_once(':') else {
            continue; // the two header lines
        };
        if name.contains('|') {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| ParseError::new(WHAT, i + 1, "counter is not a number"))?;
        if v.len() < 16 {
            return Err(ParseError::new(WHAT, i + 1, "fewer than 16 counters"));
        }
        out.push(InterfaceCounters {
            name: clean(name.trim()),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    Ok(out)
}

/// Parses the `Tcp:` header and value lines of `/proc/net/snmp`.
pub fn parse_snmp(text: &str) -> Result<TcpCounters, ParseError> {
    const WHAT: &str = "/proc/net/snmp";
    check_size(WHAT, text)?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("Tcp:"));
    let (_, head) = lines
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "no Tcp: lines"))?;
    let (n, vals) = lines
        .next()
        .ok_or_else(|| ParseError::new(WHAT, 0, "Tcp: header without values"))?;
    let keys: Vec<&str> = head.split_whitespace().skip(1).collect();
    let vals: Vec<&str> = vals.split_whitespace().skip(1).collect();
    if keys.len() != vals.len() {
        return Err(ParseError::new(
            WHAT,
            n + 1,
            "Tcp: header and values differ in length",
        ));
    }
    let mut t = TcpCounters::default();
    for (k, v) in keys.iter().zip(vals) {
        // MaxConn is -1; signed values are not counters we keep.
        let Ok(v) = v.parse::<u64>() else { continue };
        match *k {
            "ActiveOpens" => t.active_opens = v,
            "PassiveOpens" => t.passive_opens = v,
            "AttemptFails" => t.attempt_fails = v,
            "EstabResets" => t.estab_resets = v,
            "CurrEstab" => t.curr_estab = v,
            "InSegs" => t.in_segs = v,
            "OutSegs" => t.out_segs = v,
            "RetransSegs" => t.retrans_segs = v,
            "InErrs" => t.in_errs = v,
            "OutRsts" => t.out_rsts = v,
            _ => {}
        }
    }
    Ok(t)
}

/// Parses the conntrack count and max (one number each; either may be absent).
pub fn parse_conntrack(count: &str, max: Option<&str>) -> Option<Conntrack> {
    let count = count.trim().parse().ok()?;
    Some(Conntrack {
        count,
        max: max.and_then(|m| m.trim().parse().ok()),
    })
}

/// Parses `/proc/uptime`'s first number.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snmp_mismatch_and_missing_are_errors() {
        assert!(parse_snmp("Ip: a b\nIp: 1 2\n").is_err());
        assert!(parse_snmp("Tcp: A B\nTcp: 1\n").is_err());
        assert_eq!(parse_uptime("12.5 30.0\n"), Some(12.5));
        assert_eq!(parse_uptime("NaN 1"), None);
        assert_eq!(
            parse_conntrack(" 12\n", Some("262144\n")).unwrap().max,
            Some(262144)
        );
    }

    #[test]
    fn net_dev_rejects_short_lines() {
        assert!(parse_net_dev("  lo: 1 2 3\n").is_err());
    }
}
