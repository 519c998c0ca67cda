//! A small, bounded HTTP client for the alert sinks (Alertmanager, webhooks) and the
//! Alertmanager health check: blocking `ureq` calls with short timeouts, run off the async
//! runtime by the caller. URLs come only from the validated inventory.
//!
//! A [`SinkClient`] carries one sink's authentication ([`SinkAuth`]: basic auth or a bearer
//! token read at each request, a custom CA, a client certificate). Its errors name the stage
//! that failed ([`SinkStage`]) and never hold a secret: anything a server sends back is
//! scrubbed of the credentials before it is kept.

use std::fmt;
use std::time::Duration;

use super::secret::{Credentials, SinkAuth, TlsFileError};

/// Where talking to a sink failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkStage {
    /// Reading the sink's secret, CA or client certificate files.
    Config,
    /// TCP connect, name resolution, timeouts.
    Connect,
    /// TLS handshake: server certificate not trusted, client certificate refused.
    Tls,
    /// The sink refused the credentials (HTTP 401, 403, 407).
    Auth,
    /// Any other non-2xx answer, or a broken HTTP exchange.
    HttpStatus,
}

impl fmt::Display for SinkStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SinkStage::Config => "config",
            SinkStage::Connect => "connect",
            SinkStage::Tls => "TLS",
            SinkStage::Auth => "auth",
            SinkStage::HttpStatus => "HTTP status",
        })
    }
}

/// What went wrong talking to an alert sink, with the URL and the stage.
#[derive(Debug, Clone, thiserror::Error)]
#[error("alert sink {url}: {stage}: {message}")]
pub struct HttpError {
    pub url: String,
    pub stage: SinkStage,
    pub message: String,
}

impl HttpError {
    /// `stage: message`, for a status line that already names the sink.
    pub fn detail(&self) -> String {
        format!("{}: {}", self.stage, self.message)
    }
}

/// The HTTP client of one sink.
pub struct SinkClient {
    agent: ureq::Agent,
    auth: SinkAuth,
    /// A CA or client certificate file that could not be used: every request fails with it.
    tls_error: Option<TlsFileError>,
}

impl fmt::Debug for SinkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkClient")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn agent(timeout: Duration, tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0);
    if let Some(tls) = tls {
        b = b.tls_config(tls);
    }
    b.build().into()
}

/// The stage of a ureq error.
fn stage_of(e: &ureq::Error) -> SinkStage {
    match e {
        ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired => SinkStage::Tls,
        ureq::Error::Io(io) => {
            // rustls reports handshake failures (bad certificate, unknown CA, an alert from
            // the server) as InvalidData I/O errors.
            let text = io.to_string().to_ascii_lowercase();
            if io.kind() == std::io::ErrorKind::InvalidData
                || text.contains("certificate")
                || text.contains("tls")
                || text.contains("alert")
            {
                SinkStage::Tls
            } else {
                SinkStage::Connect
            }
        }
        ureq::Error::Timeout(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            SinkStage::Connect
        }
        _ => SinkStage::HttpStatus,
    }
}

/// The stage of a non-2xx answer. nginx answers a missing or untrusted client certificate
/// with 400 and "No required SSL certificate was sent" / "The SSL certificate error".
fn status_stage(status: u16, body: &str) -> SinkStage {
    match status {
        401 | 403 | 407 => SinkStage::Auth,
        400 if body.contains("SSL certificate") => SinkStage::Tls,
        _ => SinkStage::HttpStatus,
    }
}

