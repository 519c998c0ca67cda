//! Credentials of the alert sinks: where they come from ([`SecretSource`]: a file or an
//! environment variable, never the inventory itself), how a sink authenticates
//! ([`SinkAuth`]: basic auth or a bearer token, a custom CA, a client certificate), and the
//! [`Secret`] that holds a password or token in memory.
//!
//! Owns: reading secrets (at each use, so a rotated token file is picked up), scrubbing them
//! out of any text that could reach a log, a report or an error (a server may echo a request
//! back), and keeping the HTTP client's own wire logging out of the log file
//! ([`quiet_http_client_logs`]).
//!
//! Must not: print, log or serialize a secret's value; accept a secret written inline in the
//! inventory (validation refuses it before this module is reached).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;

/// A password or token. Its `Debug` and `Display` print `[redacted]`; only
/// [`Secret::expose`] gives the value, for the one header that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for building the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSource {
    /// A file holding the secret (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable's name.
    Env(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// Why a secret could not be read. Names the source, never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} from {from}: {reason}")]
pub struct SecretError {
    /// "password" or "bearer token".
    pub what: &'static str,
    pub from: SecretSource,
    pub reason: String,
}

impl SecretSource {
    /// Reads the secret now.
    pub fn read(&self, what: &'static str) -> Result<Secret, SecretError> {
        let err = |reason: String| SecretError {
            what,
            from: self.clone(),
            reason,
        };
        let mut value = match self {
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| err(format!("cannot read it ({})", e.kind())))?,
            SecretSource::Env(v) => std::env::var(v).map_err(|e| match e {
                std::env::VarError::NotPresent => err("not set".into()),
                std::env::VarError::NotUnicode(_) => err("not valid UTF-8".into()),
            })?,
        };
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        if value.is_empty() {
            return Err(err("empty".into()));
        }
        if value.contains(['\r', '\n']) {
            return Err(err("holds more than one line".into()));
        }
        Ok(Secret(value))
    }
}

/// How one sink authenticates, as the inventory's `[alerting.auth."URL"]` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkAuth {
    /// Basic auth user (with `password`).
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub bearer_token: Option<SecretSource>,
    /// PEM file of the CA certificates that sign the sink's server certificate (instead of
    /// the built-in web roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and its private key, for sinks that require mTLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

/// The `Authorization` header value of a sink, read now.
#[derive(Clone)]
pub struct Credentials {
    header: Secret,
    /// Every form the secret could take in text (value, base64 of `user:value`).
    forms: Vec<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

impl Credentials {
    pub fn header(&self) -> &str {
        self.header.expose()
    }

    /// `text` with every form of the secret replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.forms {
            if !f.is_empty() {
                out = out.replace(f.as_str(), "[redacted]");
            }
        }
        out
    }
}

impl SinkAuth {
    /// Whether any option is set.
    pub fn is_empty(&self) -> bool {
        *self == SinkAuth::default()
    }

    /// Reads the password or token now; `None` when the sink needs neither.
    pub fn credentials(&self) -> Result<Option<Credentials>, SecretError> {
        if let (Some(user), Some(src)) = (&self.username, &self.password) {
            let pass = src.read("password")?;
            let b64 = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", pass.expose()));
            return Ok(Some(Credentials {
                header: Secret(format!("Basic {b64}")),
                forms: vec![pass.0.clone(), b64],
            }));
        }
        if let Some(src) = &self.bearer_token {
            let token = src.read("bearer token")?;
            return Ok(Some(Credentials {
                header: Secret(format!("Bearer {}", token.expose())),
                forms: vec![token.0],
            }));
        }
        Ok(None)
    }
}

/// A file the TLS set-up could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {}: {reason}", path.display())]
pub struct TlsFileError {
    pub what: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError {
        what,
        path: path.to_path_buf(),
        reason: format!("cannot read it ({})", e.kind()),
    })
}

/// The ureq TLS configuration of a sink: its CA (else the built-in web roots) and client
/// certificate.
pub fn tls_config(auth: &SinkAuth) -> Result<ureq::tls::TlsConfig, TlsFileError> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let mut b = TlsConfig::builder();
    if let Some(ca) = &auth.ca_file {
        let pem = read_pem("CA file", ca)?;
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(TlsFileError {
                what: "CA file",
                path: ca.clone(),
                reason: "holds no PEM certificate".into(),
            });
        }
        b = b.root_certs(RootCerts::new_with_certs(&certs));
    }
    if let (Some(cert), Some(key)) = (&auth.client_cert_file, &auth.client_key_file) {
        let pem = read_pem("client certificate", cert)?;
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if chain.is_empty() {
            return Err(TlsFileError {
                what: "client certificate",
                path: cert.clone(),
                reason: "holds no PEM certificate".into(),
            });
        }
        let key_pem = read_pem("client key", key)?;
        // The parse error of a key file is not shown: it could quote the key.
        let key = PrivateKey::from_pem(&key_pem).map_err(|_| TlsFileError {
            what: "client key",
            path: key.clone(),
            reason: "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
        })?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

/// Adds directives that keep the HTTP client's wire dumps out of the log whatever the user
/// asks for: at trace level `ureq_proto` logs every byte sent, `Authorization` header included.
pub fn quiet_http_client_logs(
    filter: tracing_subscriber::EnvFilter,
) -> tracing_subscriber::EnvFilter {
    let mut f = filter;
    for d in ["ureq_proto=off", "ureq=debug"] {
        if let Ok(d) = d.parse() {
            f = f.add_directive(d);
        }
    }
    f
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_itself() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s}"), "[redacted]");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_and_env_sources() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let src = SecretSource::File(p.clone());
        assert_eq!(src.read("password").unwrap().expose(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        let e = src.read("password").unwrap_err().to_string();
        assert!(
            e.contains("password from file") && e.ends_with("empty"),
            "{e}"
        );
        std::fs::write(&p, "a\nb\n").unwrap();
        assert!(src.read("password").is_err());
        let missing = SecretSource::File(dir.path().join("nope"));
        let e = missing.read("bearer token").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("cannot read"), "{e}");
        let e = SecretSource::Env("RAMPART_TEST_SURELY_UNSET_VAR".into())
            .read("bearer token")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "bearer token from environment variable RAMPART_TEST_SURELY_UNSET_VAR: not set"
        );
    }

    #[test]
    fn basic_credentials_and_scrubbing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "pa55").unwrap();
        let auth = SinkAuth {
            username: Some("am".into()),
            password: Some(SecretSource::File(p)),
            ..SinkAuth::default()
        };
        let c = auth.credentials().unwrap().unwrap();
        // base64("am:pa55")
        assert_eq!(c.header(), "Basic YW06cGE1NQ==");
        assert_eq!(
            c.scrub("echo: pa55 / Basic YW06cGE1NQ=="),
            "echo: [redacted] / Basic [redacted]"
        );
        assert!(!format!("{c:?}").contains("pa55"));
        assert!(SinkAuth::default().credentials().unwrap().is_none());
    }

    #[test]
    fn tls_files_are_named_when_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not pem").unwrap();
        let auth = SinkAuth {
            ca_file: Some(ca),
            ..SinkAuth::default()
        };
        let e = tls_config(&auth).unwrap_err().to_string();
        assert!(
            e.starts_with("CA file ") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
