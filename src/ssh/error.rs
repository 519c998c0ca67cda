//! Transport errors: each names the host, the bastions it is reached through, the hop where
//! things went wrong, and the stage, and says what a person can do about it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ssh::auth::CertWindow;
use crate::ssh::known_hosts::{CertProblem, Location};

/// Where in reaching a host something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resolving the host from the inventory and ssh_config.
    Config,
    /// TCP connect, or the bastion's `direct-tcpip` channel to the host.
    Connect,
    /// SSH version exchange and key exchange.
    Handshake,
    /// Checking the host key against known_hosts.
    HostKey,
    Auth,
    /// Opening a session channel.
    Channel,
    /// Running the command.
    Exec,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Config => "config",
            Stage::Connect => "connect",
            Stage::Handshake => "handshake",
            Stage::HostKey => "host key",
            Stage::Auth => "auth",
            Stage::Channel => "channel",
            Stage::Exec => "exec",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    UnknownHost,
    Config(String),
    ConnectTimeout(Duration),
    Connect(String),
    /// The bastion could not open a `direct-tcpip` channel to the host.
    Forward(String),
    HandshakeTimeout(Duration),
    Handshake(String),
    HostKeyUnknown {
        fingerprint: String,
    },
    HostKeyChanged {
        at: Location,
        fingerprint: String,
    },
    HostKeyRevoked {
        at: Location,
        fingerprint: String,
    },
    CertificateRefused {
        at: Location,
        problem: CertProblem,
    },
    AuthFailed {
        user: String,
        tried: Vec<String>,
    },
    PassphraseRequired(PathBuf),
    KeyFile {
        path: PathBuf,
        reason: String,
    },
    /// A user certificate that cannot be used (unreadable, no matching private key).
    CertificateFile {
        path: PathBuf,
        reason: String,
    },
    /// A user certificate outside its validity window, held back (never offered), and nothing
    /// else authenticated.
    CertificateNotValid {
        window: CertWindow,
        tried: Vec<String>,
    },
    ChannelRefused {
        attempts: u32,
        reason: String,
    },
    CommandTimeout(Duration),
    Disconnected(String),
    ExecRefused,
    SudoPasswordRequired,
    ReadOnlyHost,
    LearnFailed {
        file: PathBuf,
        reason: String,
    },
}

impl ErrorKind {
    pub fn stage(&self) -> Stage {
        match self {
            ErrorKind::UnknownHost | ErrorKind::Config(_) | ErrorKind::ReadOnlyHost => {
                Stage::Config
            }
            ErrorKind::ConnectTimeout(_) | ErrorKind::Connect(_) | ErrorKind::Forward(_) => {
                Stage::Connect
            }
            ErrorKind::HandshakeTimeout(_) | ErrorKind::Handshake(_) => Stage::Handshake,
            ErrorKind::HostKeyUnknown { .. }
            | ErrorKind::HostKeyChanged { .. }
            | ErrorKind::HostKeyRevoked { .. }
            | ErrorKind::CertificateRefused { .. }
            | ErrorKind::LearnFailed { .. } => Stage::HostKey,
            ErrorKind::AuthFailed { .. }
            | ErrorKind::PassphraseRequired(_)
            | ErrorKind::KeyFile { .. }
            | ErrorKind::CertificateFile { .. }
            | ErrorKind::CertificateNotValid { .. } => Stage::Auth,
            ErrorKind::ChannelRefused { .. } => Stage::Channel,
            ErrorKind::CommandTimeout(_)
            | ErrorKind::Disconnected(_)
            | ErrorKind::ExecRefused
            | ErrorKind::SudoPasswordRequired => Stage::Exec,
        }
    }

