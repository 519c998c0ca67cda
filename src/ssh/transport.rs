//! The connection pool and fan-out: one authenticated connection per host, targets carried
//! in `direct-tcpip` channels of their bastion, bounded handshakes and channels, timeouts,
//! keepalive, reconnection, per-host state on a `watch` channel, and `exec`.
//!
//! Must not: send anything but a [`ReadCommand`] from a `Transport<ReadOnly>`; request a PTY,
//! X11 or agent forwarding; trust a host key the known_hosts files do not vouch for.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, Disconnect, Preferred, kex};
use tokio::sync::{Semaphore, watch};

use crate::inventory::Inventory;
use crate::ssh::auth::{AgentChoice, AuthInput, KeyCache, PassphraseFn, authenticate};
use crate::ssh::command::{MutatingCommand, ReadCommand, with_remote_timeout};
use crate::ssh::config::{HostConfig, SshConfig, StrictHostKeyChecking, expand_tokens};
use crate::ssh::error::{ErrorKind, SshError};
use crate::ssh::known_hosts::{self, HostQuery, KnownHostsFile, Presented, Verdict};
use crate::ssh::log::{CommandLog, CommandRecord, rfc3339};

/// How unknown host keys are treated. A changed key is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Learn unknown keys into the user's known_hosts (`accept-new`).
    AcceptNew,
}

/// Limits, timeouts and sources of a transport.
#[derive(Clone)]
pub struct TransportOptions {
    /// TCP connect, or the bastion opening its `direct-tcpip` channel.
    pub connect_timeout: Duration,
    /// SSH version exchange, key exchange and authentication.
    pub handshake_timeout: Duration,
    /// One command, from channel open to close.
    pub command_timeout: Duration,
    /// Keepalive after this much silence; `keepalive_max` unanswered ones drop the connection.
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
    /// Unauthenticated handshakes in flight per sshd (OpenSSH's `MaxStartups` starts refusing
    /// at 10 by default).
    pub max_handshakes_per_sshd: usize,
    /// Session channels open at once per connection (OpenSSH's `MaxSessions` is 10); lowered
    /// automatically when sshd refuses channels.
    pub max_channels_per_connection: usize,
    /// Times a refused session channel is retried before the command fails.
    pub channel_open_retries: u32,
    /// Bytes of stdout plus stderr kept per command; beyond it the output is truncated.
    pub output_cap: usize,
    pub host_keys: HostKeyPolicy,
    /// known_hosts files read for every host, in addition to the inventory's and ssh_config's.
    pub known_hosts: Vec<PathBuf>,
    /// Read `~/.ssh/known_hosts` (or ssh_config's `UserKnownHostsFile`) too.
    pub user_known_hosts: bool,
    /// Where `accept-new` appends learned keys (default `~/.ssh/known_hosts`).
    pub learn_into: Option<PathBuf>,
    pub agent: AgentChoice,
    /// Asks for an encrypted key's passphrase; `None` in headless modes.
    pub passphrase: Option<PassphraseFn>,
    /// ssh_config to consult; `None` reads `~/.ssh/config`.
    pub ssh_config: Option<SshConfig>,
    /// Identity files tried after the agent when neither the inventory nor ssh_config name
    /// any (OpenSSH's defaults).
    pub default_identities: bool,
    /// Also have the host kill a command (`timeout -s KILL`) one second after
    /// `command_timeout`, so a timed-out command never lingers and holds a session.
    pub remote_timeout: bool,
    /// Command log; `None` uses `$XDG_STATE_HOME/rampart/commands.jsonl`.
    pub command_log: Option<PathBuf>,
    /// Reconnect attempts after an established connection drops, with jittered exponential
    /// backoff from `reconnect_base` up to `reconnect_max`.
    pub reconnect_attempts: u32,
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
}

impl std::fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_handshakes_per_sshd", &self.max_handshakes_per_sshd)
            .field(
                "max_channels_per_connection",
                &self.max_channels_per_connection,
            )
            .field("host_keys", &self.host_keys)
            .finish_non_exhaustive()
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
            max_handshakes_per_sshd: 4,
            max_channels_per_connection: 8,
            channel_open_retries: 20,
            output_cap: 4 * 1024 * 1024,
            host_keys: HostKeyPolicy::Strict,
            known_hosts: Vec::new(),
            user_known_hosts: true,
            learn_into: None,
            agent: AgentChoice::FromEnv,
            passphrase: None,
            ssh_config: None,
            default_identities: true,
            remote_timeout: true,
            command_log: None,
            reconnect_attempts: 5,
            reconnect_base: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(10),
        }
    }
}

impl TransportOptions {
    /// Options from the inventory's `[transport]` table.
    pub fn from_inventory(inv: &Inventory) -> TransportOptions {
        let t = &inv.transport;
        let secs = |s: f64, d: Duration| {
            if s.is_finite() && s > 0.0 {
                Duration::from_secs_f64(s)
            } else {
                d
            }
        };
        let d = TransportOptions::default();
        TransportOptions {
            connect_timeout: secs(t.connect_timeout_secs, d.connect_timeout),
            handshake_timeout: secs(t.connect_timeout_secs * 2.0, d.handshake_timeout),
            command_timeout: secs(t.command_timeout_secs, d.command_timeout),
            keepalive_interval: secs(t.keepalive_secs, d.keepalive_interval),
            keepalive_max: t.keepalive_max as usize,
            max_handshakes_per_sshd: (t.max_handshakes as usize).max(1),
            max_channels_per_connection: (t.max_sessions as usize).max(1),
            output_cap: usize::try_from(t.output_cap_bytes).unwrap_or(d.output_cap),
            ..d
        }
    }
}

/// One host as the transport reaches it: the inventory's values completed by ssh_config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The inventory name (or a `ProxyJump` host's name).
    pub name: String,
    /// What to connect to (IP or DNS name).
    pub address: String,
    pub port: u16,
    pub user: String,
    /// The bastion this host is reached through (another spec's name).
    pub via: Option<String>,
    pub sudo: bool,
    pub identity_files: Vec<PathBuf>,
    /// OpenSSH user certificates (`CertificateFile`), offered with the matching private key.
    /// A `KEY-cert.pub` beside an identity file is found without being listed.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentitiesOnly`: of the agent's keys, offer only those matching a configured file.
    pub identities_only: bool,
    pub known_hosts: Vec<PathBuf>,
    pub host_keys: HostKeyPolicy,
    pub read_only: bool,
}

impl HostSpec {
    /// A direct host with defaults, for tests and tools.
    pub fn direct(name: &str, address: &str, port: u16, user: &str) -> HostSpec {
        HostSpec {
            name: name.to_string(),
            address: address.to_string(),
            port,
            user: user.to_string(),
            via: None,
            sudo: false,
            identity_files: Vec::new(),
            certificate_files: Vec::new(),
            identities_only: false,
            known_hosts: Vec::new(),
            host_keys: HostKeyPolicy::Strict,
            read_only: false,
        }
    }

