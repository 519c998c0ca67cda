//! Checks on the defences' own health: HSTS on the web hosts (TLS-NO-HSTS), fail2ban jails
//! that read nothing (IPS-JAIL-BLIND), and CrowdSec standing in as an IPS.

use super::HostPolicy;
use crate::collect::https::max_age;
use crate::inventory::Host;
use crate::posture::Finding;
use crate::state::{HostState, HttpsFetch, NginxServer, Probed};

/// Adds every line as evidence.
trait Pipe {
    fn pipe(self, lines: Vec<String>) -> Finding;
}

impl Pipe for Finding {
    fn pipe(self, lines: Vec<String>) -> Finding {
        lines.into_iter().fold(self, Finding::evidence)
    }
}

/// CrowdSec's agent runs on the host: it counts as an IPS beside fail2ban.
pub(super) fn crowdsec_protects(state: &HostState) -> bool {
    matches!(&state.defences.crowdsec, Probed::Ok(c) if c.running)
}

pub(super) fn checks(policy: &HostPolicy, host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    if policy.require_https {
        hsts(host, state, out);
    }
    if policy.require_fail2ban {
        blind_jails(host, state, out);
    }
}

fn names(s: &NginxServer) -> String {
    if s.server_names.is_empty() {
        "_".to_string()
    } else {
        s.server_names.join(" ")
    }
}

/// The port in a fetched URL (`https://A:P/`).
fn url_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("https://")?;
    let host_port = rest.split('/').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

fn hsts(host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let Probed::Ok(n) = &state.nginx else { return };
    let fetches: &[HttpsFetch] = match &state.defences.https {
        Probed::Ok(f) => f,
        _ => &[],
    };
    let tls: Vec<&NginxServer> = n.servers.iter().filter(|s| s.serves_tls()).collect();
    for s in &tls {
        let ports: Vec<u16> = s
            .listens
            .iter()
            .filter(|l| l.ssl)
            .filter_map(|l| l.port)
            .collect();
        // A fetch speaks for this server when it is the port's only TLS server or its default.
        let answers_for_it = |f: &&HttpsFetch| {
            url_port(&f.url).is_some_and(|p| {
                ports.contains(&p)
                    && (s
                        .listens
                        .iter()
                        .any(|l| l.ssl && l.default_server && l.port == Some(p))
                        || tls
                            .iter()
                            .filter(|o| o.listens.iter().any(|l| l.ssl && l.port == Some(p)))
                            .count()
                            == 1)
            })
        };
        let mine: Vec<&HttpsFetch> = fetches.iter().filter(answers_for_it).collect();
        let served = mine
            .iter()
            .find(|f| f.hsts.as_deref().and_then(max_age).is_some_and(|a| a > 0));
        let served_without = mine
            .iter()
            .find(|f| f.status.is_some() && f.hsts.as_deref().and_then(max_age).unwrap_or(0) == 0);
        let configured = s
            .hsts
            .as_ref()
            .filter(|h| max_age(&h.value).unwrap_or(0) > 0);
        let mut evidence = Vec::new();
        match (&s.hsts, configured) {
            (None, _) => evidence.push(match (&s.own_add_header, &n.http_hsts) {
                (Some(at), Some(h)) => format!(
                    "nginx -T: server {} at {}:{} has add_header of its own ({at}), which drops the http-level Strict-Transport-Security at {}:{}",
                    names(s), s.file, s.line, h.file, h.line
                ),
                _ => format!(
                    "nginx -T: server {} at {}:{} (listen ... ssl) sets no Strict-Transport-Security, nor does the http block",
                    names(s), s.file, s.line
                ),
            }),
            (Some(h), None) => evidence.push(format!(
                "nginx -T: Strict-Transport-Security \"{}\" at {}:{} has no positive max-age (0 turns HSTS off)",
                h.value, h.file, h.line
            )),
            (Some(_), Some(_)) => {}
        }
        for l in &s.hsts_dropped_in {
            evidence.push(format!(
                "nginx -T: {l} has add_header of its own, which drops the server's Strict-Transport-Security"
            ));
        }
        let config_bad = !evidence.is_empty();
        if config_bad && s.hsts_dropped_in.is_empty() && served.is_some() {
            // Something behind nginx (the app) sends it: served, so no finding.
            continue;
        }
        if let Some(f) = served_without {
            evidence.push(format!(
                "on the host: {} answered {} without Strict-Transport-Security",
                f.url,
                f.status.unwrap_or(0)
            ));
        }
        if evidence.is_empty() {
            continue;
        }
        out.push(
            Finding::new(
                "TLS-NO-HSTS",
                &host.name,
                format!(
                    "HTTPS server {} sends no Strict-Transport-Security",
                    names(s)
                ),
            )
            .pipe(evidence),
        );
    }
}

fn blind_jails(host: &Host, state: &HostState, out: &mut Vec<Finding>) {
    let Probed::Ok(f2b) = &state.fail2ban else {
        return;
    };
    if !f2b.running {
        return;
    }
    let Probed::Ok(src) = &state.defences.jail_sources else {
        return;
    };
    for j in &f2b.jails {
        let conf = src.jails.iter().find(|c| c.name == j.name);
        let mut why = Vec::new();
        if let Some(m) = &j.journal_matches {
            if !src.journal {
                why.push(format!(
                    "backend systemd (journal matches {m}), but the host has no journal: nothing in /run/log/journal or /var/log/journal"
                ));
            }
        } else if j.files.is_empty() {
            why.push("fail2ban-client status: the jail polls no file".to_string());
        } else {
            let stats: Vec<_> = j
                .files
                .iter()
                .map(|p| (p, src.files.iter().find(|s| &s.path == p)))
                .collect();
            // Only judged when every file was stat'ed: unknown is not "missing".
            let readable = stats.iter().any(|(_, st)| match st {
                Some(st) => st.exists && st.kind.as_deref() == Some("regular file"),
                None => true,
            });
            if !readable {
                for (p, st) in stats {
                    why.push(match st {
                        Some(st) if !st.exists => format!("{p}: no such file"),
                        Some(st) => format!(
                            "{p}: a {}, not a regular file",
                            st.kind.as_deref().unwrap_or("?")
                        ),
                        None => format!("{p}: not stat'ed"),
                    });
                }
            }
        }
        if why.is_empty() {
            continue;
        }
        let mut f = Finding::new(
            "IPS-JAIL-BLIND",
            &host.name,
            format!("fail2ban jail {} can never ban: it reads nothing", j.name),
        )
        .pipe(why);
        if let Some(c) = conf {
            if let (Some(b), Some(at)) = (&c.backend, &c.backend_at) {
                f = f.evidence(format!("backend = {b} ({at})"));
            }
            if let Some(at) = &c.logpath_at
                && j.journal_matches.is_none()
            {
                f = f.evidence(format!("logpath = {} ({at})", c.logpath.join(" ")));
            }
        }
        out.push(f);
    }
}
