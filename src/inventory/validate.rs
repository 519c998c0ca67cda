//! From the raw TOML to a typed, validated [`Inventory`]: every name, address, user, port,
//! CIDR and reference is checked here, and every error carries file, line and key.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::Spanned;

use super::raw::{RawInventory, S};
use super::{
    Address, Alerting, CloudSettings, ConsoleSettings, Defaults, Host, Inventory, InventoryError,
    TransportSettings, builtin_roles,
};
use crate::paths;

struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn err_at(&self, offset: usize, key: &str, message: impl Into<String>) -> InventoryError {
        InventoryError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line_of(offset),
            key: visible(key),
            message: visible(&message.into()),
        }
    }

    fn err<T>(&self, at: &Spanned<T>, key: &str, message: impl Into<String>) -> InventoryError {
        self.err_at(at.span().start, key, message)
    }
}

/// A host or segment name: a DNS label-like word. Never starts with `-` (so it can never be
/// read as an option), no shell metacharacters, no whitespace.
pub fn is_valid_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS name (or an `~/.ssh/config` alias): dot-separated labels of letters, digits, `-` and
/// `_`, each starting and ending with a letter or digit; at most 253 characters.
pub fn is_valid_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
        })
}

/// A login name as POSIX portable names allow: letters, digits, `.`, `_`, `-`, not starting
/// with `-`, at most 32 characters.
pub fn is_valid_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && (s.as_bytes()[0].is_ascii_alphanumeric() || s.as_bytes()[0] == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Text for an error message with every control character and bidi override written as an
/// escape: keys come from the file (a quoted TOML key can hold ESC or U+202E), and the
/// message goes to a terminal.
fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn describe(s: &str) -> String {
    // Show the offending value without letting control characters through to the terminal.
    format!("{:?}", s)
}

fn check_port(ctx: &Ctx<'_>, p: &S<i64>, key: &str) -> Result<u16, InventoryError> {
    let v = *p.get_ref();
    u16::try_from(v)
        .ok()
        .filter(|v| *v != 0)
        .ok_or_else(|| ctx.err(p, key, format!("port {v} is not between 1 and 65535")))
}

fn check_path(ctx: &Ctx<'_>, p: &S<String>, key: &str) -> Result<PathBuf, InventoryError> {
    let v = p.get_ref();
    if v.is_empty() || v.contains(['\0', '\n', '\r']) {
        return Err(ctx.err(p, key, format!("{} is not a usable path", describe(v))));
    }
    Ok(paths::expand_tilde(v))
}

fn check_paths(
    ctx: &Ctx<'_>,
    v: &Option<Vec<S<String>>>,
    key: &str,
) -> Result<Option<Vec<PathBuf>>, InventoryError> {
    v.as_ref()
        .map(|list| list.iter().map(|p| check_path(ctx, p, key)).collect())
        .transpose()
}

fn check_user(ctx: &Ctx<'_>, u: &S<String>, key: &str) -> Result<String, InventoryError> {
    if is_valid_user(u.get_ref()) {
        Ok(u.get_ref().clone())
    } else {
        Err(ctx.err(
            u,
            key,
            format!(
                "{} is not a valid user name (letters, digits, '.', '_', '-'; not starting with '-')",
                describe(u.get_ref())
            ),
        ))
    }
}

fn check_url(ctx: &Ctx<'_>, u: &S<String>, key: &str) -> Result<String, InventoryError> {
    let v = u.get_ref();
    let authority = v
        .split_once("://")
        .map_or("", |(_, r)| r.split('/').next().unwrap_or_default());
    if authority.contains('@') {
        // The value is not shown: it holds a password or token.
        return Err(ctx.err(
            u,
            key,
            "credentials in a URL are refused (they would show in logs and reports); \
             put them in [alerting.auth.\"URL\"] with password_file / password_env",
        ));
    }
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| {
        let authority = r.split('/').next().unwrap_or_default();
        !authority.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'`' | b'\\'))
    });
    if ok {
        Ok(v.trim_end_matches('/').to_string())
    } else {
        Err(ctx.err(
            u,
            key,
            format!("{} is not an http:// or https:// URL", describe(v)),
        ))
    }
}

