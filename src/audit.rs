//! The headless audit: collect (read-only), check, waive, score, report.
//!
//! [`build_report`] is pure: from the inventory, the collected fleet state and the options to
//! an [`AuditReport`]. [`run`] wires it to a read-only transport, the collectors, the history
//! store and the report writers. The audit can never send a mutating command: it only ever
//! holds a `Transport<ReadOnly>`.

use std::collections::BTreeMap;

use crate::inventory::{Host, Inventory};
use crate::posture::checks::{self, CheckOptions};
use crate::posture::score;
use crate::posture::{AuditReport, Finding, HostReport, REPORT_SCHEMA_VERSION, Severity};
use crate::state::{FleetState, HostState, KnownService, Probed};

/// Hosts an audit covers: `--hosts GLOB` and `--roles R,S` (both optional).
pub fn select_hosts<'a>(inv: &'a Inventory, glob: Option<&str>, roles: &[String]) -> Vec<&'a Host> {
    inv.hosts
        .iter()
        .filter(|h| glob.is_none_or(|g| crate::posture::waivers::glob_match(g, &h.name)))
        .filter(|h| roles.is_empty() || h.roles.iter().any(|r| roles.contains(r)))
        .collect()
}

/// What the report needs besides state and findings.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub now: i64,
    pub fail_on: Severity,
    pub expired_waivers: Vec<String>,
}

/// Builds the report from collected state and (already waived) findings.
pub fn build_report(
    inv: &Inventory,
    selected: &[&Host],
    fleet: &FleetState,
    findings: Vec<Finding>,
    meta: ReportMeta,
) -> AuditReport {
    let mut hosts = Vec::new();
    let mut reachable_scores = Vec::new();
    for h in selected {
        let state = fleet.host(&h.name);
        let reachable = state.is_some_and(|s| !s.is_unreachable());
        let mut errors: Vec<String> = Vec::new();
        if let Some(s) = state {
            errors.extend(
                s.errors
                    .iter()
                    .map(|e| format!("{}: {}", e.stage, e.message)),
            );
            if reachable {
                for (part, label) in part_failures(s) {
                    errors.push(format!("{part}: {label}"));
                }
            }
        } else {
            errors.push("not collected".to_string());
        }
        let score = reachable.then(|| score::host_score(&h.name, &findings));
        if let Some(s) = &score {
            reachable_scores.push(s.score);
        }
        hosts.push(HostReport {
            name: h.name.clone(),
            address: h.address.to_string(),
            roles: h.roles.clone(),
            reachable,
            errors,
            score,
            summary: state.filter(|_| reachable).map(summary).unwrap_or_default(),
        });
    }
    let fleet_score = score::fleet_score(&reachable_scores, &findings);
    AuditReport {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: "rampart".to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        generated_at: crate::posture::fmt_time(meta.now),
        inventory: inv.path.display().to_string(),
        hosts,
        findings,
        fleet_score,
        expired_waivers: meta.expired_waivers,
        fail_on: meta.fail_on,
    }
}

/// Parts of a reached host that failed, with their state word and reason.
fn part_failures(s: &HostState) -> Vec<(&'static str, String)> {
    fn f<T>(name: &'static str, p: &Probed<T>, out: &mut Vec<(&'static str, String)>) {
        match p {
            Probed::PermissionDenied { stage, message } => {
                out.push((name, format!("permission denied at {stage}: {message}")))
            }
            Probed::Failed { stage, message } => {
                out.push((name, format!("failed at {stage}: {message}")))
            }
            _ => {}
        }
    }
    let mut v = Vec::new();
    f("facts", &s.facts, &mut v);
    f("firewall", &s.firewall, &mut v);
    f("listeners", &s.listeners, &mut v);
    f("fail2ban", &s.fail2ban, &mut v);
    f("vpn", &s.vpn, &mut v);
    f("sshd", &s.sshd, &mut v);
    f("nginx", &s.nginx, &mut v);
    f("tls", &s.tls, &mut v);
    f("services", &s.services, &mut v);
    f("counters", &s.counters, &mut v);
    v
}

