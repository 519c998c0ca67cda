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

mod stack;
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
    /// Data stores and Django apps (`crate::collect::datastore`, `crate::collect::django`).
    #[serde(default)]
    pub stack: Stack,
    /// Problems that are not one part's state: the connection, the framing of the output.
    pub errors: Vec<StateError>,
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
            stack: Stack::default(),
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

/// A program that manages the host firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    Ufw,
    Nftables,
    IptablesLegacy,
    IptablesNft,
    Firewalld,
}

impl Manager {
    pub fn label(self) -> &'static str {
        match self {
            Manager::Ufw => "ufw",
            Manager::Nftables => "nftables",
            Manager::IptablesLegacy => "iptables-legacy",
            Manager::IptablesNft => "iptables-nft",
            Manager::Firewalld => "firewalld",
        }
    }
}

/// Where a rule or chain was read from: the program whose output held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `ufw status verbose` / `/etc/ufw/user*.rules` (used only when no ruleset was readable).
    Ufw,
    /// `nft -j list ruleset`.
    Nftables,
    /// `iptables-legacy-save` / `ip6tables-legacy-save`.
    IptablesLegacy,
    /// `iptables-nft-save` / `ip6tables-nft-save`.
    IptablesNft,
}

/// IPv4, IPv6 or both (nftables `inet` tables, ufw rules without addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
    Any,
}

impl Family {
    /// True when a rule of this family applies to packets from `addr`.
    pub fn covers(self, addr: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// The way a packet travels relative to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// To the host itself (INPUT, and the prerouting/ingress filters before it).
    In,
    /// From the host (OUTPUT, postrouting).
    Out,
    /// Through the host (FORWARD).
    Routed,
}

/// A netfilter hook a base chain is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Ingress,
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub fn direction(self) -> Direction {
        match self {
            Hook::Ingress | Hook::Prerouting | Hook::Input => Direction::In,
            Hook::Forward => Direction::Routed,
            Hook::Output | Hook::Postrouting => Direction::Out,
        }
    }
}

/// Layer-4 protocol a rule matches or a question asks about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Sctp,
    /// Anything else, by name or number as the backend printed it.
    Other(String),
}

impl Protocol {
    /// Reads a protocol name or number as iptables, nft, ufw and ss print them.
    pub fn from_name(name: &str) -> Protocol {
        match name.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "icmp" | "1" => Protocol::Icmp,
            "icmpv6" | "ipv6-icmp" | "58" => Protocol::Icmpv6,
            "sctp" | "132" => Protocol::Sctp,
            other => Protocol::Other(other.to_string()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::Sctp => "sctp",
            Protocol::Other(s) => s,
        }
    }
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// A range from two ends in either order.
    pub fn new(a: u16, b: u16) -> Self {
        PortRange {
            first: a.min(b),
            last: a.max(b),
        }
    }

    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// The ports a rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "ranges", rename_all = "lowercase")]
pub enum PortSet {
    /// No port condition.
    #[default]
    Any,
    /// Only these ports.
    Only(Vec<PortRange>),
    /// Every port except these (`! --dport`, `!=`).
    Except(Vec<PortRange>),
}

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        match self {
            PortSet::Any => true,
            PortSet::Only(r) => r.iter().any(|r| r.contains(port)),
            PortSet::Except(r) => !r.iter().any(|r| r.contains(port)),
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, PortSet::Any)
    }

    /// The listed single ports and ranges, as "22", "8000-8100", joined with ",".
    pub fn label(&self) -> String {
        let join = |r: &[PortRange]| {
            r.iter()
                .map(|r| {
                    if r.first == r.last {
                        r.first.to_string()
                    } else {
                        format!("{}-{}", r.first, r.last)
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            PortSet::Any => "any".to_string(),
            PortSet::Only(r) => join(r),
            PortSet::Except(r) => format!("!{}", join(r)),
        }
    }
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "chain", rename_all = "lowercase")]
pub enum Action {
    Accept,
    Drop,
    Reject,
    /// Accepted unless the source exceeds a rate (ufw LIMIT).
    Limit,
    /// Evaluate the named chain, then continue here unless it decided.
    Jump(String),
    /// Evaluate the named chain and do not come back.
    Goto(String),
    /// Leave this chain (back to the caller, or the base chain's policy).
    Return,
    /// Logging only; evaluation continues.
    Log,
    /// Any other non-deciding target (counter, mark, NFLOG, ...); evaluation continues.
    Continue,
}

impl Action {
    /// True for actions that end evaluation of the packet.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Accept | Action::Drop | Action::Reject | Action::Limit
        )
    }
}

