//! The host's own HTTPS answer: the `https-self` probe fetches `/` from every `listen ...
//! ssl` address of its nginx configuration, on the host itself (loopback for wildcard
//! listens), with `curl -D -` (headers only; nothing is changed), and prints
//! `### url URL` before each answer. Pure: no I/O.

use super::{ParseError, check_size, clean};
use crate::state::HttpsFetch;

const WHAT: &str = "https-self";

/// Parses the probe's output.
pub fn parse_probe(text: &str) -> Result<Vec<HttpsFetch>, ParseError> {
    check_size(WHAT, text)?;
    let mut out: Vec<HttpsFetch> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(url) = line.strip_prefix("### url ") {
            out.push(HttpsFetch {
                url: clean(url.trim()),
                ..HttpsFetch::default()
            });
            continue;
        }
        let Some(f) = out.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix("HTTP/") {
            // Redirects or 1xx: the last status line wins.
            f.status = rest.split_whitespace().nth(1).and_then(|c| c.parse().ok());
            f.hsts = None;
        } else if let Some(e) = line.strip_prefix("curl: ") {
            let mut e = clean(e.trim());
            e.truncate(200);
            f.error = Some(e);
        } else if let Some((name, value)) = line.split_once(':')
            && name
                .trim()
                .eq_ignore_ascii_case("strict-transport-security")
        {
            let mut v = clean(value.trim());
            v.truncate(200);
            f.hsts = Some(v);
        }
    }
    if out.len() > 64 {
        out.truncate(64);
    }
    Ok(out)
}

/// The `max-age` of a Strict-Transport-Security value; 0 turns HSTS off.
pub fn max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|d| {
        let (k, v) = d.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("max-age") {
            v.trim().trim_matches('"').parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_errors_and_max_age() {
        let t = "### url https://127.0.0.1:443/\nHTTP/1.1 200 OK\r\nServer: nginx\r\nstrict-transport-security: max-age=31536000; includeSubDomains\r\n\r\n\
                 ### url https://10.0.0.1:8443/\ncurl: (7) Failed to connect to 10.0.0.1 port 8443: Connection refused\n";
        let f = parse_probe(t).unwrap();
        assert_eq!(f[0].status, Some(200));
        assert_eq!(max_age(f[0].hsts.as_deref().unwrap()), Some(31_536_000));
        assert!(f[1].error.as_deref().unwrap().contains("refused"));
        assert_eq!(f[1].status, None);
        assert_eq!(max_age("max-age=0"), Some(0));
        assert_eq!(max_age("includeSubDomains"), None);
    }
}
