//! The typed state of a host and of the fleet, as gathered by the collectors.
//!
//! This module owns the shapes every later stage reads (posture, alerts, views, history,
//! reports) and the one question the firewall model must answer: "from source S, is
//! protocol/port P let in?" ([`Firewall::admits`]). It holds no I/O and no parsing of
//! remote text: the parsers in `crate::collect` build these values, already sanitized.
//!
//! Each part of a [`HostState`] is a [`Probed`] value, so one failing collector (a missing
//! tool, a permission problem, a parse error) loses nothing else.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod containers;
mod stack;
pub use containers::*;
pub use stack::*;

/// The result of probing one part of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum Probed<T> {
    /// The probe ran and its output was understood.
    Ok(T),
    /// The tool behind this part is not installed on the host; this is state, not an error.
    NotInstalled {
        /// The missing tool, e.g. "ufw".
        tool: String,
    },
    /// The probe needs privileges the session does not have (root, or sudo).
    PermissionDenied {
        /// The probe that was refused, e.g. "iptables-save".
        stage: String,
        /// What the host said.
        message: String,
    },
    /// The probe ran but failed, or its output could not be understood.
    Failed {
        /// The probe or parser that failed, e.g. "nft" or "parse nft".
        stage: String,
        /// What went wrong, for a person.
        message: String,
    },
}

impl<T> Probed<T> {
    /// The value when the probe succeeded.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Probed::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// True when the probe succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, Probed::Ok(_))
    }

    /// Transforms the value, keeping the failure states as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Probed<U> {
        match self {
            Probed::Ok(v) => Probed::Ok(f(v)),
            Probed::NotInstalled { tool } => Probed::NotInstalled { tool },
            Probed::PermissionDenied { stage, message } => {
                Probed::PermissionDenied { stage, message }
            }
            Probed::Failed { stage, message } => Probed::Failed { stage, message },
        }
    }

    /// Borrows the value, keeping the failure states (cloned) as they are.
    pub fn as_ref(&self) -> Probed<&T> {
        match self {
            Probed::Ok(v) => Probed::Ok(v),
            Probed::NotInstalled { tool } => Probed::NotInstalled { tool: tool.clone() },
            Probed::PermissionDenied { stage, message } => Probed::PermissionDenied {
                stage: stage.clone(),
                message: message.clone(),
            },
            Probed::Failed { stage, message } => Probed::Failed {
                stage: stage.clone(),
                message: message.clone(),
            },
        }
    }

    /// A short word for the state, for tables and logs: "ok", "not installed", ...
    pub fn status_label(&self) -> &'static str {
        match self {
            Probed::Ok(_) => "ok",
            Probed::NotInstalled { .. } => "not installed",
            Probed::PermissionDenied { .. } => "permission denied",
            Probed::Failed { .. } => "failed",
        }
    }

    /// A failure that stands for "never collected" (the host was not reached).
    pub fn not_collected(stage: &str, message: &str) -> Self {
        Probed::Failed {
            stage: stage.to_string(),
            message: message.to_string(),
        }
    }
}

/// Everything gathered about one host in one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    /// The host's name in the inventory.
    pub host: String,
    /// When collection finished, seconds since the Unix epoch (set by the collector).
    pub collected_at: Option<i64>,
    pub facts: Probed<Facts>,
    pub firewall: Probed<Firewall>,
    pub listeners: Probed<Vec<Listener>>,
    pub fail2ban: Probed<Fail2ban>,
    pub vpn: Probed<Vpn>,
    pub sshd: Probed<Sshd>,
    pub nginx: Probed<Nginx>,
    pub tls: Probed<Vec<Certificate>>,
    pub services: Probed<Services>,
    pub counters: Probed<Counters>,
    /// CrowdSec, IDS alerts, fail2ban jail sources, the host's own HTTPS answer.
    #[serde(default)]
    pub defences: Defences,
    /// Data stores and Django apps (`crate::collect::datastore`, `crate::collect::django`).
    #[serde(default)]
    pub stack: Stack,
    /// Running containers and their published ports (Docker, Podman).
    #[serde(default = "containers_not_collected")]
    pub containers: Probed<Vec<Container>>,
    /// Problems that are not one part's state: the connection, the framing of the output.
    pub errors: Vec<StateError>,
}

