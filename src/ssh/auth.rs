//! Authentication of one hop: OpenSSH user certificates first (the agent's, then
//! `CertificateFile`s and `KEY-cert.pub` files beside identity files), then the agent's plain
//! keys, then identity files. Certificates go first because each key offered counts against
//! sshd's `MaxAuthTries`.
//!
//! Owns: talking to the agent (`SSH_AUTH_SOCK`, or a socket given in the options), loading
//! identity files (asking for a passphrase once through a callback, caching the decrypted key
//! in memory, never logging it), reading certificates and checking their validity window
//! before one is offered (an expired or not-yet-valid certificate is never sent; when nothing
//! else works the error names the certificate, its key ID and its window), `IdentitiesOnly`
//! (agent keys and certificates are offered only when they match a configured file), and
//! offering keys to the server.
//!
//! Must not: request agent forwarding (the agent connection is only used to sign our own
//! authentication), or ask for a passphrase when no callback is set (headless modes fail).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use crate::ssh::error::ErrorKind;

/// Asks a person for the passphrase of an identity file; `None` means they declined.
/// Called on a blocking thread, at most once per file while it succeeds.
pub type PassphraseFn = Arc<dyn Fn(&Path) -> Option<String> + Send + Sync>;

/// Which agent to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentChoice {
    /// `SSH_AUTH_SOCK` if set.
    #[default]
    FromEnv,
    Socket(PathBuf),
    Off,
}

/// Decrypted identity files, shared by every connection of a transport.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: tokio::sync::Mutex<HashMap<PathBuf, Arc<PrivateKey>>>,
}

