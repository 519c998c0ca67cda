//! Services: which known daemons run, from `ps -e -o pid=,netns=,comm=,args=` (preceded
//! by the probe's own `readlink /proc/self/ns/net`, so processes of other network
//! namespaces on the same machine are left out) and, where systemd is PID 1, from
//! `systemctl show` unit states. Pure: no I/O.

use std::collections::BTreeMap;

use super::{ParseError, check_size, clean};
use crate::state::{KnownService, ServiceStatus, Services};

const WHAT: &str = "ps";

/// One process line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The netns inode, when ps printed one (kernel threads and zombies print "-").
    pub netns: Option<u64>,
    pub comm: String,
    pub args: String,
}

/// Parses the probe's output: an optional first line `net:[INODE]`, then ps lines.
pub fn parse_ps(text: &str) -> Result<(Option<u64>, Vec<Process>), ParseError> {
    check_size(WHAT, text)?;
    let mut own = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() {
            continue;
        }
        if let Some(inode) = t.strip_prefix("net:[").and_then(|r| r.strip_suffix(']')) {
            own = inode.parse().ok();
            continue;
        }
        let mut it = t.splitn(2, char::is_whitespace);
        let pid = it.next().unwrap_or_default();
        let rest = it.next().unwrap_or_default().trim_start();
        let Ok(pid) = pid.parse::<u32>() else {
            return Err(ParseError::new(
                WHAT,
                i + 1,
                "line does not start with a pid",
            ));
        };
        let mut it = rest.splitn(2, char::is_whitespace);
        let ns = it.next().unwrap_or_default();
        let rest = it.next().unwrap_or_default().trim_start();
        // comm is at most 15 bytes and may hold spaces; ps pads it, so split on the
        // first whitespace run is wrong for names with spaces, but args repeat the name,
        // and matching below uses both.
        let mut it = rest.splitn(2, char::is_whitespace);
        let comm = it.next().unwrap_or_default();
        let args = it.next().unwrap_or_default().trim_start();
        out.push(Process {
            pid,
            netns: ns.parse().ok(),
            comm: clean(comm),
            args: clean(args),
        });
        if out.len() > 100_000 {
            break;
        }
    }
    Ok((own, out))
}

fn classify(p: &Process) -> Option<KnownService> {
    let exe = p
        .args
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    // Interpreted daemons (fail2ban is Python) show the script as the second word.
    let script = p
        .args
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let names = [p.comm.as_str(), exe, script];
    let is = |n: &str| names.contains(&n);
    let starts = |n: &str| names.iter().any(|x| x.starts_with(n));
    if p.args.starts_with('[') && p.args.ends_with(']') {
        return None; // kernel thread
    }
    Some(if is("fail2ban-server") {
        KnownService::Fail2ban
    } else if is("snort") {
        KnownService::Snort
    } else if starts("Suricata-Main") || is("suricata") {
        KnownService::Suricata
    } else if is("node_exporter") || is("prometheus-node-exporter") || starts("prometheus-node") {
        KnownService::NodeExporter
    } else if starts("zabbix_agent") {
        KnownService::ZabbixAgent
    } else if is("nrpe") {
        KnownService::Nrpe
    } else if is("prometheus") {
        KnownService::Prometheus
    } else if is("alertmanager") || is("prometheus-alertmanager") || starts("prometheus-aler") {
        KnownService::Alertmanager
    } else if is("sshd") {
        KnownService::Sshd
    } else if is("nginx") {
        KnownService::Nginx
    } else if is("openvpn") {
        KnownService::Openvpn
    } else {
        return None;
    })
}

/// Which known services run in the probe's network namespace.
pub fn from_processes(own_netns: Option<u64>, procs: &[Process]) -> Services {
    let mut pids: BTreeMap<KnownService, Vec<u32>> = BTreeMap::new();
    let mut init = None;
    for p in procs {
        if p.pid == 1 {
            init = Some(p.comm.clone());
        }
        if p.args.contains("<defunct>") {
            continue;
        }
        // Same namespace only; "-" (unknown) counts only when nothing is known.
        if let Some(own) = own_netns
            && p.netns != Some(own)
        {
            continue;
        }
        if let Some(s) = classify(p) {
            pids.entry(s).or_default().push(p.pid);
        }
    }
    Services {
        init,
        services: KnownService::ALL
            .iter()
            .map(|s| {
                let p = pids.remove(s).unwrap_or_default();
                ServiceStatus {
                    service: *s,
                    running: !p.is_empty(),
                    pids: p,
                    unit_state: None,
                }
            })
            .collect(),
    }
}

/// Applies `systemctl show -p Id,ActiveState UNIT...` output (blank-line separated).
pub fn apply_systemd(services: &mut Services, text: &str) {
    for block in text.split("\n\n") {
        let mut id = None;
        let mut state = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("Id=") {
                id = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("ActiveState=") {
                state = Some(v.trim());
            }
        }
        let (Some(id), Some(state)) = (id, state) else {
            continue;
        };
        let svc = match id.trim_end_matches(".service") {
            "fail2ban" => KnownService::Fail2ban,
            "snort" => KnownService::Snort,
            "suricata" => KnownService::Suricata,
            "prometheus-node-exporter" | "node_exporter" => KnownService::NodeExporter,
            "zabbix-agent" | "zabbix-agent2" => KnownService::ZabbixAgent,
            "nagios-nrpe-server" | "nrpe" => KnownService::Nrpe,
            "prometheus" => KnownService::Prometheus,
            "prometheus-alertmanager" | "alertmanager" => KnownService::Alertmanager,
            "ssh" | "sshd" => KnownService::Sshd,
            "nginx" => KnownService::Nginx,
            "openvpn" => KnownService::Openvpn,
            _ => continue,
        };
        if let Some(st) = services.services.iter_mut().find(|s| s.service == svc) {
            st.unit_state = Some(clean(state));
            if state == "active" {
                st.running = true;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn other_namespaces_do_not_count() {
        let (own, p) = parse_ps(
            "net:[10]\n  1 - init /sbin/init\n 5 10 sshd sshd: /usr/sbin/sshd -D\n 6 11 nginx nginx: master\n",
        )
        .unwrap();
        let s = from_processes(own, &p);
        assert!(s.running(KnownService::Sshd));
        assert!(!s.running(KnownService::Nginx));
        assert_eq!(s.init.as_deref(), Some("init"));
        assert!(parse_ps("x y z\n").is_err());
    }

    #[test]
    fn systemd_state_marks_running() {
        let mut s = from_processes(None, &[]);
        apply_systemd(
            &mut s,
            "Id=fail2ban.service\nActiveState=active\n\nId=nginx.service\nActiveState=failed\n",
        );
        assert!(s.running(KnownService::Fail2ban));
        assert!(!s.running(KnownService::Nginx));
    }
}
