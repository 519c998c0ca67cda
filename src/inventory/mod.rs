//! The inventory: hosts, roles, network segments, bastions, alerting and transport settings,
//! read from `inventory.toml`.
//!
//! Owns parsing and validation. Everything that later reaches a host (names, addresses,
//! users, ports) is validated here, when the file loads, so no other module ever sees a value
//! such as `-oProxyCommand=x` or `a;b`. Errors name the file, the line and the key. This module
//! does no network I/O.

pub mod import;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Serialize;

pub use validate::{is_valid_dns_name, is_valid_host_name, is_valid_user};

/// A validated inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The file it was read from.
    pub path: PathBuf,
    pub defaults: Defaults,
    /// Segment name → its CIDRs.
    pub segments: BTreeMap<String, Vec<IpNet>>,
    /// Role name → policy. Holds the built-in roles too, overridden by the file's.
    pub roles: BTreeMap<String, Role>,
    pub hosts: Vec<Host>,
    pub alerting: Alerting,
    pub transport: TransportSettings,
    pub console: ConsoleSettings,
    pub cloud: CloudSettings,
}

/// `[defaults]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub user: String,
    pub port: u16,
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: Vec<PathBuf>,
    pub bastion: Option<String>,
    pub sudo: bool,
    pub read_only: bool,
}

/// How a host is addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Address {
    Ip(IpAddr),
    /// A DNS name, or a `Host` alias of `~/.ssh/config`. Validated: letters, digits, `-`, `.`,
    /// `_`, never starting with `-`.
    Dns(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Dns(d) => f.write_str(d),
        }
    }
}

impl Address {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::Dns(_) => None,
        }
    }
}

/// One `[[host]]`, with defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: Address,
    /// True when `address` was not written and the name stands in for it (a host that only
    /// `~/.ssh/config` describes).
    pub address_from_name: bool,
    pub port: u16,
    pub user: String,
    /// The bastion to jump through; `None` connects directly.
    pub bastion: Option<String>,
    pub roles: Vec<String>,
    pub sudo: bool,
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: Vec<PathBuf>,
    pub read_only: bool,
    pub tags: BTreeMap<String, String>,
    /// Line of the `[[host]]` entry in the inventory, for messages.
    pub line: usize,
}

/// A role's policy: what hosts of this role should expose and require.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Role {
    /// Ports the role may expose.
    pub allow_ports: Vec<u16>,
    /// Port → segments that may reach it. A port not listed may be reached from anywhere
    /// its firewall allows (if it is in `allow_ports`).
    pub reachable_from: BTreeMap<u16, Vec<String>>,
    /// Segments a host of this role belongs in (empty: anywhere).
    pub segments: Vec<String>,
    /// Data tier (databases, caches): exposure outside `reachable_from` is critical.
    pub data_tier: bool,
    pub require_https: bool,
    pub require_rate_limit: bool,
    pub require_fail2ban: bool,
    pub require_ids: bool,
    pub require_monitoring: bool,
    pub require_vpn: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Alerting {
    /// Alertmanager base URLs (`http://host:9093`).
    pub alertmanager: Vec<String>,
    /// Generic JSON webhook URLs.
    pub webhook: Vec<String>,
    /// Named thresholds (e.g. `ban_spike_per_minute = 5`); each consumer documents its own.
    pub thresholds: BTreeMap<String, f64>,
    /// Authentication of sinks, by URL (`[alerting.auth."URL"]`): where secrets are read
    /// from, never the secrets.
    pub auth: BTreeMap<String, crate::alerts::secret::SinkAuth>,
}

/// `[transport]`: limits and timeouts of the SSH fan-out.
#[derive(Debug, Clone, Serialize)]
pub struct TransportSettings {
    pub connect_timeout_secs: f64,
    pub command_timeout_secs: f64,
    pub keepalive_secs: f64,
    pub keepalive_max: u32,
    /// Unauthenticated handshakes in flight per sshd (keep well under `MaxStartups`' 10).
    pub max_handshakes: u32,
    /// Channels open at once per connection (keep under `MaxSessions`' 10).
    pub max_sessions: u32,
    pub output_cap_bytes: u64,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            connect_timeout_secs: 5.0,
            command_timeout_secs: 20.0,
            keepalive_secs: 5.0,
            keepalive_max: 3,
            max_handshakes: 4,
            max_sessions: 8,
            output_cap_bytes: 4 * 1024 * 1024,
        }
    }
}

/// `[console]`.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleSettings {
    pub refresh_secs: f64,
    pub theme: Option<String>,
    /// Free text naming the environment (`prod`, `staging`): a badge in the status bar, and
    /// a frame colour per theme.
    pub environment: Option<String>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            refresh_secs: 30.0,
            theme: None,
            environment: None,
        }
    }
}

