//! The stack checks: TLS-INTERNAL-MISSING, DATA-NO-AUTH, APP-DEBUG, and the app layer of
//! RATE-LIMIT-MISSING. They read the data stores and apps of every host
//! (`crate::state::Stack`) and, for the proxy hop and the app layer, follow a web host's
//! `proxy_pass` to the inventory host it names. Pure: reads state, writes findings.
//!
//! Where a part could not be read (a stack probe failed), a store that listens beyond
//! loopback counts as unencrypted and unauthenticated, and the evidence says so.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::Finding;
use crate::inventory::{Address, Host, Inventory};
use crate::state::{FleetState, HostState, Listener, Probed, ProxyPass, Stack, is_loopback_word};

/// The stack checks of one host (called by `checks::check_host`, so fixes verify with them).
pub fn host_checks(inv: &Inventory, host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let from = out.len();
    data_store_checks(host, state, out);
    app_debug(host, state, out);
    proxy_hops(inv, host, state, out);
    // The catalogue's fix covers one cause of each check: PostgreSQL for
    // TLS-INTERNAL-MISSING, Redis for DATA-NO-AUTH. The other causes have none.
    for f in &mut out[from..] {
        let fixable = match f.check.as_str() {
            "TLS-INTERNAL-MISSING" => f.title.starts_with("PostgreSQL"),
            "DATA-NO-AUTH" => f.title.starts_with("Redis") && !f.title.contains("unknown"),
            _ => true,
        };
        if !fixable {
            f.fix = None;
        }
    }
}

/// The fleet part: adds the app layer (read on the host a web host proxies to) to the
/// RATE-LIMIT-MISSING findings `checks::check_host` made from nginx alone.
pub fn stack_checks(inv: &Inventory, fleet: &FleetState, out: &mut Vec<Finding>) {
    rate_limit_app_layer(inv, fleet, out);
}

/// Whether something listens on `port` beyond loopback. `None` when the listeners are
/// unknown (then the caller assumes it does).
fn listens_beyond_loopback(state: &HostState, port: u16) -> Option<bool> {
    match &state.listeners {
        Probed::Ok(ls) => Some(
            ls.iter()
                .any(|l: &Listener| l.port == port && !l.is_loopback()),
        ),
        _ => None,
    }
}

fn listener_note(state: &HostState, port: u16) -> Option<String> {
    match listens_beyond_loopback(state, port) {
        Some(true) => Some(format!(
            "ss: a socket listens on port {port} beyond loopback"
        )),
        Some(false) => None,
        None => Some(format!(
            "listeners unknown ({}): assuming port {port} is reachable",
            state.listeners.status_label()
        )),
    }
}

fn unread_note(stack: &Stack, stage: &str) -> Option<String> {
    stack
        .unread
        .iter()
        .find(|e| e.stage.ends_with(stage))
        .map(|e| {
            format!(
                "{stage} could not be read ({}): assuming the worst",
                e.message
            )
        })
}