    fn query(&self) -> HostQuery {
        HostQuery::new([self.address.clone(), self.name.clone()], self.port)
    }
}

fn default_identity_files() -> Vec<PathBuf> {
    let ssh = crate::paths::home_dir().join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| ssh.join(n))
        .collect()
}

/// Resolves every inventory host (and `ProxyJump` hosts ssh_config adds) into specs.
/// Inventory values come first; for a host the inventory names only by its ssh_config alias,
/// ssh_config's `HostName`, `User` and `Port` apply.
pub fn resolve_specs(
    inv: &Inventory,
    cfg: &SshConfig,
    opts: &TransportOptions,
) -> Result<Vec<HostSpec>, SshError> {
    let mut specs: Vec<HostSpec> = Vec::new();
    let mut extra: Vec<HostSpec> = Vec::new();
    for h in &inv.hosts {
        let hc = cfg.lookup(&h.name);
        let from_cfg = h.address_from_name;
        let address = match (&hc.hostname, from_cfg) {
            (Some(hn), true) => hn.clone(),
            _ => h.address.to_string(),
        };
        let port = if from_cfg {
            hc.port.unwrap_or(h.port)
        } else {
            h.port
        };
        let user = if from_cfg {
            hc.user.clone().unwrap_or_else(|| h.user.clone())
        } else {
            h.user.clone()
        };
        let mut spec = HostSpec {
            name: h.name.clone(),
            address,
            port,
            user,
            via: h.bastion.clone(),
            sudo: h.sudo,
            identity_files: Vec::new(),
            certificate_files: Vec::new(),
            identities_only: false,
            known_hosts: Vec::new(),
            host_keys: opts.host_keys,
            read_only: h.read_only || inv.read_only(),
        };
        complete_from_config(&mut spec, &hc, &h.identity_files, &h.known_hosts, opts);
        if spec.via.is_none()
            && let Some(jumps) = &hc.proxy_jump
        {
            let mut prev: Option<String> = None;
            for j in jumps {
                let name = if inv.host(&j.host).is_some() {
                    j.host.clone()
                } else {
                    let jc = cfg.lookup(&j.host);
                    let mut js = HostSpec {
                        name: j.host.clone(),
                        address: jc.hostname.clone().unwrap_or_else(|| j.host.clone()),
                        port: j.port.or(jc.port).unwrap_or(22),
                        user: j
                            .user
                            .clone()
                            .or_else(|| jc.user.clone())
                            .unwrap_or_else(|| h.user.clone()),
                        via: prev.clone(),
                        sudo: false,
                        identity_files: Vec::new(),
                        certificate_files: Vec::new(),
                        identities_only: false,
                        known_hosts: Vec::new(),
                        host_keys: opts.host_keys,
                        read_only: true,
                    };
                    complete_from_config(&mut js, &jc, &h.identity_files, &h.known_hosts, opts);
                    if !extra.iter().any(|e: &HostSpec| e.name == js.name) {
                        extra.push(js);
                    }
                    j.host.clone()
                };
                prev = Some(name);
            }
            spec.via = prev;
        }
        specs.push(spec);
    }
    for e in extra {
        if !specs.iter().any(|s| s.name == e.name) {
            specs.push(e);
        }
    }
    Ok(specs)
}

fn complete_from_config(
    spec: &mut HostSpec,
    hc: &HostConfig,
    inv_identities: &[PathBuf],
    inv_known_hosts: &[PathBuf],
    opts: &TransportOptions,
) {
    let expand = |p: &PathBuf| {
        PathBuf::from(expand_tokens(
            &p.to_string_lossy(),
            &spec.address,
            &spec.name,
            &spec.user,
            spec.port,
        ))
    };
    let mut ids: Vec<PathBuf> = inv_identities.to_vec();
    ids.extend(hc.identity_files.iter().map(expand));
    if ids.is_empty() && opts.default_identities {
        ids = default_identity_files();
    }
    spec.identity_files = ids;
    spec.certificate_files = hc.certificate_files.iter().map(expand).collect();
    spec.identities_only = hc.identities_only.unwrap_or(false);
    let mut kh: Vec<PathBuf> = inv_known_hosts.to_vec();
    kh.extend(opts.known_hosts.iter().cloned());
    if opts.user_known_hosts {
        if hc.user_known_hosts_files.is_empty() {
            let ssh = crate::paths::home_dir().join(".ssh");
            kh.push(ssh.join("known_hosts"));
            kh.push(ssh.join("known_hosts2"));
        } else {
            kh.extend(hc.user_known_hosts_files.iter().map(expand));
        }
    }
    if let Some(l) = &opts.learn_into
        && !kh.contains(l)
    {
        kh.push(l.clone());
    }
    spec.known_hosts = kh;
    if hc.strict_host_key_checking == Some(StrictHostKeyChecking::AcceptNew) {
        spec.host_keys = HostKeyPolicy::AcceptNew;
    }
}

/// The connection state of a host, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Not connected yet.
    Idle,
    Connecting,
    /// Key exchange and authentication.
    Authenticating,
    Ready {
        /// Key exchange used OpenSSH's strict-kex (Terrapin countermeasure).
        strict_kex: bool,
    },
    /// An established connection dropped; trying again.
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// The host key was refused (unknown, changed, revoked, bad certificate).
    HostKeyRefused {
        fingerprint: String,
        /// The known_hosts line involved (`file:line`), if any.
        location: Option<String>,
        reason: String,
    },
}

impl ConnState {
    pub fn is_ready(&self) -> bool {
        matches!(self, ConnState::Ready { .. })
    }

    /// A short word for tables.
    pub fn label(&self) -> &'static str {
        match self {
            ConnState::Idle => "idle",
            ConnState::Connecting => "connecting",
            ConnState::Authenticating => "authenticating",
            ConnState::Ready { .. } => "ready",
            ConnState::Reconnecting { .. } => "reconnecting",
            ConnState::Failed { .. } => "failed",
            ConnState::HostKeyRefused { .. } => "host key refused",
        }
    }
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnState::Ready { strict_kex } => {
                write!(f, "ready{}", if *strict_kex { " (strict-kex)" } else { "" })
            }
            ConnState::Reconnecting { attempt, reason } => {
                write!(f, "reconnecting (attempt {attempt}): {reason}")
            }
            ConnState::Failed { reason } => write!(f, "failed: {reason}"),
            ConnState::HostKeyRefused { reason, .. } => write!(f, "host key refused: {reason}"),
            other => f.write_str(other.label()),
        }
    }
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command was cut short (truncated) or killed by a signal.
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    /// Output went over the cap; the rest was dropped and the channel closed.
    pub truncated: bool,
    pub duration: Duration,
}