fn check_positive(ctx: &Ctx<'_>, v: &S<f64>, key: &str) -> Result<f64, InventoryError> {
    let x = *v.get_ref();
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(ctx.err(v, key, format!("{x} must be a positive number")))
    }
}

fn check_count(ctx: &Ctx<'_>, v: &S<i64>, key: &str, max: i64) -> Result<u32, InventoryError> {
    let x = *v.get_ref();
    if (1..=max).contains(&x) {
        Ok(x as u32)
    } else {
        Err(ctx.err(v, key, format!("{x} must be between 1 and {max}")))
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let ctx = Ctx { text, path };
    let raw: RawInventory = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        // Name the key: the left side of `key = value` on the error's line, else the span.
        let line_start = text[..offset.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_text = text[line_start..].lines().next().unwrap_or_default();
        let key = line_text
            .split_once('=')
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['))
            .or_else(|| {
                e.span()
                    .and_then(|s| text.get(s))
                    .map(|k| k.lines().next().unwrap_or_default().trim().to_string())
            })
            .filter(|k| !k.is_empty() && k.len() < 80)
            .map(|k| crate::sanitize::clean_line(&k))
            .unwrap_or_else(|| "inventory".to_string());
        let message = e.message().trim().replace('\n', " ");
        ctx.err_at(offset, &key, message)
    })?;

    // Segments.
    let mut segments = BTreeMap::new();
    for (name, nets) in &raw.segments {
        if !is_valid_host_name(name.get_ref()) {
            return Err(ctx.err(
                name,
                &format!("segments.{}", name.get_ref()),
                "segment names are letters, digits, '-', '_' and '.'",
            ));
        }
        let key = format!("segments.{}", name.get_ref());
        let mut parsed = Vec::new();
        for n in nets.get_ref() {
            let v = n.get_ref();
            let net: IpNet = v
                .parse()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ctx.err(n, &key, format!("{} is not a CIDR", describe(v))))?;
            if net.trunc() != net {
                return Err(ctx.err(
                    n,
                    &key,
                    format!("{v} has host bits set (did you mean {}?)", net.trunc()),
                ));
            }
            parsed.push(net);
        }
        if parsed.is_empty() {
            return Err(ctx.err(nets, &key, "a segment needs at least one CIDR"));
        }
        segments.insert(name.get_ref().clone(), parsed);
    }

    // Roles: built-ins, with the file's keys laid over them.
    let mut roles = builtin_roles();
    for (name, role) in &raw.roles {
        let rname = name.get_ref();
        let key = format!("roles.{rname}");
        if !is_valid_host_name(rname) {
            return Err(ctx.err(
                name,
                &key,
                "role names are letters, digits, '-', '_' and '.'",
            ));
        }
        let r = role.get_ref();
        let mut out = roles.remove(rname).unwrap_or_default();
        if let Some(ports) = &r.allow_ports {
            out.allow_ports = ports
                .iter()
                .map(|p| check_port(&ctx, p, &format!("{key}.allow_ports")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(rf) = &r.reachable_from {
            out.reachable_from.clear();
            for (port, segs) in rf {
                let k = format!("{key}.reachable_from.{}", port.get_ref());
                let p: u16 = port
                    .get_ref()
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        ctx.err(
                            port,
                            &k,
                            format!("{} is not a port", describe(port.get_ref())),
                        )
                    })?;
                let mut names = Vec::new();
                for s in segs {
                    if !raw.segments.keys().any(|k| k.get_ref() == s.get_ref()) {
                        return Err(ctx.err(
                            s,
                            &k,
                            format!(
                                "segment {} is not defined in [segments]",
                                describe(s.get_ref())
                            ),
                        ));
                    }
                    names.push(s.get_ref().clone());
                }
                out.reachable_from.insert(p, names);
            }
        }
        if let Some(segs) = &r.segments {
            out.segments.clear();
            for s in segs {
                if !raw.segments.keys().any(|k| k.get_ref() == s.get_ref()) {
                    return Err(ctx.err(
                        s,
                        &format!("{key}.segments"),
                        format!(
                            "segment {} is not defined in [segments]",
                            describe(s.get_ref())
                        ),
                    ));
                }
                out.segments.push(s.get_ref().clone());
            }
        }
        let set = |dst: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut out.data_tier, r.data_tier);
        set(&mut out.require_https, r.require_https);
        set(&mut out.require_rate_limit, r.require_rate_limit);
        set(&mut out.require_fail2ban, r.require_fail2ban);
        set(&mut out.require_ids, r.require_ids);
        set(&mut out.require_monitoring, r.require_monitoring);
        set(&mut out.require_vpn, r.require_vpn);
        roles.insert(rname.clone(), out);
    }

    // Defaults.
    let d = &raw.defaults;
    let defaults = Defaults {
        user: match &d.user {
            Some(u) => check_user(&ctx, u, "defaults.user")?,
            None => std::env::var("USER")
                .ok()
                .filter(|u| is_valid_user(u))
                .unwrap_or_else(|| "root".to_string()),
        },
        port: match &d.port {
            Some(p) => check_port(&ctx, p, "defaults.port")?,
            None => 22,
        },
        identity_files: check_paths(&ctx, &d.identity_files, "defaults.identity_files")?
            .unwrap_or_else(|| {
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|f| paths::home_dir().join(".ssh").join(f))
                    .collect()
            }),
        known_hosts: check_paths(&ctx, &d.known_hosts, "defaults.known_hosts")?
            .unwrap_or_else(|| vec![paths::home_dir().join(".ssh/known_hosts")]),
        bastion: match &d.bastion {
            Some(b) if b.get_ref() == "none" => None,
            Some(b) => Some(b.clone()),
            None => None,
        }
        .map(|b| b.into_inner()),
        sudo: d.sudo.unwrap_or(false),
        read_only: d.read_only.unwrap_or(false),
    };

    // Hosts, first pass: names and per-host values.
    let mut hosts: Vec<Host> = Vec::new();
    let mut bastion_refs: Vec<Option<S<String>>> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for h in &raw.hosts {
        let line = ctx.line_of(h.span().start);
        let h = h.get_ref();
        let name = h.name.get_ref();
        if !is_valid_host_name(name) {
            return Err(ctx.err(
                &h.name,
                "host.name",
                format!(
                    "{} is not a valid host name (letters, digits, '-', '_', '.'; not starting with '-')",
                    describe(name)
                ),
            ));
        }
        if let Some(first) = seen.get(name) {
            return Err(ctx.err(
                &h.name,
                "host.name",
                format!("duplicate host {name:?} (first defined on line {first})"),
            ));
        }
        seen.insert(name.clone(), line);
        let key = |k: &str| format!("host.{name}.{k}");
        let (address, address_from_name) = match &h.address {
            Some(a) => {
                let v = a.get_ref();
                let parsed = if let Ok(ip) = v.parse::<IpAddr>() {
                    Address::Ip(ip)
                } else if is_valid_dns_name(v) {
                    Address::Dns(v.clone())
                } else {
                    return Err(ctx.err(
                        a,
                        &key("address"),
                        format!("{} is not an IP address or a host name", describe(v)),
                    ));
                };
                (parsed, false)
            }
            None => {
                if !is_valid_dns_name(name) {
                    return Err(ctx.err(
                        &h.name,
                        &key("address"),
                        "no address given, and the name cannot stand in for one",
                    ));
                }
                (Address::Dns(name.clone()), true)
            }
        };
        let mut host_roles = Vec::new();
        for r in &h.roles {
            if !roles.contains_key(r.get_ref()) {
                let known: Vec<&str> = roles.keys().map(String::as_str).collect();
                return Err(ctx.err(
                    r,
                    &key("roles"),
                    format!(
                        "role {} is not defined (known: {})",
                        describe(r.get_ref()),
                        known.join(", ")
                    ),
                ));
            }
            host_roles.push(r.get_ref().clone());
        }
        let mut tags = BTreeMap::new();
        for (k, v) in &h.tags {
            let ok = |s: &str| !s.chars().any(|c| c.is_control());
            if !ok(k.get_ref()) || !ok(v.get_ref()) {
                return Err(ctx.err(k, &key("tags"), "tags may not hold control characters"));
            }
            tags.insert(k.get_ref().clone(), v.get_ref().clone());
        }
        let bastion_ref = match &h.bastion {
            Some(b) => Some(b.clone()),
            None => d.bastion.clone(),
        };
        hosts.push(Host {
            name: name.clone(),
            address,
            address_from_name,
            port: match &h.port {
                Some(p) => check_port(&ctx, p, &key("port"))?,
                None => defaults.port,
            },
            user: match &h.user {
                Some(u) => check_user(&ctx, u, &key("user"))?,
                None => defaults.user.clone(),
            },
            bastion: None,
            roles: host_roles,
            sudo: h.sudo.unwrap_or(defaults.sudo),
            identity_files: check_paths(&ctx, &h.identity_files, &key("identity_files"))?
                .unwrap_or_else(|| defaults.identity_files.clone()),
            known_hosts: check_paths(&ctx, &h.known_hosts, &key("known_hosts"))?
                .unwrap_or_else(|| defaults.known_hosts.clone()),
            read_only: h.read_only.unwrap_or(false) || defaults.read_only,
            tags,
            line,
        });
        bastion_refs.push(bastion_ref);
    }

    // Second pass: bastions exist, are not the host itself, and form no loop.
    for (i, b) in bastion_refs.iter().enumerate() {
        let Some(b) = b else { continue };
        let bname = b.get_ref();
        if bname == "none" {
            continue;
        }
        let key = format!("host.{}.bastion", hosts[i].name);
        if !seen.contains_key(bname) {
            return Err(ctx.err(
                b,
                &key,
                format!(
                    "bastion {} is not a [[host]] of this inventory",
                    describe(bname)
                ),
            ));
        }
        if *bname == hosts[i].name {
            // A default bastion names itself for the bastion host: that host connects
            // directly (the common `[defaults] bastion = "edge"` with edge among the hosts).
            if raw.hosts[i].get_ref().bastion.is_none() {
                continue;
            }
            return Err(ctx.err(b, &key, "a host cannot be its own bastion"));
        }
        hosts[i].bastion = Some(bname.clone());
    }
    for (i, h) in hosts.iter().enumerate() {
        let mut visited = BTreeSet::new();
        visited.insert(h.name.as_str());
        let mut cur = h.bastion.as_deref();
        while let Some(b) = cur {
            if !visited.insert(b) {
                let at = bastion_refs[i]
                    .as_ref()
                    .map(|s| s.span().start)
                    .unwrap_or(0);
                return Err(ctx.err_at(
                    at,
                    &format!("host.{}.bastion", h.name),
                    format!("bastion loop: {} reaches itself again through {b}", h.name),
                ));
            }
            cur = hosts
                .iter()
                .find(|x| x.name == b)
                .and_then(|x| x.bastion.as_deref());
        }
    }

    // Alerting, transport, console, cloud.
    let a = &raw.alerting;
    let alerting = Alerting {
        alertmanager: a
            .alertmanager
            .iter()
            .map(|u| check_url(&ctx, u, "alerting.alertmanager"))
            .collect::<Result<_, _>>()?,
        webhook: a
            .webhook
            .iter()
            .map(|u| check_url(&ctx, u, "alerting.webhook"))
            .collect::<Result<_, _>>()?,
        thresholds: a
            .thresholds
            .iter()
            .map(|(k, v)| {
                let key = format!("alerting.thresholds.{}", k.get_ref());
                check_positive(&ctx, v, &key).map(|v| (k.get_ref().clone(), v))
            })
            .collect::<Result<_, _>>()?,
        auth: BTreeMap::new(),
    };
    let mut alerting = alerting;
    alerting.auth = check_sink_auth(&ctx, &a.auth, &alerting)?;
    let t = &raw.transport;
    let dt = TransportSettings::default();
    let pos = |v: &Option<S<f64>>, key: &str, d: f64| {
        v.as_ref().map_or(Ok(d), |v| check_positive(&ctx, v, key))
    };
    let cnt = |v: &Option<S<i64>>, key: &str, max: i64, d: u32| {
        v.as_ref().map_or(Ok(d), |v| check_count(&ctx, v, key, max))
    };
    let transport = TransportSettings {
        connect_timeout_secs: pos(
            &t.connect_timeout_secs,
            "transport.connect_timeout_secs",
            dt.connect_timeout_secs,
        )?,
        command_timeout_secs: pos(
            &t.command_timeout_secs,
            "transport.command_timeout_secs",
            dt.command_timeout_secs,
        )?,
        keepalive_secs: pos(
            &t.keepalive_secs,
            "transport.keepalive_secs",
            dt.keepalive_secs,
        )?,
        keepalive_max: cnt(
            &t.keepalive_max,
            "transport.keepalive_max",
            100,
            dt.keepalive_max,
        )?,
        max_handshakes: cnt(
            &t.max_handshakes,
            "transport.max_handshakes",
            64,
            dt.max_handshakes,
        )?,
        max_sessions: cnt(
            &t.max_sessions,
            "transport.max_sessions",
            64,
            dt.max_sessions,
        )?,
        output_cap_bytes: match &t.output_cap_bytes {
            Some(v) => u64::from(check_count(&ctx, v, "transport.output_cap_bytes", 1 << 31)?),
            None => dt.output_cap_bytes,
        },
    };
    let console = ConsoleSettings {
        refresh_secs: pos(&raw.console.refresh_secs, "console.refresh_secs", 30.0)?,
        theme: match &raw.console.theme {
            Some(t) if is_valid_host_name(t.get_ref()) => Some(t.get_ref().clone()),
            Some(t) => {
                return Err(ctx.err(
                    t,
                    "console.theme",
                    "theme names are letters, digits, '-', '_'",
                ));
            }
            None => None,
        },
        environment: match &raw.console.environment {
            Some(e)
                if !e.get_ref().trim().is_empty()
                    && e.get_ref().chars().count() <= 24
                    && !e.get_ref().chars().any(char::is_control) =>
            {
                Some(e.get_ref().trim().to_string())
            }
            Some(e) => {
                return Err(ctx.err(
                    e,
                    "console.environment",
                    "free text of 1 to 24 characters, no control characters (e.g. \"prod\")",
                ));
            }
            None => None,
        },
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let cloud = CloudSettings {
        aws_security_groups: raw
            .cloud
            .aws_security_groups
            .iter()
            .map(|p| check_path(&ctx, p, "cloud.aws_security_groups").map(|p| base.join(p)))
            .collect::<Result<_, _>>()?,
    };

    Ok(Inventory {
        path: path.to_path_buf(),
        defaults,
        segments,
        roles,
        hosts,
        alerting,
        transport,
        console,
        cloud,
    })
}