fn data_store_checks(host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let name = host.name.as_str();
    let st = &state.stack;
    // PostgreSQL.
    for pg in &st.postgres {
        let port = pg.port();
        let wide = pg.listen_addresses().iter().any(|a| !is_loopback_word(a));
        let Some(listening) = listener_note(state, port).filter(|_| wide) else {
            continue;
        };
        let mut plain: Vec<String> = Vec::new();
        if !pg.ssl_on() {
            plain.push(match pg.settings.get("ssl") {
                Some(s) => s.at.cite(),
                None => format!(
                    "{}: no `ssl` setting (PostgreSQL's default is off)",
                    pg.config
                ),
            });
        }
        let hba_plain: Vec<String> = pg
            .hba
            .iter()
            .filter(|r| r.non_local() && r.allows_plaintext() && r.method != "reject")
            .map(|r| r.at.cite())
            .collect();
        if !plain.is_empty() || !hba_plain.is_empty() {
            let mut f = Finding::new(
                "TLS-INTERNAL-MISSING",
                name,
                format!(
                    "PostgreSQL on port {port} accepts unencrypted connections from other hosts"
                ),
            );
            if let Some(l) = pg.settings.get("listen_addresses") {
                f = f.evidence(l.at.cite());
            }
            for e in plain.into_iter().chain(hba_plain.into_iter().take(6)) {
                f = f.evidence(e);
            }
            out.push(
                f.evidence(listening.clone())
                    .param("port", port.to_string()),
            );
        }
        let trust: Vec<String> = pg
            .hba
            .iter()
            .filter(|r| r.non_local() && r.method == "trust")
            .map(|r| r.at.cite())
            .collect();
        if !trust.is_empty() {
            let mut f = Finding::new(
                "DATA-NO-AUTH",
                name,
                format!("PostgreSQL on port {port} trusts other hosts without a password"),
            );
            for e in trust.into_iter().take(6) {
                f = f.evidence(e);
            }
            out.push(f.evidence(listening));
        }
    }
    // Redis.
    for r in &st.redis {
        if !r.non_loopback() {
            continue;
        }
        let port = if r.port != 0 {
            r.port
        } else {
            r.tls_port.unwrap_or(0)
        };
        let Some(listening) = listener_note(state, port) else {
            continue;
        };
        let bind = r.bind_at.as_ref().map_or_else(
            || {
                format!(
                    "{}: no `bind` line (Redis listens on every interface)",
                    r.config
                )
            },
            |b| b.cite(),
        );
        if r.port != 0 {
            let mut f = Finding::new(
                "TLS-INTERNAL-MISSING",
                name,
                format!("Redis serves plaintext on port {} beyond loopback", r.port),
            )
            .evidence(bind.clone());
            if let Some(p) = &r.port_at {
                f = f.evidence(p.cite());
            }
            out.push(
                f.evidence(listening.clone())
                    .param("port", r.port.to_string()),
            );
        }
        let no_auth =
            !r.requires_auth() && r.acl_users_with_password.is_empty() || r.default_user_nopass;
        if no_auth && !r.protected_mode_effective() {
            let mut f = Finding::new(
                "DATA-NO-AUTH",
                name,
                format!("Redis on port {port} answers other hosts without authentication"),
            )
            .evidence(bind)
            .evidence(format!(
                "{}: no requirepass and no ACL user with a password",
                r.config
            ));
            f = f.evidence(match (&r.protected_mode_at, r.protected_mode) {
                (Some(p), _) => p.cite(),
                (None, true) => format!(
                    "{}: protected mode on by default, which a `bind` line disables before Redis 7 \
                     (version {})",
                    r.config,
                    r.major_version
                        .map_or_else(|| "unknown".to_string(), |v| v.to_string())
                ),
                (None, false) => format!("{}: protected mode off", r.config),
            });
            out.push(f.evidence(listening).param("port", port.to_string()));
        }
    }
    if st.redis.is_empty()
        && let Some(note) = unread_note(st, "stack-redis")
        && let Some(listening) = listener_note(state, 6379)
    {
        out.push(
            Finding::new(
                "DATA-NO-AUTH",
                name,
                "Redis on port 6379: authentication unknown",
            )
            .evidence(note)
            .evidence(listening),
        );
    }
    // MySQL / MariaDB.
    if let Some(m) = &st.mysql
        && !m.skip_networking
        && !is_loopback_word(&m.bind_value())
        && !m.secure_transport_required()
        && let Some(listening) = listener_note(state, 3306)
    {
        let mut f = Finding::new(
            "TLS-INTERNAL-MISSING",
            name,
            "MySQL/MariaDB accepts unencrypted connections from other hosts",
        );
        f = f.evidence(m.bind_address.as_ref().map_or_else(
            || "no bind-address (the server listens on every interface)".to_string(),
            |b| b.cite(),
        ));
        f = f.evidence(m.require_secure_transport.as_ref().map_or_else(
            || format!("{}: no require_secure_transport", m.files.join(", ")),
            |b| b.cite(),
        ));
        out.push(f.evidence(listening));
    }
    // Memcached has no authentication unless SASL is on.
    if let Some(m) = &st.memcached
        && !m.sasl
        && (m.listen.is_empty() || m.listen.iter().any(|a| !is_loopback_word(a)))
        && let Some(listening) = listener_note(state, 11211)
    {
        out.push(
            Finding::new(
                "DATA-NO-AUTH",
                name,
                "Memcached answers other hosts without authentication",
            )
            .evidence(m.listen_at.as_ref().map_or_else(
                || format!("{}: no -l (memcached listens on every interface)", m.config),
                |l| l.cite(),
            ))
            .evidence(listening),
        );
    }
}

