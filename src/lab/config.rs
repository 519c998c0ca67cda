//! The lab's shape as data: which hosts exist, where they sit, what each one runs and how it
//! is (mis)configured, and the text of every configuration file the lab writes.
//!
//! Everything here is pure: no process is started and no file is touched, so the whole lab
//! design can be unit-tested. `up` turns this plan into namespaces, files and daemons.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::LabError;

/// How many light "scale" hosts `lab up --hosts N` may add at most (they live in one /20).
pub const MAX_SCALE_HOSTS: u32 = 1000;

/// The lab's knobs. The CLI uses [`LabConfig::default`]; tests and benchmarks may change the
/// prefix (to run a second lab next to the first) or the base network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// Prefix of every namespace and root-namespace link the lab makes (`rpl` → `rpl-web1`).
    pub prefix: String,
    /// A /16 the lab takes its addresses from; the third octet names the segment.
    pub base: Ipv4Net,
    /// Where keys, known_hosts, per-host overlay layers and logs live.
    pub state_dir: PathBuf,
    /// Light extra hosts (sshd only) behind the same bastion, for fan-out benchmarks.
    pub scale_hosts: u32,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            prefix: "rpl".to_owned(),
            base: Ipv4Net::new(Ipv4Addr::new(10, 77, 0, 0), 16).unwrap_or_default(),
            state_dir: default_state_dir(),
            scale_hosts: 0,
        }
    }
}

/// `${XDG_STATE_HOME:-$HOME/.local/state}/rampart/lab`.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })
        .unwrap_or_else(|| PathBuf::from("/root/.local/state"));
    base.join("rampart").join("lab")
}

/// A network segment of the lab: one bridge in the router namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// The outside link between the root namespace and the bastion.
    Outside,
    Admin,
    Dmz,
    App,
    Data,
    /// Where `--hosts N` puts its light hosts.
    Fleet,
}

impl Segment {
    pub const BRIDGED: [Segment; 5] = [
        Segment::Admin,
        Segment::Dmz,
        Segment::App,
        Segment::Data,
        Segment::Fleet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Segment::Outside => "outside",
            Segment::Admin => "admin",
            Segment::Dmz => "dmz",
            Segment::App => "app",
            Segment::Data => "data",
            Segment::Fleet => "fleet",
        }
    }

    /// Third octet of the segment's network and its prefix length.
    fn octet_and_len(self) -> (u8, u8) {
        match self {
            Segment::Outside => (0, 24),
            Segment::Admin => (9, 24),
            Segment::Dmz => (10, 24),
            Segment::App => (11, 24),
            Segment::Data => (12, 24),
            Segment::Fleet => (16, 20),
        }
    }
}

/// The firewall a host runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firewall {
    /// ufw with these rules; `enabled = false` leaves ufw installed but inactive.
    Ufw { enabled: bool, rules: Vec<UfwRule> },
    /// An nftables ruleset loaded from the host's /etc/nftables.conf.
    Nft {
        ssh_from_anywhere: bool,
        wireguard: bool,
    },
    /// iptables-legacy (x_tables, not nf_tables) rules from `iptables-legacy-restore` and
    /// `ip6tables-legacy-restore`, matching ipsets loaded with `ipset restore`
    /// ([`legacy_rules_v4`], [`legacy_rules_v6`], [`legacy_ipsets`]).
    IptablesLegacy,
    /// firewalld (nftables backend) with its own D-Bus system bus, zones from
    /// [`firewalld_zones`].
    Firewalld,
    /// Nothing at all (light scale hosts).
    None,
}

/// One `ufw allow` rule, kept typed so the command is built from values, not text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwRule {
    pub port: u16,
    /// `None` = from anywhere.
    pub from: Option<Ipv4Net>,
}

impl UfwRule {
    /// Arguments after `ufw`.
    pub fn args(&self) -> Vec<String> {
        match self.from {
            None => vec!["allow".into(), format!("{}/tcp", self.port)],
            Some(net) => vec![
                "allow".into(),
                "from".into(),
                net.to_string(),
                "to".into(),
                "any".into(),
                "port".into(),
                self.port.to_string(),
                "proto".into(),
                "tcp".into(),
            ],
        }
    }
}

/// What WireGuard role a host plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgRole {
    /// The VPN server: listens on 51820, has the bastion and "old-laptop" as peers.
    Server,
    /// A client peer of the server that really handshakes.
    Client,
}

/// A daemon the lab starts on a host, and where its pid file lives in the host's own view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Sshd,
    Fail2ban,
    Nginx,
    NodeExporter,
    Boringtun,
    Listener(u16),
    Crowdsec,
    ZabbixAgent,
    /// PostgreSQL 15 (db1).
    Postgres,
    /// redis-server (cache1; app1's loopback one).
    Redis,
    /// gunicorn serving the lab's Django app on this port (app1).
    Gunicorn(u16),
    /// dockerd (dock1), with its own containerd.
    Dockerd,
    /// PostgreSQL in dock1's container (its pid as the machine sees it).
    DockerPostgres,
    /// The host's own D-Bus system bus (`/run/dbus/system_bus_socket`), for firewalld.
    Dbus,
    /// firewalld, talking to the host's own D-Bus and nftables.
    Firewalld,
}

impl Daemon {
    pub fn name(self) -> String {
        match self {
            Daemon::Sshd => "sshd".into(),
            Daemon::Fail2ban => "fail2ban".into(),
            Daemon::Nginx => "nginx".into(),
            Daemon::NodeExporter => "node_exporter".into(),
            Daemon::Boringtun => "boringtun".into(),
            Daemon::Listener(p) => format!("listener:{p}"),
            Daemon::Crowdsec => "crowdsec".into(),
            Daemon::ZabbixAgent => "zabbix_agentd".into(),
            Daemon::Postgres => "postgres".into(),
            Daemon::Redis => "redis".into(),
            Daemon::Gunicorn(p) => format!("gunicorn:{p}"),
            Daemon::Dockerd => "dockerd".into(),
            Daemon::DockerPostgres => "docker:postgres".into(),
            Daemon::Dbus => "dbus".into(),
            Daemon::Firewalld => "firewalld".into(),
        }
    }

    /// Path of the pid file inside the host's private /run.
    pub fn pid_file(self) -> String {
        match self {
            Daemon::Sshd => "/run/sshd.pid".into(),
            Daemon::Fail2ban => "/run/fail2ban/fail2ban.pid".into(),
            Daemon::Nginx => "/run/nginx.pid".into(),
            Daemon::NodeExporter => "/run/rampart-lab/node_exporter.pid".into(),
            Daemon::Boringtun => "/run/rampart-lab/boringtun.pid".into(),
            Daemon::Listener(p) => format!("/run/rampart-lab/listener-{p}.pid"),
            Daemon::Crowdsec => "/run/rampart-lab/crowdsec.pid".into(),
            Daemon::ZabbixAgent => "/run/rampart-lab/zabbix_agentd.pid".into(),
            Daemon::Postgres => PG_PID_FILE.into(),
            Daemon::Redis => "/run/redis/redis-server.pid".into(),
            Daemon::Gunicorn(p) => format!("/run/rampart-lab/gunicorn-{p}.pid"),
            Daemon::Dockerd => "/run/docker.pid".into(),
            Daemon::DockerPostgres => "/run/rampart-lab/docker-postgres.pid".into(),
            Daemon::Dbus => "/run/rampart-lab/dbus.pid".into(),
            Daemon::Firewalld => "/run/rampart-lab/firewalld.pid".into(),
        }
    }
}

