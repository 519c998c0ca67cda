//! `lab status`: what is up, read from /proc and the hosts' pid files, plus one ssh-keyscan
//! per segment side to see that every sshd answers with the lab's own host key.
//! Collecting only reads; rendering is a pure function of the collected [`LabStatus`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::config::{Daemon, HostSpec, LabConfig, misconfigurations};
use super::sys::{self, Cmd};
use super::up::{daemon_pid, live_holder};

/// One daemon's state on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonState {
    Running {
        pid: u32,
    },
    Down,
    /// Deliberately left stopped (one of the lab's misconfigurations) and still stopped.
    StoppedOnPurpose,
    /// Meant to be stopped, but someone started it (e.g. a fix).
    RunningAnyway {
        pid: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub name: String,
    pub netns: String,
    pub netns_exists: bool,
    pub address: String,
    pub holder: Option<u32>,
    pub daemons: Vec<(String, DaemonState)>,
    /// sshd answered ssh-keyscan with the host key in the lab's known_hosts.
    pub ssh_answers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabStatus {
    pub hosts: Vec<HostStatus>,
    /// Processes in the lab's namespaces and their summed resident memory.
    pub processes: usize,
    pub rss_kib: u64,
}

impl LabStatus {
    /// One line per thing that is down; empty when the whole lab is up.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for h in &self.hosts {
            if !h.netns_exists {
                p.push(format!("{}: no netns {}", h.name, h.netns));
                continue;
            }
            if h.holder.is_none() {
                p.push(format!("{}: holder process not running", h.name));
                continue;
            }
            for (d, s) in &h.daemons {
                if *s == DaemonState::Down {
                    p.push(format!("{}: {d} down", h.name));
                }
            }
            if !h.ssh_answers {
                p.push(format!(
                    "{}: sshd does not answer with the lab host key",
                    h.name
                ));
            }
        }
        p
    }
}

pub fn collect(cfg: &LabConfig) -> LabStatus {
    let specs = cfg.hosts();
    let answers = keyscan(cfg, &specs);
    let mut hosts = Vec::new();
    for h in &specs {
        let netns = cfg.netns(&h.name);
        let holder = live_holder(cfg, &h.name);
        let mut daemons = Vec::new();
        let pid_of = |d: Daemon| holder.and_then(|p| daemon_pid(cfg, &h.name, p, d));
        for d in h.expected_daemons() {
            let s = match pid_of(d) {
                Some(pid) => DaemonState::Running { pid },
                None => DaemonState::Down,
            };
            daemons.push((d.name(), s));
        }
        for d in h.stopped_daemons() {
            let s = match pid_of(d) {
                Some(pid) => DaemonState::RunningAnyway { pid },
                None => DaemonState::StoppedOnPurpose,
            };
            daemons.push((d.name(), s));
        }
        hosts.push(HostStatus {
            name: h.name.clone(),
            netns_exists: sys::netns_path(&netns).exists(),
            netns,
            address: h.address.to_string(),
            holder,
            daemons,
            ssh_answers: answers
                .get(&h.address.to_string())
                .copied()
                .unwrap_or(false),
        });
    }
    let mut pids = Vec::new();
    for h in &hosts {
        if h.netns_exists {
            pids.extend(sys::netns_pids(&h.netns));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let rss_kib = pids.iter().filter_map(|p| sys::rss_kib(*p)).sum();
    LabStatus {
        hosts,
        processes: pids.len(),
        rss_kib,
    }
}

/// address → whether its sshd presented the lab's key for it. The bastion is scanned from the
/// root namespace (as a user would reach it), every other host from the bastion's namespace,
/// whose admin-segment address the hosts' firewalls let in.
fn keyscan(cfg: &LabConfig, specs: &[HostSpec]) -> BTreeMap<String, bool> {
    let known = std::fs::read_to_string(cfg.known_hosts()).unwrap_or_default();
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for line in known.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(names), Some(t), Some(k)) = (parts.next(), parts.next(), parts.next()) {
            for n in names.split(',') {
                want.insert(n.to_owned(), format!("{t} {k}"));
            }
        }
    }
    let mut got = BTreeMap::new();
    let (bastions, inner): (Vec<&HostSpec>, Vec<&HostSpec>) =
        specs.iter().partition(|h| h.is_bastion());
    let scan = |cmd: Cmd, hosts: &[&HostSpec]| -> Vec<(String, String)> {
        if hosts.is_empty() {
            return Vec::new();
        }
        let cmd = cmd
            .args(["-T", "3", "-t", "ed25519"])
            .args(hosts.iter().map(|h| h.address.to_string()));
        let Ok(out) = cmd.output() else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                let (a, t, k) = (p.next()?, p.next()?, p.next()?);
                Some((a.to_owned(), format!("{t} {k}")))
            })
            .collect()
    };
    let mut results = scan(Cmd::new("lab", "keyscan", "ssh-keyscan"), &bastions);
    if let Some(b) = bastions.first()
        && sys::netns_path(&cfg.netns(&b.name)).exists()
    {
        results.extend(scan(
            Cmd::in_netns("lab", "keyscan", &cfg.netns(&b.name), "ssh-keyscan"),
            &inner,
        ));
    }
    for (addr, key) in results {
        let ok = want.get(&addr).is_some_and(|w| *w == key);
        got.insert(addr, ok);
    }
    got
}