/// Type-state marker: only read-only probes can be sent.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnly;
/// Type-state marker: mutating commands can be sent too.
#[derive(Debug, Clone, Copy)]
pub struct ReadWrite;

/// The capability to send mutating commands. Only [`WriteGrant::obtain`] makes one, and it
/// refuses in read-only mode, so a `Transport<ReadWrite>` cannot exist in that mode.
#[derive(Debug)]
pub struct WriteGrant {
    _private: (),
}

/// Why no write capability was granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadOnlyReason {
    #[error("rampart runs read-only (--read-only or a read-only command such as audit/watch)")]
    Flag,
    #[error("the inventory sets read_only = true")]
    Inventory,
}

impl WriteGrant {
    /// Grants writing unless the run is read-only (`read_only_run`: `--read-only`, or a
    /// command like `audit`/`watch` that never changes hosts) or the inventory is.
    pub fn obtain(inv: &Inventory, read_only_run: bool) -> Result<WriteGrant, ReadOnlyReason> {
        if read_only_run {
            return Err(ReadOnlyReason::Flag);
        }
        if inv.read_only() {
            return Err(ReadOnlyReason::Inventory);
        }
        Ok(WriteGrant { _private: () })
    }
}

/// The SSH transport. Clones share one pool of connections.
pub struct Transport<M = ReadOnly> {
    inner: Arc<Inner>,
    _mode: PhantomData<M>,
}

impl<M> Clone for Transport<M> {
    fn clone(&self) -> Self {
        Transport {
            inner: Arc::clone(&self.inner),
            _mode: PhantomData,
        }
    }
}

struct Slot {
    spec: HostSpec,
    /// Bastions from the outermost to the nearest.
    via: Vec<String>,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    state: watch::Sender<ConnState>,
    reconnecting: AtomicBool,
}

struct Conn {
    handle: Handle<ClientHandler>,
    channels: Arc<Semaphore>,
    /// Current channel limit (lowered when sshd refuses channels).
    limit: AtomicUsize,
    closed: Arc<AtomicBool>,
    /// Keeps the bastion's connection (carrying this one) alive.
    _parent: Option<Arc<Conn>>,
}

impl Conn {
    fn alive(&self) -> bool {
        !self.closed.load(Ordering::SeqCst) && !self.handle.is_closed()
    }
}

struct Inner {
    slots: BTreeMap<String, Arc<Slot>>,
    opts: TransportOptions,
    handshakes: Mutex<HashMap<String, Arc<Semaphore>>>,
    keys: KeyCache,
    log: CommandLog,
    learn_lock: tokio::sync::Mutex<()>,
    lost_tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Transport<ReadOnly> {
    /// A read-only transport for every inventory host. Connects lazily, on first use.
    /// Must be called inside a tokio runtime (it starts the reconnect supervisor).
    pub fn new(inv: &Inventory, opts: TransportOptions) -> Result<Transport<ReadOnly>, SshError> {
        let cfg = match &opts.ssh_config {
            Some(c) => c.clone(),
            None => SshConfig::load_user().map_err(|e| {
                SshError::new(
                    "~/.ssh/config",
                    &[],
                    "~/.ssh/config",
                    ErrorKind::Config(e.to_string()),
                )
            })?,
        };
        let specs = resolve_specs(inv, &cfg, &opts)?;
        Transport::from_specs(specs, opts)
    }

    /// A transport over explicit host specs (tests, tools).
    pub fn from_specs(
        specs: Vec<HostSpec>,
        opts: TransportOptions,
    ) -> Result<Transport<ReadOnly>, SshError> {
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let by_name: HashMap<String, HostSpec> =
            specs.iter().map(|s| (s.name.clone(), s.clone())).collect();
        let mut slots = BTreeMap::new();
        for spec in specs {
            // Walk the bastion chain, refusing unknown bastions and loops.
            let mut via = Vec::new();
            let mut cur = spec.via.clone();
            while let Some(b) = cur {
                if via.contains(&b) || b == spec.name || via.len() > names.len() {
                    return Err(SshError::new(
                        &spec.name,
                        &via,
                        &spec.name,
                        ErrorKind::Config(format!("bastion loop through {b}")),
                    ));
                }
                let Some(bs) = by_name.get(&b) else {
                    return Err(SshError::new(
                        &spec.name,
                        &via,
                        &spec.name,
                        ErrorKind::Config(format!("bastion {b} is not a known host")),
                    ));
                };
                via.push(b.clone());
                cur = bs.via.clone();
            }
            via.reverse();
            let (state, _) = watch::channel(ConnState::Idle);
            slots.insert(
                spec.name.clone(),
                Arc::new(Slot {
                    spec,
                    via,
                    conn: tokio::sync::Mutex::new(None),
                    state,
                    reconnecting: AtomicBool::new(false),
                }),
            );
        }
        let log_path = opts
            .command_log
            .clone()
            .unwrap_or_else(CommandLog::default_path);
        let (lost_tx, lost_rx) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            slots,
            opts,
            handshakes: Mutex::new(HashMap::new()),
            keys: KeyCache::default(),
            log: CommandLog::new(log_path),
            learn_lock: tokio::sync::Mutex::new(()),
            lost_tx,
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), lost_rx));
        Ok(Transport {
            inner,
            _mode: PhantomData,
        })
    }

    /// The same pool, able to send mutating commands.
    pub fn with_write(self, _grant: WriteGrant) -> Transport<ReadWrite> {
        Transport {
            inner: self.inner,
            _mode: PhantomData,
        }
    }
}

impl Transport<ReadWrite> {
    /// Sends a mutating command. Refused for a host marked read-only in the inventory.
    pub async fn exec_mutating(
        &self,
        host: &str,
        cmd: &MutatingCommand,
    ) -> Result<ExecOutput, SshError> {
        let slot = self.inner.slot(host)?;
        if slot.spec.read_only {
            return Err(SshError::new(
                host,
                &slot.via,
                host,
                ErrorKind::ReadOnlyHost,
            ));
        }
        let text = cmd.render(slot.spec.sudo);
        self.inner
            .run(&slot, "mutating", cmd.name(), &text, cmd.stdin_bytes())
            .await
    }

    /// A read-only view of the same pool (for collectors).
    pub fn read_only(&self) -> Transport<ReadOnly> {
        Transport {
            inner: Arc::clone(&self.inner),
            _mode: PhantomData,
        }
    }
}