fn app_debug(host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let st = &state.stack;
    let mut reported = BTreeSet::new();
    for p in st.app_probes.iter().filter(|p| p.debug_page) {
        if !reported.insert(p.port) {
            continue;
        }
        let scheme = if p.tls { "https" } else { "http" };
        let mut f = Finding::new(
            "APP-DEBUG",
            &host.name,
            format!("the Django app on port {} serves its debug pages", p.port),
        )
        .evidence(format!(
            "GET {scheme}://<host>:{}/rampart-probe-unknown-url answered {} with Django's \
             debug page (\"DEBUG = True\")",
            p.port,
            p.status.map_or_else(|| "?".to_string(), |s| s.to_string())
        ));
        if let Some(line) = st
            .apps
            .iter()
            .find(|a| a.ports.contains(&p.port))
            .and_then(|a| resolved(a, |s| s.debug.clone()))
        {
            f = f.evidence(line.cite());
        }
        out.push(f.param("port", p.port.to_string()));
    }
    // Settings that say DEBUG = True on a port no GET could ask: lean towards "on".
    for a in &st.apps {
        let Some(line) = resolved(a, |s| s.debug.clone()) else {
            continue;
        };
        if !line.text.replace(' ', "").ends_with("=True") {
            continue;
        }
        for port in &a.ports {
            let asked = st.app_probes.iter().any(|p| p.port == *port);
            if asked || !reported.insert(*port) {
                continue;
            }
            out.push(
                Finding::new(
                    "APP-DEBUG",
                    &host.name,
                    format!("the Django app on port {port} is set to serve its debug pages"),
                )
                .evidence(line.cite())
                .evidence(format!(
                    "no GET on port {port} answered, so the setting decides"
                ))
                .param("port", port.to_string()),
            );
        }
    }
}

/// A setting from the app's settings module, following `from .x import *` to its base.
fn resolved<T>(
    app: &crate::state::DjangoApp,
    get: impl Fn(&crate::state::DjangoSettings) -> Option<T>,
) -> Option<T> {
    let mut cur = app.effective_settings();
    for _ in 0..8 {
        let s = cur?;
        if let Some(v) = get(s) {
            return Some(v);
        }
        cur = s.imports.as_ref().and_then(|m| app.settings.get(m));
    }
    None
}

/// The inventory host a proxy target names (by address or name).
fn target_host<'a>(inv: &'a Inventory, host_word: &str) -> Option<&'a Host> {
    let ip: Option<IpAddr> = host_word.parse().ok();
    inv.hosts.iter().find(|h| {
        h.name == host_word
            || match (&h.address, ip) {
                (Address::Ip(a), Some(ip)) => *a == ip,
                (Address::Dns(d), _) => d == host_word,
                _ => false,
            }
    })
}

fn is_local_target(p: &ProxyPass) -> bool {
    let Some(rest) = p.target.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    if rest.starts_with("unix:") {
        return true;
    }
    p.host_port().is_some_and(|(h, _)| is_loopback_word(&h))
}

fn proxy_hops(inv: &Inventory, host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let Probed::Ok(n) = &state.nginx else {
        return;
    };
    let mut seen = BTreeSet::new();
    for s in &n.servers {
        for p in &s.proxy_passes {
            if p.tls() || is_local_target(p) || !seen.insert(p.target.clone()) {
                continue;
            }
            let target = p
                .host_port()
                .map_or_else(|| p.target.clone(), |(h, port)| format!("{h}:{port}"));
            let known = p
                .host_port()
                .and_then(|(h, _)| target_host(inv, &h))
                .map(|h| format!(" ({})", h.name))
                .unwrap_or_default();
            out.push(
                Finding::new(
                    "TLS-INTERNAL-MISSING",
                    &host.name,
                    format!("nginx proxies to {target}{known} over plain HTTP"),
                )
                .evidence(p.at.cite()),
            );
        }
    }
}

/// What protects one proxied location at the app layer.
struct AppLayer {
    /// Evidence lines.
    lines: Vec<String>,
    /// True when every view of the app is covered.
    all: bool,
}