/// A short `key -> value` summary of a host's state for reports.
pub fn summary(s: &HostState) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    match &s.facts {
        Probed::Ok(f) => {
            put("os", f.os.pretty_name.clone());
            put("kernel", f.kernel.clone());
        }
        other => put("os", other.status_label().to_string()),
    }
    match &s.firewall {
        Probed::Ok(fw) => {
            let managers: Vec<&str> = fw.managers.iter().map(|m| m.label()).collect();
            put(
                "firewall",
                if managers.is_empty() {
                    "none".to_string()
                } else {
                    managers.join(", ")
                },
            );
            put(
                "incoming_policy",
                fw.policies.incoming.map_or_else(
                    || "unknown".to_string(),
                    |p| format!("{p:?}").to_lowercase(),
                ),
            );
            put("firewall_rules", fw.rules.len().to_string());
        }
        other => put("firewall", other.status_label().to_string()),
    }
    match &s.listeners {
        Probed::Ok(l) => {
            let mut ports: Vec<String> = l
                .iter()
                .filter(|l| !l.is_loopback())
                .map(|l| format!("{}/{}", l.port, l.protocol.label()))
                .collect();
            ports.sort();
            ports.dedup();
            put("listening", ports.join(" "));
        }
        other => put("listening", other.status_label().to_string()),
    }
    match &s.fail2ban {
        Probed::Ok(f) if f.running => {
            let jails: Vec<String> = f
                .jails
                .iter()
                .map(|j| format!("{} ({} banned)", j.name, j.currently_banned))
                .collect();
            put("fail2ban", format!("running: {}", jails.join(", ")));
        }
        Probed::Ok(_) => put("fail2ban", "stopped".to_string()),
        other => put("fail2ban", other.status_label().to_string()),
    }
    if let Probed::Ok(v) = &s.vpn
        && let Probed::Ok(ifs) = &v.wireguard
        && !ifs.is_empty()
    {
        let d: Vec<String> = ifs
            .iter()
            .map(|i| format!("{} ({} peers)", i.name, i.peers.len()))
            .collect();
        put("wireguard", d.join(", "));
    }
    if let Probed::Ok(sshd) = &s.sshd {
        put(
            "sshd_password_auth",
            sshd.password_authentication
                .map_or("unknown", |b| if b { "yes" } else { "no" })
                .to_string(),
        );
    }
    if let Probed::Ok(n) = &s.nginx {
        put("nginx_servers", n.servers.len().to_string());
    }
    if let Probed::Ok(c) = &s.tls {
        put("certificates", c.len().to_string());
    }
    if let Probed::Ok(sv) = &s.services {
        let running: Vec<&str> = sv
            .services
            .iter()
            .filter(|x| x.running && x.service != KnownService::Sshd)
            .map(|x| x.service.label())
            .collect();
        put("services", running.join(", "));
    }
    m
}

/// Runs every check and applies waivers; returns the findings and the expired-waiver notices.
pub fn findings(
    inv: &Inventory,
    fleet: &FleetState,
    opts: &CheckOptions,
    waivers: &[crate::posture::waivers::Waiver],
) -> (Vec<Finding>, Vec<String>) {
    let mut f = checks::evaluate(inv, fleet, opts);
    let today = crate::posture::waivers::Date::from_unix(opts.now);
    let expired = crate::posture::waivers::apply(&mut f, waivers, today);
    (f, expired)
}

/// A failure before or around the audit that is the user's to fix (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Waivers(#[from] crate::posture::waivers::WaiverError),
    #[error("{path}: cannot read: {source}")]
    CloudRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cloud(#[from] crate::posture::cloud::CloudError),
    #[error("no host matches --hosts {glob:?} --roles {roles:?}")]
    NoHosts { glob: String, roles: String },
    #[error("{0}")]
    Transport(#[from] crate::ssh::SshError),
    #[error("report: {0}")]
    Report(#[from] crate::report::ReportError),
    #[error("{path}: cannot write the report: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl AuditError {
    /// 2 for what the user must fix in files or arguments; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AuditError::Waivers(_)
            | AuditError::CloudRead { .. }
            | AuditError::Cloud(_)
            | AuditError::NoHosts { .. } => 2,
            _ => 1,
        }
    }
}

/// Everything `rampart audit` was asked.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    pub format: crate::cli::ReportFormat,
    pub output: Option<std::path::PathBuf>,
    pub fail_on: Severity,
    pub hosts: Option<String>,
    pub roles: Vec<String>,
    pub waivers: Option<std::path::PathBuf>,
    pub accept_new: bool,
    /// Colour in the text report.
    pub color: bool,
    /// Progress (hosts done / total) on stderr.
    pub progress: bool,
    /// Store a snapshot in the history database (`None`: do not).
    pub history: Option<std::path::PathBuf>,
}