/// A connection-tracking state a rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

/// An address type (`-m addrtype`, nft `fib daddr type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrType {
    Local,
    Unicast,
    Broadcast,
    Multicast,
    Anycast,
    Other,
}

/// A set condition that may be negated (`! -s`, `!= @set`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negatable<T> {
    pub values: Vec<T>,
    pub negated: bool,
}

impl<T: PartialEq> Negatable<T> {
    pub fn new(values: Vec<T>, negated: bool) -> Self {
        Negatable { values, negated }
    }

    /// True when `v` satisfies the condition.
    pub fn matches(&self, v: &T) -> bool {
        self.values.contains(v) != self.negated
    }
}

/// An interface condition; names may end in `+` (iptables) or `*` (nft) as a prefix wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InterfaceMatch {
    pub name: String,
    pub negated: bool,
}

impl InterfaceMatch {
    /// True when the pattern (ignoring negation) names `iface`.
    pub fn names(&self, iface: &str) -> bool {
        match self
            .name
            .strip_suffix('+')
            .or_else(|| self.name.strip_suffix('*'))
        {
            Some(prefix) => iface.starts_with(prefix),
            None => self.name == iface,
        }
    }

    /// True when the pattern can only name the loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.name == "lo"
    }
}

/// Where a rule came from, precisely enough to find it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub backend: Backend,
    /// "filter", or the nftables table as "inet filter".
    pub table: String,
    pub chain: String,
    /// The line in the backend's output (iptables-save, user.rules, ufw status), 1-based.
    pub line: Option<usize>,
    /// The nftables rule handle.
    pub handle: Option<u64>,
}

impl Origin {
    /// "iptables-nft filter/ufw-user-input line 12", for evidence.
    pub fn label(&self) -> String {
        let backend = match self.backend {
            Backend::Ufw => "ufw",
            Backend::Nftables => "nft",
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::IptablesNft => "iptables-nft",
        };
        let mut s = format!("{backend} {}/{}", self.table, self.chain);
        if let Some(h) = self.handle {
            s.push_str(&format!(" handle {h}"));
        }
        if let Some(l) = self.line {
            s.push_str(&format!(" line {l}"));
        }
        s
    }
}

/// One firewall rule, normalized whatever the backend.
///
/// An empty condition (`None`, empty list, [`PortSet::Any`]) matches every packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    pub direction: Direction,
    pub action: Action,
    pub protocol: Option<Protocol>,
    pub dports: PortSet,
    pub sports: PortSet,
    pub sources: Vec<IpNet>,
    pub sources_negated: bool,
    pub destinations: Vec<IpNet>,
    pub destinations_negated: bool,
    /// Incoming interface (`-i`, `iifname`).
    pub interface: Option<InterfaceMatch>,
    /// Outgoing interface (`-o`, `oifname`).
    pub out_interface: Option<InterfaceMatch>,
    pub family: Family,
    /// Connection-tracking states; `None` = any state.
    pub ct_states: Option<Negatable<CtState>>,
    /// Destination address type (`-m addrtype --dst-type`).
    pub dst_types: Option<Negatable<AddrType>>,
    /// The rule only fires once a source exceeds a rate (`-m recent --update`,
    /// `hashlimit-above`, nft `limit ... over`): a first connection does not match it.
    pub over_rate_only: bool,
    /// The rule applies only while under a rate (`-m limit`, nft `limit rate`).
    pub under_rate_only: bool,
    /// Match conditions the model does not understand, verbatim (sanitized). A rule with
    /// any is evaluated pessimistically (see [`Firewall::evaluate`]).
    pub unmodelled: Vec<String>,
    pub comment: Option<String>,
    /// The manager that owns the rule (ufw owns its chains in iptables).
    pub manager: Manager,
    pub origin: Origin,
}