impl<M> Transport<M> {
    /// Runs a read-only probe (or framed script) on a host, connecting first if needed.
    pub async fn exec(&self, host: &str, cmd: &ReadCommand) -> Result<ExecOutput, SshError> {
        let slot = self.inner.slot(host)?;
        let text = cmd.render(slot.spec.sudo);
        self.inner.run(&slot, "read", cmd.name(), &text, None).await
    }

    /// Runs the same probe on many hosts at once (each host's limits still apply).
    pub async fn exec_many(
        &self,
        hosts: &[String],
        cmd: &ReadCommand,
    ) -> Vec<(String, Result<ExecOutput, SshError>)> {
        let futs = hosts
            .iter()
            .map(|h| async move { (h.clone(), self.exec(h, cmd).await) });
        futures::future::join_all(futs).await
    }

    /// Connects (if not connected) without running anything.
    pub async fn connect(&self, host: &str) -> Result<(), SshError> {
        let slot = self.inner.slot(host)?;
        Arc::clone(&self.inner).conn(&slot).await.map(|_| ())
    }

    /// Connects to every host at once; returns each host's result.
    pub async fn connect_all(&self) -> Vec<(String, Result<(), SshError>)> {
        let futs = self
            .hosts()
            .into_iter()
            .map(|h| async move { (h.clone(), self.connect(&h).await) });
        futures::future::join_all(futs).await
    }

    /// Host names, in name order.
    pub fn hosts(&self) -> Vec<String> {
        self.inner.slots.keys().cloned().collect()
    }

    pub fn spec(&self, host: &str) -> Option<&HostSpec> {
        self.inner.slots.get(host).map(|s| &s.spec)
    }

    /// Bastions a host is reached through, outermost first.
    pub fn via(&self, host: &str) -> Vec<String> {
        self.inner
            .slots
            .get(host)
            .map(|s| s.via.clone())
            .unwrap_or_default()
    }

    /// Follows a host's connection state.
    pub fn subscribe(&self, host: &str) -> Option<watch::Receiver<ConnState>> {
        self.inner.slots.get(host).map(|s| s.state.subscribe())
    }

    /// Every host's current state.
    pub fn states(&self) -> BTreeMap<String, ConnState> {
        self.inner
            .slots
            .iter()
            .map(|(n, s)| (n.clone(), s.state.borrow().clone()))
            .collect()
    }

    /// Where commands are logged.
    pub fn command_log_path(&self) -> PathBuf {
        self.inner.log.path().to_path_buf()
    }

    /// Closes every connection (targets before their bastions).
    pub async fn close(&self) {
        let mut slots: Vec<&Arc<Slot>> = self.inner.slots.values().collect();
        slots.sort_by_key(|s| std::cmp::Reverse(s.via.len()));
        for slot in slots {
            let conn = slot.conn.lock().await.take();
            if let Some(c) = conn {
                c.closed.store(true, Ordering::SeqCst);
                let _ = c
                    .handle
                    .disconnect(Disconnect::ByApplication, "rampart done", "en")
                    .await;
            }
            slot.state.send_replace(ConnState::Idle);
        }
    }
}

/// Restarts dropped connections in the background, so the console sees hosts come back.
async fn supervise(inner: Weak<Inner>, mut lost: tokio::sync::mpsc::UnboundedReceiver<String>) {
    while let Some(host) = lost.recv().await {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let Some(slot) = strong.slots.get(&host).cloned() else {
            continue;
        };
        if slot.reconnecting.swap(true, Ordering::SeqCst) {
            continue;
        }
        let weak = Weak::clone(&inner);
        drop(strong);
        tokio::spawn(async move {
            reconnect_loop(weak, slot).await;
        });
    }
}

async fn reconnect_loop(inner: Weak<Inner>, slot: Arc<Slot>) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            break;
        };
        let opts = &strong.opts;
        if attempt >= opts.reconnect_attempts {
            break;
        }
        attempt += 1;
        let delay = backoff(opts.reconnect_base, opts.reconnect_max, attempt);
        let reason = match &*slot.state.borrow() {
            ConnState::Reconnecting { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        slot.state
            .send_replace(ConnState::Reconnecting { attempt, reason });
        tokio::time::sleep(delay).await;
        match Arc::clone(&strong).conn(&slot).await {
            Ok(_) => break,
            Err(e) if !e.kind.is_transient() => break,
            Err(e) => {
                slot.state.send_replace(ConnState::Reconnecting {
                    attempt,
                    reason: e.kind.to_string(),
                });
            }
        }
    }
    if let ConnState::Reconnecting { reason, .. } = &*slot.state.borrow() {
        let reason = reason.clone();
        slot.state.send_replace(ConnState::Failed { reason });
    }
    slot.reconnecting.store(false, Ordering::SeqCst);
}