/// A state saved before containers were collected: unknown, not "none".
fn containers_not_collected() -> Probed<Vec<Container>> {
    Probed::Failed {
        stage: "containers".into(),
        message: "not collected (a state saved by an older rampart)".into(),
    }
}

impl HostState {
    /// The state of a host that could not be collected at all: every part failed at `stage`.
    pub fn unreachable(host: &str, stage: &str, message: &str) -> Self {
        HostState {
            host: host.to_string(),
            collected_at: None,
            facts: Probed::not_collected(stage, message),
            firewall: Probed::not_collected(stage, message),
            listeners: Probed::not_collected(stage, message),
            fail2ban: Probed::not_collected(stage, message),
            vpn: Probed::not_collected(stage, message),
            sshd: Probed::not_collected(stage, message),
            nginx: Probed::not_collected(stage, message),
            tls: Probed::not_collected(stage, message),
            services: Probed::not_collected(stage, message),
            counters: Probed::not_collected(stage, message),
            defences: Defences::not_collected(stage, message),
            stack: Stack::default(),
            containers: Probed::not_collected(stage, message),
            errors: vec![StateError {
                stage: stage.to_string(),
                message: message.to_string(),
            }],
        }
    }

    /// True when nothing at all could be collected (the host was unreachable).
    pub fn is_unreachable(&self) -> bool {
        !self.facts.is_ok()
            && !self.firewall.is_ok()
            && !self.listeners.is_ok()
            && !self.sshd.is_ok()
            && !self.errors.is_empty()
    }
}

/// A problem with a collection that belongs to no single part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateError {
    /// Where it happened: "connect", "exec", "frames", ...
    pub stage: String,
    pub message: String,
}

/// The state of every host of a fleet, in inventory order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    pub hosts: Vec<HostState>,
}

impl FleetState {
    /// The state of the named host.
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.host == name)
    }
}

// ---------------------------------------------------------------------------------------
// Host facts

/// Who the host is: name, kernel, distribution, uptime, addresses and routes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// `uname -m`.
    pub machine: String,
    pub os: OsRelease,
    pub uptime_secs: Option<f64>,
    /// What runs as PID 1 ("systemd", "init", "sh", ...).
    pub init: Option<String>,
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
}

/// The fields of `/etc/os-release` rampart uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
}

/// A network interface from `ip -j addr`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    /// Administratively up (the UP flag).
    pub up: bool,
    /// `operstate` as the kernel reports it ("UP", "DOWN", "UNKNOWN").
    pub operstate: String,
    pub mac: Option<String>,
    /// Link type ("ether", "loopback", "none" for WireGuard).
    pub link_type: String,
    pub addresses: Vec<IpNet>,
}

/// A route from `ip -j route`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// "default" or a CIDR.
    pub destination: String,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
    pub protocol: Option<String>,
    pub source: Option<IpAddr>,
}

// ---------------------------------------------------------------------------------------
// Firewall

// The firewall model and its evaluator live in `crate::firewall`; these re-exports keep
// the paths the rest of the code base uses.
pub use crate::firewall::model::*;

// ---------------------------------------------------------------------------------------
// Listeners

/// A listening socket from `ss -H -tulpn`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: Protocol,
    /// The bind address; `None` for a wildcard (`*`, `0.0.0.0`, `[::]` stay as addresses
    /// when printed so; `*` means both families).
    pub address: Option<IpAddr>,
    /// The interface after `%` (`127.0.0.53%lo`), when bound to one.
    pub interface: Option<String>,
    pub port: u16,
    pub processes: Vec<SocketProcess>,
}

impl Listener {
    /// True when bound to a loopback address only.
    pub fn is_loopback(&self) -> bool {
        self.address.is_some_and(|a| a.is_loopback()) || self.interface.as_deref() == Some("lo")
    }

    /// True when reachable on every address of its family (or both, for `*`).
    pub fn is_wildcard(&self) -> bool {
        self.address.is_none_or(|a| a.is_unspecified())
    }