/// Loads the cloud security-group exports named by the inventory.
pub fn load_cloud(
    inv: &Inventory,
) -> Result<Vec<crate::posture::cloud::SecurityGroup>, AuditError> {
    let mut v = Vec::new();
    for p in &inv.cloud.aws_security_groups {
        let path = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|source| AuditError::CloudRead {
            path: path.clone(),
            source,
        })?;
        v.extend(crate::posture::cloud::parse(&text, &path)?);
    }
    Ok(v)
}

/// True when any configured Alertmanager answers (`None` when none is configured).
pub async fn alertmanager_ok(inv: &Inventory) -> Option<bool> {
    if inv.alerting.alertmanager.is_empty() {
        return None;
    }
    let urls = inv.alerting.alertmanager.clone();
    let auth = inv.alerting.auth.clone();
    let ok = tokio::task::spawn_blocking(move || {
        urls.iter().any(|u| {
            crate::alerts::http::SinkClient::new(
                auth.get(u).unwrap_or(&Default::default()),
                std::time::Duration::from_secs(3),
            )
            .alertmanager_healthy(u)
        })
    })
    .await
    .unwrap_or(false);
    Some(ok)
}

/// Collects the selected hosts over a read-only transport, printing progress to stderr.
pub async fn collect(
    transport: &crate::ssh::Transport<crate::ssh::ReadOnly>,
    selected: &[&Host],
    progress: bool,
) -> FleetState {
    use futures::StreamExt as _;
    let total = selected.len();
    let mut pending = futures::stream::iter(selected.iter())
        .map(|h| crate::collect::collect_host(transport, h))
        .buffer_unordered(crate::collect::MAX_IN_FLIGHT);
    let mut done = Vec::with_capacity(total);
    while let Some(state) = pending.next().await {
        done.push(state);
        if progress {
            eprint!("\rrampart: collected {}/{total} hosts", done.len());
        }
    }
    if progress {
        eprintln!();
    }
    // Inventory order, whatever order they finished in.
    let mut hosts = Vec::with_capacity(total);
    for h in selected {
        if let Some(i) = done.iter().position(|s| s.host == h.name) {
            hosts.push(done.swap_remove(i));
        }
    }
    FleetState { hosts }
}

/// Runs the audit and returns its report. Read-only by construction: only a
/// `Transport<ReadOnly>` is ever made here.
pub async fn audit(inv: &Inventory, req: &AuditRequest) -> Result<AuditReport, AuditError> {
    let waivers = match &req.waivers {
        Some(p) => crate::posture::waivers::load(p)?,
        None => Vec::new(),
    };
    let cloud = load_cloud(inv)?;
    let selected = select_hosts(inv, req.hosts.as_deref(), &req.roles);
    if selected.is_empty() {
        return Err(AuditError::NoHosts {
            glob: req.hosts.clone().unwrap_or_else(|| "*".into()),
            roles: req.roles.join(","),
        });
    }
    let mut topts = crate::ssh::TransportOptions::from_inventory(inv);
    if req.accept_new {
        topts.host_keys = crate::ssh::HostKeyPolicy::AcceptNew;
    }
    let transport = crate::ssh::Transport::new(inv, topts)?;
    let (fleet, am) = tokio::join!(
        collect(&transport, &selected, req.progress),
        alertmanager_ok(inv)
    );
    transport.close().await;
    let now = now_secs();
    let mut opts = CheckOptions::new(now).with_thresholds(&inv.alerting.thresholds);
    opts.alertmanager_ok = am;
    opts.cloud = cloud;
    let (findings, expired) = findings(inv, &fleet, &opts, &waivers);
    // Findings about hosts outside the selection (none today) are dropped.
    let findings = findings
        .into_iter()
        .filter(|f| f.host == crate::posture::FLEET || selected.iter().any(|h| h.name == f.host))
        .collect();
    let report = build_report(
        inv,
        &selected,
        &fleet,
        findings,
        ReportMeta {
            now,
            fail_on: req.fail_on,
            expired_waivers: expired,
        },
    );
    if let Some(path) = &req.history {
        // History is a record, not the audit: a failure to write it is reported, and the
        // audit's own result stands.
        if let Err(e) = record_history(
            path,
            crate::store::Source::Audit,
            inv,
            &fleet,
            &report.findings,
            now,
        ) {
            eprintln!("rampart: warning: history not recorded: {e}");
        }
    }
    Ok(report)
}