/// Exponential backoff with ±50% jitter, so hosts behind one bastion do not reconnect in
/// lockstep.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + fastrand::f64())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Inner {
    fn slot(&self, host: &str) -> Result<Arc<Slot>, SshError> {
        self.slots
            .get(host)
            .cloned()
            .ok_or_else(|| SshError::new(host, &[], host, ErrorKind::UnknownHost))
    }

    fn handshake_limiter(&self, key: &str) -> Arc<Semaphore> {
        let mut map = self.handshakes.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            map.entry(key.to_string()).or_insert_with(|| {
                Arc::new(Semaphore::new(self.opts.max_handshakes_per_sshd.max(1)))
            }),
        )
    }

    /// The host's live connection, connecting (and connecting its bastions) if needed. One
    /// caller connects while the others wait for it, so no duplicate connections pile up.
    fn conn<'a>(
        self: Arc<Self>,
        slot: &'a Arc<Slot>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Conn>, SshError>> + Send + 'a>>
    {
        Box::pin(async move {
            let mut guard = slot.conn.lock().await;
            if let Some(c) = guard.as_ref() {
                if c.alive() {
                    return Ok(Arc::clone(c));
                }
                *guard = None;
            }
            let parent = match &slot.spec.via {
                Some(b) => {
                    let bslot = self.slot(b)?;
                    match Arc::clone(&self).conn(&bslot).await {
                        Ok(c) => Some(c),
                        Err(e) => {
                            let e = e.for_target(&slot.spec.name, &slot.via);
                            slot.state.send_replace(ConnState::Failed {
                                reason: format!("at {}: {}", e.hop, e.kind),
                            });
                            return Err(e);
                        }
                    }
                }
                None => None,
            };
            match Arc::clone(&self).connect_one(slot, parent).await {
                Ok(c) => {
                    *guard = Some(Arc::clone(&c));
                    Ok(c)
                }
                Err(kind) => {
                    slot.state.send_replace(state_for_error(&kind));
                    Err(SshError::new(
                        &slot.spec.name,
                        &slot.via,
                        &slot.spec.name,
                        kind,
                    ))
                }
            }
        })
    }

    fn client_config(&self, spec: &HostSpec, files: &[KnownHostsFile]) -> client::Config {
        let query = spec.query();
        let mut preferred = Preferred::default();
        // curve25519 first: one round trip like ML-KEM hybrids but far less to compute and
        // send, which is what bounds a cold fan-out; strict-kex markers stay in the list.
        let mut kexes: Vec<kex::Name> = vec![kex::CURVE25519, kex::MLKEM768X25519_SHA256];
        for k in Preferred::DEFAULT.kex.iter() {
            if !kexes.contains(k) {
                kexes.push(*k);
            }
        }
        preferred.kex = kexes.into();
        // Ask first for key types known_hosts already has for this host, as OpenSSH does,
        // so a host with several keys is not reported "unknown".
        let known = known_hosts::known_algorithms(files, &query);
        if !known.is_empty() {
            let mut keys: Vec<russh::keys::Algorithm> = Vec::new();
            for k in Preferred::DEFAULT.key.iter() {
                let is_rsa =
                    |a: &russh::keys::Algorithm| matches!(a, russh::keys::Algorithm::Rsa { .. });
                let same_family = |a: &russh::keys::Algorithm| a == k || (is_rsa(a) && is_rsa(k));
                if known.iter().any(same_family) {
                    keys.push(k.clone());
                }
            }
            for k in Preferred::DEFAULT.key.iter() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            preferred.key = keys.into();
        }
        if known_hosts::has_cert_authority(files, &query) {
            preferred.host_key_certificates = Preferred::DEFAULT.key.clone();
        }
        // Compression stays off: it costs latency and CPU and has a history of attacks.
        preferred.compression = (&[russh::compression::NONE][..]).into();
        client::Config {
            preferred,
            keepalive_interval: Some(self.opts.keepalive_interval),
            keepalive_max: self.opts.keepalive_max,
            nodelay: true,
            ..client::Config::default()
        }
    }

    async fn connect_one(
        self: Arc<Self>,
        slot: &Arc<Slot>,
        parent: Option<Arc<Conn>>,
    ) -> Result<Arc<Conn>, ErrorKind> {
        let spec = &slot.spec;
        let opts = &self.opts;
        if !slot.reconnecting.load(Ordering::SeqCst) {
            slot.state.send_replace(ConnState::Connecting);
        }
        let files: Vec<KnownHostsFile> = spec
            .known_hosts
            .iter()
            .filter_map(|p| KnownHostsFile::load(p).ok())
            .collect();
        let config = Arc::new(self.client_config(spec, &files));
        let limiter_key = format!(
            "{}|{}:{}",
            spec.via.as_deref().unwrap_or(""),
            spec.address,
            spec.port
        );
        let limiter = self.handshake_limiter(&limiter_key);
        // Held until authenticated: that is what sshd's MaxStartups counts.
        let _permit = limiter
            .acquire_owned()
            .await
            .map_err(|_| ErrorKind::Connect("transport closed".into()))?;

        // sshd drops connections beyond MaxStartups right after accepting them, and its count
        // of unauthenticated connections lags our own by a moment: a connection reset or
        // closed before the SSH banner is retried a few times with jitter, not reported.
        let mut attempt = 0u32;
        let (handle, closed, established, strict_kex) = loop {
            attempt += 1;
            let closed = Arc::new(AtomicBool::new(false));
            let established = Arc::new(AtomicBool::new(false));
            let refusal = Arc::new(Mutex::new(None));
            let strict_kex = Arc::new(AtomicBool::new(false));
            let handler = ClientHandler {
                host: spec.name.clone(),
                query: spec.query(),
                files: files.clone(),
                policy: spec.host_keys,
                learn_into: opts
                    .learn_into
                    .clone()
                    .unwrap_or_else(|| crate::paths::home_dir().join(".ssh/known_hosts")),
                inner: Arc::downgrade(&self),
                refusal: Arc::clone(&refusal),
                closed: Arc::clone(&closed),
                established: Arc::clone(&established),
                strict_kex: Arc::clone(&strict_kex),
                lost_reason: Mutex::new(None),
            };

            let handshake = async {
                let handle = match &parent {
                    None => {
                        let tcp = tokio::time::timeout(
                            opts.connect_timeout,
                            tokio::net::TcpStream::connect((spec.address.as_str(), spec.port)),
                        )
                        .await
                        .map_err(|_| ErrorKind::ConnectTimeout(opts.connect_timeout))?
                        .map_err(|e| ErrorKind::Connect(e.to_string()))?;
                        let _ = tcp.set_nodelay(true);
                        slot_state_authenticating(slot);
                        tokio::time::timeout(
                            opts.handshake_timeout,
                            client::connect_stream(Arc::clone(&config), tcp, handler),
                        )
                        .await
                    }
                    Some(p) => {
                        let ch = tokio::time::timeout(
                            opts.connect_timeout,
                            p.handle.channel_open_direct_tcpip(
                                spec.address.as_str(),
                                u32::from(spec.port),
                                "127.0.0.1",
                                0,
                            ),
                        )
                        .await
                        .map_err(|_| ErrorKind::ConnectTimeout(opts.connect_timeout))?
                        .map_err(|e| match e {
                            russh::Error::ChannelOpenFailure(r) => {
                                ErrorKind::Forward(format!("{r:?}"))
                            }
                            other => ErrorKind::Forward(other.to_string()),
                        })?;
                        slot_state_authenticating(slot);
                        tokio::time::timeout(
                            opts.handshake_timeout,
                            client::connect_stream(Arc::clone(&config), ch.into_stream(), handler),
                        )
                        .await
                    }
                };
                let mut handle = handle
                    .map_err(|_| ErrorKind::HandshakeTimeout(opts.handshake_timeout))?
                    .map_err(|e| handshake_error(e, &refusal))?;
                let auth = tokio::time::timeout(
                    opts.handshake_timeout,
                    authenticate(
                        &mut handle,
                        AuthInput {
                            user: &spec.user,
                            identity_files: &spec.identity_files,
                            certificate_files: &spec.certificate_files,
                            identities_only: spec.identities_only,
                            agent: &opts.agent,
                            passphrase: opts.passphrase.as_ref(),
                            keys: &self.keys,
                        },
                    ),
                )
                .await
                .map_err(|_| ErrorKind::HandshakeTimeout(opts.handshake_timeout))?;
                auth.map(|_| handle)
            };
            match handshake.await {
                Ok(h) => break (h, closed, established, strict_kex),
                Err(ErrorKind::Handshake(m)) if attempt < 4 => {
                    tracing::debug!("{}: handshake attempt {attempt} failed: {m}", spec.name);
                    tokio::time::sleep(backoff(
                        Duration::from_millis(50),
                        Duration::from_millis(800),
                        attempt,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            }
        };
        established.store(true, Ordering::SeqCst);
        let limit = opts.max_channels_per_connection.max(1);
        slot.state.send_replace(ConnState::Ready {
            strict_kex: strict_kex.load(Ordering::SeqCst),
        });
        Ok(Arc::new(Conn {
            handle,
            channels: Arc::new(Semaphore::new(limit)),
            limit: AtomicUsize::new(limit),
            closed,
            _parent: parent,
        }))
    }

    /// Opens a session channel, waiting for a free slot and retrying when sshd refuses
    /// (its `MaxSessions` is lower than our limit: lower ours).
    async fn open_channel(
        &self,
        conn: &Arc<Conn>,
    ) -> Result<
        (
            russh::Channel<client::Msg>,
            tokio::sync::OwnedSemaphorePermit,
        ),
        ErrorKind,
    > {
        let mut attempts = 0u32;
        loop {
            let permit = Arc::clone(&conn.channels)
                .acquire_owned()
                .await
                .map_err(|_| ErrorKind::Disconnected("connection closed".into()))?;
            let opened = tokio::time::timeout(
                self.opts.connect_timeout,
                conn.handle.channel_open_session(),
            )
            .await;
            match opened {
                Ok(Ok(ch)) => return Ok((ch, permit)),
                Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                    attempts += 1;
                    if attempts > self.opts.channel_open_retries {
                        return Err(ErrorKind::ChannelRefused {
                            attempts,
                            reason: format!("{reason:?}"),
                        });
                    }
                    // Shrink the limit by one (never below one) by forgetting this permit.
                    let cur = conn.limit.load(Ordering::SeqCst);
                    if cur > 1
                        && conn
                            .limit
                            .compare_exchange(cur, cur - 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        permit.forget();
                    } else {
                        drop(permit);
                    }
                    tokio::time::sleep(backoff(
                        Duration::from_millis(20),
                        Duration::from_millis(500),
                        attempts,
                    ))
                    .await;
                }
                Ok(Err(e)) => return Err(ErrorKind::Disconnected(e.to_string())),
                Err(_) => {
                    return Err(ErrorKind::Disconnected(format!(
                        "no answer to a channel open within {:.1}s",
                        self.opts.connect_timeout.as_secs_f64()
                    )));
                }
            }
        }
    }

    async fn run(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        kind: &str,
        name: &str,
        text: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let err = |k: ErrorKind| SshError::new(&slot.spec.name, &slot.via, &slot.spec.name, k);
        let wrapped;
        let text = if self.opts.remote_timeout {
            wrapped = with_remote_timeout(text, self.opts.command_timeout.as_secs() + 1);
            wrapped.as_str()
        } else {
            text
        };
        // A connection that died since its last use is replaced once; a second failure is
        // the answer.
        let mut retried = false;
        let (conn, channel, permit) = loop {
            let conn = Arc::clone(self).conn(slot).await?;
            match self.open_channel(&conn).await {
                Ok((ch, permit)) => break (conn, ch, permit),
                Err(ErrorKind::Disconnected(_)) if !retried && !conn.alive() => {
                    retried = true;
                }
                Err(k) => return Err(err(k)),
            }
        };
        let started = Instant::now();
        let time = rfc3339(SystemTime::now());
        let result = self.run_on_channel(channel, text, stdin).await;
        drop(permit);
        let duration = started.elapsed();
        let record = CommandRecord {
            time,
            host: slot.spec.name.clone(),
            via: slot.via.clone(),
            kind: kind.to_string(),
            name: name.to_string(),
            command: text.to_string(),
            exit_status: result.as_ref().ok().and_then(|o| o.exit_status),
            exit_signal: result.as_ref().ok().and_then(|o| o.exit_signal.clone()),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            truncated: result.as_ref().map(|o| o.truncated).unwrap_or(false),
            error: result.as_ref().err().map(|k| k.to_string()),
        };
        if let Err(e) = self.log.append(&record) {
            tracing::warn!("command log {}: {e}", self.log.path().display());
        }
        if !conn.alive() && result.is_err() {
            slot.state.send_replace(ConnState::Failed {
                reason: "connection lost".into(),
            });
        }
        let mut out = result.map_err(err)?;
        out.duration = duration;
        if slot.spec.sudo
            && out.exit_status == Some(1)
            && out.stderr.starts_with(b"sudo: a password is required")
        {
            return Err(err(ErrorKind::SudoPasswordRequired));
        }
        Ok(out)
    }

    async fn run_on_channel(
        &self,
        mut ch: russh::Channel<client::Msg>,
        text: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ErrorKind> {
        let cap = self.opts.output_cap;
        let mut out = ExecOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit_status: None,
            exit_signal: None,
            truncated: false,
            duration: Duration::ZERO,
        };
        let work = async {
            ch.exec(true, text.as_bytes())
                .await
                .map_err(|e| ErrorKind::Disconnected(e.to_string()))?;
            if let Some(data) = stdin {
                ch.data(data)
                    .await
                    .map_err(|e| ErrorKind::Disconnected(e.to_string()))?;
            }
            ch.eof()
                .await
                .map_err(|e| ErrorKind::Disconnected(e.to_string()))?;
            let mut got_close = false;
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => keep(
                        &mut out.stdout,
                        out.stderr.len(),
                        &data,
                        cap,
                        &mut out.truncated,
                    ),
                    ChannelMsg::ExtendedData { data, ext: 1 } => keep(
                        &mut out.stderr,
                        out.stdout.len(),
                        &data,
                        cap,
                        &mut out.truncated,
                    ),
                    ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.exit_signal = Some(format!("{signal_name:?}"))
                    }
                    ChannelMsg::Failure => return Err(ErrorKind::ExecRefused),
                    ChannelMsg::Close => {
                        got_close = true;
                        break;
                    }
                    _ => {}
                }
                if out.truncated {
                    break;
                }
            }
            if !got_close && !out.truncated {
                return Err(ErrorKind::Disconnected(
                    "channel ended without close".into(),
                ));
            }
            Ok(())
        };
        let res = tokio::time::timeout(self.opts.command_timeout, work).await;
        match res {
            Ok(Ok(())) => {
                if out.truncated {
                    // Stop the command and free the channel now rather than drain the rest.
                    out.exit_status = None;
                    let _ = ch.close().await;
                }
                Ok(out)
            }
            Ok(Err(e)) => {
                let _ = ch.close().await;
                Err(e)
            }
            Err(_) => {
                let _ = ch.signal(russh::Sig::KILL).await;
                let _ = ch.close().await;
                Err(ErrorKind::CommandTimeout(self.opts.command_timeout))
            }
        }
    }
}

