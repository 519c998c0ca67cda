//! Host detail: the typed state of one host, section by section, scrollable.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{block, glyphs, score_style};
use crate::state::{
    Action as RuleAction, Direction, HostState, KeyType, PermitRootLogin, Policy, Probed,
};
use crate::tui::app::App;
use crate::tui::text::{clock, date, rate, safe, safe_owned};

fn heading(app: &App, s: &str) -> Line<'static> {
    Line::styled(s.to_string(), app.theme.header)
}

fn kv(app: &App, k: &str, v: String, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("  {k:<22}"), app.theme.muted),
        Span::styled(v, style),
    ])
}

fn plain(app: &App, s: String) -> Line<'static> {
    Line::styled(format!("  {s}"), app.theme.text)
}

/// A line for a part that was not collected, or `None` when it was.
fn probed_note<T>(app: &App, p: &Probed<T>) -> Option<Line<'static>> {
    let t = &app.theme;
    match p {
        Probed::Ok(_) => None,
        Probed::NotInstalled { tool } => Some(Line::styled(
            format!("  not installed ({})", safe(tool)),
            t.muted,
        )),
        Probed::PermissionDenied { stage, message } => Some(Line::styled(
            format!("  permission denied at {}: {}", safe(stage), safe(message)),
            t.warn,
        )),
        Probed::Failed { stage, message } => Some(Line::styled(
            format!("  failed at {}: {}", safe(stage), safe(message)),
            t.bad,
        )),
    }
}

fn yes_no(app: &App, v: Option<bool>, good: bool) -> (String, Style) {
    let t = &app.theme;
    match v {
        Some(b) => (
            if b { "yes" } else { "no" }.to_string(),
            if b == good { t.ok } else { t.bad },
        ),
        None => ("?".to_string(), t.muted),
    }
}

fn policy(p: Option<Policy>) -> &'static str {
    match p {
        Some(Policy::Accept) => "accept",
        Some(Policy::Drop) => "drop",
        Some(Policy::Reject) => "reject",
        Some(Policy::Disabled) => "disabled",
        None => "?",
    }
}

/// Every line of the detail of `name`, top to bottom.
pub(crate) fn lines(app: &App, name: &str) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut out = Vec::new();
    let Some(info) = app.host(name) else {
        out.push(Line::styled(
            format!("no host {} in the inventory", safe(name)),
            t.error,
        ));
        return out;
    };
    let conn = app.conn_state(name);
    out.push(heading(app, "host"));
    out.push(kv(app, "address", safe_owned(&info.address), t.text));
    out.push(kv(app, "roles", safe_owned(&info.roles.join(", ")), t.text));
    out.push(kv(app, "segment", safe_owned(&info.segment), t.text));
    out.push(kv(
        app,
        "via",
        info.bastion
            .as_deref()
            .map_or_else(|| "direct".to_string(), |b| format!("bastion {}", safe(b))),
        t.text,
    ));
    let cstyle = if conn.is_failing() { t.bad } else { t.ok };
    let mut c = conn.label().to_string();
    if let Some(r) = conn.reason() {
        c = format!("{c}: {}", safe(r));
    }
    out.push(kv(app, "connection", c, cstyle));
    match app.score(name) {
        Some(s) => out.push(kv(app, "score", format!("{s}/100"), score_style(app, s))),
        None => out.push(kv(app, "score", "- (not reached)".into(), t.muted)),
    }
    if info.read_only || app.read_only {
        out.push(kv(
            app,
            "fixes",
            "disabled (read-only)".into(),
            t.fix_disabled,
        ));
    }

    if let Some(st) = app.states.get(name) {
        if let Some(at) = st.collected_at {
            out.push(kv(
                app,
                "collected",
                format!("{} {}", date(at), clock(at)),
                t.text,
            ));
        }
        for e in &st.errors {
            out.push(Line::styled(
                format!("  error at {}: {}", safe(&e.stage), safe(&e.message)),
                t.bad,
            ));
        }
    }

    // Findings for this host.
    let fs: Vec<_> = app.findings.iter().filter(|f| f.host == name).collect();
    out.push(Line::raw(""));
    out.push(heading(app, &format!("findings ({})", fs.len())));
    for f in &fs {
        let sev = if f.is_waived() {
            Span::styled(format!("  {:<9}", "waived"), t.waived)
        } else {
            Span::styled(
                format!("  {:<9}", f.severity.as_str()),
                t.severity(f.severity),
            )
        };
        out.push(Line::from(vec![
            sev,
            Span::styled(format!("{:<20} ", safe(&f.check)), t.text),
            Span::styled(safe_owned(&f.title), t.text),
        ]));
    }

    let Some(st) = app.states.get(name) else {
        out.push(Line::raw(""));
        out.push(Line::styled("not collected yet", t.muted));
        return out;
    };
    state_lines(app, st, &mut out);
    out
}