/// One lab host and everything about how it is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub segment: Segment,
    /// The address the inventory uses (for edge: the outside leg).
    pub address: Ipv4Addr,
    /// The bastion's second leg on the admin segment.
    pub admin_address: Option<Ipv4Addr>,
    pub firewall: Firewall,
    pub sshd: SshdSettings,
    /// fail2ban installed with an enabled sshd jail; `running = false` leaves it stopped.
    pub fail2ban: Option<Fail2banSettings>,
    pub nginx: Option<NginxSettings>,
    pub node_exporter: bool,
    /// Plain TCP listeners (none today: db1 runs PostgreSQL and app1 gunicorn).
    pub listeners: Vec<u16>,
    pub wireguard: Option<WgRole>,
    /// Light scale host: only sshd.
    pub light: bool,
    /// CrowdSec's agent and local API (offline: no Central API).
    pub crowdsec: bool,
    /// A Zabbix agent (passive checks from localhost only).
    pub zabbix_agent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshdSettings {
    pub password_authentication: bool,
    pub allow_agent_forwarding: bool,
    /// A `Match Address NET` block at the end that turns passwords back on for NET: what
    /// `sshd -T` alone never shows.
    pub passwords_from: Option<Ipv4Net>,
    /// `AuthenticationMethods publickey`: passwords refused whatever
    /// `PasswordAuthentication` says.
    pub publickey_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fail2banSettings {
    pub running: bool,
    /// Which ban action fits the host's firewall.
    pub nft: bool,
    /// Also an enabled jail on the systemd backend, which reads nothing: the host has no
    /// journal (IPS-JAIL-BLIND).
    pub blind_jail: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NginxSettings {
    pub limit_req: bool,
    pub cert_days: u32,
    /// The HTTPS server sends Strict-Transport-Security.
    pub hsts: bool,
}

impl HostSpec {
    /// The daemons that must be alive for the host to count as up.
    pub fn expected_daemons(&self) -> Vec<Daemon> {
        let mut d = vec![Daemon::Sshd];
        if self.firewall == Firewall::Firewalld {
            // The bus first: firewalld needs it to start.
            d.extend([Daemon::Dbus, Daemon::Firewalld]);
        }
        if matches!(self.fail2ban, Some(f) if f.running) {
            d.push(Daemon::Fail2ban);
        }
        if self.nginx.is_some() {
            d.push(Daemon::Nginx);
        }
        if self.node_exporter {
            d.push(Daemon::NodeExporter);
        }
        if self.wireguard.is_some() {
            d.push(Daemon::Boringtun);
        }
        d.extend(self.listeners.iter().map(|p| Daemon::Listener(*p)));
        if self.crowdsec {
            d.push(Daemon::Crowdsec);
        }
        if self.zabbix_agent {
            d.push(Daemon::ZabbixAgent);
        }
        match self.stack_role() {
            StackRole::Db => d.push(Daemon::Postgres),
            StackRole::Cache | StackRole::Store => d.push(Daemon::Redis),
            StackRole::App => d.extend([
                Daemon::Redis,
                Daemon::Gunicorn(APP_PORT_PLAIN),
                Daemon::Gunicorn(APP_PORT_TLS),
            ]),
            StackRole::Web | StackRole::None => {}
        }
        if self.runs_docker() {
            d.extend([Daemon::Dockerd, Daemon::DockerPostgres]);
        }
        d
    }

    /// dock1 runs dockerd and a PostgreSQL container (src/lab/docker.rs). By name, like
    /// [`HostSpec::stack_role`].
    pub fn runs_docker(&self) -> bool {
        !self.light && self.name == super::docker::DOCKER_HOST
    }

    /// The part this host plays in the lab's Django stack. Kept by name rather than as a
    /// field, so the host table above stays as it is.
    pub fn stack_role(&self) -> StackRole {
        if self.light {
            return StackRole::None;
        }
        match self.name.as_str() {
            "web1" | "web2" => StackRole::Web,
            "app1" => StackRole::App,
            "db1" => StackRole::Db,
            "cache1" => StackRole::Cache,
            "fwd1" => StackRole::Store,
            _ => StackRole::None,
        }
    }

    /// Daemons that exist on the host but are deliberately left stopped.
    pub fn stopped_daemons(&self) -> Vec<Daemon> {
        match self.fail2ban {
            Some(f) if !f.running => vec![Daemon::Fail2ban],
            _ => Vec::new(),
        }
    }

    pub fn is_bastion(&self) -> bool {
        self.admin_address.is_some()
    }
}

/// A deliberate misconfiguration, as documented in docs/lab.md and shown by `lab status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misconfiguration {
    pub host: &'static str,
    pub what: &'static str,
    pub should_be: &'static str,
}

/// The lab's deliberate misconfigurations; everything else is configured well.
pub fn misconfigurations() -> Vec<Misconfiguration> {
    vec![
        Misconfiguration {
            host: "db1",
            what: "ufw allows 5432/tcp from Anywhere",
            should_be: "5432 only from the app segment (10.77.11.0/24)",
        },
        Misconfiguration {
            host: "app1",
            what: "firewall off: ufw installed but inactive, no nftables/iptables filtering",
            should_be: "ufw enabled with default-deny incoming",
        },
        Misconfiguration {
            host: "web2",
            what: "fail2ban stopped",
            should_be: "fail2ban running with the sshd jail",
        },
        Misconfiguration {
            host: "web2",
            what: "nginx has no limit_req",
            should_be: "a limit_req_zone and limit_req as on web1",
        },
        Misconfiguration {
            host: "web2",
            what: "TLS certificate expires 10 days after `lab up`",
            should_be: "a certificate valid for months (web1: 1 year)",
        },
        Misconfiguration {
            host: "vpn1",
            what: "sshd PasswordAuthentication yes",
            should_be: "PasswordAuthentication no",
        },
        Misconfiguration {
            host: "db1",
            what: "sshd `Match Address 10.77.9.0/24` turns PasswordAuthentication back on \
                   (`sshd -T` alone says no)",
            should_be: "no Match block that re-enables passwords",
        },
        Misconfiguration {
            host: "vpn1",
            what: "WireGuard peer \"old-laptop\" (no endpoint) never completes a handshake",
            should_be: "remove stale peers",
        },
        Misconfiguration {
            host: "web2",
            what: "the HTTPS server sends no Strict-Transport-Security",
            should_be: "add_header Strict-Transport-Security as on web1",
        },
        Misconfiguration {
            host: "vpn1",
            what: "fail2ban jail sshd-journal uses the systemd backend, but the host has no journal: it can never ban",
            should_be: "a backend that reads a log the host writes (the sshd jail's /var/log/auth.log)",
        },
        Misconfiguration {
            host: "db1",
            what: "PostgreSQL ssl = off, and pg_hba admits the app segment with `host` (TLS optional)",
            should_be: "ssl = on with the host's certificate, `hostssl` lines for other hosts",
        },
        Misconfiguration {
            host: "cache1",
            what: "Redis without a password on its private address (protected-mode no)",
            should_be: "requirepass or ACL users, protected-mode yes (as app1's loopback Redis)",
        },
        Misconfiguration {
            host: "web2",
            what: "nginx proxies /app/ to app1:8000 over plain HTTP",
            should_be: "https to app1:8443 with proxy_ssl_verify on (as web1)",
        },
        Misconfiguration {
            host: "app1",
            what: "the Django app on 8000 (web2's) runs with DEBUG = True and django-ratelimit off",
            should_be: "DEBUG = False and rate limits on (as the app on 8443, web1's)",
        },
        Misconfiguration {
            host: "leg1",
            what: "nat PREROUTING redirects 9180/tcp to node exporter's 9100, and INPUT accepts \
                   every `--ctstate DNAT` connection: metrics open to the whole lab although \
                   the 9100 rule names only the admin-src ipset",
            should_be: "no redirect (or INPUT rules that filter the redirected port by source)",
        },
        Misconfiguration {
            host: "fwd1",
            what: "firewalld zone `labapp` binds the source 10.77.0.0/16 (the whole lab) and \
                   allows the redis service: Redis on 6379 is open to the dmz and data segments",
            should_be: "zone labapp bound to the app segment 10.77.11.0/24 only",
        },
        Misconfiguration {
            host: "edge",
            what: "no IDS runs on the bastion (none is packaged in this Debian release's sources)",
            should_be: "Snort or Suricata watching the bastion's outside leg",
        },
        Misconfiguration {
            host: "dock1",
            what: "PostgreSQL in Docker published with -p 5432:5432: Docker's DNAT and FORWARD \
                   rules let every segment in, whatever ufw's 5432-from-app rule says",
            should_be: "a DOCKER-USER rule that lets only the app segment reach the published \
                        port (or a publish bound to a private address)",
        },
    ]
}

/// WireGuard port on the VPN host.
pub const WG_PORT: u16 = 51820;
/// Name of the lab's WireGuard interface on every WireGuard host.
pub const WG_IF: &str = "wg0";

impl LabConfig {
    /// Check what later steps rely on: names that fit Linux's 15-byte link names, a /16, and a
    /// state dir that can appear in overlayfs mount options.
    pub fn validate(&self) -> Result<(), LabError> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > 6
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(LabError::Config(format!(
                "prefix {p:?} must be 1 to 6 lowercase letters or digits"
            )));
        }
        if self.base.prefix_len() != 16 || self.base.network() != self.base.addr() {
            return Err(LabError::Config(format!(
                "base network {} must be a /16 network address, e.g. 10.77.0.0/16",
                self.base
            )));
        }
        let s = self.state_dir.to_string_lossy();
        if !self.state_dir.is_absolute()
            || s.contains([',', ':', '\\', '\n'])
            || s.chars().any(char::is_whitespace)
        {
            return Err(LabError::Config(format!(
                "state dir {s:?} must be an absolute path without ',', ':', '\\' or spaces \
                 (it is used in overlayfs mount options)"
            )));
        }
        if self.scale_hosts > MAX_SCALE_HOSTS {
            return Err(LabError::Config(format!(
                "--hosts {} is more than the lab's maximum of {MAX_SCALE_HOSTS}",
                self.scale_hosts
            )));
        }
        Ok(())
    }

    fn octets(&self) -> (u8, u8) {
        let o = self.base.addr().octets();
        (o[0], o[1])
    }

    /// An address in the lab: `base.third.fourth`.
    pub fn addr(&self, third: u8, fourth: u8) -> Ipv4Addr {
        let (a, b) = self.octets();
        Ipv4Addr::new(a, b, third, fourth)
    }

    pub fn segment_net(&self, seg: Segment) -> Ipv4Net {
        let (third, len) = seg.octet_and_len();
        Ipv4Net::new(self.addr(third, 0), len).unwrap_or_default()
    }

    /// The router's address on a segment (the root namespace's on the outside link).
    pub fn gateway(&self, seg: Segment) -> Ipv4Addr {
        let (third, _) = seg.octet_and_len();
        self.addr(third, 1)
    }

    /// The root namespace's address on the outside link.
    pub fn root_address(&self) -> Ipv4Addr {
        self.gateway(Segment::Outside)
    }

    pub fn edge_outside(&self) -> Ipv4Addr {
        self.addr(0, 10)
    }

    /// A second admin-segment address on the bastion that tests use as an "attacker" or
    /// "operator workstation" source: fail2ban ignores the bastion itself, not this one.
    pub fn edge_test_source(&self) -> Ipv4Addr {
        self.addr(9, 99)
    }

    pub fn vpn_net(&self) -> Ipv4Net {
        Ipv4Net::new(self.addr(100, 0), 24).unwrap_or_default()
    }

    pub fn wg_address(&self, role: WgRole) -> Ipv4Addr {
        match role {
            WgRole::Server => self.addr(100, 1),
            WgRole::Client => self.addr(100, 2),
        }
    }

    /// The address given to the never-seen "old-laptop" peer.
    pub fn old_laptop_address(&self) -> Ipv4Addr {
        self.addr(100, 9)
    }

    /// Address of the i-th (1-based) scale host.
    pub fn scale_address(&self, i: u32) -> Ipv4Addr {
        let (third, _) = Segment::Fleet.octet_and_len();
        let n = u32::from(self.addr(third, 0)) + 9 + i;
        Ipv4Addr::from(n)
    }

    pub fn scale_name(i: u32) -> String {
        format!("s{i:03}")
    }

    pub fn netns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    pub fn core_netns(&self) -> String {
        self.netns("core")
    }

    /// The root namespace's end of the outside link.
    pub fn uplink(&self) -> String {
        format!("{}-up", self.prefix)
    }

    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.state_dir.join("hosts").join(host)
    }

    pub fn client_key(&self) -> PathBuf {
        self.state_dir.join("id_ed25519")
    }

    /// The lab's SSH user CA (private key; `.pub` beside it): every lab sshd trusts it
    /// (`TrustedUserCAKeys`), so a certificate it signs for `root` logs in without an
    /// authorized key.
    pub fn user_ca_key(&self) -> PathBuf {
        self.state_dir.join("user_ca")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.state_dir.join("ca").join("ca.crt")
    }

    /// The lock `up` and `down` hold so two of them never interleave.
    pub fn lock_file(&self) -> PathBuf {
        let mut s = self.state_dir.clone().into_os_string();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// Every host of the lab, the named ones first, then the scale hosts.
    pub fn hosts(&self) -> Vec<HostSpec> {
        let admin = self.segment_net(Segment::Admin);
        let dmz = self.segment_net(Segment::Dmz);
        let good_sshd = SshdSettings {
            password_authentication: false,
            allow_agent_forwarding: true,
            passwords_from: None,
            publickey_only: false,
        };
        let web_rules = vec![
            UfwRule {
                port: 22,
                from: Some(admin),
            },
            UfwRule {
                port: 80,
                from: None,
            },
            UfwRule {
                port: 443,
                from: None,
            },
            UfwRule {
                port: 9100,
                from: Some(admin),
            },
        ];
        let f2b_ufw = Some(Fail2banSettings {
            running: true,
            nft: false,
            blind_jail: false,
        });
        let mut hosts = vec![
            HostSpec {
                name: "edge".into(),
                segment: Segment::Admin,
                address: self.edge_outside(),
                admin_address: Some(self.addr(9, 10)),
                firewall: Firewall::Nft {
                    ssh_from_anywhere: true,
                    wireguard: false,
                },
                sshd: SshdSettings {
                    allow_agent_forwarding: false,
                    ..good_sshd
                },
                fail2ban: Some(Fail2banSettings {
                    running: true,
                    nft: true,
                    blind_jail: false,
                }),
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: Some(WgRole::Client),
                light: false,
                crowdsec: true,
                zabbix_agent: false,
            },
            HostSpec {
                name: "web1".into(),
                segment: Segment::Dmz,
                address: self.addr(10, 11),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: true,
                    rules: web_rules.clone(),
                },
                sshd: good_sshd,
                fail2ban: f2b_ufw,
                nginx: Some(NginxSettings {
                    limit_req: true,
                    cert_days: 365,
                    hsts: true,
                }),
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            HostSpec {
                name: "web2".into(),
                segment: Segment::Dmz,
                address: self.addr(10, 12),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: true,
                    rules: web_rules,
                },
                sshd: good_sshd,
                fail2ban: Some(Fail2banSettings {
                    running: false,
                    nft: false,
                    blind_jail: false,
                }),
                nginx: Some(NginxSettings {
                    limit_req: false,
                    cert_days: 10,
                    hsts: false,
                }),
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            HostSpec {
                name: "vpn1".into(),
                segment: Segment::Dmz,
                address: self.addr(10, 20),
                admin_address: None,
                firewall: Firewall::Nft {
                    ssh_from_anywhere: false,
                    wireguard: true,
                },
                sshd: SshdSettings {
                    password_authentication: true,
                    ..good_sshd
                },
                fail2ban: Some(Fail2banSettings {
                    running: true,
                    nft: true,
                    blind_jail: true,
                }),
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: Some(WgRole::Server),
                light: false,
                crowdsec: false,
                zabbix_agent: true,
            },
            HostSpec {
                name: "app1".into(),
                segment: Segment::App,
                address: self.addr(11, 11),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: false,
                    rules: vec![
                        UfwRule {
                            port: 22,
                            from: Some(admin),
                        },
                        UfwRule {
                            port: 8000,
                            from: Some(dmz),
                        },
                        UfwRule {
                            port: 9100,
                            from: Some(admin),
                        },
                    ],
                },
                // Clean counterpart of db1's Match block: PasswordAuthentication yes, made
                // inert by AuthenticationMethods publickey.
                sshd: SshdSettings {
                    password_authentication: true,
                    publickey_only: true,
                    ..good_sshd
                },
                fail2ban: f2b_ufw,
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            HostSpec {
                name: "db1".into(),
                segment: Segment::Data,
                address: self.addr(12, 11),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: true,
                    rules: vec![
                        UfwRule {
                            port: 22,
                            from: Some(admin),
                        },
                        // The deliberate mistake: should be `from: Some(app)`.
                        UfwRule {
                            port: 5432,
                            from: None,
                        },
                        UfwRule {
                            port: 9100,
                            from: Some(admin),
                        },
                    ],
                },
                // The deliberate mistake: passwords back on for the admin network, which
                // the firewall lets reach port 22.
                sshd: SshdSettings {
                    passwords_from: Some(admin),
                    ..good_sshd
                },
                fail2ban: f2b_ufw,
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            HostSpec {
                name: "cache1".into(),
                segment: Segment::Data,
                address: self.addr(12, 21),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: true,
                    rules: vec![
                        UfwRule {
                            port: 22,
                            from: Some(admin),
                        },
                        UfwRule {
                            port: REDIS_PORT,
                            from: Some(self.segment_net(Segment::App)),
                        },
                        UfwRule {
                            port: 9100,
                            from: Some(admin),
                        },
                    ],
                },
                sshd: good_sshd,
                fail2ban: f2b_ufw,
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            // PostgreSQL in Docker, published on every address (src/lab/docker.rs). ufw is
            // right (5432 only from the app segment) and does not matter: Docker's DNAT and
            // FORWARD rules take the connection before ufw's INPUT rules see it.
            HostSpec {
                name: super::docker::DOCKER_HOST.into(),
                segment: Segment::Data,
                address: self.addr(12, 31),
                admin_address: None,
                firewall: Firewall::Ufw {
                    enabled: true,
                    rules: vec![
                        UfwRule {
                            port: 22,
                            from: Some(admin),
                        },
                        UfwRule {
                            port: PG_PORT,
                            from: Some(self.segment_net(Segment::App)),
                        },
                        UfwRule {
                            port: 9100,
                            from: Some(admin),
                        },
                    ],
                },
                sshd: good_sshd,
                fail2ban: f2b_ufw,
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            HostSpec {
                name: "fwd1".into(),
                segment: Segment::App,
                address: self.addr(11, 31),
                admin_address: None,
                firewall: Firewall::Firewalld,
                sshd: good_sshd,
                fail2ban: Some(Fail2banSettings {
                    running: true,
                    nft: true,
                    blind_jail: false,
                }),
                nginx: None,
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
            // iptables-legacy with ipsets, no manager: the old-distribution web host.
            HostSpec {
                name: "leg1".into(),
                segment: Segment::Dmz,
                address: self.addr(10, 31),
                admin_address: None,
                firewall: Firewall::IptablesLegacy,
                sshd: good_sshd,
                // iptables-multiport: plain `iptables` is the legacy one on this host, so
                // its bans land in the same legacy tables.
                fail2ban: f2b_ufw,
                nginx: Some(NginxSettings {
                    limit_req: true,
                    cert_days: 365,
                    hsts: true,
                }),
                node_exporter: true,
                listeners: vec![],
                wireguard: None,
                light: false,
                crowdsec: false,
                zabbix_agent: false,
            },
        ];
        for i in 1..=self.scale_hosts {
            hosts.push(HostSpec {
                name: Self::scale_name(i),
                segment: Segment::Fleet,
                address: self.scale_address(i),
                admin_address: None,
                firewall: Firewall::None,
                sshd: good_sshd,
                fail2ban: None,
                nginx: None,
                node_exporter: false,
                listeners: vec![],
                wireguard: None,
                light: true,
                crowdsec: false,
                zabbix_agent: false,
            });
        }
        hosts
    }
}

/// The whole sshd_config of a host (replacing Debian's, in the host's private /etc).
pub fn sshd_config(host: &HostSpec) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut s = String::new();
    let _ = writeln!(s, "# rampart lab: sshd for {}", host.name);
    // Drop-ins first, as on Debian: tests (e.g. a command recorder) add files there.
    s.push_str("Include /etc/ssh/sshd_config.d/*.conf\n");
    s.push_str("Port 22\n");
    s.push_str("HostKey /etc/ssh/ssh_host_ed25519_key\n");
    s.push_str("PidFile /run/sshd.pid\n");
    s.push_str("LogLevel VERBOSE\n");
    s.push_str("PermitRootLogin prohibit-password\n");
    s.push_str("PubkeyAuthentication yes\n");
    s.push_str("AuthorizedKeysFile /etc/ssh/authorized_keys/%u\n");
    s.push_str("TrustedUserCAKeys /etc/ssh/trusted_user_ca_keys\n");
    let _ = writeln!(
        s,
        "PasswordAuthentication {}",
        yes_no(host.sshd.password_authentication)
    );
    s.push_str("KbdInteractiveAuthentication no\n");
    // No PAM: there is no systemd/logind in the namespaces, and PAM adds nothing the lab tests.
    s.push_str("UsePAM no\n");
    s.push_str("X11Forwarding no\n");
    let _ = writeln!(
        s,
        "AllowAgentForwarding {}",
        yes_no(host.sshd.allow_agent_forwarding)
    );
    s.push_str("PrintMotd no\n");
    s.push_str("AcceptEnv LANG LC_*\n");
    s.push_str("Subsystem sftp /usr/lib/openssh/sftp-server\n");
    if host.sshd.publickey_only {
        s.push_str("AuthenticationMethods publickey\n");
    }
    // Match blocks last: everything after a Match line belongs to it.
    if let Some(net) = host.sshd.passwords_from {
        let _ = writeln!(s, "Match Address {net}\n\tPasswordAuthentication yes");
    }
    s
}

/// The nftables ruleset of an nftables host.
pub fn nftables_conf(cfg: &LabConfig, host: &HostSpec) -> String {
    let admin = cfg.segment_net(Segment::Admin);
    let (ssh_anywhere, wg) = match host.firewall {
        Firewall::Nft {
            ssh_from_anywhere,
            wireguard,
        } => (ssh_from_anywhere, wireguard),
        _ => (false, false),
    };
    let mut s = String::from("#!/usr/sbin/nft -f\n# rampart lab\nflush ruleset\n\n");
    s.push_str("table inet filter {\n\tchain input {\n");
    s.push_str("\t\ttype filter hook input priority filter; policy drop;\n");
    s.push_str("\t\tct state established,related accept\n");
    s.push_str("\t\tct state invalid drop\n");
    s.push_str("\t\tiif \"lo\" accept\n");
    s.push_str("\t\tip protocol icmp accept\n");
    if ssh_anywhere {
        s.push_str("\t\ttcp dport 22 accept\n");
    } else {
        let _ = writeln!(s, "\t\tip saddr {admin} tcp dport 22 accept");
    }
    let _ = writeln!(s, "\t\tip saddr {admin} tcp dport 9100 accept");
    if wg {
        let _ = writeln!(s, "\t\tudp dport {WG_PORT} accept");
    }
    s.push_str("\t}\n\tchain forward {\n");
    s.push_str("\t\ttype filter hook forward priority filter; policy drop;\n\t}\n");
    s.push_str("\tchain output {\n");
    s.push_str("\t\ttype filter hook output priority filter; policy accept;\n\t}\n}\n");
    s
}

/// The port leg1's nat table redirects to node exporter's 9100 (a "legacy scrape port").
pub const LEGACY_REDIRECT_PORT: u16 = 9180;
/// An address leg1's `blocklist` ipset drops besides a documentation one: cache1, which
/// has no business on a web host (so the lab shows a member decide a verdict).
pub const LEGACY_BLOCKED_HOST: (u8, u8) = (12, 21);

/// `ipset restore` input of the iptables-legacy host: `admin-src` (hash:net, the admin
/// segment, which holds the bastion) and `blocklist` (hash:ip).
pub fn legacy_ipsets(cfg: &LabConfig) -> String {
    let admin = cfg.segment_net(Segment::Admin);
    let (third, fourth) = LEGACY_BLOCKED_HOST;
    format!(
        "create admin-src hash:net family inet hashsize 1024 maxelem 65536\n\
         add admin-src {admin}\n\
         create blocklist hash:ip family inet hashsize 1024 maxelem 65536\n\
         add blocklist 203.0.113.66\n\
         add blocklist {}\n",
        cfg.addr(third, fourth)
    )
}

/// `iptables-legacy-restore` input of the iptables-legacy host. Default drop; SSH and node
/// exporter only from the `admin-src` set; the web ports from anywhere; the `blocklist`
/// set dropped first. The deliberate mistake: nat PREROUTING redirects
/// [`LEGACY_REDIRECT_PORT`] to 9100 and INPUT accepts whatever was DNAT'ed, so node
/// exporter answers the whole lab on that port (the INPUT rules alone say "admin only").
pub fn legacy_rules_v4() -> String {
    format!(
        "# rampart lab: iptables-legacy ruleset\n\
         *nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n\
         -A PREROUTING -p tcp -m tcp --dport {LEGACY_REDIRECT_PORT} -m comment --comment \
         \"old scrape port\" -j REDIRECT --to-ports 9100\n\
         COMMIT\n\
         *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -i lo -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate INVALID -j DROP\n\
         -A INPUT -m set --match-set blocklist src -j DROP\n\
         -A INPUT -p icmp -j ACCEPT\n\
         -A INPUT -p tcp -m set --match-set admin-src src -m tcp --dport 22 -j ACCEPT\n\
         -A INPUT -p tcp -m set --match-set admin-src src -m tcp --dport 9100 -j ACCEPT\n\
         -A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT\n\
         -A INPUT -m conntrack --ctstate DNAT -j ACCEPT\n\
         COMMIT\n"
    )
}

/// `ip6tables-legacy-restore` input: the same policy for IPv6 (the lab has no IPv6
/// addresses, but a host with an IPv4-only firewall would be open over IPv6).
pub const LEGACY_RULES_V6: &str = "# rampart lab: ip6tables-legacy ruleset
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT
COMMIT
";

/// The zone firewalld's deliberate mistake is in (fwd1): it admits Redis.
pub const FIREWALLD_DATA_ZONE: &str = "labapp";

/// firewalld's permanent configuration on a firewalld host, as files under /etc/firewalld
/// (name relative to it, text). The default zone `public` (eth0's) admits nothing; the zone
/// `admin`, bound to the admin segment, admits SSH and node exporter; the zone `labapp` admits
/// Redis from its source, which is the deliberate mistake: the whole lab /16 instead of the
/// app segment. firewalld dispatches by source before interface, and overlapping sources by
/// zone name (firewalld 1.3, `nftables.py`: "order source based dispatch by zone name"), so
/// the admin segment lands in `admin`, not `labapp`.
pub fn firewalld_zones(cfg: &LabConfig) -> Vec<(String, String)> {
    let zone = |short: &str, sources: &[Ipv4Net], services: &[&str]| {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<zone>\n");
        let _ = writeln!(
            s,
            "  <short>{short}</short>\n  <description>rampart lab</description>"
        );
        for n in sources {
            let _ = writeln!(s, "  <source address=\"{n}\"/>");
        }
        for sv in services {
            let _ = writeln!(s, "  <service name=\"{sv}\"/>");
        }
        s.push_str("</zone>\n");
        s
    };
    let conf = "# rampart lab\nDefaultZone=public\nCleanupOnExit=yes\nCleanupModulesOnExit=no\n\
                Lockdown=no\nIPv6_rpfilter=yes\nIndividualCalls=no\nLogDenied=off\n\
                FirewallBackend=nftables\nFlushAllOnReload=yes\nRFC3964_IPv4=yes\n";
    vec![
        ("firewalld.conf".into(), conf.into()),
        ("zones/public.xml".into(), zone("public", &[], &[])),
        (
            "zones/admin.xml".into(),
            zone(
                "admin",
                &[cfg.segment_net(Segment::Admin)],
                &["ssh", "prometheus-node-exporter"],
            ),
        ),
        (
            format!("zones/{FIREWALLD_DATA_ZONE}.xml"),
            // The deliberate mistake: should be the app segment.
            zone(FIREWALLD_DATA_ZONE, &[cfg.base], &["redis"]),
        ),
    ]
}

/// fail2ban's jail for the lab's sshd, which logs with `sshd -E` to /var/log/auth.log.
pub fn fail2ban_jail(cfg: &LabConfig, host: &HostSpec) -> String {
    let nft = matches!(host.fail2ban, Some(f) if f.nft);
    let bastion = cfg.addr(9, 10);
    let mut s = String::from("# rampart lab\n[DEFAULT]\n");
    // Never ban the bastion: every administrator's session comes from it.
    let _ = writeln!(s, "ignoreip = 127.0.0.1/8 ::1 {bastion}");
    let _ = writeln!(
        s,
        "banaction = {}",
        if nft {
            "nftables-multiport"
        } else {
            "iptables-multiport"
        }
    );
    s.push_str("\n[sshd]\nenabled = true\nport = ssh\nmode = normal\n");
    s.push_str("backend = polling\nlogpath = /var/log/auth.log\n");
    // `sshd -E` writes bare messages without a syslog timestamp.
    s.push_str("datepattern = {NONE}\n");
    s.push_str("maxretry = 5\nfindtime = 10m\nbantime = 10m\n");
    if matches!(host.fail2ban, Some(f) if f.blind_jail) {
        // The deliberate mistake: the advice for systemd machines, on a host with no journal.
        s.push_str("\n[sshd-journal]\nenabled = true\nfilter = sshd\nport = ssh\n");
        s.push_str("backend = systemd\njournalmatch = _SYSTEMD_UNIT=ssh.service + _COMM=sshd\n");
    }
    s
}

/// CrowdSec's configuration on a lab host: local API on loopback, no Central API (no
/// `online_client`: nothing leaves the machine), no metrics listener, in the foreground.
pub const CROWDSEC_CONF: &str = "# rampart lab: CrowdSec offline
common:
  daemonize: false
  log_media: file
  log_level: info
  log_dir: /var/log/
  working_dir: .
config_paths:
  config_dir: /etc/crowdsec/
  data_dir: /var/lib/crowdsec/data/
  simulation_path: /etc/crowdsec/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: /etc/crowdsec/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: /etc/crowdsec/acquis.yaml
  parser_routines: 1
cscli:
  output: human
  color: 'no'
db_config:
  log_level: info
  type: sqlite
  db_path: /var/lib/crowdsec/data/crowdsec.db
  use_wal: true
  flush:
    max_items: 5000
    max_age: 7d
plugin_config:
  user: nobody
  group: nogroup
api:
  client:
    insecure_skip_verify: false
    credentials_path: /etc/crowdsec/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:8080
    profiles_path: /etc/crowdsec/profiles.yaml
    trusted_ips:
      - 127.0.0.1
      - ::1
prometheus:
  enabled: false
";

/// CrowdSec reads the lab's sshd log (no journal, no syslog daemon in the lab).
pub const CROWDSEC_ACQUIS: &str =
    "# rampart lab\nfilenames:\n  - /var/log/auth.log\nlabels:\n  type: syslog\n";

/// The Zabbix agent of a lab host: passive checks from localhost only.
pub fn zabbix_agent_conf(host: &HostSpec) -> String {
    format!(
        "# rampart lab\nPidFile=/run/zabbix/zabbix_agentd.pid\n\
         LogFile=/var/log/zabbix-agent/zabbix_agentd.log\nLogFileSize=0\n\
         Server=127.0.0.1\nListenIP=127.0.0.1\nHostname={}\n",
        host.name
    )
}

/// Override of the sshd filter's line prefix: `sshd -E` lines carry no host or pid.
pub const FAIL2BAN_SSHD_FILTER_LOCAL: &str = "# rampart lab: sshd -E writes bare messages\n\
[DEFAULT]\n__prefix_line =\n";

/// Debian's nginx.conf with the lab's choices (one worker; TLS 1.2+ only).
pub const NGINX_CONF: &str = "# rampart lab
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
include /etc/nginx/modules-enabled/*.conf;

events {
\tworker_connections 256;
}

http {
\tsendfile on;
\ttcp_nopush on;
\ttypes_hash_max_size 2048;
\tinclude /etc/nginx/mime.types;
\tdefault_type application/octet-stream;
\tssl_protocols TLSv1.2 TLSv1.3;
\tssl_prefer_server_ciphers on;
\taccess_log /var/log/nginx/access.log;
\tinclude /etc/nginx/conf.d/*.conf;
\tinclude /etc/nginx/sites-enabled/*;
}
";

/// The web host's site: HTTP redirects to HTTPS, TLS from the lab CA.
pub fn nginx_site(host: &HostSpec) -> String {
    nginx_site_with_app(host, None)
}

/// [`nginx_site`] with the `/app/` location proxying to the app host at `app_upstream`.
pub fn nginx_site_with_app(host: &HostSpec, app_upstream: Option<Ipv4Addr>) -> String {
    let limit = matches!(host.nginx, Some(n) if n.limit_req);
    let name = &host.name;
    let mut s = String::from("# rampart lab\n");
    if limit {
        s.push_str("limit_req_zone $binary_remote_addr zone=perip:10m rate=10r/s;\n\n");
    }
    let _ = writeln!(
        s,
        "server {{\n\tlisten 80 default_server;\n\tserver_name {name} {addr};\n\
         \treturn 301 https://$host$request_uri;\n}}\n",
        addr = host.address
    );
    let _ = writeln!(
        s,
        "server {{\n\tlisten 443 ssl default_server;\n\tserver_name {name} {addr};\n\
         \tssl_certificate /etc/nginx/tls/{name}.crt;\n\
         \tssl_certificate_key /etc/nginx/tls/{name}.key;\n\
         \tssl_protocols TLSv1.2 TLSv1.3;\n\
         \troot /var/www/html;",
        addr = host.address
    );
    if matches!(host.nginx, Some(n) if n.hsts) {
        s.push_str("\tadd_header Strict-Transport-Security \"max-age=31536000\" always;\n");
    }
    s.push_str("\tlocation / {\n");
    if limit {
        s.push_str("\t\tlimit_req zone=perip burst=20 nodelay;\n");
    }
    let _ = writeln!(s, "\t\treturn 200 \"{name}\\n\";\n\t}}");
    if let Some(app) = app_upstream {
        s.push_str(&nginx_app_location(app, limit));
    }
    s.push_str("}\n");
    s
}

/// The `/app/` location of a web host: the clean one (rate-limited) proxies to the app's TLS
/// port and verifies its certificate; the other proxies over plain HTTP.
fn nginx_app_location(app: Ipv4Addr, clean: bool) -> String {
    let mut s = String::from("\tlocation /app/ {\n");
    if clean {
        s.push_str("\t\tlimit_req zone=perip burst=20 nodelay;\n");
        let _ = writeln!(s, "\t\tproxy_pass https://{app}:{APP_PORT_TLS};");
        s.push_str("\t\tproxy_ssl_verify on;\n");
        s.push_str("\t\tproxy_ssl_trusted_certificate /etc/nginx/tls/ca.crt;\n");
        s.push_str("\t\tproxy_ssl_name app1;\n");
    } else {
        let _ = writeln!(s, "\t\tproxy_pass http://{app}:{APP_PORT_PLAIN};");
    }
    s.push_str("\t\tproxy_set_header Host $host;\n");
    s.push_str("\t\tproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    s.push_str("\t}\n");
    s
}

/// Keys of the lab's WireGuard peers (base64, as `wg` prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgKeys {
    pub server_private: String,
    pub server_public: String,
    pub client_private: String,
    pub client_public: String,
    pub old_laptop_public: String,
}

/// A `wg setconf` file (not wg-quick: addresses are set with `ip`).
pub fn wg_conf(cfg: &LabConfig, role: WgRole, vpn_endpoint: Ipv4Addr, keys: &WgKeys) -> String {
    let mut s = String::from("# rampart lab\n[Interface]\n");
    match role {
        WgRole::Server => {
            let _ = writeln!(s, "PrivateKey = {}", keys.server_private);
            let _ = writeln!(s, "ListenPort = {WG_PORT}\n");
            let _ = writeln!(
                s,
                "# edge\n[Peer]\nPublicKey = {}\nAllowedIPs = {}/32\n",
                keys.client_public,
                cfg.wg_address(WgRole::Client)
            );
            let _ = writeln!(
                s,
                "# old-laptop\n[Peer]\nPublicKey = {}\nAllowedIPs = {}/32",
                keys.old_laptop_public,
                cfg.old_laptop_address()
            );
        }
        WgRole::Client => {
            let _ = writeln!(s, "PrivateKey = {}\n", keys.client_private);
            let _ = writeln!(
                s,
                "# vpn1\n[Peer]\nPublicKey = {}\nEndpoint = {vpn_endpoint}:{WG_PORT}\n\
                 AllowedIPs = {}/32\nPersistentKeepalive = 25",
                keys.server_public,
                cfg.wg_address(WgRole::Server)
            );
        }
    }
    s
}

/// One known_hosts line per host: `name,address[,more] key`.
pub fn known_hosts_line(host: &HostSpec, public_key: &str) -> String {
    let mut names = vec![host.name.clone(), host.address.to_string()];
    if let Some(a) = host.admin_address {
        names.push(a.to_string());
    }
    format!("{} {}", names.join(","), public_key.trim())
}

/// A convenience ssh_config: `ssh -F STATE/ssh_config web1`.
pub fn ssh_config(cfg: &LabConfig, hosts: &[HostSpec]) -> String {
    let mut s = String::from("# rampart lab: ssh -F THIS_FILE web1\n");
    for h in hosts {
        let _ = writeln!(s, "Host {}\n\tHostName {}", h.name, h.address);
        if !h.is_bastion() {
            s.push_str("\tProxyJump edge\n");
        }
    }
    let _ = writeln!(
        s,
        "\nHost *\n\tUser root\n\tIdentityFile {}\n\tIdentitiesOnly yes\n\
         \tUserKnownHostsFile {}\n\tStrictHostKeyChecking yes\n\tBatchMode yes",
        cfg.client_key().display(),
        cfg.known_hosts().display()
    );
    s
}

/// A tiny TCP service for the db and app ports: accepts, answers one line, closes.
/// The port comes as argv[1]; the script itself is a constant.
pub const LISTENER_PY: &str = r#"
import socket, sys, threading
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
def serve(c):
    try:
        c.sendall(b"rampart-lab service on port %d\n" % port)
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

// ---------------------------------------------------------------------------------------
// the Django stack (text in `super::stack`)

/// The part a host plays in the lab's Django stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackRole {
    None,
    /// nginx proxies `/app/` to the app host.
    Web,
    /// gunicorn + Django (two instances), and a loopback Redis with a password.
    App,
    /// PostgreSQL 15.
    Db,
    /// Redis 7 for the app's cache.
    Cache,
    /// A Redis with a password on the host's own address, behind firewalld (fwd1).
    Store,
}

/// gunicorn's plain-HTTP port (web2's app: DEBUG on, no app-layer limit).
pub const APP_PORT_PLAIN: u16 = 8000;
/// gunicorn's TLS port (web1's app: DEBUG off, django-ratelimit on).
pub const APP_PORT_TLS: u16 = 8443;
pub const REDIS_PORT: u16 = 6379;
pub const PG_PORT: u16 = 5432;
/// PostgreSQL's `external_pid_file` in the host's private /run.
pub const PG_PID_FILE: &str = "/run/postgresql/lab.pid";

/// Where a path inside a host's own view is found from the root namespace: the holder
/// process's root, which shows that mount namespace's overlays.
pub fn in_view(holder_pid: u32, path: &str) -> PathBuf {
    Path::new("/proc")
        .join(holder_pid.to_string())
        .join("root")
        .join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host<'a>(hosts: &'a [HostSpec], name: &str) -> &'a HostSpec {
        hosts.iter().find(|h| h.name == name).unwrap()
    }

    #[test]
    fn default_topology_matches_the_documented_addresses() {
        let cfg = LabConfig::default();
        cfg.validate().unwrap();
        let hosts = cfg.hosts();
        let got: Vec<(String, String)> = hosts
            .iter()
            .map(|h| (h.name.clone(), h.address.to_string()))
            .collect();
        let want = [
            ("edge", "10.77.0.10"),
            ("web1", "10.77.10.11"),
            ("web2", "10.77.10.12"),
            ("vpn1", "10.77.10.20"),
            ("app1", "10.77.11.11"),
            ("db1", "10.77.12.11"),
            ("cache1", "10.77.12.21"),
            ("dock1", "10.77.12.31"),
            ("fwd1", "10.77.11.31"),
            ("leg1", "10.77.10.31"),
        ];
        assert_eq!(got.len(), want.len());
        for ((n, a), (wn, wa)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), a.as_str()), (wn, wa));
        }
        assert_eq!(host(&hosts, "edge").admin_address, Some(cfg.addr(9, 10)));
        assert_eq!(cfg.netns("web1"), "rpl-web1");
        assert_eq!(cfg.uplink(), "rpl-up");
        assert_eq!(cfg.segment_net(Segment::App).to_string(), "10.77.11.0/24");
    }

    #[test]
    fn another_base_and_prefix_move_everything() {
        let cfg = LabConfig {
            prefix: "t2".into(),
            base: "10.88.0.0/16".parse().unwrap(),
            scale_hosts: 3,
            ..LabConfig::default()
        };
        cfg.validate().unwrap();
        let hosts = cfg.hosts();
        assert_eq!(hosts.len(), 13);
        assert_eq!(host(&hosts, "db1").address.to_string(), "10.88.12.11");
        assert_eq!(host(&hosts, "s003").address.to_string(), "10.88.16.12");
        assert!(host(&hosts, "s001").light);
        assert_eq!(cfg.uplink(), "t2-up");
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = [
            LabConfig {
                prefix: "Rpl".into(),
                ..LabConfig::default()
            },
            LabConfig {
                prefix: "toolongpfx".into(),
                ..LabConfig::default()
            },
            LabConfig {
                base: "10.77.0.0/24".parse().unwrap(),
                ..LabConfig::default()
            },
            LabConfig {
                state_dir: "/tmp/a,upperdir=/etc".into(),
                ..LabConfig::default()
            },
            LabConfig {
                state_dir: "relative/dir".into(),
                ..LabConfig::default()
            },
            LabConfig {
                scale_hosts: MAX_SCALE_HOSTS + 1,
                ..LabConfig::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(LabError::Config(_))),
                "accepted {c:?}"
            );
        }
    }

    #[test]
    fn sshd_configs_carry_the_deliberate_differences() {
        let hosts = LabConfig::default().hosts();
        let vpn = sshd_config(host(&hosts, "vpn1"));
        assert!(vpn.contains("\nPasswordAuthentication yes\n"));
        let web = sshd_config(host(&hosts, "web1"));
        assert!(web.contains("\nPasswordAuthentication no\n"));
        assert!(web.contains("\nPermitRootLogin prohibit-password\n"));
        assert!(web.contains("\nX11Forwarding no\n"));
        assert!(web.contains("AuthorizedKeysFile /etc/ssh/authorized_keys/%u\n"));
        assert!(web.contains("\nTrustedUserCAKeys /etc/ssh/trusted_user_ca_keys\n"));
        let edge = sshd_config(host(&hosts, "edge"));
        assert!(edge.contains("\nAllowAgentForwarding no\n"));
        let db = sshd_config(host(&hosts, "db1"));
        assert!(db.contains("\nPasswordAuthentication no\n"));
        assert!(db.ends_with("\nMatch Address 10.77.9.0/24\n\tPasswordAuthentication yes\n"));
        let app = sshd_config(host(&hosts, "app1"));
        assert!(app.contains("\nPasswordAuthentication yes\n"));
        assert!(app.contains("\nAuthenticationMethods publickey\n"));
        assert!(!app.contains("Match"));
        // Drop-ins must come first so that a test's drop-in wins (sshd keeps the first value).
        assert!(web.find("Include").unwrap() < web.find("PasswordAuthentication").unwrap());
    }

    #[test]
    fn firewalls_allow_ssh_from_admin_only_except_on_the_bastion() {
        let cfg = LabConfig::default();
        let hosts = cfg.hosts();
        let edge = nftables_conf(&cfg, host(&hosts, "edge"));
        assert!(edge.contains("\t\ttcp dport 22 accept\n"));
        assert!(edge.contains("policy drop"));
        let vpn = nftables_conf(&cfg, host(&hosts, "vpn1"));
        assert!(vpn.contains("ip saddr 10.77.9.0/24 tcp dport 22 accept"));
        assert!(vpn.contains("udp dport 51820 accept"));
        assert!(!vpn.contains("\t\ttcp dport 22 accept\n"));

        let Firewall::Ufw { enabled, rules } = &host(&hosts, "db1").firewall else {
            panic!("db1 must use ufw")
        };
        assert!(enabled);
        let args: Vec<String> = rules.iter().map(|r| r.args().join(" ")).collect();
        assert!(args.contains(&"allow 5432/tcp".to_owned()), "{args:?}");
        assert!(args.contains(&"allow from 10.77.9.0/24 to any port 22 proto tcp".to_owned()));
        let Firewall::Ufw { enabled, .. } = &host(&hosts, "app1").firewall else {
            panic!("app1 must use ufw")
        };
        assert!(!enabled);
    }

    #[test]
    fn the_legacy_host_loads_sets_then_rules_with_its_redirect() {
        let cfg = LabConfig::default();
        let hosts = cfg.hosts();
        let leg = host(&hosts, "leg1");
        assert_eq!(leg.firewall, Firewall::IptablesLegacy);
        assert_eq!(leg.segment, Segment::Dmz);
        let sets = legacy_ipsets(&cfg);
        assert!(sets.contains("add admin-src 10.77.9.0/24\n"), "{sets}");
        assert!(sets.contains("add blocklist 10.77.12.21\n"), "{sets}");
        let v4 = legacy_rules_v4();
        // SSH only from the set that holds the bastion's admin leg.
        assert!(v4.contains("--match-set admin-src src -m tcp --dport 22 -j ACCEPT"));
        assert!(v4.contains(":INPUT DROP"));
        assert!(v4.contains(
            "--dport 9180 -m comment --comment \"old scrape port\" -j REDIRECT --to-ports 9100"
        ));
        assert!(v4.ends_with("-A INPUT -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n"));
        // Both parse as the collector will read them back.
        let save = crate::firewall::iptables::parse(&v4).unwrap();
        assert_eq!(save.tables.len(), 2);
        assert!(
            crate::firewall::ipset::parse(&sets).unwrap()["admin-src"]
                .members
                .is_some()
        );
        assert!(crate::firewall::iptables::parse(LEGACY_RULES_V6).is_ok());
    }

    #[test]
    fn firewalld_host_admits_ssh_from_admin_and_redis_too_widely() {
        let cfg = LabConfig::default();
        let hosts = cfg.hosts();
        let fwd = host(&hosts, "fwd1");
        assert_eq!(fwd.firewall, Firewall::Firewalld);
        let d = fwd.expected_daemons();
        let pos = |x| d.iter().position(|y| *y == x).unwrap();
        assert!(pos(Daemon::Dbus) < pos(Daemon::Firewalld));
        assert!(d.contains(&Daemon::Redis));
        let files = firewalld_zones(&cfg);
        let get = |n: &str| &files.iter().find(|(p, _)| p == n).unwrap().1;
        assert!(get("firewalld.conf").contains("FirewallBackend=nftables\n"));
        assert!(get("firewalld.conf").contains("DefaultZone=public\n"));
        assert!(!get("zones/public.xml").contains("<service"));
        let admin = get("zones/admin.xml");
        assert!(admin.contains("<source address=\"10.77.9.0/24\"/>"));
        assert!(admin.contains("<service name=\"ssh\"/>"));
        let data = get("zones/labapp.xml");
        assert!(
            data.contains("<source address=\"10.77.0.0/16\"/>"),
            "{data}"
        );
        assert!(data.contains("<service name=\"redis\"/>"));
        // Overlapping sources go to the zone whose name sorts first: admin must.
        assert!("admin" < FIREWALLD_DATA_ZONE);
    }

    #[test]
    fn nginx_rate_limit_only_on_web1() {
        let hosts = LabConfig::default().hosts();
        let w1 = nginx_site(host(&hosts, "web1"));
        let w2 = nginx_site(host(&hosts, "web2"));
        assert!(w1.contains("limit_req zone=perip"));
        assert!(!w2.contains("limit_req"));
        assert!(w2.contains("return 301 https://$host$request_uri;"));
        assert!(w2.contains("ssl_certificate /etc/nginx/tls/web2.crt;"));
        assert!(NGINX_CONF.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(!NGINX_CONF.contains("TLSv1.1"));
    }

    #[test]
    fn daemons_and_fail2ban() {
        let cfg = LabConfig::default();
        let hosts = cfg.hosts();
        let web2 = host(&hosts, "web2");
        assert!(!web2.expected_daemons().contains(&Daemon::Fail2ban));
        assert_eq!(web2.stopped_daemons(), vec![Daemon::Fail2ban]);
        assert!(
            host(&hosts, "db1")
                .expected_daemons()
                .contains(&Daemon::Postgres)
        );
        assert!(
            host(&hosts, "cache1")
                .expected_daemons()
                .contains(&Daemon::Redis)
        );
        let app = host(&hosts, "app1").expected_daemons();
        assert!(
            app.contains(&Daemon::Gunicorn(APP_PORT_PLAIN))
                && app.contains(&Daemon::Gunicorn(APP_PORT_TLS))
        );
        let jail = fail2ban_jail(&cfg, host(&hosts, "web1"));
        assert!(jail.contains("[sshd]\nenabled = true\n"));
        assert!(jail.contains("ignoreip = 127.0.0.1/8 ::1 10.77.9.10\n"));
        assert!(jail.contains("banaction = iptables-multiport"));
        assert!(fail2ban_jail(&cfg, host(&hosts, "edge")).contains("nftables-multiport"));
    }

    #[test]
    fn wireguard_server_has_a_peer_without_endpoint() {
        let cfg = LabConfig::default();
        let keys = WgKeys {
            server_private: "SP".into(),
            server_public: "SPUB".into(),
            client_private: "CP".into(),
            client_public: "CPUB".into(),
            old_laptop_public: "OLD".into(),
        };
        let server = wg_conf(&cfg, WgRole::Server, cfg.addr(10, 20), &keys);
        let old = server.split("# old-laptop").nth(1).unwrap();
        assert!(old.contains("PublicKey = OLD"));
        assert!(!old.contains("Endpoint"));
        let client = wg_conf(&cfg, WgRole::Client, cfg.addr(10, 20), &keys);
        assert!(client.contains("Endpoint = 10.77.10.20:51820"));
        assert!(client.contains("PrivateKey = CP\n"));
    }

    #[test]
    fn known_hosts_and_ssh_config() {
        let cfg = LabConfig::default();
        let hosts = cfg.hosts();
        assert_eq!(
            known_hosts_line(host(&hosts, "edge"), "ssh-ed25519 AAAA root@edge\n"),
            "edge,10.77.0.10,10.77.9.10 ssh-ed25519 AAAA root@edge"
        );
        assert_eq!(
            known_hosts_line(host(&hosts, "db1"), "ssh-ed25519 BBBB"),
            "db1,10.77.12.11 ssh-ed25519 BBBB"
        );
        let sc = ssh_config(&cfg, &hosts);
        assert!(sc.contains("Host db1\n\tHostName 10.77.12.11\n\tProxyJump edge\n"));
        assert!(sc.contains("Host edge\n\tHostName 10.77.0.10\nHost"));
    }

    #[test]
    fn in_view_goes_through_the_holder_root() {
        assert_eq!(
            in_view(42, "/etc/ssh/sshd_config"),
            PathBuf::from("/proc/42/root/etc/ssh/sshd_config")
        );
    }
}