impl Rule {
    /// A rule with no conditions, for builders: matches everything, does `action`.
    pub fn new(direction: Direction, action: Action, manager: Manager, origin: Origin) -> Self {
        Rule {
            direction,
            action,
            protocol: None,
            dports: PortSet::Any,
            sports: PortSet::Any,
            sources: Vec::new(),
            sources_negated: false,
            destinations: Vec::new(),
            destinations_negated: false,
            interface: None,
            out_interface: None,
            family: Family::Any,
            ct_states: None,
            dst_types: None,
            over_rate_only: false,
            under_rate_only: false,
            unmodelled: Vec::new(),
            comment: None,
            manager,
            origin,
        }
    }

    /// True when the rule has no match condition at all.
    pub fn is_unconditional(&self) -> bool {
        self.protocol.is_none()
            && self.dports.is_any()
            && self.sports.is_any()
            && self.sources.is_empty()
            && self.destinations.is_empty()
            && self.interface.is_none()
            && self.out_interface.is_none()
            && self.ct_states.is_none()
            && self.dst_types.is_none()
            && !self.over_rate_only
            && !self.under_rate_only
            && self.unmodelled.is_empty()
    }

    /// True for an allowing rule (accept or limit).
    pub fn allows(&self) -> bool {
        matches!(self.action, Action::Accept | Action::Limit)
    }
}

/// A chain: a base chain (attached to a hook, with a policy) or a user chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chain {
    pub backend: Backend,
    pub family: Family,
    /// "filter" (iptables) or "inet filter" (nft: family and name).
    pub table: String,
    pub name: String,
    /// The hook of a base chain; `None` for user chains.
    pub hook: Option<Hook>,
    /// Lower runs first among base chains of one hook.
    pub priority: i32,
    /// The policy of a base chain (Accept or Drop).
    pub policy: Option<Action>,
    /// Indexes into [`Firewall::rules`], in evaluation order.
    pub rules: Vec<usize>,
}

/// The default decision for a direction of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Accept,
    Drop,
    Reject,
    /// Not filtered by the manager (ufw "disabled (routed)").
    Disabled,
}

/// Default policies per direction; `None` when no manager says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policies {
    pub incoming: Option<Policy>,
    pub outgoing: Option<Policy>,
    pub routed: Option<Policy>,
}

/// What ufw itself reports (`ufw status verbose`), kept beside the normalized rules
/// because its rule text (app profiles, comments) is what the operator typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UfwStatus {
    pub active: bool,
    pub logging: Option<String>,
    pub policies: Policies,
    pub rules: Vec<UfwRule>,
}

/// One line of `ufw status verbose`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UfwRule {
    /// The "To" column verbatim ("22/tcp", "OpenSSH", "Anywhere on eth0", "5432 (v6)").
    pub to: String,
    /// ALLOW, DENY, REJECT, LIMIT with IN/OUT/FWD, verbatim.
    pub action: String,
    /// The "From" column verbatim.
    pub from: String,
    pub comment: Option<String>,
    /// 1-based line in the status output.
    pub line: usize,
}

/// The host firewall, normalized over every backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Firewall {
    /// Managers that are active (enabled or holding rules). More than one is a fact.
    pub managers: Vec<Manager>,
    /// Managers installed on the host, active or not.
    pub installed: Vec<Manager>,
    pub policies: Policies,
    /// Every rule of every filtering chain, all backends.
    pub rules: Vec<Rule>,
    /// The chains, with their rules as indexes into `rules`.
    pub chains: Vec<Chain>,
    /// ufw's own view, when ufw is installed.
    pub ufw: Option<UfwStatus>,
    /// Notes from building the model (a backend unreadable, a table skipped and why).
    pub notes: Vec<String>,
}

/// The outcome of asking the firewall about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    /// Accepted, but rate-limited per source (ufw LIMIT and the like).
    Limit,
    Drop,
    Reject,
}