/// `[cloud]`: exported cloud firewall descriptions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CloudSettings {
    /// Files holding `aws ec2 describe-security-groups` JSON, resolved against the inventory's
    /// directory.
    pub aws_security_groups: Vec<PathBuf>,
}

/// An inventory that could not be used. The message names the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl InventoryError {
    /// The line the error points at (0 when the file could not be read).
    pub fn line(&self) -> usize {
        match self {
            InventoryError::Read { .. } => 0,
            InventoryError::Invalid { line, .. } => *line,
        }
    }
}

impl Inventory {
    /// Reads and validates an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Inventory::parse(&text, path)
    }

    /// Parses and validates inventory text; `path` is used for messages and for resolving
    /// relative file names.
    pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
        validate::parse(text, path)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The hops to reach `name`: the outermost bastion first, the host itself last. Empty when
    /// the host does not exist. Validation guarantees there is no loop.
    pub fn hop_chain(&self, name: &str) -> Vec<&Host> {
        let mut chain = Vec::new();
        let mut cur = self.host(name);
        while let Some(h) = cur {
            if chain.iter().any(|c: &&Host| c.name == h.name) || chain.len() > self.hosts.len() {
                break;
            }
            chain.push(h);
            cur = h.bastion.as_deref().and_then(|b| self.host(b));
        }
        chain.reverse();
        chain
    }

    /// The role policies of a host, in the host's order. Unknown roles cannot occur (checked on
    /// load).
    pub fn roles_of<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = (&'a str, &'a Role)> {
        host.roles
            .iter()
            .filter_map(|r| self.roles.get(r).map(|p| (r.as_str(), p)))
    }

    /// The segments whose CIDRs contain `ip`.
    pub fn segments_of(&self, ip: IpAddr) -> Vec<&str> {
        self.segments
            .iter()
            .filter(|(_, nets)| nets.iter().any(|n| n.contains(&ip)))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// True when the inventory, or every host, forbids fixes.
    pub fn read_only(&self) -> bool {
        self.defaults.read_only
    }
}

/// The roles every inventory knows without writing them: a short inventory still gets a useful
/// audit. An inventory's `[roles.NAME]` replaces the keys it sets.
pub fn builtin_roles() -> BTreeMap<String, Role> {
    let mut m = BTreeMap::new();
    let ssh_admin = |r: &mut Role| {
        r.reachable_from.insert(22, vec!["admin".to_string()]);
    };
    let mut web = Role {
        allow_ports: vec![22, 80, 443],
        segments: vec!["dmz".into()],
        require_https: true,
        require_rate_limit: true,
        require_fail2ban: true,
        require_monitoring: true,
        ..Role::default()
    };
    ssh_admin(&mut web);
    m.insert("web".into(), web);
    let mut app = Role {
        allow_ports: vec![22, 8000],
        segments: vec!["app".into()],
        require_fail2ban: true,
        require_monitoring: true,
        ..Role::default()
    };
    ssh_admin(&mut app);
    m.insert("app".into(), app);
    let mut db = Role {
        allow_ports: vec![22, 5432, 3306],
        segments: vec!["data".into()],
        data_tier: true,
        require_fail2ban: true,
        require_monitoring: true,
        ..Role::default()
    };
    ssh_admin(&mut db);
    db.reachable_from.insert(5432, vec!["app".into()]);
    db.reachable_from.insert(3306, vec!["app".into()]);
    m.insert("db".into(), db);
    let mut cache = Role {
        allow_ports: vec![22, 6379, 11211],
        segments: vec!["data".into()],
        data_tier: true,
        require_fail2ban: true,
        require_monitoring: true,
        ..Role::default()
    };
    ssh_admin(&mut cache);
    cache.reachable_from.insert(6379, vec!["app".into()]);
    cache.reachable_from.insert(11211, vec!["app".into()]);
    m.insert("cache".into(), cache);
    m.insert(
        "bastion".into(),
        Role {
            allow_ports: vec![22],
            require_fail2ban: true,
            require_ids: true,
            require_monitoring: true,
            ..Role::default()
        },
    );
    let mut vpn = Role {
        allow_ports: vec![22, 51820, 1194],
        require_fail2ban: true,
        require_monitoring: true,
        require_vpn: true,
        ..Role::default()
    };
    ssh_admin(&mut vpn);
    m.insert("vpn".into(), vpn);
    let mut mon = Role {
        allow_ports: vec![22, 9090, 9093, 3000],
        require_fail2ban: true,
        require_monitoring: true,
        ..Role::default()
    };
    ssh_admin(&mut mon);
    m.insert("monitoring".into(), mon);
    m
}

#[cfg(test)]
mod tests;