    /// True when a packet from `src` could reach this socket's bind address family.
    pub fn accepts_family_of(&self, src: IpAddr) -> bool {
        match self.address {
            None => true,
            // A socket on [::] usually accepts IPv4 too (bindv6only=0).
            Some(IpAddr::V6(a)) if a.is_unspecified() => true,
            Some(a) => a.is_ipv4() == src.is_ipv4(),
        }
    }
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SocketProcess {
    pub name: String,
    pub pid: u32,
}

// ---------------------------------------------------------------------------------------
// fail2ban

/// fail2ban's state from `fail2ban-client`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fail2ban {
    /// The server answered.
    pub running: bool,
    pub version: Option<String>,
    pub jails: Vec<Jail>,
}

/// One jail from `fail2ban-client status JAIL`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jail {
    pub name: String,
    /// The log files or journal matches the filter reads.
    pub files: Vec<String>,
    pub journal_matches: Option<String>,
    pub currently_failed: u64,
    pub total_failed: u64,
    pub currently_banned: u64,
    pub total_banned: u64,
    pub banned: Vec<IpAddr>,
}

// ---------------------------------------------------------------------------------------
// VPN

/// VPN state: WireGuard and OpenVPN, each probed on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vpn {
    pub wireguard: Probed<Vec<WgInterface>>,
    pub openvpn: Probed<Vec<OpenVpnStatus>>,
}

/// A WireGuard interface from `wg show all dump` (private keys never enter state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgInterface {
    pub name: String,
    pub public_key: String,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// The link is administratively up (from the host facts); `None` when unknown.
    pub up: Option<bool>,
    pub peers: Vec<WgPeer>,
}

/// A WireGuard peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WgPeer {
    pub public_key: String,
    pub has_preshared_key: bool,
    /// "host:port" as wg printed it.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    /// Seconds since the Unix epoch; `None` = never.
    pub latest_handshake: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub persistent_keepalive: Option<u16>,
}

/// An OpenVPN status file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenVpnStatus {
    pub path: String,
    /// "Updated" / TIME as printed.
    pub updated: Option<String>,
    pub clients: Vec<OpenVpnClient>,
}

/// A connected OpenVPN client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenVpnClient {
    pub common_name: String,
    pub real_address: String,
    pub virtual_address: Option<String>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub connected_since: Option<String>,
}

// ---------------------------------------------------------------------------------------
// sshd

/// PermitRootLogin's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermitRootLogin {
    Yes,
    No,
    ProhibitPassword,
    ForcedCommandsOnly,
}

/// Effective sshd settings from `sshd -T`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sshd {
    pub password_authentication: Option<bool>,
    pub kbd_interactive_authentication: Option<bool>,
    pub permit_root_login: Option<PermitRootLogin>,
    pub pubkey_authentication: Option<bool>,
    pub allow_agent_forwarding: Option<bool>,
    /// yes, no, local, remote, all.
    pub allow_tcp_forwarding: Option<String>,
    pub x11_forwarding: Option<bool>,
    pub max_auth_tries: Option<u32>,
    pub ports: Vec<u16>,
    pub listen_addresses: Vec<String>,
    pub ciphers: Vec<String>,
    pub kex_algorithms: Vec<String>,
    pub macs: Vec<String>,
    pub allow_users: Vec<String>,
    pub allow_groups: Vec<String>,
    /// Every setting as printed (lower-case keys), for anything not typed above.
    pub settings: BTreeMap<String, Vec<String>>,
    /// The `Match` blocks of the host's sshd_config and its drop-ins, each with the
    /// effective settings for a connection it applies to, where sshd could be asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<SshdMatch>,
}

/// One `Match` block: where it is, what it matches, what it sets, and (for blocks whose
/// criteria name an address or a user) what `sshd -T -C` says a matching connection gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdMatch {
    /// `file:line` of the `Match` line.
    pub origin: String,
    /// The criteria as written after `Match`.
    pub criteria: String,
    /// Settings written inside the block (lower-case keys, as written), with their
    /// `file:line`.
    pub body: Vec<(String, String, String)>,
    /// Connections sshd was asked about for this block, with the answers.
    pub probes: Vec<SshdMatchProbe>,
}

/// `sshd -T -C SPEC` for one connection a `Match` block applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdMatchProbe {
    /// The source address asked about, when the block names one.
    pub addr: Option<IpAddr>,
    /// The user asked about.
    pub user: Option<String>,
    /// The effective authentication settings for that connection.
    pub effective: SshdAuth,
}