/// Appends `data` to `buf` while stdout plus stderr stay under `cap`.
fn keep(buf: &mut Vec<u8>, other_len: usize, data: &[u8], cap: usize, truncated: &mut bool) {
    let room = cap.saturating_sub(buf.len() + other_len);
    if data.len() > room {
        buf.extend_from_slice(&data[..room]);
        *truncated = true;
    } else {
        buf.extend_from_slice(data);
    }
}

fn slot_state_authenticating(slot: &Slot) {
    if !slot.reconnecting.load(Ordering::SeqCst) {
        slot.state.send_replace(ConnState::Authenticating);
    }
}

fn state_for_error(kind: &ErrorKind) -> ConnState {
    match kind {
        ErrorKind::HostKeyUnknown { fingerprint } => ConnState::HostKeyRefused {
            fingerprint: fingerprint.clone(),
            location: None,
            reason: "unknown".into(),
        },
        ErrorKind::HostKeyChanged { at, fingerprint } => ConnState::HostKeyRefused {
            fingerprint: fingerprint.clone(),
            location: Some(at.to_string()),
            reason: "changed".into(),
        },
        ErrorKind::HostKeyRevoked { at, fingerprint } => ConnState::HostKeyRefused {
            fingerprint: fingerprint.clone(),
            location: Some(at.to_string()),
            reason: "revoked".into(),
        },
        ErrorKind::CertificateRefused { at, problem } => ConnState::HostKeyRefused {
            fingerprint: String::new(),
            location: Some(at.to_string()),
            reason: format!("certificate: {problem}"),
        },
        other => ConnState::Failed {
            reason: other.to_string(),
        },
    }
}

