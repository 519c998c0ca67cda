//! The application stack of a host, as read by `crate::collect::datastore` and
//! `crate::collect::django`: the data stores (PostgreSQL, Redis, MySQL/MariaDB, Memcached),
//! the Django apps gunicorn serves, and what one harmless GET to each app port answered.
//!
//! Secrets never enter these types: a password, a `SECRET_KEY` or an ACL hash is kept only
//! as "set" / "not set" (the probes blank them on the host, and the parsers drop them again).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One configuration line, quoted as evidence: `file:line: text`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfLine {
    pub file: String,
    pub line: usize,
    /// The line as written (secrets already blanked), trimmed.
    pub text: String,
}

impl ConfLine {
    /// `file:line: text`, the form every stack finding quotes.
    pub fn cite(&self) -> String {
        format!("{}:{}: {}", self.file, self.line, self.text)
    }
}

/// Everything the stack probes found on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// PostgreSQL clusters (one per `postgresql.conf`).
    pub postgres: Vec<Postgres>,
    /// Redis servers (one per configuration file).
    pub redis: Vec<Redis>,
    /// MySQL/MariaDB server configuration, when present.
    pub mysql: Option<Mysql>,
    /// Memcached configuration, when present.
    pub memcached: Option<Memcached>,
    /// Django apps served by gunicorn on this host.
    pub apps: Vec<DjangoApp>,
    /// One GET of an unknown URL on each app port.
    pub app_probes: Vec<AppProbe>,
    /// Stack probes that failed: their part is unknown, not "fine".
    pub unread: Vec<super::StateError>,
}

/// A PostgreSQL cluster's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postgres {
    /// The cluster's `postgresql.conf`.
    pub config: String,
    /// Effective settings (the last occurrence wins, as in PostgreSQL), by lower-case name.
    pub settings: BTreeMap<String, PgSetting>,
    pub hba: Vec<HbaRule>,
}

impl Postgres {
    /// `ssl`, default off.
    pub fn ssl_on(&self) -> bool {
        self.settings.get("ssl").is_some_and(|s| is_true(&s.value))
    }

    /// `port`, default 5432.
    pub fn port(&self) -> u16 {
        self.settings
            .get("port")
            .and_then(|s| s.value.parse().ok())
            .unwrap_or(5432)
    }

    /// `listen_addresses` as a list; PostgreSQL's default is `localhost`.
    pub fn listen_addresses(&self) -> Vec<String> {
        self.settings.get("listen_addresses").map_or_else(
            || vec!["localhost".to_string()],
            |s| {
                s.value
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            },
        )
    }
}

/// PostgreSQL's booleans: on, true, yes, 1 (and unique prefixes, which nobody writes).
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "on" | "true" | "yes" | "1"
    )
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgSetting {
    pub value: String,
    pub at: ConfLine,
}

/// One pg_hba.conf record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HbaRule {
    /// local, host, hostssl, hostnossl, hostgssenc, hostnogssenc.
    pub kind: String,
    pub database: String,
    pub user: String,
    /// The address field (`None` for `local`), with the mask joined as a prefix when it was
    /// given as a separate field.
    pub address: Option<String>,
    pub method: String,
    pub at: ConfLine,
}

impl HbaRule {
    /// A TCP rule that admits addresses other than this host's loopback. Unknown address
    /// forms (host names, `all`, `samenet`) count as non-local.
    pub fn non_local(&self) -> bool {
        if self.kind == "local" {
            return false;
        }
        let Some(a) = &self.address else {
            return true;
        };
        !matches!(
            a.as_str(),
            "127.0.0.1/32" | "::1/128" | "127.0.0.1" | "::1" | "localhost" | "samehost"
        ) && !a.starts_with("127.")
    }

    /// Accepts a connection without TLS (`host`, `hostnossl`, and the GSS variants, which say
    /// nothing about TLS).
    pub fn allows_plaintext(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "host" | "hostnossl" | "hostgssenc" | "hostnogssenc"
        )
    }
}

/// A Redis server's configuration. Defaults are Redis 7's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redis {
    pub config: String,
    /// `bind` addresses; empty = every interface (Redis's default without a `bind` line).
    pub bind: Vec<String>,
    pub bind_at: Option<ConfLine>,
    /// Plaintext port; 0 = off.
    pub port: u16,
    pub port_at: Option<ConfLine>,
    pub tls_port: Option<u16>,
    pub protected_mode: bool,
    pub protected_mode_at: Option<ConfLine>,
    /// A `requirepass` is set (its value never leaves the host).
    pub requirepass: bool,
    /// ACL users (inline `user` lines or an `aclfile`) that need a password.
    pub acl_users_with_password: Vec<String>,
    /// The `default` user is left without a password by an ACL line (`nopass`).
    pub default_user_nopass: bool,
    /// An `aclfile` is configured (its users are not read: unknown, so not counted as auth).
    pub aclfile: Option<String>,
    /// `redis-server --version`'s major version, when it could be read.
    #[serde(default)]
    pub major_version: Option<u32>,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            config: String::new(),
            bind: Vec::new(),
            bind_at: None,
            port: 6379,
            port_at: None,
            tls_port: None,
            protected_mode: true,
            protected_mode_at: None,
            requirepass: false,
            acl_users_with_password: Vec::new(),
            default_user_nopass: false,
            aclfile: None,
            major_version: None,
        }
    }
}

impl Redis {
    /// Listens on some address other than loopback (no `bind` = every interface).
    pub fn non_loopback(&self) -> bool {
        self.bind.is_empty() || self.bind.iter().any(|a| !is_loopback_word(a))
    }