/// The settings that decide how a connection may authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdAuth {
    pub password_authentication: Option<bool>,
    pub kbd_interactive_authentication: Option<bool>,
    pub permit_root_login: Option<PermitRootLogin>,
    pub use_pam: Option<bool>,
    /// `AuthenticationMethods` lists, as printed (`any` when unset).
    pub authentication_methods: Vec<String>,
}

impl SshdAuth {
    /// Whether a password (or PAM keyboard-interactive) can complete a login. A method list
    /// that never names `password` or `keyboard-interactive` makes
    /// `PasswordAuthentication yes` inert.
    pub fn passwords_possible(&self) -> bool {
        let enabled = self.password_authentication == Some(true)
            || (self.kbd_interactive_authentication == Some(true) && self.use_pam == Some(true));
        if !enabled {
            return false;
        }
        let lists: Vec<&str> = self
            .authentication_methods
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect();
        if lists.is_empty() || lists.contains(&"any") {
            return true;
        }
        lists.iter().any(|list| {
            list.split(',').any(|m| {
                let m = m.split(':').next().unwrap_or(m);
                m == "password" || m == "keyboard-interactive"
            })
        })
    }
}

impl Sshd {
    /// The global (no `Match`) authentication settings.
    pub fn auth(&self) -> SshdAuth {
        let first = |k: &str| self.settings.get(k).and_then(|v| v.first()).cloned();
        SshdAuth {
            password_authentication: self.password_authentication,
            kbd_interactive_authentication: self.kbd_interactive_authentication,
            permit_root_login: self.permit_root_login,
            use_pam: first("usepam").map(|v| v == "yes"),
            authentication_methods: self
                .settings
                .get("authenticationmethods")
                .cloned()
                .unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// nginx

/// nginx's configuration from `nginx -T`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nginx {
    /// The configuration test passed ("syntax is ok").
    pub syntax_ok: bool,
    /// The files nginx dumped, in order.
    pub files: Vec<String>,
    pub servers: Vec<NginxServer>,
    pub limit_req_zones: Vec<LimitReqZone>,
    /// `ssl_protocols` at http level.
    pub ssl_protocols: Option<Vec<String>>,
    /// Strict-Transport-Security set at http level.
    #[serde(default)]
    pub http_hsts: Option<NginxHeader>,
}

/// One `add_header` (or `more_set_headers`) directive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxHeader {
    pub value: String,
    /// `always`: sent with every response code, not only 2xx/3xx.
    pub always: bool,
    pub file: String,
    pub line: usize,
}

/// A `server { }` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxServer {
    pub file: String,
    pub line: usize,
    pub server_names: Vec<String>,
    pub listens: Vec<NginxListen>,
    /// Plain HTTP here answers with a redirect to https:// (return or rewrite).
    pub redirects_to_https: bool,
    pub ssl_certificates: Vec<String>,
    pub ssl_certificate_keys: Vec<String>,
    /// Effective `ssl_protocols` (server, else http level).
    pub ssl_protocols: Option<Vec<String>>,
    /// Every `limit_req` in effect here: http level, server level, and in locations.
    pub limit_req: Vec<LimitReq>,
    pub locations: Vec<String>,
    /// The Strict-Transport-Security header this server's own level sends: its own
    /// `add_header`, else the http block's when the server has none (nginx inheritance).
    #[serde(default)]
    pub hsts: Option<NginxHeader>,
    /// Where the server has `add_header`s of its own (`file:line`): an http-level header is
    /// then not inherited.
    #[serde(default)]
    pub own_add_header: Option<String>,
    /// Locations whose own `add_header`s drop the server's HSTS (`PATTERN at file:line`).
    #[serde(default)]
    pub hsts_dropped_in: Vec<String>,
    /// Every `proxy_pass` (server level or in a location), for the stack checks.
    #[serde(default)]
    pub proxy_passes: Vec<ProxyPass>,
}

impl NginxServer {
    /// True when some listen has `ssl`, or the server has a certificate and listens on 443.
    pub fn serves_tls(&self) -> bool {
        self.listens.iter().any(|l| l.ssl)
    }

    /// True when some listen is plain HTTP.
    pub fn serves_plain(&self) -> bool {
        self.listens.iter().any(|l| !l.ssl)
    }
}