fn state_lines(app: &App, st: &HostState, out: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    let g = glyphs(app.ascii);

    out.push(Line::raw(""));
    out.push(heading(app, "system"));
    if let Some(n) = probed_note(app, &st.facts) {
        out.push(n);
    }
    if let Some(f) = st.facts.ok() {
        out.push(kv(app, "hostname", safe_owned(&f.hostname), t.text));
        out.push(kv(app, "os", safe_owned(&f.os.pretty_name), t.text));
        out.push(kv(
            app,
            "kernel",
            format!("{} {}", safe(&f.kernel), safe(&f.machine)),
            t.text,
        ));
        if let Some(u) = f.uptime_secs {
            let d = (u / 86_400.0).floor();
            let h = ((u % 86_400.0) / 3600.0).floor();
            out.push(kv(app, "uptime", format!("{d}d {h}h"), t.text));
        }
        if let Some(i) = &f.init {
            out.push(kv(app, "init", safe_owned(i), t.text));
        }
        for i in &f.interfaces {
            let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
            out.push(plain(
                app,
                format!(
                    "{:<10} {:<7} {}",
                    safe(&i.name),
                    safe(&i.operstate),
                    addrs.join(" ")
                ),
            ));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "firewall"));
    if let Some(n) = probed_note(app, &st.firewall) {
        out.push(n);
    }
    if let Some(fw) = st.firewall.ok() {
        let managers: Vec<&str> = fw.managers.iter().map(|m| m.label()).collect();
        out.push(kv(
            app,
            "active managers",
            if managers.is_empty() {
                "none".into()
            } else {
                managers.join(", ")
            },
            if managers.is_empty() { t.bad } else { t.text },
        ));
        let pstyle = match fw.policies.incoming {
            Some(Policy::Drop | Policy::Reject) => t.ok,
            _ => t.bad,
        };
        out.push(kv(
            app,
            "policy in/out/routed",
            format!(
                "{} / {} / {}",
                policy(fw.policies.incoming),
                policy(fw.policies.outgoing),
                policy(fw.policies.routed)
            ),
            pstyle,
        ));
        for r in fw.rules.iter().filter(|r| r.direction == Direction::In) {
            let action = match &r.action {
                RuleAction::Accept => "accept".to_string(),
                RuleAction::Drop => "drop".into(),
                RuleAction::Reject => "reject".into(),
                RuleAction::Limit => "limit".into(),
                RuleAction::Jump(c) => format!("jump {}", safe(c)),
                RuleAction::Goto(c) => format!("goto {}", safe(c)),
                RuleAction::Return => "return".into(),
                RuleAction::Log => "log".into(),
                RuleAction::Continue => "continue".into(),
                RuleAction::Dnat(to) => format!("dnat {}", to.label()),
                RuleAction::Redirect(_) => "redirect".into(),
            };
            let style = if r.allows() { t.warn } else { t.text };
            let proto = r.protocol.as_ref().map_or("any", |p| p.label());
            let from = if r.sources.is_empty() {
                "anywhere".to_string()
            } else {
                let s: Vec<String> = r.sources.iter().map(|n| n.to_string()).collect();
                format!(
                    "{}{}",
                    if r.sources_negated { "!" } else { "" },
                    s.join(",")
                )
            };
            let iface = r
                .interface
                .as_ref()
                .map(|i| format!(" on {}{}", if i.negated { "!" } else { "" }, safe(&i.name)))
                .unwrap_or_default();
            let mut line = vec![
                Span::styled(format!("  {action:<9}"), style),
                Span::styled(
                    format!("{proto}/{} from {from}{iface}", r.dports.label()),
                    t.text,
                ),
                Span::styled(format!("  [{}]", safe(&r.origin.label())), t.muted),
            ];
            if let Some(c) = &r.comment {
                line.push(Span::styled(format!(" \"{}\"", safe(c)), t.muted));
            }
            out.push(Line::from(line));
        }
        for n in &fw.notes {
            out.push(Line::styled(format!("  note: {}", safe(n)), t.muted));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "listeners"));
    if let Some(n) = probed_note(app, &st.listeners) {
        out.push(n);
    }
    if let Some(ls) = st.listeners.ok() {
        for l in ls {
            let addr = match l.address {
                Some(a) if a.is_ipv6() => format!("[{a}]"),
                Some(a) => a.to_string(),
                None => "*".into(),
            };
            let procs: Vec<String> = l
                .processes
                .iter()
                .map(|p| format!("{}({})", safe(&p.name), p.pid))
                .collect();
            let style = if l.is_loopback() { t.muted } else { t.text };
            out.push(Line::styled(
                format!(
                    "  {:<4} {:<28} {}",
                    l.protocol.label(),
                    format!("{addr}:{}", l.port),
                    procs.join(" ")
                ),
                style,
            ));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "fail2ban"));
    if let Some(n) = probed_note(app, &st.fail2ban) {
        out.push(n);
    }
    if let Some(f) = st.fail2ban.ok() {
        out.push(kv(
            app,
            "server",
            if f.running {
                format!(
                    "running {}",
                    f.version.as_deref().map(safe).unwrap_or_default()
                )
            } else {
                "not running".into()
            },
            if f.running { t.ok } else { t.bad },
        ));
        for j in &f.jails {
            out.push(plain(
                app,
                format!(
                    "jail {:<14} failed {} (total {}), banned {} (total {})",
                    safe(&j.name),
                    j.currently_failed,
                    j.total_failed,
                    j.currently_banned,
                    j.total_banned
                ),
            ));
            if !j.banned.is_empty() {
                let ips: Vec<String> = j.banned.iter().map(|i| i.to_string()).collect();
                out.push(Line::styled(
                    format!("    banned: {}", ips.join(" ")),
                    t.muted,
                ));
            }
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "vpn"));
    if let Some(n) = probed_note(app, &st.vpn) {
        out.push(n);
    }
    if let Some(v) = st.vpn.ok() {
        if let Some(n) = probed_note(app, &v.wireguard) {
            out.push(Line::from(vec![Span::styled("  wireguard:", t.muted)]));
            out.push(n);
        }
        for wg in v.wireguard.ok().into_iter().flatten() {
            out.push(plain(
                app,
                format!(
                    "wireguard {} port {} ({} peers)",
                    safe(&wg.name),
                    wg.listen_port.map_or_else(|| "-".into(), |p| p.to_string()),
                    wg.peers.len()
                ),
            ));
            for p in &wg.peers {
                let key: String = p.public_key.chars().take(10).collect();
                let hs = match p.latest_handshake {
                    Some(h) => {
                        let age = app.now.saturating_sub(i64::try_from(h).unwrap_or(i64::MAX));
                        format!("handshake {}s ago", age.max(0))
                    }
                    None => "never".into(),
                };
                let ips: Vec<String> = p.allowed_ips.iter().map(|n| n.to_string()).collect();
                out.push(Line::styled(
                    format!(
                        "    {}{} {} {} {} rx {} tx {}",
                        safe(&key),
                        if app.ascii { "~" } else { "…" },
                        p.endpoint.as_deref().map(safe).unwrap_or_default(),
                        ips.join(","),
                        hs,
                        rate(p.rx_bytes as f64).trim_end_matches('B'),
                        rate(p.tx_bytes as f64).trim_end_matches('B'),
                    ),
                    t.text,
                ));
            }
        }
        for ov in v.openvpn.ok().into_iter().flatten() {
            out.push(plain(
                app,
                format!("openvpn {} ({} clients)", safe(&ov.path), ov.clients.len()),
            ));
            for c in &ov.clients {
                out.push(Line::styled(
                    format!(
                        "    {} from {} as {}",
                        safe(&c.common_name),
                        safe(&c.real_address),
                        c.virtual_address.as_deref().map(safe).unwrap_or_default()
                    ),
                    t.text,
                ));
            }
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "sshd"));
    if let Some(n) = probed_note(app, &st.sshd) {
        out.push(n);
    }
    if let Some(s) = st.sshd.ok() {
        let (v, st_) = yes_no(app, s.password_authentication, false);
        out.push(kv(app, "PasswordAuthentication", v, st_));
        let (v, st_) = yes_no(app, s.kbd_interactive_authentication, false);
        out.push(kv(app, "KbdInteractiveAuth", v, st_));
        let (v, st_) = match s.permit_root_login {
            Some(PermitRootLogin::Yes) => ("yes".to_string(), t.bad),
            Some(PermitRootLogin::No) => ("no".to_string(), t.ok),
            Some(PermitRootLogin::ProhibitPassword) => ("prohibit-password".to_string(), t.ok),
            Some(PermitRootLogin::ForcedCommandsOnly) => ("forced-commands-only".to_string(), t.ok),
            None => ("?".to_string(), t.muted),
        };
        out.push(kv(app, "PermitRootLogin", v, st_));
        let (v, st_) = yes_no(app, s.pubkey_authentication, true);
        out.push(kv(app, "PubkeyAuthentication", v, st_));
        let ports: Vec<String> = s.ports.iter().map(|p| p.to_string()).collect();
        out.push(kv(app, "Port", ports.join(" "), t.text));
        if let Some(m) = s.max_auth_tries {
            out.push(kv(app, "MaxAuthTries", m.to_string(), t.text));
        }
        if !s.allow_users.is_empty() {
            out.push(kv(
                app,
                "AllowUsers",
                safe_owned(&s.allow_users.join(" ")),
                t.text,
            ));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "nginx"));
    if let Some(n) = probed_note(app, &st.nginx) {
        out.push(n);
    }
    if let Some(n) = st.nginx.ok() {
        for s in &n.servers {
            let listens: Vec<String> = s.listens.iter().map(|l| safe_owned(&l.raw)).collect();
            out.push(plain(
                app,
                format!(
                    "server {} listen {}{}{}",
                    safe(&s.server_names.join(",")),
                    listens.join(","),
                    if s.redirects_to_https {
                        " -> https"
                    } else {
                        ""
                    },
                    if s.limit_req.is_empty() {
                        ""
                    } else {
                        " limit_req"
                    }
                ),
            ));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "tls certificates"));
    if let Some(n) = probed_note(app, &st.tls) {
        out.push(n);
    }
    if let Some(certs) = st.tls.ok() {
        for c in certs.iter().filter(|c| c.index == 0) {
            let days = c.days_left(app.now);
            let style = if days < 0 {
                t.critical
            } else if days < 14 {
                t.high
            } else if days < 30 {
                t.medium
            } else {
                t.ok
            };
            let key = match &c.key {
                KeyType::Rsa { bits } => format!("rsa{bits}"),
                KeyType::Ec { curve } => format!("ec {}", safe(curve)),
                KeyType::Ed25519 => "ed25519".into(),
                KeyType::Ed448 => "ed448".into(),
                KeyType::Other { oid } => safe_owned(oid),
            };
            out.push(Line::from(vec![
                Span::styled(format!("  {} ", safe(&c.subject)), t.text),
                Span::styled(
                    format!("expires {} ({days} days)", date(c.not_after)),
                    style,
                ),
                Span::styled(
                    format!(
                        " {key}{} {}",
                        if c.self_signed { " self-signed" } else { "" },
                        safe(&c.path)
                    ),
                    t.muted,
                ),
            ]));
        }
    }

    out.push(Line::raw(""));
    out.push(heading(app, "services"));
    if let Some(n) = probed_note(app, &st.services) {
        out.push(n);
    }
    if let Some(s) = st.services.ok() {
        for sv in &s.services {
            let (word, style) = if sv.running {
                ("running", t.ok)
            } else {
                ("stopped", t.muted)
            };
            let pids: Vec<String> = sv.pids.iter().map(|p| p.to_string()).collect();
            out.push(Line::from(vec![
                Span::styled(format!("  {} {:<14}", g.bullet, sv.service.label()), t.text),
                Span::styled(format!("{word:<8}"), style),
                Span::styled(
                    format!(
                        " {}{}",
                        pids.join(" "),
                        sv.unit_state
                            .as_deref()
                            .map(|u| format!(" unit {}", safe(u)))
                            .unwrap_or_default()
                    ),
                    t.muted,
                ),
            ]));
        }
    }
}

pub(crate) fn draw(frame: &mut Frame, app: &App, area: Rect, name: &str) {
    let t = &app.theme;
    let all = lines(app, name);
    let visible = usize::from(area.height.saturating_sub(2));
    let max = all.len().saturating_sub(visible);
    // Recorded for the next key: scrolling stops at the last line.
    app.hits.set(crate::tui::app::HitMap {
        host_max_scroll: max,
        ..app.hits.get()
    });
    let scroll = app.host_scroll.min(max);
    let pos = if all.len() > visible {
        format!(
            " {}-{}/{} ",
            scroll + 1,
            (scroll + visible).min(all.len()),
            all.len()
        )
    } else {
        String::new()
    };
    let title = Line::from(vec![
        Span::styled(format!(" host {} ", safe(name)), t.title),
        Span::styled(pos, t.muted),
    ]);
    frame.render_widget(
        Paragraph::new(all)
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(block(app, title, true)),
        area,
    );
}