impl Decision {
    /// True when the packet gets in (accepted, limited or not).
    pub fn admitted(self) -> bool {
        matches!(self, Decision::Accept | Decision::Limit)
    }
}

/// What decided a [`Verdict`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum DecidedBy {
    /// A rule, as an index into [`Firewall::rules`].
    Rule { index: usize },
    /// A base chain's policy (or its end without a policy).
    Policy {
        backend: Backend,
        table: String,
        chain: String,
    },
    /// No chain filters incoming packets at all.
    NoFilter,
}

/// The answer to "is this packet let in?", with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub decided_by: DecidedBy,
    /// Rules traversed on the way (jumps and non-final matches), as indexes into `rules`.
    pub path: Vec<usize>,
    /// Guesses made where the packet's description left a rule undecided (interface,
    /// destination address, unmodelled matches), each in words. Guesses lean towards
    /// "admitted", so exposure is never hidden by the model.
    pub assumptions: Vec<String>,
}

impl Verdict {
    pub fn admitted(&self) -> bool {
        self.decision.admitted()
    }
}

/// A packet to ask the firewall about: a new connection attempt to the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet {
    pub src: IpAddr,
    /// The host address it is sent to; `None` = one of the host's addresses, unknown which.
    pub dst: Option<IpAddr>,
    /// The interface it arrives on; `None` = some non-loopback interface, unknown which
    /// (a loopback source always means "lo").
    pub iface: Option<String>,
    pub protocol: Protocol,
    pub port: u16,
}

/// How deep jumps may nest before evaluation stops (loops are impossible in a loaded
/// ruleset, but a parsed one can hold anything).
const MAX_JUMP_DEPTH: usize = 32;

/// The result of evaluating one chain.
enum ChainOutcome {
    Final(Decision, usize),
    /// Fell off the end or hit `return`.
    Continue,
}

/// Whether a condition holds for the packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    /// Cannot tell from the packet's description.
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
}

fn is_loopback_net(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.network().is_loopback() && n.prefix_len() >= 8,
        IpNet::V6(n) => n.prefix_len() == 128 && n.network().is_loopback(),
    }
}

struct Eval<'a> {
    fw: &'a Firewall,
    packet: &'a Packet,
    path: Vec<usize>,
    assumptions: Vec<String>,
    /// A rate-limit rule was passed over; an accept after it is a [`Decision::Limit`].
    limited: bool,
}

impl<'a> Eval<'a> {
    fn note(&mut self, s: String) {
        if !self.assumptions.contains(&s) {
            self.assumptions.push(s);
        }
    }

    fn iface_is_loopback(&self) -> bool {
        match &self.packet.iface {
            Some(i) => i == "lo",
            None => self.packet.src.is_loopback(),
        }
    }

    fn matches(&mut self, rule: &Rule) -> Tri {
        let p = self.packet;
        let mut t = Tri::from_bool(rule.family.covers(p.src));
        if let Some(proto) = &rule.protocol {
            t = t.and(Tri::from_bool(*proto == p.protocol));
        }
        if !rule.dports.is_any() {
            let ported = matches!(p.protocol, Protocol::Tcp | Protocol::Udp | Protocol::Sctp);
            t = t.and(Tri::from_bool(ported && rule.dports.contains(p.port)));
        }
        if !rule.sports.is_any() {
            // The client's source port is unknown (ephemeral).
            t = t.and(Tri::Unknown);
        }
        if !rule.sources.is_empty() {
            let inside = rule.sources.iter().any(|n| n.contains(&p.src));
            t = t.and(Tri::from_bool(inside != rule.sources_negated));
        }
        if !rule.destinations.is_empty() {
            let d = match p.dst {
                Some(dst) => {
                    let inside = rule.destinations.iter().any(|n| n.contains(&dst));
                    Tri::from_bool(inside != rule.destinations_negated)
                }
                None => {
                    // Outside traffic never targets a loopback address.
                    let all_lo = rule.destinations.iter().all(is_loopback_net);
                    if all_lo && !p.src.is_loopback() {
                        Tri::from_bool(rule.destinations_negated)
                    } else {
                        Tri::Unknown
                    }
                }
            };
            t = t.and(d);
        }
        if let Some(m) = &rule.interface {
            let d = match &p.iface {
                Some(i) => Tri::from_bool(m.names(i) != m.negated),
                None if m.is_loopback() => Tri::from_bool(self.iface_is_loopback() != m.negated),
                None if self.iface_is_loopback() => Tri::from_bool(m.names("lo") != m.negated),
                None => Tri::Unknown,
            };
            t = t.and(d);
        }
        if rule.out_interface.is_some() {
            // Incoming packets have no output interface in INPUT; a rule that needs one
            // never matches them.
            t = t.and(Tri::No);
        }
        if let Some(ct) = &rule.ct_states {
            t = t.and(Tri::from_bool(ct.matches(&CtState::New)));
        }
        if let Some(types) = &rule.dst_types {
            // A new connection to the host is addressed to one of its own unicast addresses.
            let local = types
                .values
                .iter()
                .any(|v| matches!(v, AddrType::Local | AddrType::Unicast));
            t = t.and(Tri::from_bool(local != types.negated));
        }
        if !rule.unmodelled.is_empty() {
            t = t.and(Tri::Unknown);
        }
        if rule.over_rate_only {
            // A single new connection is under any rate; note that a limit exists.
            if t != Tri::No
                && !matches!(rule.action, Action::Accept | Action::Log | Action::Continue)
            {
                self.limited = true;
            }
            return Tri::No;
        }
        t
    }

