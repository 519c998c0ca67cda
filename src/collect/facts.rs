//! Host facts: `/etc/os-release`, `uname`, `/proc/uptime`, `ip -j addr`, `ip -j route`.
//! Pure: no I/O.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::{ParseError, check_size, clean};
use crate::state::{Interface, OsRelease, Route};

/// Parses `/etc/os-release` (shell-style `KEY=value` lines, values maybe quoted).
pub fn parse_os_release(text: &str) -> Result<OsRelease, ParseError> {
    const WHAT: &str = "/etc/os-release";
    check_size(WHAT, text)?;
    let mut os = OsRelease::default();
    let mut any = false;
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        any = true;
        match k {
            "ID" => os.id = clean(v),
            "VERSION_ID" => os.version_id = clean(v),
            "PRETTY_NAME" => os.pretty_name = clean(v),
            _ => {}
        }
    }
    if !any {
        return Err(ParseError::new(WHAT, 0, "no KEY=value lines"));
    }
    Ok(os)
}

fn json_array(what: &'static str, text: &str) -> Result<Vec<Value>, ParseError> {
    check_size(what, text)?;
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| ParseError::new(what, e.line(), format!("not JSON: {e}")))?;
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(ParseError::new(what, 0, "not a JSON array")),
    }
}

fn str_of(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(clean)
}

/// Parses `ip -j addr`.
pub fn parse_ip_addr(text: &str) -> Result<Vec<Interface>, ParseError> {
    const WHAT: &str = "ip -j addr";
    let mut out = Vec::new();
    for item in json_array(WHAT, text)? {
        let Some(name) = str_of(&item, "ifname") else {
            // `ip -j addr` prints `{}` for interfaces it filters out.
            continue;
        };
        let flags: Vec<&str> = item
            .get("flags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let addresses = item
            .get("addr_info")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|ai| {
                        let ip: IpAddr = ai.get("local")?.as_str()?.parse().ok()?;
                        let len = u8::try_from(ai.get("prefixlen")?.as_u64()?).ok()?;
                        IpNet::new(ip, len).ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Interface {
            name,
            up: flags.contains(&"UP"),
            operstate: str_of(&item, "operstate").unwrap_or_default(),
            mac: str_of(&item, "address"),
            link_type: str_of(&item, "link_type").unwrap_or_default(),
            addresses,
        });
    }
    Ok(out)
}

/// Parses `ip -j route` (IPv4 or IPv6).
pub fn parse_ip_route(text: &str) -> Result<Vec<Route>, ParseError> {
    const WHAT: &str = "ip -j route";
    let mut out = Vec::new();
    for item in json_array(WHAT, text)? {
        let Some(dst) = str_of(&item, "dst") else {
            continue;
        };
        out.push(Route {
            destination: dst,
            gateway: item
                .get("gateway")
                .and_then(Value::as_str)
                .and_then(|g| g.parse().ok()),
            device: str_of(&item, "dev"),
            protocol: str_of(&item, "protocol"),
            source: item
                .get("prefsrc")
                .and_then(Value::as_str)
                .and_then(|g| g.parse().ok()),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_filtered_entries() {
        assert!(parse_ip_addr("{}").is_err());
        assert!(parse_ip_addr("[{}]").unwrap().is_empty());
        assert!(parse_ip_route("nope").is_err());
        assert!(parse_os_release("garbage\n").is_err());
        let os = parse_os_release("ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        assert_eq!(os.version_id, "12");
    }
}