/// A `listen` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NginxListen {
    /// "80", "[::]:443", "127.0.0.1:8080", "unix:/run/x.sock" as written.
    pub raw: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub ssl: bool,
    pub http2: bool,
    pub default_server: bool,
}

/// A `limit_req_zone` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitReqZone {
    pub key: String,
    pub name: String,
    pub size: Option<String>,
    pub rate: Option<String>,
    pub file: String,
    pub line: usize,
}

/// A `limit_req` directive and where it applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitReq {
    pub zone: String,
    pub burst: Option<u32>,
    pub nodelay: bool,
    /// `None` = the whole server (http or server level); else the location's pattern.
    pub location: Option<String>,
    pub file: String,
    pub line: usize,
}

// ---------------------------------------------------------------------------------------
// TLS

/// The key type of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyType {
    Rsa { bits: u32 },
    Ec { curve: String },
    Ed25519,
    Ed448,
    Other { oid: String },
}

/// A certificate read from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The file it was read from.
    pub path: String,
    /// 0 for the leaf, then the chain in file order.
    pub index: usize,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub key: KeyType,
    pub serial: String,
    pub self_signed: bool,
}

impl Certificate {
    /// Whole days from `now` (Unix seconds) until expiry; negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

// ---------------------------------------------------------------------------------------
// Services

/// A service rampart looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownService {
    Fail2ban,
    Snort,
    Suricata,
    NodeExporter,
    ZabbixAgent,
    Nrpe,
    Prometheus,
    Alertmanager,
    Sshd,
    Nginx,
    Openvpn,
}

impl KnownService {
    pub const ALL: [KnownService; 11] = [
        KnownService::Fail2ban,
        KnownService::Snort,
        KnownService::Suricata,
        KnownService::NodeExporter,
        KnownService::ZabbixAgent,
        KnownService::Nrpe,
        KnownService::Prometheus,
        KnownService::Alertmanager,
        KnownService::Sshd,
        KnownService::Nginx,
        KnownService::Openvpn,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KnownService::Fail2ban => "fail2ban",
            KnownService::Snort => "snort",
            KnownService::Suricata => "suricata",
            KnownService::NodeExporter => "node_exporter",
            KnownService::ZabbixAgent => "zabbix-agent",
            KnownService::Nrpe => "nrpe",
            KnownService::Prometheus => "prometheus",
            KnownService::Alertmanager => "alertmanager",
            KnownService::Sshd => "sshd",
            KnownService::Nginx => "nginx",
            KnownService::Openvpn => "openvpn",
        }
    }
}

/// Which known services run, and how that was seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    /// What runs as PID 1 ("systemd" enables unit states).
    pub init: Option<String>,
    pub services: Vec<ServiceStatus>,
}

impl Services {
    /// True when the service has a running process (or an active unit).
    pub fn running(&self, s: KnownService) -> bool {
        self.services.iter().any(|st| st.service == s && st.running)
    }
}

/// One known service's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: KnownService,
    pub running: bool,
    pub pids: Vec<u32>,
    /// The systemd unit's ActiveState, where systemd is PID 1.
    pub unit_state: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Defences: CrowdSec, IDS alerts, what fail2ban's jails read, the host's own HTTPS answer

/// The parts of a host's state that come from the defence probes; each on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defences {
    pub crowdsec: Probed<Crowdsec>,
    pub ids: Probed<Vec<IdsLog>>,
    pub jail_sources: Probed<JailSources>,
    pub https: Probed<Vec<HttpsFetch>>,
}

impl Defences {
    /// Every part failed at `stage` (the host was not reached).
    pub fn not_collected(stage: &str, message: &str) -> Self {
        Defences {
            crowdsec: Probed::not_collected(stage, message),
            ids: Probed::not_collected(stage, message),
            jail_sources: Probed::not_collected(stage, message),
            https: Probed::not_collected(stage, message),
        }
    }
}

impl Default for Defences {
    /// What a snapshot stored before these probes existed reads as.
    fn default() -> Self {
        Defences::not_collected("defences", "not collected (older snapshot)")
    }
}

/// CrowdSec on a host: whether its agent runs, and its active decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crowdsec {
    pub running: bool,
    pub decisions: Vec<CrowdsecDecision>,
    /// Why the decisions could not be listed (the local API down, ...), when they could not.
    pub error: Option<String>,
}