impl KeyCache {
    /// Loads (or returns the cached) key. The lock is held while asking for a passphrase, so
    /// many hosts connecting at once ask only once.
    async fn load(
        &self,
        path: &Path,
        passphrase: Option<&PassphraseFn>,
    ) -> Result<Arc<PrivateKey>, ErrorKind> {
        let mut keys = self.keys.lock().await;
        if let Some(k) = keys.get(path) {
            return Ok(Arc::clone(k));
        }
        let text = std::fs::read_to_string(path).map_err(|e| ErrorKind::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let key = match russh::keys::decode_secret_key(&text, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let Some(ask) = passphrase else {
                    return Err(ErrorKind::PassphraseRequired(path.to_path_buf()));
                };
                let ask = Arc::clone(ask);
                let p = path.to_path_buf();
                let pass = tokio::task::spawn_blocking(move || ask(&p))
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| ErrorKind::PassphraseRequired(path.to_path_buf()))?;
                russh::keys::decode_secret_key(&text, Some(&pass)).map_err(|_| {
                    ErrorKind::KeyFile {
                        path: path.to_path_buf(),
                        reason: "wrong passphrase".into(),
                    }
                })?
            }
            Err(e) => {
                return Err(ErrorKind::KeyFile {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        let key = Arc::new(key);
        keys.insert(path.to_path_buf(), Arc::clone(&key));
        Ok(key)
    }
}

pub(crate) struct AuthInput<'a> {
    pub user: &'a str,
    pub identity_files: &'a [PathBuf],
    pub certificate_files: &'a [PathBuf],
    pub identities_only: bool,
    pub agent: &'a AgentChoice,
    pub passphrase: Option<&'a PassphraseFn>,
    pub keys: &'a KeyCache,
}

async fn rsa_hash<H: russh::client::Handler>(handle: &Handle<H>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    // Only asked for RSA keys: the answer may wait up to a second for the server's
    // extension info.
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Why a certificate may not be offered now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertWindow {
    /// The certificate file, or `agent certificate (COMMENT)`.
    pub source: String,
    pub key_id: String,
    /// Unix seconds; `valid_before == u64::MAX` means "forever".
    pub valid_after: u64,
    pub valid_before: u64,
    pub now: u64,
}

impl CertWindow {
    pub fn of(source: String, cert: &Certificate, now: u64) -> CertWindow {
        CertWindow {
            source,
            key_id: cert.key_id().to_string(),
            valid_after: cert.valid_after(),
            valid_before: cert.valid_before(),
            now,
        }
    }

    /// OpenSSH's rule: valid from `valid_after` (inclusive) to `valid_before` (exclusive).
    pub fn is_valid(&self) -> bool {
        self.valid_after <= self.now && self.now < self.valid_before
    }

    /// "expired" or "not yet valid" (or "valid").
    pub fn problem(&self) -> &'static str {
        if self.now < self.valid_after {
            "not yet valid"
        } else if self.now >= self.valid_before {
            "expired"
        } else {
            "valid"
        }
    }
}

fn unix_time_text(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    crate::ssh::log::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

impl std::fmt::Display for CertWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate {} (key ID {:?}) is {}: valid from {} to {}, now {}",
            self.source,
            self.key_id,
            self.problem(),
            unix_time_text(self.valid_after),
            unix_time_text(self.valid_before),
            unix_time_text(self.now),
        )
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `KEY-cert.pub`, where OpenSSH looks for a key's certificate.
pub fn cert_path_for(identity: &Path) -> PathBuf {
    let mut p = identity.as_os_str().to_os_string();
    p.push("-cert.pub");
    PathBuf::from(p)
}

/// Reads an OpenSSH certificate file (`ssh-ed25519-cert-v01@openssh.com AAAA... comment`).
pub fn read_certificate(path: &Path) -> Result<Certificate, ErrorKind> {
    let err = |reason: String| ErrorKind::CertificateFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let text = text.trim();
    let cert = Certificate::from_openssh(text)
        .map_err(|e| err(format!("not an OpenSSH certificate ({e})")))?;
    if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::User {
        return Err(err("a host certificate, not a user certificate".into()));
    }
    Ok(cert)
}

/// The public key of an identity file, without decrypting it: from `KEY.pub`, else from the
/// private key file (whose public half is stored in the clear).
fn identity_public(path: &Path) -> Option<KeyData> {
    let mut pubpath = path.as_os_str().to_os_string();
    pubpath.push(".pub");
    if let Ok(text) = std::fs::read_to_string(PathBuf::from(pubpath))
        && let Ok(k) = PublicKey::from_openssh(text.trim())
    {
        return Some(k.key_data().clone());
    }
    let text = std::fs::read_to_string(path).ok()?;
    PrivateKey::from_openssh(text.trim())
        .ok()
        .map(|k| k.public_key().key_data().clone())
}

/// A certificate to offer with the identity file that holds its private key.
struct FileCert {
    cert_path: PathBuf,
    /// `None`: no identity file holds its key (the agent may).
    key_path: Option<PathBuf>,
    cert: Certificate,
}

/// The certificates configured for a hop: `CertificateFile`s paired with the identity file of
/// the same key, then `KEY-cert.pub` beside each identity file. A `CertificateFile` that
/// cannot be used is returned as a problem (reported if nothing else gets in, as OpenSSH
/// goes on with the other keys); an unusable `KEY-cert.pub` is skipped.
fn file_certificates(input: &AuthInput<'_>) -> (Vec<FileCert>, Vec<ErrorKind>) {
    let mut out: Vec<FileCert> = Vec::new();
    let mut problems = Vec::new();
    let publics: Vec<(PathBuf, Option<KeyData>)> = input
        .identity_files
        .iter()
        .filter(|p| p.exists())
        .map(|p| (p.clone(), identity_public(p)))
        .collect();
    for path in input.certificate_files {
        if !path.exists() {
            tracing::debug!("CertificateFile {} does not exist", path.display());
            continue;
        }
        let cert = match read_certificate(path) {
            Ok(c) => c,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        // The identity file of the same key, or the conventional KEY beside KEY-cert.pub.
        let beside = path
            .to_str()
            .and_then(|s| s.strip_suffix("-cert.pub"))
            .map(PathBuf::from)
            .filter(|p| p.exists());
        let key_path = publics
            .iter()
            .find(|(_, k)| k.as_ref() == Some(cert.public_key()))
            .map(|(p, _)| p.clone())
            .or(beside);
        out.push(FileCert {
            cert_path: path.clone(),
            key_path,
            cert,
        });
    }
    for (key_path, _) in &publics {
        let cert_path = cert_path_for(key_path);
        if !cert_path.exists() || out.iter().any(|c| c.cert_path == cert_path) {
            continue;
        }
        match read_certificate(&cert_path) {
            Ok(cert) => out.push(FileCert {
                cert_path,
                key_path: Some(key_path.clone()),
                cert,
            }),
            Err(e) => tracing::debug!("skipping {}: {e}", cert_path.display()),
        }
    }
    (out, problems)
}

/// Signs for a certificate with the agent's plain key of the same key pair: an OpenSSH agent
/// signs only for identities it holds, and holds the key, not the certificate, when the
/// certificate comes from a `CertificateFile` (OpenSSH's client does the same).
struct PlainKeySigner<'a> {
    agent: &'a mut AgentClient<tokio::net::UnixStream>,
    key: AgentIdentity,
}

impl russh::Signer for PlainKeySigner<'_> {
    type Error = russh::AgentAuthError;

    // The trait's signature spells out `+ Send`; russh's own impl keeps the same form.
    #[allow(clippy::manual_async_fn)]
    fn auth_sign(
        &mut self,
        _certificate: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        async move {
            self.agent
                .sign_request(&self.key, hash_alg, to_sign)
                .await
                .map_err(Into::into)
        }
    }
}

/// Authenticates `handle` as `input.user`: certificates (agent, then files), every agent key,
/// then every identity file that exists. Returns what was tried on failure; when a
/// certificate was held back because of its validity window and nothing else worked, that is
/// the error.
pub(crate) async fn authenticate<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    input: AuthInput<'_>,
) -> Result<(), ErrorKind> {
    let mut tried = Vec::new();
    let mut held_back: Vec<CertWindow> = Vec::new();
    let now = now_unix();
    let (file_certs, mut cert_problems) = file_certificates(&input);
    for p in &cert_problems {
        tracing::warn!("certificate not used: {p}");
    }
    // Keys `IdentitiesOnly` lets through from the agent.
    let wanted: Vec<KeyData> = input
        .identity_files
        .iter()
        .filter_map(|p| identity_public(p))
        .chain(file_certs.iter().map(|c| c.cert.public_key().clone()))
        .collect();
    let socket = match input.agent {
        AgentChoice::Off => None,
        AgentChoice::Socket(p) => Some(p.clone()),
        AgentChoice::FromEnv => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
    };
    let mut agent = None;
    if let Some(socket) = socket
        && let Ok(mut client) = AgentClient::connect_uds(&socket).await
    {
        if let Some(binding) = handle.agent_session_binding() {
            // Lets an OpenSSH agent apply destination constraints; older agents refuse it.
            let _ = client.bind_session(binding, false).await;
        }
        let identities = client.request_identities().await.unwrap_or_default();
        agent = Some((client, identities));
    }
    let allowed = |k: &KeyData| !input.identities_only || wanted.contains(k);
    let label = |comment: &str| {
        if comment.is_empty() {
            String::new()
        } else {
            format!(" ({comment})")
        }
    };

    // 1. The agent's certificates.
    if let Some((client, identities)) = agent.as_mut() {
        for id in identities.iter() {
            let AgentIdentity::Certificate {
                certificate,
                comment,
            } = id
            else {
                continue;
            };
            if !allowed(certificate.public_key()) {
                continue;
            }
            let window = CertWindow::of(
                format!("agent certificate{}", label(comment)),
                certificate,
                now,
            );
            if !window.is_valid() {
                tracing::warn!("not offered: {window}");
                held_back.push(window);
                continue;
            }
            let hash = rsa_hash(handle, certificate.algorithm().is_rsa()).await;
            tried.push(format!(
                "agent certificate {:?}{}",
                certificate.key_id(),
                label(comment)
            ));
            match handle
                .authenticate_certificate_with(input.user, certificate.clone(), hash, client)
                .await
            {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    if handle.is_closed() {
                        return Err(ErrorKind::Disconnected(format!(
                            "during agent certificate auth: {e}"
                        )));
                    }
                }
            }
        }
    }

    // 2. Certificate files, with their identity files.
    for fc in &file_certs {
        let window = CertWindow::of(fc.cert_path.display().to_string(), &fc.cert, now);
        if !window.is_valid() {
            tracing::warn!("not offered: {window}");
            held_back.push(window);
            continue;
        }
        let label = format!(
            "certificate {} (key ID {:?})",
            fc.cert_path.display(),
            fc.cert.key_id()
        );
        let Some(key_path) = &fc.key_path else {
            // No identity file holds the key: sign with the agent's key of the same pair.
            let plain = agent.as_ref().and_then(|(_, ids)| {
                ids.iter().find(|id| {
                    matches!(id, AgentIdentity::PublicKey { key, .. }
                        if key.key_data() == fc.cert.public_key())
                })
            });
            let (Some(plain), Some((client, _))) = (plain.cloned(), agent.as_mut()) else {
                cert_problems.push(ErrorKind::CertificateFile {
                    path: fc.cert_path.clone(),
                    reason: "neither an identity file nor ssh-agent holds its private key; \
                             add the key as IdentityFile or to the agent"
                        .into(),
                });
                continue;
            };
            let hash = rsa_hash(handle, fc.cert.algorithm().is_rsa()).await;
            tried.push(format!("{label} with the agent's key"));
            let mut signer = PlainKeySigner {
                agent: client,
                key: plain,
            };
            match handle
                .authenticate_certificate_with(input.user, fc.cert.clone(), hash, &mut signer)
                .await
            {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    if handle.is_closed() {
                        return Err(ErrorKind::Disconnected(format!(
                            "during agent certificate auth: {e}"
                        )));
                    }
                }
            }
            continue;
        };
        let key = input.keys.load(key_path, input.passphrase).await?;
        if key.public_key().key_data() != fc.cert.public_key() {
            cert_problems.push(ErrorKind::CertificateFile {
                path: fc.cert_path.clone(),
                reason: format!("certifies another key than {}", key_path.display()),
            });
            continue;
        }
        tried.push(label);
        match handle
            .authenticate_openssh_cert(input.user, key, fc.cert.clone())
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(ErrorKind::Disconnected(format!(
                    "during certificate auth: {e}"
                )));
            }
        }
    }

    // 3. The agent's plain keys.
    if let Some((client, identities)) = agent.as_mut() {
        for id in identities.iter() {
            let AgentIdentity::PublicKey { key, comment } = id else {
                continue;
            };
            if !allowed(key.key_data()) {
                continue;
            }
            let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
            tried.push(format!(
                "agent key {}{}",
                key.fingerprint(HashAlg::Sha256),
                label(comment)
            ));
            match handle
                .authenticate_publickey_with(input.user, key.clone(), hash, client)
                .await
            {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    if handle.is_closed() {
                        return Err(ErrorKind::Disconnected(format!("during agent auth: {e}")));
                    }
                }
            }
        }
    }

    // 4. Identity files.
    for path in input.identity_files {
        if !path.exists() {
            continue;
        }
        let key = input.keys.load(path, input.passphrase).await?;
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        tried.push(path.display().to_string());
        match handle
            .authenticate_publickey(input.user, PrivateKeyWithHashAlg::new(key, hash))
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(ErrorKind::Disconnected(format!("during key auth: {e}"))),
        }
    }
    if let Some(window) = held_back.into_iter().next() {
        return Err(ErrorKind::CertificateNotValid { window, tried });
    }
    if let Some(problem) = cert_problems.into_iter().next() {
        return Err(problem);
    }
    Err(ErrorKind::AuthFailed {
        user: input.user.to_string(),
        tried,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn window(after: u64, before: u64, now: u64) -> CertWindow {
        CertWindow {
            source: "/k/id-cert.pub".into(),
            key_id: "alice@corp".into(),
            valid_after: after,
            valid_before: before,
            now,
        }
    }

    #[test]
    fn validity_window_follows_openssh() {
        assert!(window(10, 20, 10).is_valid());
        assert!(!window(10, 20, 20).is_valid());
        assert_eq!(window(10, 20, 20).problem(), "expired");
        assert_eq!(window(10, 20, 9).problem(), "not yet valid");
        assert!(window(0, u64::MAX, 1_700_000_000).is_valid());
    }

    #[test]
    fn window_message_names_file_key_id_and_times() {
        let w = window(1_700_000_000, 1_700_003_600, 1_700_007_200);
        assert_eq!(
            w.to_string(),
            "certificate /k/id-cert.pub (key ID \"alice@corp\") is expired: valid from \
             2023-11-14T22:13:20.000Z to 2023-11-14T23:13:20.000Z, now 2023-11-15T00:13:20.000Z"
        );
        assert!(window(5, u64::MAX, 1).to_string().contains("to forever"));
    }

    #[test]
    fn cert_path_is_beside_the_key() {
        assert_eq!(
            cert_path_for(Path::new("/h/.ssh/id_ed25519")),
            PathBuf::from("/h/.ssh/id_ed25519-cert.pub")
        );
    }

    #[test]
    fn unreadable_certificate_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-cert.pub");
        std::fs::write(&p, "ssh-ed25519 AAAA nonsense\n").unwrap();
        let e = read_certificate(&p).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|m| m.contains("x-cert.pub") && m.contains("not an OpenSSH")),
            "{e:?}"
        );
    }
}
