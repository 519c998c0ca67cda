//! Authentication of one hop: ssh-agent keys first, then identity files.
//!
//! Owns: talking to the agent (`SSH_AUTH_SOCK`, or a socket given in the options), loading
//! identity files (asking for a passphrase once through a callback, caching the decrypted key
//! in memory, never logging it), and offering keys to the server.
//!
//! Must not: request agent forwarding (the agent connection is only used to sign our own
//! authentication), or ask for a passphrase when no callback is set (headless modes fail).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};

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

/// Authenticates `handle` as `input.user`: every agent key, then every identity file that
/// exists. Returns what was tried on failure.
pub(crate) async fn authenticate<H: russh::client::Handler>(
    handle: &mut Handle<H>,
    input: AuthInput<'_>,
) -> Result<(), ErrorKind> {
    let mut tried = Vec::new();
    let socket = match input.agent {
        AgentChoice::Off => None,
        AgentChoice::Socket(p) => Some(p.clone()),
        AgentChoice::FromEnv => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
    };
    if let Some(socket) = socket
        && let Ok(mut agent) = AgentClient::connect_uds(&socket).await
    {
        if let Some(binding) = handle.agent_session_binding() {
            // Lets an OpenSSH agent apply destination constraints; older agents refuse it.
            let _ = agent.bind_session(binding, false).await;
        }
        let identities = agent.request_identities().await.unwrap_or_default();
        for id in identities {
            let AgentIdentity::PublicKey { key, comment } = id else {
                continue;
            };
            let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
            tried.push(format!(
                "agent key {}{}",
                key.fingerprint(HashAlg::Sha256),
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(" ({comment})")
                }
            ));
            match handle
                .authenticate_publickey_with(input.user, key, hash, &mut agent)
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
    Err(ErrorKind::AuthFailed {
        user: input.user.to_string(),
        tried,
    })
}