impl Crowdsec {
    /// Addresses under an active ban decision.
    pub fn banned(&self) -> Vec<IpAddr> {
        self.decisions
            .iter()
            .filter(|d| d.kind == "ban")
            .filter_map(|d| d.ip)
            .collect()
    }
}

/// One decision of `cscli decisions list -o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrowdsecDecision {
    pub id: i64,
    /// "crowdsec", "cscli", "CAPI", "lists"...
    pub origin: String,
    pub scenario: String,
    /// "Ip", "Range", ...
    pub scope: String,
    pub value: String,
    /// The address, when the scope is one IP.
    pub ip: Option<IpAddr>,
    /// "ban", "captcha", ...
    pub kind: String,
    pub duration: String,
}

/// Which IDS wrote an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdsEngine {
    Suricata,
    Snort,
}

impl IdsEngine {
    pub fn label(self) -> &'static str {
        match self {
            IdsEngine::Suricata => "suricata",
            IdsEngine::Snort => "snort",
        }
    }
}

/// The formats rampart reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdsFormat {
    /// Suricata's EVE JSON (`eve.json`), alert events.
    SuricataEve,
    /// Snort 3's `alert_json` logger.
    SnortJson,
    /// Snort's `alert_fast` logger.
    SnortFast,
}

/// The tail of one IDS alert file, as read this collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsLog {
    pub path: String,
    pub format: IdsFormat,
    /// The file's size and inode when read (a smaller size or another inode: rotated).
    pub size: Option<u64>,
    pub inode: Option<u64>,
    /// Only the last bytes of the file are read: true when there was more before them.
    pub cut: bool,
    pub alerts: Vec<IdsAlert>,
    /// Lines that were not alerts of the format (other event types, garbage, too long).
    pub skipped: usize,
}

/// One IDS alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsAlert {
    pub engine: IdsEngine,
    /// Unix seconds, when the timestamp could be read.
    pub time: Option<i64>,
    /// The timestamp as written.
    pub timestamp: String,
    pub gid: u32,
    pub sid: u64,
    pub rev: u32,
    pub signature: String,
    pub category: Option<String>,
    /// Suricata's severity or Snort's priority: 1 is the most severe.
    pub priority: Option<u32>,
    pub proto: Option<String>,
    pub src: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    /// "allowed", "blocked", "alert", "drop"...
    pub action: Option<String>,
}

/// What fail2ban's jails are configured to read, and what is there to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailSources {
    /// Jails as the configuration files define them (precedence applied).
    pub jails: Vec<JailConfig>,
    /// A systemd journal exists on the host (`/run/log/journal` or `/var/log/journal`).
    pub journal: bool,
    /// The log files the running jails poll, as `stat` sees them.
    pub files: Vec<LogFileStat>,
}

/// One jail section of fail2ban's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailConfig {
    pub name: String,
    pub enabled: bool,
    /// `file:line` of the value that decided each setting.
    pub enabled_at: Option<String>,
    pub backend: Option<String>,
    pub backend_at: Option<String>,
    pub logpath: Vec<String>,
    pub logpath_at: Option<String>,
}

/// A log file as `stat` saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFileStat {
    pub path: String,
    pub exists: bool,
    /// "regular file", "directory", "symbolic link"...
    pub kind: Option<String>,
    /// Not collected by the probe (`-`): a growing log would make every collection differ.
    pub size: Option<u64>,
}

/// The host's own HTTPS page, fetched on the host (read-only, a GET of `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsFetch {
    pub url: String,
    pub status: Option<u16>,
    /// The Strict-Transport-Security header, when sent.
    pub hsts: Option<String>,
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Traffic counters

/// Counters sampled at one instant; rates come from two samples ([`Counters::rates`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// The host's `/proc/uptime` when sampled (a monotonic clock for rates).
    pub uptime_secs: Option<f64>,
    pub interfaces: Vec<InterfaceCounters>,
    pub tcp: Option<TcpCounters>,
    pub conntrack: Option<Conntrack>,
}