impl SinkClient {
    pub fn new(auth: &SinkAuth, timeout: Duration) -> SinkClient {
        let (tls, tls_error) = if auth.ca_file.is_some() || auth.client_cert_file.is_some() {
            match super::secret::tls_config(auth) {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        SinkClient {
            agent: agent(timeout, tls),
            auth: auth.clone(),
            tls_error,
        }
    }

    fn prepare(&self, url: &str) -> Result<Option<Credentials>, HttpError> {
        let err = |message: String| HttpError {
            url: url.to_string(),
            stage: SinkStage::Config,
            message,
        };
        if let Some(e) = &self.tls_error {
            return Err(err(e.to_string()));
        }
        self.auth.credentials().map_err(|e| err(e.to_string()))
    }

    fn failed(url: &str, creds: Option<&Credentials>, e: &ureq::Error) -> HttpError {
        let mut text = e.to_string();
        if text.contains("UnknownIssuer") {
            text.push_str(" (set ca_file to the CA that signed the sink's certificate)");
        }
        HttpError {
            url: url.to_string(),
            stage: stage_of(e),
            message: creds.map_or_else(|| text.clone(), |c| c.scrub(&text)),
        }
    }

    /// POSTs a JSON body; `Ok` only for a 2xx answer. A refusal names its stage and carries
    /// (at most 200 characters of) the answer, scrubbed of the credentials.
    pub fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<u16, HttpError> {
        let creds = self.prepare(url)?;
        let mut req = self
            .agent
            .post(url)
            .header("content-type", "application/json");
        if let Some(c) = &creds {
            req = req.header("authorization", c.header());
        }
        let mut resp = req
            .send(body.to_string())
            .map_err(|e| Self::failed(url, creds.as_ref(), &e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(status);
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let text = creds
            .as_ref()
            .map_or_else(|| text.clone(), |c| c.scrub(&text));
        // One line: the answer's whitespace (an HTML page's line breaks) collapsed.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = crate::sanitize::clean_line(&text.chars().take(200).collect::<String>());
        let stage = status_stage(status, &text);
        let message = match stage {
            SinkStage::Tls => format!(
                "the server refused the client certificate (set client_cert_file and \
                 client_key_file, signed by a CA it trusts): HTTP {status}: {shown}"
            ),
            _ => format!("HTTP {status}: {shown}"),
        };
        Err(HttpError {
            url: url.to_string(),
            stage,
            message,
        })
    }

    /// GETs `url` and returns the status code.
    pub fn get_status(&self, url: &str) -> Result<u16, HttpError> {
        let creds = self.prepare(url)?;
        let mut req = self.agent.get(url);
        if let Some(c) = &creds {
            req = req.header("authorization", c.header());
        }
        req.call()
            .map(|r| r.status().as_u16())
            .map_err(|e| Self::failed(url, creds.as_ref(), &e))
    }

    /// True when an Alertmanager at `base` answers `GET /-/healthy` with 200.
    pub fn alertmanager_healthy(&self, base: &str) -> bool {
        self.get_status(&format!("{}/-/healthy", base.trim_end_matches('/')))
            .is_ok_and(|s| s == 200)
    }
}

/// GETs `url` (no authentication) and returns the status code.
pub fn get_status(url: &str, timeout: Duration) -> Result<u16, HttpError> {
    SinkClient::new(&SinkAuth::default(), timeout).get_status(url)
}

/// True when an Alertmanager at `base` (no authentication) answers `GET /-/healthy` with 200.
pub fn alertmanager_healthy(base: &str, timeout: Duration) -> bool {
    SinkClient::new(&SinkAuth::default(), timeout).alertmanager_healthy(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-shot HTTP server on loopback that answers with `status` and `body`.
    fn serve_once(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            req
        });
        (format!("http://{addr}"), h)
    }

    #[test]
    fn health_check_reads_the_status() {
        let (url, h) = serve_once(200, "ok");
        assert!(alertmanager_healthy(&url, Duration::from_secs(5)));
        assert!(h.join().expect("join").starts_with("GET /-/healthy "));
        let (url, h) = serve_once(503, "no");
        assert!(!alertmanager_healthy(&url, Duration::from_secs(5)));
        h.join().expect("join");
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        drop(l);
        assert!(!alertmanager_healthy(&url, Duration::from_secs(2)));
        let e = get_status(&url, Duration::from_secs(2)).expect_err("refused");
        assert_eq!(e.stage, SinkStage::Connect, "{e}");
    }

    #[test]
    fn a_refusal_names_the_stage_and_never_echoes_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tok = dir.path().join("token");
        std::fs::write(&tok, "tok-abc-123\n").expect("write");
        let auth = SinkAuth {
            bearer_token: Some(super::super::secret::SecretSource::File(tok)),
            ..SinkAuth::default()
        };
        let client = SinkClient::new(&auth, Duration::from_secs(5));
        // A server that echoes the token back in its 401 body.
        let (url, h) = serve_once(401, "bad token tok-abc-123");
        let e = client
            .post_json(&url, &serde_json::json!([]))
            .expect_err("401");
        let req = h.join().expect("join");
        assert!(req.contains("authorization: Bearer tok-abc-123"), "{req}");
        assert_eq!(e.stage, SinkStage::Auth);
        let text = e.to_string();
        assert!(
            text.contains("auth: HTTP 401") && !text.contains("tok-abc-123"),
            "{text}"
        );
        assert!(text.contains("[redacted]"), "{text}");
        // nginx's answer to a missing client certificate is a TLS-stage failure.
        assert_eq!(
            status_stage(400, "<h1>400 No required SSL certificate was sent</h1>"),
            SinkStage::Tls
        );
    }

    #[test]
    fn a_missing_secret_is_a_config_failure_before_any_request() {
        let auth = SinkAuth {
            bearer_token: Some(super::super::secret::SecretSource::Env(
                "RAMPART_TEST_UNSET_TOKEN_VAR".into(),
            )),
            ..SinkAuth::default()
        };
        let client = SinkClient::new(&auth, Duration::from_secs(2));
        let e = client
            .post_json("http://127.0.0.1:9/x", &serde_json::json!([]))
            .expect_err("no token");
        assert_eq!(e.stage, SinkStage::Config);
        assert!(
            e.to_string()
                .contains("RAMPART_TEST_UNSET_TOKEN_VAR: not set"),
            "{e}"
        );
    }
}
