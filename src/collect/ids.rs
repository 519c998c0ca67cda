//! IDS alerts: the tails of Suricata's EVE JSON (`eve.json`), Snort 3's `alert_json` and
//! Snort's `alert_fast` files, as the `ids` probe prints them (`### ids FORMAT SIZE INODE
//! PATH`, then at most [`TAIL_BYTES`] of the file's end). Pure: no I/O.
//!
//! Bounded whatever the file holds: only the tail is ever read, a line longer than
//! [`MAX_LINE`] is skipped, and at most [`MAX_ALERTS`] alerts per file are kept (the last).

use std::net::IpAddr;

use super::{ParseError, check_size, clean};
use crate::state::{IdsAlert, IdsEngine, IdsFormat, IdsLog};

const WHAT: &str = "ids alert files";

/// How much of each file's end the probe reads (it says `tail -c` this).
pub const TAIL_BYTES: u64 = 262_144;
/// Longer lines are skipped, not parsed.
pub const MAX_LINE: usize = 16 * 1024;
/// Alerts kept per file (the most recent).
pub const MAX_ALERTS: usize = 2000;

fn s(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) => Some(clean(s)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn n(v: &serde_json::Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ip(v: &serde_json::Value, key: &str) -> Option<IpAddr> {
    v.get(key)?.as_str()?.trim().parse().ok()
}

fn port(v: &serde_json::Value, key: &str) -> Option<u16> {
    n(v, key).and_then(|p| u16::try_from(p).ok())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2017-04-07T22:24:37.251547+0100` (or without an offset: UTC) to Unix seconds.
pub fn parse_rfc3339ish(t: &str) -> Option<i64> {
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = match rest.find(['+', '-', 'Z']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':');
    let hh: i64 = c.next()?.parse().ok()?;
    let mm: i64 = c.next()?.parse().ok()?;
    let ss: i64 = c.next()?.parse().ok()?;
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let off = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits: String = o[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss - off)
}

/// Snort's `yy/mm/dd-hh:mm:ss.uuuuuu` (with `-y`) to Unix seconds, read as UTC. Without a
/// year (`mm/dd-...`, the default) the time cannot be placed: `None`.
pub fn parse_snort_time(t: &str) -> Option<i64> {
    let (date, clock) = t.split_once('-')?;
    let parts: Vec<&str> = date.split('/').collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    let y: i64 = y.parse().ok()?;
    let y = if y < 100 { 2000 + y } else { y };
    let m: u32 = m.parse().ok()?;
    let d: u32 = d.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':');
    let hh: i64 = c.next()?.parse().ok()?;
    let mm: i64 = c.next()?.parse().ok()?;
    let ss: i64 = c.next()?.parse().ok()?;
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `10.1.2.3:80`, `[2001:db8::1]:80`, `2001:db8::1` (no port) or `10.1.2.3`.
fn endpoint(t: &str) -> (Option<IpAddr>, Option<u16>) {
    let t = t.trim();
    if let Some(rest) = t.strip_prefix('[') {
        let (a, p) = rest.split_once(']').unwrap_or((rest, ""));
        return (
            a.parse().ok(),
            p.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    if let Ok(a) = t.parse() {
        return (Some(a), None);
    }
    match t.rsplit_once(':') {
        Some((a, p)) => (a.parse().ok(), p.parse().ok()),
        None => (None, None),
    }
}

/// `gid:sid:rev`.
fn rule_ids(t: &str) -> Option<(u32, u64, u32)> {
    let mut it = t.trim().split(':');
    let g = it.next()?.parse().ok()?;
    let s = it.next()?.parse().ok()?;
    let r = it.next().and_then(|r| r.parse().ok()).unwrap_or(0);
    Some((g, s, r))
}

/// One line of Suricata's EVE JSON; `None` for other event types.
pub fn parse_eve_line(line: &str) -> Option<IdsAlert> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("event_type")?.as_str()? != "alert" {
        return None;
    }
    let a = v.get("alert")?;
    let timestamp = s(&v, "timestamp").unwrap_or_default();
    Some(IdsAlert {
        engine: IdsEngine::Suricata,
        time: parse_rfc3339ish(&timestamp),
        timestamp,
        gid: n(a, "gid").and_then(|g| u32::try_from(g).ok()).unwrap_or(1),
        sid: n(a, "signature_id")?,
        rev: n(a, "rev").and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
        signature: s(a, "signature").unwrap_or_default(),
        category: s(a, "category").filter(|c| !c.is_empty()),
        priority: n(a, "severity").and_then(|p| u32::try_from(p).ok()),
        proto: s(&v, "proto"),
        src: ip(&v, "src_ip"),
        src_port: port(&v, "src_port"),
        dst: ip(&v, "dest_ip"),
        dst_port: port(&v, "dest_port"),
        action: s(a, "action"),
    })
}

/// One line of Snort 3's `alert_json` (whichever of its fields are configured).
pub fn parse_snort_json_line(line: &str) -> Option<IdsAlert> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let (mut gid, mut sid, mut rev) = s(&v, "rule")
        .and_then(|r| rule_ids(&r))
        .map_or((None, None, None), |(g, s, r)| (Some(g), Some(s), Some(r)));
    if let Some(g) = n(&v, "gid") {
        gid = u32::try_from(g).ok();
    }
    if let Some(x) = n(&v, "sid") {
        sid = Some(x);
    }
    if let Some(r) = n(&v, "rev") {
        rev = u32::try_from(r).ok();
    }
    let sid = sid?;
    let (mut src, mut src_port) = s(&v, "src_ap").map_or((None, None), |a| endpoint(&a));
    let (mut dst, mut dst_port) = s(&v, "dst_ap").map_or((None, None), |a| endpoint(&a));
    if let Some(a) = ip(&v, "src_addr") {
        src = Some(a);
    }
    if let Some(a) = ip(&v, "dst_addr") {
        dst = Some(a);
    }
    if let Some(p) = port(&v, "src_port") {
        src_port = Some(p);
    }
    if let Some(p) = port(&v, "dst_port") {
        dst_port = Some(p);
    }
    let timestamp = s(&v, "timestamp").unwrap_or_default();
    let time = v
        .get("seconds")
        .and_then(serde_json::Value::as_i64)
        .or_else(|| parse_snort_time(&timestamp));
    Some(IdsAlert {
        engine: IdsEngine::Snort,
        time,
        timestamp,
        gid: gid.unwrap_or(1),
        sid,
        rev: rev.unwrap_or(0),
        signature: s(&v, "msg").unwrap_or_default(),
        category: s(&v, "class").filter(|c| !c.is_empty() && c != "none"),
        priority: n(&v, "priority").and_then(|p| u32::try_from(p).ok()),
        proto: s(&v, "proto"),
        src,
        src_port,
        dst,
        dst_port,
        action: s(&v, "action"),
    })
}

/// One line of `alert_fast`:
/// `TIMESTAMP [**] [gid:sid:rev] "msg" [**] [Classification: C] [Priority: N] {PROTO} SRC -> DST`
/// (Snort 2 writes the message without quotes; classification and priority are optional).
pub fn parse_fast_line(line: &str) -> Option<IdsAlert> {
    let (timestamp, rest) = line.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim_start().strip_prefix("[**]")?.trim_start();
    let rest = rest.strip_prefix('[')?;
    let (ids, rest) = rest.split_once(']')?;
    let (gid, sid, rev) = rule_ids(ids)?;
    let (msg, rest) = rest.split_once("[**]")?;
    let msg = msg.trim();
    let msg = msg
        .strip_prefix('"')
        .and_then(|m| m.strip_suffix('"'))
        .unwrap_or(msg);
    let mut rest = rest.trim_start();
    let mut category = None;
    let mut priority = None;
    while let Some(r) = rest.strip_prefix('[') {
        let (inner, after) = r.split_once(']')?;
        if let Some(c) = inner.strip_prefix("Classification:") {
            category = Some(clean(c.trim()));
        } else if let Some(p) = inner.strip_prefix("Priority:") {
            priority = p.trim().parse().ok();
        }
        rest = after.trim_start();
    }
    // An interface in angle brackets may come before the protocol.
    if let Some(r) = rest.strip_prefix('<') {
        rest = r.split_once('>').map_or("", |(_, a)| a).trim_start();
    }
    let (proto, rest) = match rest.strip_prefix('{') {
        Some(r) => {
            let (p, a) = r.split_once('}')?;
            (Some(clean(p)), a.trim_start())
        }
        None => (None, rest),
    };
    let (src, dst) = rest.split_once("->").unwrap_or((rest, ""));
    let (src, src_port) = endpoint(src);
    let (dst, dst_port) = endpoint(dst);
    Some(IdsAlert {
        engine: IdsEngine::Snort,
        time: parse_snort_time(timestamp),
        timestamp: clean(timestamp),
        gid,
        sid,
        rev,
        signature: clean(msg),
        category,
        priority,
        proto,
        src,
        src_port,
        dst,
        dst_port,
        action: None,
    })
}

/// Reads one file's tail. `cut`: the tail starts mid-file, so its first line is partial.
pub fn parse_tail(path: &str, format: IdsFormat, body: &str, cut: bool) -> IdsLog {
    let mut log = IdsLog {
        path: clean(path),
        format,
        size: None,
        inode: None,
        cut,
        alerts: Vec::new(),
        skipped: 0,
    };
    let mut lines = body.lines();
    if cut {
        lines.next();
    }
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            log.skipped += 1;
            continue;
        }
        let a = match format {
            IdsFormat::SuricataEve => parse_eve_line(line),
            IdsFormat::SnortJson => parse_snort_json_line(line),
            IdsFormat::SnortFast => parse_fast_line(line),
        };
        match a {
            Some(a) => log.alerts.push(a),
            None => log.skipped += 1,
        }
    }
    if log.alerts.len() > MAX_ALERTS {
        let extra = log.alerts.len() - MAX_ALERTS;
        log.alerts.drain(..extra);
        log.skipped += extra;
    }
    log
}

/// Parses the `ids` probe's output.
pub fn parse_probe(text: &str) -> Result<Vec<IdsLog>, ParseError> {
    check_size(WHAT, text)?;
    let mut out = Vec::new();
    let mut current: Option<(IdsFormat, Option<u64>, Option<u64>, String)> = None;
    let mut body = String::new();
    let flush = |cur: Option<(IdsFormat, Option<u64>, Option<u64>, String)>,
                 body: &mut String,
                 out: &mut Vec<IdsLog>| {
        if let Some((format, size, inode, path)) = cur {
            let cut = size.is_some_and(|s| s > TAIL_BYTES);
            let mut log = parse_tail(&path, format, body, cut);
            log.size = size;
            log.inode = inode;
            out.push(log);
        }
        body.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if let Some(head) = line.strip_prefix("### ids ") {
            flush(current.take(), &mut body, &mut out);
            let mut w = head.splitn(4, ' ');
            let format = match w.next() {
                Some("suricata-eve") => IdsFormat::SuricataEve,
                Some("snort-json") => IdsFormat::SnortJson,
                Some("snort-fast") => IdsFormat::SnortFast,
                other => {
                    return Err(ParseError::new(
                        WHAT,
                        i + 1,
                        format!("unknown format {:?}", other.map(clean)),
                    ));
                }
            };
            let size = w.next().and_then(|s| s.parse().ok());
            let inode = w.next().and_then(|s| s.parse().ok());
            let path = w.next().unwrap_or_default().to_string();
            current = Some((format, size, inode, path));
        } else if current.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(current.take(), &mut body, &mut out);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_rfc3339ish("1970-01-02T00:00:00.5+0100"),
            Some(86_400 - 3600)
        );
        assert_eq!(
            parse_rfc3339ish("2009-11-24T21:27:09.534255"),
            Some(1_259_098_029)
        );
        assert_eq!(
            parse_snort_time("09/11/24-21:27:09.534255"),
            Some(1_259_098_029)
        );
        assert_eq!(parse_snort_time("11/24-21:27:09.534255"), None);
        assert_eq!(parse_rfc3339ish("garbage"), None);
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("10.1.2.3:80"),
            (Some("10.1.2.3".parse().unwrap()), Some(80))
        );
        assert_eq!(
            endpoint("[2001:db8::1]:443"),
            (Some("2001:db8::1".parse().unwrap()), Some(443))
        );
        assert_eq!(
            endpoint("2001:db8::1"),
            (Some("2001:db8::1".parse().unwrap()), None)
        );
    }

    #[test]
    fn a_cut_tail_drops_its_partial_first_line_and_long_lines() {
        let line = r#"{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"alert","src_ip":"203.0.113.5","dest_ip":"10.0.0.1","alert":{"signature_id":1,"signature":"x","severity":1}}"#;
        let long = format!("{{\"pad\":\"{}\"}}", "a".repeat(MAX_LINE));
        let body = format!("{line}\n{long}\n{line}\n");
        let log = parse_tail("/x", IdsFormat::SuricataEve, &body, true);
        assert_eq!(log.alerts.len(), 1);
        assert_eq!(log.skipped, 1);
    }

    #[test]
    fn unknown_format_is_an_error() {
        assert!(parse_probe("### ids bro 1 2 /x\n").is_err());
        assert!(parse_probe("").unwrap().is_empty());
    }
}