    /// Resolves an unknown match: allowing and jumping rules are assumed to match, denying
    /// rules not, so the model errs towards reporting exposure.
    fn resolve(&mut self, idx: usize, rule: &Rule, t: Tri) -> bool {
        match t {
            Tri::Yes => true,
            Tri::No => false,
            Tri::Unknown => {
                let assume = !matches!(rule.action, Action::Drop | Action::Reject);
                let what = if assume { "matches" } else { "does not match" };
                self.note(format!(
                    "assumed rule #{idx} ({}) {what}: its conditions depend on what the \
                     question leaves open (interface, destination, source port or an \
                     unmodelled match)",
                    rule.origin.label()
                ));
                assume
            }
        }
    }

    fn chain(&self, backend: Backend, table: &str, name: &str) -> Option<&'a Chain> {
        let fw: &'a Firewall = self.fw;
        fw.chains
            .iter()
            .find(|c| c.backend == backend && c.table == table && c.name == name)
    }

    fn run_chain(&mut self, chain: &'a Chain, depth: usize) -> ChainOutcome {
        if depth > MAX_JUMP_DEPTH {
            self.note(format!(
                "stopped following jumps at {} (nested deeper than {MAX_JUMP_DEPTH})",
                chain.name
            ));
            return ChainOutcome::Continue;
        }
        let fw = self.fw;
        for &idx in &chain.rules {
            let Some(rule) = fw.rules.get(idx) else {
                continue;
            };
            let t = self.matches(rule);
            if !self.resolve(idx, rule, t) {
                continue;
            }
            match &rule.action {
                Action::Accept => {
                    let d = if self.limited || rule.under_rate_only {
                        Decision::Limit
                    } else {
                        Decision::Accept
                    };
                    return ChainOutcome::Final(d, idx);
                }
                Action::Limit => return ChainOutcome::Final(Decision::Limit, idx),
                Action::Drop => return ChainOutcome::Final(Decision::Drop, idx),
                Action::Reject => return ChainOutcome::Final(Decision::Reject, idx),
                Action::Return => return ChainOutcome::Continue,
                Action::Log | Action::Continue => self.path.push(idx),
                Action::Jump(target) | Action::Goto(target) => {
                    self.path.push(idx);
                    let Some(next) = self.chain(chain.backend, &chain.table, target) else {
                        self.note(format!(
                            "rule #{idx} jumps to chain {target}, which was not found"
                        ));
                        continue;
                    };
                    match self.run_chain(next, depth + 1) {
                        ChainOutcome::Final(d, i) => return ChainOutcome::Final(d, i),
                        ChainOutcome::Continue => {
                            if matches!(rule.action, Action::Goto(_)) {
                                return ChainOutcome::Continue;
                            }
                        }
                    }
                }
            }
        }
        ChainOutcome::Continue
    }
}

