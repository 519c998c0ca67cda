//! A small, bounded HTTP client for the alert sinks (Alertmanager, webhooks) and the
//! Alertmanager health check: blocking `ureq` calls with short timeouts, run off the async
//! runtime by the caller. URLs come only from the validated inventory.

use std::time::Duration;

/// What went wrong talking to an alert sink, with the URL.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {message}")]
pub struct HttpError {
    pub url: String,
    pub message: String,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// GETs `url` and returns the status code.
pub fn get_status(url: &str, timeout: Duration) -> Result<u16, HttpError> {
    agent(timeout)
        .get(url)
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| HttpError {
            url: url.to_string(),
            message: e.to_string(),
        })
}

/// POSTs a JSON body and returns the status code and (at most 64 KiB of) the response body.
pub fn post_json(
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(u16, String), HttpError> {
    let mut resp = agent(timeout)
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .map_err(|e| HttpError {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok((status, text))
}

/// True when an Alertmanager at `base` answers `GET /-/healthy` with 200.
pub fn alertmanager_healthy(base: &str, timeout: Duration) -> bool {
    get_status(
        &format!("{}/-/healthy", base.trim_end_matches('/')),
        timeout,
    )
    .is_ok_and(|s| s == 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-shot HTTP server on loopback that answers with `status`.
    fn serve_once(status: u16) -> (String, std::thread::JoinHandle<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
            req
        });
        (format!("http://{addr}"), h)
    }

    #[test]
    fn health_check_reads_the_status() {
        let (url, h) = serve_once(200);
        assert!(alertmanager_healthy(&url, Duration::from_secs(5)));
        assert!(h.join().expect("join").starts_with("GET /-/healthy "));
        let (url, h) = serve_once(503);
        assert!(!alertmanager_healthy(&url, Duration::from_secs(5)));
        h.join().expect("join");
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        drop(l);
        assert!(!alertmanager_healthy(&url, Duration::from_secs(2)));
    }
}