fn app_layer(inv: &Inventory, fleet: &FleetState, p: &ProxyPass) -> Option<AppLayer> {
    let (h, port) = p.host_port()?;
    let target = target_host(inv, &h)?;
    let st = &fleet.host(&target.name)?.stack;
    let app = st.apps.iter().find(|a| a.ports.contains(&port))?;
    let mut lines = Vec::new();
    let where_ = format!("{}:{port}", target.name);
    if let Some(off) = resolved(app, |s| s.ratelimit_enable.clone())
        && !off.text.replace(' ', "").ends_with("=True")
    {
        lines.push(format!(
            "{where_}: django-ratelimit is switched off: {}",
            off.cite()
        ));
        return Some(AppLayer { lines, all: false });
    }
    if let Some(t) = resolved(app, |s| s.drf_throttle.clone()) {
        lines.push(format!(
            "{where_}: DRF throttles every API view: {}",
            t.cite()
        ));
        return Some(AppLayer { lines, all: true });
    }
    let limited: Vec<&str> = app
        .views
        .iter()
        .filter(|v| v.limited_by.is_some())
        .map(|v| v.name.as_str())
        .collect();
    let open: Vec<&str> = app
        .views
        .iter()
        .filter(|v| v.limited_by.is_none())
        .map(|v| v.name.as_str())
        .collect();
    if !limited.is_empty() {
        lines.push(format!(
            "{where_}: django-ratelimit protects view(s) {}",
            limited.join(", ")
        ));
    }
    if !open.is_empty() {
        lines.push(format!(
            "{where_}: no app-layer limit on view(s) {}",
            open.join(", ")
        ));
    }
    if app.views.is_empty() {
        lines.push(format!("{where_}: no views found to read"));
    }
    Some(AppLayer {
        all: !app.views.is_empty() && open.is_empty(),
        lines,
    })
}

/// RATE-LIMIT-MISSING looks at both layers: a server nginx leaves unlimited is still
/// protected when the app it proxies to limits every view. Findings whose every unlimited
/// location is covered by the app go; the others say which layer protects what.
fn rate_limit_app_layer(inv: &Inventory, fleet: &FleetState, out: &mut Vec<Finding>) {
    let mut drop = Vec::new();
    for (i, f) in out.iter_mut().enumerate() {
        if f.check != "RATE-LIMIT-MISSING" {
            continue;
        }
        let Some(Probed::Ok(n)) = fleet.host(&f.host).map(|s| &s.nginx) else {
            continue;
        };
        let mut covered_all = true;
        let mut any_proxy = false;
        let mut extra = Vec::new();
        for s in n
            .servers
            .iter()
            .filter(|s| !s.redirects_to_https || s.serves_tls())
        {
            let names = s.server_names.join(" ");
            let nginx_all = s.limit_req.iter().any(|l| l.location.is_none());
            for p in &s.proxy_passes {
                any_proxy = true;
                let loc = p.location.clone().unwrap_or_else(|| "(server)".into());
                let nginx_here = nginx_all
                    || s.limit_req
                        .iter()
                        .any(|l| l.location.as_deref() == p.location.as_deref());
                if nginx_here {
                    extra.push(format!(
                        "nginx limit_req protects server {names} location {loc}"
                    ));
                    continue;
                }
                match app_layer(inv, fleet, p) {
                    Some(a) => {
                        covered_all &= a.all;
                        extra.extend(a.lines);
                        if !a.all {
                            extra.push(format!(
                                "nothing limits every request to server {names} location {loc} \
                                 ({})",
                                p.at.cite()
                            ));
                        }
                    }
                    None => {
                        covered_all = false;
                        extra.push(format!(
                            "nothing limits server {names} location {loc}: no limit_req, and \
                             the app behind {} could not be read",
                            p.target
                        ));
                    }
                }
            }
            if s.proxy_passes.is_empty() && !nginx_all && s.limit_req.is_empty() {
                covered_all = false;
            }
        }
        if any_proxy && covered_all {
            drop.push(i);
        } else {
            f.evidence.extend(extra);
        }
    }
    for i in drop.into_iter().rev() {
        out.remove(i);
    }
}
