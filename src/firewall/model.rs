//! The firewall model: rules and chains normalized over every backend (ufw, nftables,
//! iptables-legacy, iptables-nft, plain iptables), and the shapes of the answers the
//! evaluator gives. Plain data: evaluation lives in [`super::eval`], parsing in the
//! backend normalizers.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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
    /// Destination NAT (prerouting): the connection is sent on to another address/port.
    Dnat(NatTo),
    /// `REDIRECT` / nft `redirect`: delivered to the host itself, on this port if given.
    Redirect(Option<PortRange>),
}

/// Where a DNAT rule sends a connection; `None` keeps the original address or port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NatTo {
    pub addr: Option<IpAddr>,
    pub ports: Option<PortRange>,
}

impl NatTo {
    /// "172.17.0.2:5432", ":8080" or "172.17.0.2", for evidence.
    pub fn label(&self) -> String {
        let addr = match self.addr {
            Some(IpAddr::V6(a)) if self.ports.is_some() => format!("[{a}]"),
            Some(a) => a.to_string(),
            None => String::new(),
        };
        match self.ports {
            Some(p) if p.first == p.last => format!("{addr}:{}", p.first),
            Some(p) => format!("{addr}:{}-{}", p.first, p.last),
            None => addr,
        }
    }
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
    /// conntrack's virtual state of a connection whose destination NAT changed (`-m
    /// conntrack --ctstate DNAT`; REDIRECT is a DNAT to the host itself).
    Dnat,
    /// The same for source NAT (never an incoming new connection's, before POSTROUTING).
    Snat,
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
    /// The connection's original destination port, before any DNAT (`-m conntrack
    /// --ctorigdstport`, nft `ct original proto-dst`): what DOCKER-USER rules match on to
    /// name a published port.
    #[serde(default)]
    pub ct_orig_dports: PortSet,
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
            ct_orig_dports: PortSet::Any,
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
            && self.ct_orig_dports.is_any()
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
    /// firewalld's own view (zones, services), where it runs: evidence beside the nft table
    /// it writes, which the verdicts come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewalld: Option<super::firewalld::Firewalld>,
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
    /// The packet's way through the host, one step per stage, e.g. `nat/PREROUTING →
    /// DOCKER → dnat to 172.17.0.2:5432`, `routed to 172.17.0.2 via docker0`,
    /// `filter/FORWARD → DOCKER-USER → DOCKER → accept`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<String>,
    /// Where the packet goes when prerouting NAT sends it through the host (a container
    /// or another machine) rather than to a local socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<Forwarded>,
    /// The host's own port the connection is delivered to when prerouting NAT (REDIRECT,
    /// or DNAT to the host itself) changed it; `None` when it is the port asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
}

/// A destination reached through FORWARD after DNAT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Forwarded {
    pub addr: IpAddr,
    pub port: u16,
    /// The outgoing interface the host's routes give; `None` when unknown.
    pub iface: Option<String>,
}

impl Verdict {
    pub fn admitted(&self) -> bool {
        self.decision.admitted()
    }

    /// The path as one line of evidence: the stages joined with " | ".
    pub fn path_label(&self) -> String {
        self.route.join(" | ")
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