fn handshake_error(e: HandlerError, refusal: &Mutex<Option<ErrorKind>>) -> ErrorKind {
    if let Some(k) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return k;
    }
    match e {
        HandlerError::HostKey(k) => k,
        HandlerError::Ssh(russh::Error::IO(io)) => ErrorKind::Handshake(io.to_string()),
        HandlerError::Ssh(other) => ErrorKind::Handshake(other.to_string()),
    }
}

/// Errors of the russh handler: russh's own, or our host-key refusal.
#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    HostKey(ErrorKind),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

pub(crate) struct ClientHandler {
    host: String,
    query: HostQuery,
    files: Vec<KnownHostsFile>,
    policy: HostKeyPolicy,
    learn_into: PathBuf,
    inner: Weak<Inner>,
    refusal: Arc<Mutex<Option<ErrorKind>>>,
    closed: Arc<AtomicBool>,
    established: Arc<AtomicBool>,
    strict_kex: Arc<AtomicBool>,
    lost_reason: Mutex<Option<String>>,
}

impl ClientHandler {
    fn refuse(&self, kind: ErrorKind) -> Result<bool, HandlerError> {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(kind.clone());
        Err(HandlerError::HostKey(kind))
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Presented::Key(key.clone()),
            PublicKeyOrCertificate::Certificate(c) => Presented::Certificate(Box::new(c.clone())),
        };
        match known_hosts::check(&self.files, &self.query, &presented, now_unix()) {
            Verdict::Trusted { .. } => Ok(true),
            Verdict::Unknown { fingerprint, .. } => {
                if self.policy != HostKeyPolicy::AcceptNew {
                    return self.refuse(ErrorKind::HostKeyUnknown { fingerprint });
                }
                let learn_fail = |reason: String| ErrorKind::LearnFailed {
                    file: self.learn_into.clone(),
                    reason,
                };
                let line = match known_hosts::learned_line(&self.query, &presented.plain_key()) {
                    Ok(l) => l,
                    Err(e) => return self.refuse(learn_fail(e)),
                };
                let Some(inner) = self.inner.upgrade() else {
                    return self.refuse(learn_fail("transport closed".into()));
                };
                let _g = inner.learn_lock.lock().await;
                // Another connection may have learned a key for this host meanwhile: decide
                // again against the file as it is now, so two different keys are never both
                // learned.
                if let Ok(fresh) = KnownHostsFile::load(&self.learn_into) {
                    let mut files = self.files.clone();
                    files.retain(|f| f.path != self.learn_into);
                    files.push(fresh);
                    match known_hosts::check(&files, &self.query, &presented, now_unix()) {
                        Verdict::Trusted { .. } => return Ok(true),
                        Verdict::Unknown { .. } => {}
                        Verdict::Changed { at, fingerprint } => {
                            return self.refuse(ErrorKind::HostKeyChanged { at, fingerprint });
                        }
                        Verdict::Revoked { at, fingerprint } => {
                            return self.refuse(ErrorKind::HostKeyRevoked { at, fingerprint });
                        }
                        Verdict::CertificateRefused { at, problem, .. } => {
                            return self.refuse(ErrorKind::CertificateRefused { at, problem });
                        }
                    }
                }
                match known_hosts::append_learned(&self.learn_into, &line) {
                    Ok(n) => {
                        tracing::info!(
                            "{}: learned host key {} into {}:{n}",
                            self.host,
                            presented.fingerprint(),
                            self.learn_into.display()
                        );
                        Ok(true)
                    }
                    Err(e) => self.refuse(learn_fail(e.to_string())),
                }
            }
            Verdict::Changed { at, fingerprint } => {
                self.refuse(ErrorKind::HostKeyChanged { at, fingerprint })
            }
            Verdict::Revoked { at, fingerprint } => {
                self.refuse(ErrorKind::HostKeyRevoked { at, fingerprint })
            }
            Verdict::CertificateRefused { at, problem, .. } => {
                self.refuse(ErrorKind::CertificateRefused { at, problem })
            }
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if names.strict_kex() {
            self.strict_kex.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match &reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                format!(
                    "server disconnected: {}",
                    crate::sanitize::clean(&info.message)
                )
            }
            client::DisconnectReason::Error(HandlerError::Ssh(e)) => e.to_string(),
            client::DisconnectReason::Error(HandlerError::HostKey(k)) => k.to_string(),
        };
        *self.lost_reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Streaming exec (live captures)

/// What a streaming command sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamChunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command exited (status, or the signal's name).
    Exit {
        status: Option<u32>,
        signal: Option<String>,
    },
}

/// A read-only command whose output is read as it arrives, for as long as it runs (no
/// command timeout, no output cap: the reader bounds what it keeps). Its stdin stays open
/// and closes with the channel, so a remote wrapper that waits on stdin ends the command
/// when the stream is dropped, closed, or rampart dies.
pub struct ExecStream {
    host: String,
    channel: Option<russh::Channel<client::Msg>>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecStream")
            .field("host", &self.host)
            .field("open", &self.channel.is_some())
            .finish()
    }
}

