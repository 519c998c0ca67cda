//! The inventory as written: serde structs that mirror the TOML exactly, with spans so that
//! every later error can name its line. Nothing here is trusted; `super::validate` turns it
//! into the typed [`super::Inventory`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub segments: BTreeMap<S<String>, S<Vec<S<String>>>>,
    #[serde(default)]
    pub roles: BTreeMap<S<String>, S<RawRole>>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<S<RawHost>>,
    #[serde(default)]
    pub alerting: RawAlerting,
    #[serde(default)]
    pub transport: RawTransport,
    #[serde(default)]
    pub console: RawConsole,
    #[serde(default)]
    pub cloud: RawCloud,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub user: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub identity_files: Option<Vec<S<String>>>,
    pub known_hosts: Option<Vec<S<String>>>,
    pub bastion: Option<S<String>>,
    pub sudo: Option<bool>,
    pub read_only: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub allow_ports: Option<Vec<S<i64>>>,
    pub reachable_from: Option<BTreeMap<S<String>, Vec<S<String>>>>,
    pub segments: Option<Vec<S<String>>>,
    pub data_tier: Option<bool>,
    pub require_https: Option<bool>,
    pub require_rate_limit: Option<bool>,
    pub require_fail2ban: Option<bool>,
    pub require_ids: Option<bool>,
    pub require_monitoring: Option<bool>,
    pub require_vpn: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: S<String>,
    pub address: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub user: Option<S<String>>,
    pub bastion: Option<S<String>>,
    #[serde(default)]
    pub roles: Vec<S<String>>,
    pub sudo: Option<bool>,
    pub identity_files: Option<Vec<S<String>>>,
    pub known_hosts: Option<Vec<S<String>>>,
    pub read_only: Option<bool>,
    #[serde(default)]
    pub tags: BTreeMap<S<String>, S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    #[serde(default)]
    pub alertmanager: Vec<S<String>>,
    #[serde(default)]
    pub webhook: Vec<S<String>>,
    #[serde(default)]
    pub thresholds: BTreeMap<S<String>, S<f64>>,
    /// Authentication of a sink, keyed by its URL.
    #[serde(default)]
    pub auth: BTreeMap<S<String>, S<RawSinkAuth>>,
}

/// `[alerting.auth."URL"]`. The inline `password` / `bearer_token` keys exist only to be
/// refused with a clear error; their values are never kept (`IgnoredAny`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSinkAuth {
    pub username: Option<S<String>>,
    pub password: Option<S<serde::de::IgnoredAny>>,
    pub password_file: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub bearer_token: Option<S<serde::de::IgnoredAny>>,
    pub token: Option<S<serde::de::IgnoredAny>>,
    pub bearer_token_file: Option<S<String>>,
    pub bearer_token_env: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub client_cert_file: Option<S<String>>,
    pub client_key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTransport {
    pub connect_timeout_secs: Option<S<f64>>,
    pub command_timeout_secs: Option<S<f64>>,
    pub keepalive_secs: Option<S<f64>>,
    pub keepalive_max: Option<S<i64>>,
    pub max_handshakes: Option<S<i64>>,
    pub max_sessions: Option<S<i64>>,
    pub output_cap_bytes: Option<S<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub refresh_secs: Option<S<f64>>,
    pub theme: Option<S<String>>,
    pub environment: Option<S<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    #[serde(default)]
    pub aws_security_groups: Vec<S<String>>,
}