/// Stores one snapshot (state and findings per host) and applies the default retention.
pub fn record_history(
    path: &std::path::Path,
    source: crate::store::Source,
    inv: &Inventory,
    fleet: &FleetState,
    findings: &[Finding],
    now: i64,
) -> Result<i64, crate::store::StoreError> {
    let mut store = crate::store::Store::open(path)?;
    let hosts = fleet
        .hosts
        .iter()
        .map(|s| crate::store::HostSnapshot::from_state(&s.host, !s.is_unreachable(), s))
        .collect::<Result<Vec<_>, _>>()?;
    let id = store.record(&crate::store::NewSnapshot {
        taken_at: now,
        source,
        inventory: inv.path.display().to_string(),
        hosts,
        findings: findings.to_vec(),
    })?;
    store.prune(&crate::store::Retention::default(), now)?;
    Ok(id)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Renders and writes the report (stdout carries only the report).
pub fn write_report(report: &AuditReport, req: &AuditRequest) -> Result<(), AuditError> {
    let text = crate::report::render(
        report,
        req.format,
        &crate::report::RenderOptions { color: req.color },
    )?;
    match &req.output {
        Some(p) => std::fs::write(p, text).map_err(|source| AuditError::Write {
            path: p.display().to_string(),
            source,
        }),
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|source| AuditError::Write {
                    path: "standard output".into(),
                    source,
                })
        }
    }
}

/// A sudoers policy could not be printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SudoersError {
    #[error(
        "{0:?} is not a user name for a sudoers policy ([a-z_][a-z0-9_-]*, at most 32 characters)"
    )]
    BadUser(String),
    /// sudoers cannot match an argument holding a control character (a tab, a newline).
    #[error("probe {0} has a control character, which a sudoers rule cannot match")]
    Unmatchable(&'static str),
}

/// A sudoers policy that lets `user` run, as root and without a password, exactly the
/// read-only probes of [`crate::collect::probes::PROBES`] in the form the transport sends
/// them with `sudo = true` (`sudo -n -- sh -c '<probe>'`), and nothing else.
///
/// Each probe becomes one `sh -c` command whose argument must match the probe's text
/// exactly: every character sudoers treats as syntax or as a wildcard is escaped, so no
/// wildcard widens the policy. The policy is for `visudo -f /etc/sudoers.d/rampart`.
pub fn sudoers_policy(user: &str) -> Result<String, SudoersError> {
    let valid = !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(SudoersError::BadUser(user.to_string()));
    }
    let mut out = String::from(
        "# rampart: the read-only probes, and nothing else, as root without a password.\n\
         # Made by `rampart audit --print-sudoers`; install with `visudo -f /etc/sudoers.d/rampart`\n\
         # and set `sudo = true` for the hosts in the inventory. Regenerate after upgrading rampart.\n",
    );
    let mut names = Vec::new();
    let fingerprint = std::iter::once(&crate::collect::probes::FINGERPRINT);
    for probe in crate::collect::probes::PROBES.iter().chain(fingerprint) {
        for (name, script) in probe.probes() {
            if script.chars().any(char::is_control) {
                return Err(SudoersError::Unmatchable(name));
            }
            let alias = format!("RAMPART_P{}", names.len());
            out.push_str(&format!(
                "# {name}\nCmnd_Alias {alias} = /bin/sh -c {}\n",
                sudoers_escape(script)
            ));
            names.push(alias);
        }
    }
    out.push_str(&format!(
        "Defaults:{user} !requiretty, env_reset\n{user} ALL = (root) NOPASSWD: {}\n",
        names.join(", ")
    ));
    Ok(out)
}

/// Escapes a command argument for sudoers (checked against sudo 1.9.13 on the lab): blanks
/// and sudoers syntax (`,` `:` `=` `!` `#`) get one backslash; wildcards (`*` `?` `[` `]`)
/// get one too, which the argument match then reads as "this character"; a backslash is
/// unescaped twice (by the sudoers lexer, then by the match), so it becomes four. Every other
/// character stands for itself unescaped (sudoers rejects `\"`, `\'`, `\$`, `\(`...).
fn sudoers_escape(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() * 2);
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            ' ' | ',' | ':' | '=' | '!' | '#' | '*' | '?' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}