    /// Whether trying again later can help (a host key or credential problem needs a person).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout(_)
                | ErrorKind::Connect(_)
                | ErrorKind::Forward(_)
                | ErrorKind::HandshakeTimeout(_)
                | ErrorKind::Handshake(_)
                | ErrorKind::ChannelRefused { .. }
                | ErrorKind::Disconnected(_)
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnknownHost => f.write_str("not in the inventory"),
            ErrorKind::Config(m) => write!(f, "configuration: {m}"),
            ErrorKind::ConnectTimeout(d) => {
                write!(f, "connect timed out after {:.1}s (host down or filtered?)", d.as_secs_f64())
            }
            ErrorKind::Connect(m) => write!(f, "connect failed: {m}"),
            ErrorKind::Forward(m) => write!(f, "the bastion could not reach it: {m}"),
            ErrorKind::HandshakeTimeout(d) => write!(
                f,
                "SSH handshake timed out after {:.1}s (sshd stalled or overloaded?)",
                d.as_secs_f64()
            ),
            ErrorKind::Handshake(m) => write!(f, "SSH handshake failed: {m}"),
            ErrorKind::HostKeyUnknown { fingerprint } => write!(
                f,
                "host key unknown ({fingerprint}); compare it with `ssh-keygen -lf` on the host, then add it to known_hosts or connect once with --accept-new"
            ),
            ErrorKind::HostKeyChanged { at, fingerprint } => write!(
                f,
                "host key changed ({at}); it now presents {fingerprint}. This may be an attack: if the change is expected, remove that line"
            ),
            ErrorKind::HostKeyRevoked { at, fingerprint } => {
                write!(f, "host key revoked ({at}): {fingerprint}")
            }
            ErrorKind::CertificateRefused { at, problem } => {
                write!(f, "host certificate refused ({at}): {problem}")
            }
            ErrorKind::AuthFailed { user, tried } => {
                if tried.is_empty() {
                    write!(
                        f,
                        "authentication as {user} failed: no key to offer (no ssh-agent, no identity file found)"
                    )
                } else {
                    write!(f, "authentication as {user} failed (tried {})", tried.join(", "))
                }
            }
            ErrorKind::PassphraseRequired(p) => write!(
                f,
                "identity file {} is encrypted and there is no way to ask for its passphrase here; add it to ssh-agent (`ssh-add {}`) or use the console",
                p.display(),
                p.display()
            ),
            ErrorKind::KeyFile { path, reason } => {
                write!(f, "identity file {}: {reason}", path.display())
            }
            ErrorKind::CertificateFile { path, reason } => {
                write!(f, "certificate file {}: {reason}", path.display())
            }
            ErrorKind::CertificateNotValid { window, tried } => {
                write!(f, "{window}; it was not offered")?;
                if !tried.is_empty() {
                    write!(f, " (also tried {})", tried.join(", "))?;
                }
                f.write_str("; get a new certificate from your CA (`ssh-keygen -L -f FILE` shows one)")
            }
            ErrorKind::ChannelRefused { attempts, reason } => write!(
                f,
                "sshd refused a session channel {attempts} times ({reason}); check MaxSessions"
            ),
            ErrorKind::CommandTimeout(d) => {
                write!(f, "command timed out after {:.1}s; channel closed", d.as_secs_f64())
            }
            ErrorKind::Disconnected(m) => write!(f, "connection lost: {m}"),
            ErrorKind::ExecRefused => f.write_str("sshd refused to run the command"),
            ErrorKind::SudoPasswordRequired => f.write_str(
                "sudo asked for a password; allow the probes with NOPASSWD in sudoers or set sudo = false",
            ),
            ErrorKind::ReadOnlyHost => {
                f.write_str("host is read-only in the inventory; no change can be sent to it")
            }
            ErrorKind::LearnFailed { file, reason } => {
                write!(f, "could not record the new host key in {}: {reason}", file.display())
            }
        }
    }
}

/// An error reaching a host or running a command on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshError {
    /// The host that was asked for.
    pub host: String,
    /// Bastions on the way, outermost first.
    pub via: Vec<String>,
    /// The hop that failed (the host itself, or one of its bastions).
    pub hop: String,
    /// Boxed to keep `Result<_, SshError>` small.
    pub kind: Box<ErrorKind>,
}

impl SshError {
    pub fn new(host: &str, via: &[String], hop: &str, kind: ErrorKind) -> SshError {
        SshError {
            host: host.to_string(),
            via: via.to_vec(),
            hop: hop.to_string(),
            kind: Box::new(kind),
        }
    }

    pub fn stage(&self) -> Stage {
        self.kind.stage()
    }

    /// The same failure, seen from a host reached through this one.
    pub(crate) fn for_target(&self, host: &str, via: &[String]) -> SshError {
        SshError {
            host: host.to_string(),
            via: via.to_vec(),
            hop: self.hop.clone(),
            kind: self.kind.clone(),
        }
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if !self.via.is_empty() {
            write!(f, " via {}", self.via.join(" > "))?;
        }
        f.write_str(": ")?;
        if self.hop != self.host {
            write!(f, "at {}: ", self.hop)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for SshError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_host_hop_and_line() {
        let e = SshError::new(
            "db1",
            &["edge".to_string()],
            "db1",
            ErrorKind::HostKeyChanged {
                at: Location {
                    file: PathBuf::from("known_hosts"),
                    line: 14,
                },
                fingerprint: "SHA256:x".into(),
            },
        );
        assert!(
            e.to_string()
                .starts_with("db1 via edge: host key changed (known_hosts:14)")
        );
        assert_eq!(e.stage(), Stage::HostKey);
        let b = SshError::new(
            "edge",
            &[],
            "edge",
            ErrorKind::ConnectTimeout(Duration::from_secs(5)),
        )
        .for_target("db1", &["edge".to_string()]);
        assert!(
            b.to_string()
                .starts_with("db1 via edge: at edge: connect timed out after 5.0s")
        );
    }
}