/// One interface's line of `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// TCP counters from `/proc/net/snmp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCounters {
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
    pub estab_resets: u64,
    pub curr_estab: u64,
    pub in_segs: u64,
    pub out_segs: u64,
    pub retrans_segs: u64,
    pub in_errs: u64,
    pub out_rsts: u64,
}

/// Connection tracking table use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conntrack {
    pub count: u64,
    pub max: Option<u64>,
}

/// Per-second rates between two samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterRates {
    pub seconds: f64,
    pub interfaces: Vec<InterfaceRates>,
    pub tcp: Option<TcpRates>,
}

/// One interface's rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceRates {
    pub name: String,
    pub rx_bytes: f64,
    pub tx_bytes: f64,
    pub rx_packets: f64,
    pub tx_packets: f64,
    pub errors: f64,
    pub dropped: f64,
}

/// TCP rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpRates {
    pub active_opens: f64,
    pub passive_opens: f64,
    pub attempt_fails: f64,
    pub estab_resets: f64,
    pub in_segs: f64,
    pub retrans_segs: f64,
}

impl Counters {
    /// Rates from `earlier` to `self`, using the host's uptime as the clock (or `fallback`
    /// seconds when either sample lacks it). `None` when no time passed. A counter that
    /// went backwards (reboot, wrap, interface re-created) gives 0 rather than a spike.
    pub fn rates(&self, earlier: &Counters, fallback_secs: f64) -> Option<CounterRates> {
        let secs = match (self.uptime_secs, earlier.uptime_secs) {
            (Some(b), Some(a)) => b - a,
            _ => fallback_secs,
        };
        if !secs.is_finite() || secs <= 0.0 {
            return None;
        }
        let r = |b: u64, a: u64| b.saturating_sub(a) as f64 / secs;
        let interfaces = self
            .interfaces
            .iter()
            .filter_map(|now| {
                let then = earlier.interfaces.iter().find(|i| i.name == now.name)?;
                Some(InterfaceRates {
                    name: now.name.clone(),
                    rx_bytes: r(now.rx_bytes, then.rx_bytes),
                    tx_bytes: r(now.tx_bytes, then.tx_bytes),
                    rx_packets: r(now.rx_packets, then.rx_packets),
                    tx_packets: r(now.tx_packets, then.tx_packets),
                    errors: r(
                        now.rx_errors.saturating_add(now.tx_errors),
                        then.rx_errors.saturating_add(then.tx_errors),
                    ),
                    dropped: r(
                        now.rx_dropped.saturating_add(now.tx_dropped),
                        then.rx_dropped.saturating_add(then.tx_dropped),
                    ),
                })
            })
            .collect();
        let tcp = match (&self.tcp, &earlier.tcp) {
            (Some(b), Some(a)) => Some(TcpRates {
                active_opens: r(b.active_opens, a.active_opens),
                passive_opens: r(b.passive_opens, a.passive_opens),
                attempt_fails: r(b.attempt_fails, a.attempt_fails),
                estab_resets: r(b.estab_resets, a.estab_resets),
                in_segs: r(b.in_segs, a.in_segs),
                retrans_segs: r(b.retrans_segs, a.retrans_segs),
            }),
            _ => None,
        };
        Some(CounterRates {
            seconds: secs,
            interfaces,
            tcp,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let mut st = HostState::unreachable("web1", "connect", "refused");
        st.firewall = Probed::Ok(Firewall::default());
        st.listeners = Probed::NotInstalled { tool: "ss".into() };
        let json = serde_json::to_string(&st).unwrap();
        let back: HostState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
        assert!(json.contains("\"status\":\"not_installed\""));
    }

    #[test]
    fn rates_use_uptime_and_survive_counter_resets() {
        let a = Counters {
            uptime_secs: Some(100.0),
            interfaces: vec![InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 1000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut b = a.clone();
        b.uptime_secs = Some(102.0);
        b.interfaces[0].rx_bytes = 3000;
        let r = b.rates(&a, 5.0).unwrap();
        assert_eq!(r.interfaces[0].rx_bytes, 1000.0);
        let r = a.rates(&b, 5.0);
        assert!(r.is_none(), "time went backwards");
        b.uptime_secs = None;
        b.interfaces[0].rx_bytes = 10;
        let r = b.rates(&a, 5.0).unwrap();
        assert_eq!(r.interfaces[0].rx_bytes, 0.0);
    }
}