impl ExecStream {
    /// The next chunk; `None` once the channel is closed.
    pub async fn next_chunk(&mut self) -> Option<StreamChunk> {
        loop {
            let ch = self.channel.as_mut()?;
            match ch.wait().await {
                Some(ChannelMsg::Data { data }) => return Some(StreamChunk::Stdout(data.to_vec())),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    return Some(StreamChunk::Stderr(data.to_vec()));
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    return Some(StreamChunk::Exit {
                        status: Some(exit_status),
                        signal: None,
                    });
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    return Some(StreamChunk::Exit {
                        status: None,
                        signal: Some(format!("{signal_name:?}")),
                    });
                }
                Some(ChannelMsg::Close) | None => {
                    self.channel = None;
                    self._permit = None;
                    return None;
                }
                Some(_) => {}
            }
        }
    }

    /// Closes the channel (the remote side sees its stdin close) and frees its slot.
    pub async fn close(mut self) {
        if let Some(ch) = self.channel.take() {
            let _ = ch.eof().await;
            let _ = ch.close().await;
        }
        self._permit = None;
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl Drop for ExecStream {
    fn drop(&mut self) {
        // Close without waiting: the channel must not outlive its reader.
        if let Some(ch) = self.channel.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let permit = self._permit.take();
            rt.spawn(async move {
                let _ = ch.eof().await;
                let _ = ch.close().await;
                drop(permit);
            });
        }
    }
}

impl<M> Transport<M> {
    /// Starts a read-only probe and returns its output as a stream (see [`ExecStream`]).
    pub async fn exec_stream(&self, host: &str, cmd: &ReadCommand) -> Result<ExecStream, SshError> {
        let slot = self.inner.slot(host)?;
        let err = |k: ErrorKind| SshError::new(&slot.spec.name, &slot.via, &slot.spec.name, k);
        let text = cmd.render(slot.spec.sudo);
        let conn = Arc::clone(&self.inner).conn(&slot).await?;
        let (channel, permit) = self.inner.open_channel(&conn).await.map_err(err)?;
        let record = CommandRecord {
            time: rfc3339(SystemTime::now()),
            host: slot.spec.name.clone(),
            via: slot.via.clone(),
            kind: "read-stream".to_string(),
            name: cmd.name().to_string(),
            command: text.clone(),
            exit_status: None,
            exit_signal: None,
            duration_ms: 0,
            truncated: false,
            error: None,
        };
        if let Err(e) = self.inner.log.append(&record) {
            tracing::warn!("command log {}: {e}", self.inner.log.path().display());
        }
        tokio::time::timeout(
            self.inner.opts.connect_timeout,
            channel.exec(true, text.as_bytes()),
        )
        .await
        .map_err(|_| err(ErrorKind::Disconnected("no answer to exec".into())))?
        .map_err(|e| err(ErrorKind::Disconnected(e.to_string())))?;
        Ok(ExecStream {
            host: host.to_string(),
            channel: Some(channel),
            _permit: Some(permit),
        })
    }
}

impl Drop for ClientHandler {
    /// The session task owns the handler, so its drop is the one signal that the connection
    /// is gone whatever ended it (russh does not call `disconnected` when, for example, the
    /// carrying channel of a bastion vanished first).
    fn drop(&mut self) {
        if !self.established.load(Ordering::SeqCst) || self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let why = self
            .lost_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| "connection closed".to_string());
        if let Some(slot) = inner.slots.get(&self.host) {
            slot.state.send_replace(ConnState::Reconnecting {
                attempt: 0,
                reason: why,
            });
        }
        let _ = inner.lost_tx.send(self.host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..12 {
            let d = backoff(base, max, attempt);
            let nominal = base.saturating_mul(1 << (attempt - 1)).min(max);
            assert!(
                d >= nominal.mul_f64(0.5) && d <= nominal.mul_f64(1.5),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn output_cap_counts_both_streams() {
        let mut t = false;
        let mut out = Vec::new();
        keep(&mut out, 6, b"abcdef", 10, &mut t);
        assert_eq!(out, b"abcd");
        assert!(t);
    }

    #[test]
    fn ssh_config_completes_hosts_the_inventory_names_only() {
        let inv = Inventory::parse(
            "[[host]]\nname = \"db9\"\n[[host]]\nname = \"web\"\naddress = \"10.1.1.1\"\n",
            std::path::Path::new("inventory.toml"),
        )
        .unwrap();
        let cfg = crate::ssh::config::parse(
            "Host db9\n HostName 10.0.0.9\n User admin\n Port 2222\n ProxyJump ops@jumpy:2200\n\
             Host jumpy\n HostName 10.0.0.1\n\
             Host web\n HostName 10.9.9.9\n User nobody\n IdentityFile ~/.ssh/web_%r\n",
            std::path::Path::new("config"),
        )
        .unwrap();
        let opts = TransportOptions {
            user_known_hosts: false,
            default_identities: false,
            ..TransportOptions::default()
        };
        let specs = resolve_specs(&inv, &cfg, &opts).unwrap();
        let db9 = specs.iter().find(|s| s.name == "db9").unwrap();
        assert_eq!(
            (db9.address.as_str(), db9.port, db9.user.as_str()),
            ("10.0.0.9", 2222, "admin")
        );
        assert_eq!(db9.via.as_deref(), Some("jumpy"));
        let jump = specs.iter().find(|s| s.name == "jumpy").unwrap();
        assert_eq!(
            (jump.address.as_str(), jump.port, jump.user.as_str()),
            ("10.0.0.1", 2200, "ops")
        );
        assert!(jump.read_only, "a jump host only carries connections");
        // The inventory's own address and user win for a host it describes.
        let web = specs.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.address, "10.1.1.1");
        assert_ne!(web.user, "nobody");
        // IdentityFile from ssh_config comes after the inventory's, with tokens expanded.
        let want = crate::paths::home_dir().join(format!(".ssh/web_{}", web.user));
        assert_eq!(web.identity_files.last(), Some(&want));
    }

    #[test]
    fn grant_refused_in_read_only_runs() {
        let inv = Inventory::parse(
            "[defaults]\nread_only = true\n[[host]]\nname = \"a\"\naddress = \"127.0.0.1\"\n",
            std::path::Path::new("inventory.toml"),
        )
        .unwrap();
        assert_eq!(
            WriteGrant::obtain(&inv, false).unwrap_err(),
            ReadOnlyReason::Inventory
        );
        let inv = Inventory::parse(
            "[[host]]\nname = \"a\"\naddress = \"127.0.0.1\"\n",
            std::path::Path::new("inventory.toml"),
        )
        .unwrap();
        assert_eq!(
            WriteGrant::obtain(&inv, true).unwrap_err(),
            ReadOnlyReason::Flag
        );
        assert!(WriteGrant::obtain(&inv, false).is_ok());
    }
}