    /// Clients must authenticate: a password for the default user, and no ACL line that
    /// gives the default user `nopass`.
    pub fn requires_auth(&self) -> bool {
        self.requirepass && !self.default_user_nopass
    }

    /// Protected mode refuses non-loopback clients while the default user has no password:
    /// from Redis 7 whatever `bind` says, before 7 only without a `bind` line. An unknown
    /// version with a `bind` line counts as unprotected.
    pub fn protected_mode_effective(&self) -> bool {
        self.protected_mode && (self.major_version.is_some_and(|v| v >= 7) || self.bind.is_empty())
    }
}

/// `127.0.0.1`, `::1`, `-::1` (Redis's "optional" prefix), `localhost`.
pub fn is_loopback_word(a: &str) -> bool {
    let a = a.trim_start_matches('-');
    a == "localhost"
        || a == "::1"
        || a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// MySQL/MariaDB server settings from its option files (`[mysqld]`/`[mariadb]` groups).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mysql {
    pub files: Vec<String>,
    pub bind_address: Option<ConfLine>,
    pub require_secure_transport: Option<ConfLine>,
    pub skip_networking: bool,
}

impl Mysql {
    /// `bind-address` (default `*` since MySQL 8 and MariaDB 10.x packages bind to
    /// 127.0.0.1 through their own option files, which are read too).
    pub fn bind_value(&self) -> String {
        self.bind_address
            .as_ref()
            .and_then(|l| l.text.split_once('=').map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| "*".to_string())
    }

    pub fn secure_transport_required(&self) -> bool {
        self.require_secure_transport
            .as_ref()
            .and_then(|l| l.text.split_once('=').map(|(_, v)| is_true(v)))
            .unwrap_or(false)
    }
}

/// Memcached's listen addresses from `/etc/memcached.conf` (`-l`); default every interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memcached {
    pub config: String,
    pub listen: Vec<String>,
    pub listen_at: Option<ConfLine>,
    /// `-S`: SASL authentication required.
    pub sasl: bool,
}

/// A Django project gunicorn serves, read as text (its code is never imported or run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DjangoApp {
    /// The project directory (gunicorn's working directory).
    pub root: String,
    /// The settings module gunicorn names, when it does (`DJANGO_SETTINGS_MODULE` or
    /// `--env`), e.g. `labsite.settings`.
    pub settings_module: Option<String>,
    /// Ports gunicorn binds for this app.
    pub ports: Vec<u16>,
    /// Every settings file read, by module name.
    pub settings: BTreeMap<String, DjangoSettings>,
    /// Views and whether each is rate-limited in code.
    pub views: Vec<DjangoView>,
}

impl DjangoApp {
    /// The settings of the module gunicorn runs (else of the only settings file).
    pub fn effective_settings(&self) -> Option<&DjangoSettings> {
        match &self.settings_module {
            Some(m) => self.settings.get(m),
            None if self.settings.len() == 1 => self.settings.values().next(),
            None => None,
        }
    }
}

/// What a settings file says, as far as rampart's checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DjangoSettings {
    pub file: String,
    /// `DEBUG = ...` when it is a literal.
    pub debug: Option<ConfLine>,
    /// `RATELIMIT_ENABLE = False` switches django-ratelimit off.
    pub ratelimit_enable: Option<ConfLine>,
    /// `django_ratelimit` middleware or app listed.
    pub ratelimit_installed: Option<ConfLine>,
    /// DRF `DEFAULT_THROTTLE_CLASSES` with at least one class.
    pub drf_throttle: Option<ConfLine>,
    /// The module this one star-imports (`from .settings import *`), if any.
    pub imports: Option<String>,
    /// A `SECRET_KEY` is set (never its value).
    pub secret_key_set: bool,
}

/// One view function or class, and where django-ratelimit or DRF throttling covers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DjangoView {
    pub name: String,
    pub at: ConfLine,
    /// The `@ratelimit(...)` decorator or `throttle_classes` line, when there is one.
    pub limited_by: Option<ConfLine>,
}

/// What one GET of an unknown URL on an app port answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppProbe {
    pub port: u16,
    pub tls: bool,
    /// HTTP status, `None` when nothing answered.
    pub status: Option<u16>,
    /// The answer is Django's technical (debug) page.
    pub debug_page: bool,
}

/// An nginx `proxy_pass`, with the TLS verification in effect where it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyPass {
    /// `None` = server level; else the location's pattern.
    pub location: Option<String>,
    /// The target as written: `http://10.0.0.5:8000`, `https://app`, `http://upstream_name`.
    pub target: String,
    pub at: ConfLine,
    /// `proxy_ssl_verify on` applies here.
    pub verify: bool,
}

impl ProxyPass {
    /// `https://` (or `grpcs://`): the hop is encrypted.
    pub fn tls(&self) -> bool {
        let t = self.target.to_ascii_lowercase();
        t.starts_with("https://") || t.starts_with("grpcs://")
    }

    /// The target's host and port (default 80/443), when it names one.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let rest = self.target.split_once("://")?.1;
        let authority = rest.split('/').next()?;
        if authority.starts_with("unix:") || authority.is_empty() {
            return None;
        }
        let default = if self.tls() { 443 } else { 80 };
        match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p.parse().ok()?;
                Some((h.trim_matches(['[', ']']).to_string(), port))
            }
            _ => Some((authority.to_string(), default)),
        }
    }
}