/// `[alerting.auth."URL"]`: each URL must be a configured sink; a secret comes from a file or
/// an environment variable, never inline; basic auth and a bearer token exclude each other;
/// a client certificate comes with its key; credentials travel only over https (or to
/// loopback); TLS files only for https.
fn check_sink_auth(
    ctx: &Ctx<'_>,
    raw: &BTreeMap<S<String>, S<super::raw::RawSinkAuth>>,
    alerting: &Alerting,
) -> Result<BTreeMap<String, crate::alerts::secret::SinkAuth>, InventoryError> {
    use crate::alerts::secret::{SecretSource, SinkAuth};
    let mut out = BTreeMap::new();
    for (url_s, entry) in raw {
        let url = url_s.get_ref().trim_end_matches('/').to_string();
        let key = format!("alerting.auth.{url:?}");
        if !alerting.alertmanager.contains(&url) && !alerting.webhook.contains(&url) {
            return Err(ctx.err(
                url_s,
                &key,
                "is not one of alerting.alertmanager or alerting.webhook (the URLs must match)",
            ));
        }
        let e = entry.get_ref();
        let inline = [
            ("password", e.password.as_ref().map(|s| s.span().start)),
            (
                "bearer_token",
                e.bearer_token.as_ref().map(|s| s.span().start),
            ),
            ("token", e.token.as_ref().map(|s| s.span().start)),
        ];
        for (name, at) in inline {
            if let Some(at) = at {
                let base = if name == "password" {
                    "password"
                } else {
                    "bearer_token"
                };
                return Err(ctx.err_at(
                    at,
                    &format!("{key}.{name}"),
                    format!(
                        "inline secrets are refused (the inventory is read, copied and \
                         reported); use {base}_file = \"PATH\" or {base}_env = \"VARIABLE\""
                    ),
                ));
            }
        }
        let source = |file: &Option<S<String>>,
                      env: &Option<S<String>>,
                      name: &str|
         -> Result<Option<SecretSource>, InventoryError> {
            match (file, env) {
                (Some(f), Some(_)) => Err(ctx.err(
                    f,
                    &format!("{key}.{name}_file"),
                    format!("set {name}_file or {name}_env, not both"),
                )),
                (Some(f), None) => Ok(Some(SecretSource::File(check_path(
                    ctx,
                    f,
                    &format!("{key}.{name}_file"),
                )?))),
                (None, Some(v)) => {
                    let name_ok = v.get_ref().bytes().enumerate().all(|(i, b)| {
                        b == b'_'
                            || b.is_ascii_uppercase()
                            || b.is_ascii_lowercase()
                            || (i > 0 && b.is_ascii_digit())
                    }) && !v.get_ref().is_empty();
                    if name_ok {
                        Ok(Some(SecretSource::Env(v.get_ref().clone())))
                    } else {
                        Err(ctx.err(
                            v,
                            &format!("{key}.{name}_env"),
                            "is not an environment variable name (letters, digits, _)",
                        ))
                    }
                }
                (None, None) => Ok(None),
            }
        };
        let password = source(&e.password_file, &e.password_env, "password")?;
        let bearer_token = source(&e.bearer_token_file, &e.bearer_token_env, "bearer_token")?;
        if password.is_some() != e.username.is_some() {
            return Err(ctx.err(
                entry,
                &key,
                "basic auth needs both username and password_file (or password_env)",
            ));
        }
        if password.is_some() && bearer_token.is_some() {
            return Err(ctx.err(
                entry,
                &key,
                "set basic auth (username, password_*) or a bearer token, not both",
            ));
        }
        if e.client_cert_file.is_some() != e.client_key_file.is_some() {
            return Err(ctx.err(
                entry,
                &key,
                "a client certificate needs both client_cert_file and client_key_file",
            ));
        }
        let https = url.starts_with("https://");
        let host = url
            .split_once("://")
            .map_or("", |(_, r)| r.split('/').next().unwrap_or_default());
        let loopback =
            host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
        if (password.is_some() || bearer_token.is_some()) && !https && !loopback {
            return Err(ctx.err(
                url_s,
                &key,
                "credentials would travel in clear text: use an https:// URL",
            ));
        }
        let path = |p: &Option<S<String>>, name: &str| {
            p.as_ref()
                .map(|p| check_path(ctx, p, &format!("{key}.{name}")))
                .transpose()
        };
        let auth = SinkAuth {
            username: e.username.as_ref().map(|u| u.get_ref().clone()),
            password,
            bearer_token,
            ca_file: path(&e.ca_file, "ca_file")?,
            client_cert_file: path(&e.client_cert_file, "client_cert_file")?,
            client_key_file: path(&e.client_key_file, "client_key_file")?,
        };
        if !https && (auth.ca_file.is_some() || auth.client_cert_file.is_some()) {
            return Err(ctx.err(
                url_s,
                &key,
                "ca_file and client certificates need an https:// URL",
            ));
        }
        out.insert(url, auth);
    }
    Ok(out)
}