impl Firewall {
    /// Is a new connection from `src` to `port`/`protocol` let in, arriving on some
    /// non-loopback interface (loopback when `src` is a loopback address)?
    pub fn admits(&self, src: IpAddr, protocol: Protocol, port: u16) -> Verdict {
        self.evaluate(&Packet {
            src,
            dst: None,
            iface: None,
            protocol,
            port,
        })
    }

    /// Evaluates a new incoming connection against every incoming base chain of every
    /// backend, in hook and priority order, following jumps and gotos, honouring
    /// connection-tracking state (an "established" rule does not admit a new
    /// connection) and rate limits. A packet gets in only if no base chain drops it,
    /// as netfilter does. Conditions the packet leaves open are resolved towards
    /// "admitted" and listed in [`Verdict::assumptions`].
    pub fn evaluate(&self, packet: &Packet) -> Verdict {
        let mut bases: Vec<&Chain> = self
            .chains
            .iter()
            .filter(|c| {
                matches!(c.hook, Some(Hook::Ingress | Hook::Prerouting | Hook::Input))
                    && c.family.covers(packet.src)
            })
            .collect();
        bases.sort_by_key(|c| (c.hook, c.priority));
        let mut ev = Eval {
            fw: self,
            packet,
            path: Vec::new(),
            assumptions: Vec::new(),
            limited: false,
        };
        if bases.is_empty() {
            return Verdict {
                decision: Decision::Accept,
                decided_by: DecidedBy::NoFilter,
                path: Vec::new(),
                assumptions: Vec::new(),
            };
        }
        // The most telling accept seen so far: a rule beats a policy.
        let mut accepted: Option<(Decision, DecidedBy)> = None;
        for base in bases {
            ev.limited = false;
            let (decision, by) = match ev.run_chain(base, 0) {
                ChainOutcome::Final(d, idx) => (d, DecidedBy::Rule { index: idx }),
                ChainOutcome::Continue => {
                    let d = match base.policy {
                        Some(Action::Drop) => Decision::Drop,
                        Some(Action::Reject) => Decision::Reject,
                        _ if ev.limited => Decision::Limit,
                        _ => Decision::Accept,
                    };
                    (
                        d,
                        DecidedBy::Policy {
                            backend: base.backend,
                            table: base.table.clone(),
                            chain: base.name.clone(),
                        },
                    )
                }
            };
            if !decision.admitted() {
                return Verdict {
                    decision,
                    decided_by: by,
                    path: ev.path,
                    assumptions: ev.assumptions,
                };
            }
            let better = match (&accepted, &by) {
                (None, _) => true,
                (Some((_, DecidedBy::Policy { .. })), DecidedBy::Rule { .. }) => true,
                (Some((Decision::Accept, _)), _) if decision == Decision::Limit => true,
                _ => false,
            };
            if better {
                accepted = Some((decision, by));
            }
        }
        let (decision, decided_by) = accepted.unwrap_or((Decision::Accept, DecidedBy::NoFilter));
        Verdict {
            decision,
            decided_by,
            path: ev.path,
            assumptions: ev.assumptions,
        }
    }

    /// The rule a verdict names, if a rule decided it.
    pub fn rule_of(&self, verdict: &Verdict) -> Option<&Rule> {
        match verdict.decided_by {
            DecidedBy::Rule { index } => self.rules.get(index),
            _ => None,
        }
    }