/// The status table, the deliberate misconfigurations and the memory summary.
pub fn render_status(cfg: &LabConfig, st: &LabStatus) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "rampart lab: prefix {}, {}, state {}",
        cfg.prefix,
        cfg.base,
        cfg.state_dir.display()
    );
    let _ = writeln!(
        s,
        "{:<6} {:<12} {:<10} {:<8} {:<5} DAEMONS",
        "HOST", "ADDRESS", "NETNS", "HOLDER", "SSH"
    );
    let full = st.hosts.len() <= 12;
    let mut light_up = 0usize;
    let mut light_total = 0usize;
    for h in &st.hosts {
        let is_light = h.name.starts_with('s') && h.name[1..].bytes().all(|b| b.is_ascii_digit());
        let healthy = h.holder.is_some()
            && h.ssh_answers
            && h.daemons.iter().all(|(_, d)| *d != DaemonState::Down);
        if is_light && !full {
            light_total += 1;
            if healthy {
                light_up += 1;
                continue;
            }
        }
        let daemons: Vec<String> = h
            .daemons
            .iter()
            .map(|(n, d)| match d {
                DaemonState::Running { .. } => n.clone(),
                DaemonState::Down => format!("{n}:DOWN"),
                DaemonState::StoppedOnPurpose => format!("{n}:stopped(deliberate)"),
                DaemonState::RunningAnyway { .. } => format!("{n}:running(was stopped)"),
            })
            .collect();
        let _ = writeln!(
            s,
            "{:<6} {:<12} {:<10} {:<8} {:<5} {}",
            h.name,
            h.address,
            if h.netns_exists {
                h.netns.as_str()
            } else {
                "MISSING"
            },
            h.holder.map_or("DOWN".to_owned(), |p| p.to_string()),
            if h.ssh_answers { "ok" } else { "NO" },
            daemons.join(" ")
        );
    }
    if light_total > 0 {
        let _ = writeln!(
            s,
            "scale hosts: {light_up} of {light_total} up (not listed)"
        );
    }
    s.push_str("deliberate misconfigurations:\n");
    for m in misconfigurations() {
        let _ = writeln!(s, "  {:<5} {} (should be: {})", m.host, m.what, m.should_be);
    }
    let _ = writeln!(
        s,
        "ssh: ssh -F {} web1    known_hosts: {}",
        cfg.ssh_config().display(),
        cfg.known_hosts().display()
    );
    let _ = writeln!(
        s,
        "memory: {:.1} MiB RSS in {} processes",
        st.rss_kib as f64 / 1024.0,
        st.processes
    );
    let problems = st.problems();
    if problems.is_empty() {
        s.push_str("all hosts up\n");
    } else {
        for p in problems {
            let _ = writeln!(s, "DOWN: {p}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, daemons: Vec<(String, DaemonState)>, ssh: bool) -> HostStatus {
        HostStatus {
            name: name.into(),
            netns: format!("rpl-{name}"),
            netns_exists: true,
            address: "10.77.10.11".into(),
            holder: Some(7),
            daemons,
            ssh_answers: ssh,
        }
    }

    #[test]
    fn deliberately_stopped_daemons_are_not_problems() {
        let st = LabStatus {
            hosts: vec![host(
                "web2",
                vec![
                    ("sshd".into(), DaemonState::Running { pid: 9 }),
                    ("fail2ban".into(), DaemonState::StoppedOnPurpose),
                ],
                true,
            )],
            processes: 3,
            rss_kib: 2048,
        };
        assert!(st.problems().is_empty());
        let out = render_status(&LabConfig::default(), &st);
        assert!(out.contains("fail2ban:stopped(deliberate)"), "{out}");
        assert!(out.contains("memory: 2.0 MiB RSS in 3 processes"), "{out}");
        assert!(out.contains("all hosts up"));
        assert!(
            out.contains("db1   ufw allows 5432/tcp from Anywhere"),
            "{out}"
        );
    }

    #[test]
    fn down_daemons_and_silent_sshd_are_problems() {
        let st = LabStatus {
            hosts: vec![host(
                "db1",
                vec![("listener:5432".into(), DaemonState::Down)],
                false,
            )],
            processes: 0,
            rss_kib: 0,
        };
        assert_eq!(
            st.problems(),
            vec![
                "db1: listener:5432 down".to_owned(),
                "db1: sshd does not answer with the lab host key".to_owned()
            ]
        );
        assert!(
            render_status(&LabConfig::default(), &st).contains("DOWN: db1: listener:5432 down")
        );
    }
}