    /// True when something can keep incoming traffic out: a drop or reject policy on an
    /// incoming hook, or a rule that drops, rejects or rate-limits in a chain that incoming
    /// traffic reaches (the hook's chains and the chains they jump to). Rules alone do not
    /// make a filter: `ufw disable` leaves INPUT jumping to empty ufw chains under an accept
    /// policy, which lets everything in.
    pub fn filters_incoming(&self) -> bool {
        let incoming =
            |c: &Chain| matches!(c.hook, Some(Hook::Ingress | Hook::Prerouting | Hook::Input));
        let mut seen: Vec<bool> = self.chains.iter().map(incoming).collect();
        let mut queue: Vec<usize> = (0..self.chains.len()).filter(|&i| seen[i]).collect();
        if queue
            .iter()
            .any(|&i| matches!(self.chains[i].policy, Some(Action::Drop | Action::Reject)))
        {
            return true;
        }
        while let Some(ci) = queue.pop() {
            let chain = &self.chains[ci];
            for rule in chain.rules.iter().filter_map(|&i| self.rules.get(i)) {
                match &rule.action {
                    Action::Drop | Action::Reject | Action::Limit => return true,
                    Action::Jump(target) | Action::Goto(target) => {
                        let next = self.chains.iter().position(|c| {
                            c.backend == chain.backend
                                && c.table == chain.table
                                && c.name == *target
                        });
                        if let Some(n) = next
                            && !seen[n]
                        {
                            seen[n] = true;
                            queue.push(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        false
    }

    /// The allowing rules for incoming traffic (accept or limit), for stale-rule checks.
    pub fn allow_rules(&self) -> impl Iterator<Item = (usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.direction == Direction::In && r.allows())
    }
}

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

    fn origin(chain: &str, line: usize) -> Origin {
        Origin {
            backend: Backend::IptablesNft,
            table: "filter".into(),
            chain: chain.into(),
            line: Some(line),
            handle: None,
        }
    }

    fn rule(chain: &str, line: usize, action: Action) -> Rule {
        Rule::new(
            Direction::In,
            action,
            Manager::IptablesNft,
            origin(chain, line),
        )
    }

    fn chain(name: &str, hook: Option<Hook>, policy: Option<Action>, rules: Vec<usize>) -> Chain {
        Chain {
            backend: Backend::IptablesNft,
            family: Family::V4,
            table: "filter".into(),
            name: name.into(),
            hook,
            priority: 0,
            policy,
            rules,
        }
    }

    fn tcp_port(r: &mut Rule, port: u16) {
        r.protocol = Some(Protocol::Tcp);
        r.dports = PortSet::Only(vec![PortRange::single(port)]);
    }

    /// INPUT (drop): lo accept, established accept, jump user; user: 22 from admin, 443 any.
    fn sample() -> Firewall {
        let mut lo = rule("INPUT", 1, Action::Accept);
        lo.interface = Some(InterfaceMatch {
            name: "lo".into(),
            negated: false,
        });
        let mut est = rule("INPUT", 2, Action::Accept);
        est.ct_states = Some(Negatable::new(
            vec![CtState::Established, CtState::Related],
            false,
        ));
        let jump = rule("INPUT", 3, Action::Jump("user".into()));
        let mut ssh = rule("user", 4, Action::Accept);
        tcp_port(&mut ssh, 22);
        ssh.sources = vec!["10.77.9.0/24".parse().unwrap()];
        let mut https = rule("user", 5, Action::Accept);
        tcp_port(&mut https, 443);
        let ret = rule("user", 6, Action::Return);
        let mut never = rule("user", 7, Action::Accept);
        tcp_port(&mut never, 8080);
        Firewall {
            managers: vec![Manager::IptablesNft],
            installed: vec![Manager::IptablesNft],
            policies: Policies::default(),
            rules: vec![lo, est, jump, ssh, https, ret, never],
            chains: vec![
                chain(
                    "INPUT",
                    Some(Hook::Input),
                    Some(Action::Drop),
                    vec![0, 1, 2],
                ),
                chain("user", None, None, vec![3, 4, 5, 6]),
            ],
            ufw: None,
            notes: vec![],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn admits_follows_jumps_and_sources() {
        let fw = sample();
        let v = fw.admits(ip("10.77.9.5"), Protocol::Tcp, 22);
        assert_eq!(v.decision, Decision::Accept);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 3 });
        assert_eq!(v.path, vec![2]);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 22);
        assert_eq!(v.decision, Decision::Drop);
        assert!(matches!(v.decided_by, DecidedBy::Policy { ref chain, .. } if chain == "INPUT"));
        assert!(fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443).admitted());
    }

    #[test]
    fn return_stops_user_chain_and_established_does_not_admit_new() {
        let fw = sample();
        // 8080 is after RETURN: not reached; the established rule must not admit it.
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 8080);
        assert_eq!(v.decision, Decision::Drop);
        assert!(v.assumptions.is_empty(), "{:?}", v.assumptions);
    }

    #[test]
    fn loopback_source_takes_the_lo_rule() {
        let fw = sample();
        let v = fw.admits(ip("127.0.0.1"), Protocol::Tcp, 5432);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 0 });
        // IPv6 traffic is not covered by an IPv4 chain: no filter.
        let v = fw.admits(ip("2001:db8::1"), Protocol::Tcp, 5432);
        assert_eq!(v.decided_by, DecidedBy::NoFilter);
    }

    #[test]
    fn unknown_interface_leans_towards_admitted_and_says_so() {
        let mut fw = sample();
        let mut wg = rule("INPUT", 8, Action::Accept);
        wg.interface = Some(InterfaceMatch {
            name: "wg0".into(),
            negated: false,
        });
        fw.rules.push(wg);
        fw.chains[0].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 9999);
        assert!(v.admitted());
        assert_eq!(v.assumptions.len(), 1);
        let v = fw.evaluate(&Packet {
            src: ip("203.0.113.9"),
            dst: None,
            iface: Some("eth0".into()),
            protocol: Protocol::Tcp,
            port: 9999,
        });
        assert_eq!(v.decision, Decision::Drop);
    }

    #[test]
    fn any_dropping_base_chain_wins_across_backends() {
        let mut fw = sample();
        let mut nft_drop = rule("input", 1, Action::Drop);
        tcp_port(&mut nft_drop, 443);
        fw.rules.push(nft_drop);
        fw.chains.push(Chain {
            backend: Backend::Nftables,
            family: Family::Any,
            table: "inet extra".into(),
            name: "input".into(),
            hook: Some(Hook::Input),
            priority: 10,
            policy: Some(Action::Accept),
            rules: vec![7],
        });
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443);
        assert_eq!(v.decision, Decision::Drop);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 7 });
    }

    #[test]
    fn rate_limit_rule_turns_accept_into_limit() {
        let mut fw = sample();
        let mut over = rule("user", 9, Action::Reject);
        tcp_port(&mut over, 443);
        over.over_rate_only = true;
        fw.rules.push(over);
        fw.chains[1].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 443);
        assert_eq!(v.decision, Decision::Limit);
        assert_eq!(v.decided_by, DecidedBy::Rule { index: 4 });
    }

    #[test]
    fn jump_loops_terminate() {
        let mut fw = sample();
        fw.rules.push(rule("user", 10, Action::Jump("user".into())));
        fw.chains[1].rules.insert(0, 7);
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 1);
        assert_eq!(v.decision, Decision::Drop);
        assert!(!v.assumptions.is_empty());
    }

    #[test]
    fn rules_that_only_accept_under_an_accept_policy_do_not_filter() {
        let mut fw = sample();
        assert!(fw.filters_incoming(), "INPUT drops by policy");
        // What `ufw disable` leaves: INPUT under ACCEPT, jumping to chains that decide nothing.
        fw.chains[0].policy = Some(Action::Accept);
        assert!(!fw.filters_incoming());
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 5432);
        assert!(v.admitted());
        // A dropping rule in a chain INPUT jumps to is a filter again.
        fw.rules[4].action = Action::Drop;
        assert!(fw.filters_incoming());
        // One in a chain nothing on the way in reaches is not.
        fw.rules[2].action = Action::Jump("elsewhere".into());
        assert!(
            !fw.filters_incoming(),
            "the user chain is no longer reached"
        );
        fw.rules[2].action = Action::Jump("user".into());
        assert!(fw.filters_incoming());
    }

    #[test]
    fn no_chains_means_no_filter() {
        let fw = Firewall::default();
        let v = fw.admits(ip("203.0.113.9"), Protocol::Tcp, 22);
        assert_eq!(v.decided_by, DecidedBy::NoFilter);
        assert!(v.admitted());
        assert!(!fw.filters_incoming());
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut st = HostState::unreachable("web1", "connect", "refused");
        st.firewall = Probed::Ok(sample());
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
