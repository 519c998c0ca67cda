//! The read-only probes of a host (a static allow-list of `sh` scripts), assembled into one
//! framed script per host, and the pure step from that script's frames to a
//! [`HostState`]. Running the script is the transport's job ([`super::collect_host`]).
//!
//! Every probe is a `&'static str`: no inventory value or remote text is ever put into a
//! command. A probe exits 127 when its tool is missing (state "not installed"); refusals
//! for lack of privileges are recognised by the tools' own words.

use crate::ssh::{Frame, ReadCommand};
use crate::state::{Counters, Facts, Fail2ban, HostState, Probed, Stack, StateError, Vpn};

use super::{
    ParseError, counters, datastore, django, facts, fail2ban, firewall, listeners, nginx, services,
    sshd, tls, vpn,
};

/// sshd, iptables and friends live in sbin, which a non-root PATH may lack.
macro_rules! probe {
    ($name:literal, $script:literal) => {
        ReadCommand::new($name, concat!("PATH=$PATH:/usr/sbin:/sbin; ", $script))
    };
}

/// The marker that starts the certificate part of the `nginx` probe's output.
pub const TLS_MARKER: &str = "### rampart tls files";

/// Every probe, in the order they run.
pub const PROBES: &[ReadCommand] = &[
    probe!(
        "facts",
        "read h < /proc/sys/kernel/hostname; echo \"hostname=$h\"; \
         echo \"uname=$(uname -rm)\"; read u _ < /proc/uptime; echo \"uptime=$u\"; \
         read c < /proc/1/comm; echo \"init=$c\""
    ),
    probe!(
        "os-release",
        "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"
    ),
    probe!(
        "ip-addr",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j addr"
    ),
    probe!(
        "ip-route",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j route"
    ),
    probe!(
        "ip6-route",
        "command -v ip >/dev/null 2>&1 || exit 127; ip -j -6 route"
    ),
    probe!(
        "ufw",
        "command -v ufw >/dev/null 2>&1 || exit 127; ufw status verbose"
    ),
    probe!(
        "ufw-rules",
        "command -v ufw >/dev/null 2>&1 || exit 127; cat /etc/ufw/user.rules"
    ),
    probe!(
        "ufw-rules6",
        "command -v ufw >/dev/null 2>&1 || exit 127; cat /etc/ufw/user6.rules"
    ),
    probe!(
        "iptables-legacy",
        "command -v iptables-legacy-save >/dev/null 2>&1 || exit 127; iptables-legacy-save"
    ),
    probe!(
        "ip6tables-legacy",
        "command -v ip6tables-legacy-save >/dev/null 2>&1 || exit 127; ip6tables-legacy-save"
    ),
    probe!(
        "iptables-nft",
        "command -v iptables-nft-save >/dev/null 2>&1 || exit 127; iptables-nft-save"
    ),
    probe!(
        "ip6tables-nft",
        "command -v ip6tables-nft-save >/dev/null 2>&1 || exit 127; ip6tables-nft-save"
    ),
    probe!(
        "nft",
        "command -v nft >/dev/null 2>&1 || exit 127; nft -j list ruleset"
    ),
    probe!(
        "firewalld",
        "command -v firewall-cmd >/dev/null 2>&1 || exit 127; firewall-cmd --state 2>&1; exit 0"
    ),
    probe!(
        "ss",
        "command -v ss >/dev/null 2>&1 || exit 127; ss -H -tulpn"
    ),
    // One client call for the overview, one per jail; jail names travel only inside the
    // host's own shell, quoted.
    probe!(
        "fail2ban",
        "command -v fail2ban-client >/dev/null 2>&1 || exit 127; \
         s=$(fail2ban-client status 2>&1); rc=$?; printf '%s\\n' \"$s\"; \
         [ \"$rc\" -eq 0 ] || exit \"$rc\"; \
         for j in $(printf '%s\\n' \"$s\" | sed -n 's/.*Jail list:[[:space:]]*//p' | tr ',' ' '); do \
         printf '### jail %s\\n' \"$j\"; fail2ban-client status \"$j\" 2>&1; done"
    ),
    // Private and preshared keys are blanked on the host, before they travel.
    probe!(
        "wireguard",
        "command -v wg >/dev/null 2>&1 || exit 127; \
         wg show all dump | awk -F'\\t' 'BEGIN{OFS=\"\\t\"} NF==5{$2=\"(hidden)\"} \
         NF==9 && $3!=\"(none)\"{$3=\"(hidden)\"} {print}'"
    ),
    probe!(
        "openvpn",
        "found=; for f in /run/openvpn/*.status /run/openvpn-server/*.status \
         /var/log/openvpn/*status*.log /etc/openvpn/*status*.log; do \
         [ -f \"$f\" ] && { found=1; printf '### file %s\\n' \"$f\"; head -c 1048576 \"$f\"; echo; }; \
         done; [ -n \"$found\" ] || command -v openvpn >/dev/null 2>&1 || exit 127; exit 0"
    ),
    probe!(
        "sshd",
        "command -v sshd >/dev/null 2>&1 || exit 127; sshd -T"
    ),
    // nginx -T once, then the certificates its config names (absolute, or under /etc/nginx).
    probe!(
        "nginx",
        "command -v nginx >/dev/null 2>&1 || exit 127; \
         c=$(nginx -T 2>&1); rc=$?; printf '%s\\n' \"$c\"; \
         printf '%s\\n' '### rampart tls files'; \
         printf '%s\\n' \"$c\" | sed -n 's/^[[:space:]]*ssl_certificate[[:space:]][[:space:]]*\\([^;$]*\\);.*/\\1/p' \
         | sort -u | head -n 64 | while IFS= read -r f; do \
         case \"$f\" in /*) ;; *) f=\"/etc/nginx/$f\";; esac; \
         [ -r \"$f\" ] && { printf '### file %s\\n' \"$f\"; head -c 65536 \"$f\"; echo; }; done; \
         exit \"$rc\""
    ),
    probe!(
        "services",
        "command -v ps >/dev/null 2>&1 || exit 127; readlink /proc/self/ns/net; \
         ps -e -o pid=,netns=,comm=,args= | cut -c 1-200; \
         read c < /proc/1/comm; if [ \"$c\" = systemd ]; then echo '### systemd'; \
         systemctl show -p Id,ActiveState fail2ban snort suricata prometheus-node-exporter \
         zabbix-agent zabbix-agent2 nagios-nrpe-server prometheus prometheus-alertmanager \
         ssh nginx openvpn 2>/dev/null; fi; exit 0"
    ),
    probe!(
        "counters",
        "cat /proc/uptime; echo '### dev'; cat /proc/net/dev; echo '### snmp'; \
         cat /proc/net/snmp; echo '### conntrack'; \
         cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo none; \
         cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo none"
    ),
    // Data stores and apps (crate::collect::datastore, django). Secrets are blanked here,
    // on the host, before anything travels: requirepass/masterauth, ACL passwords and
    // hashes, `*pass*` options, SECRET_KEY/PASSWORD/TOKEN assignments and dict entries.
    probe!(
        "stack-postgres",
        "found=; for c in /etc/postgresql/*/*/postgresql.conf; do [ -f \"$c\" ] || continue; \
         found=1; d=${c%/postgresql.conf}; printf '### cluster %s\\n' \"$c\"; \
         printf '### file %s\\n' \"$c\"; head -c 262144 \"$c\"; echo; \
         for f in \"$d\"/conf.d/*.conf; do [ -f \"$f\" ] && { printf '### file %s\\n' \"$f\"; \
         head -c 65536 \"$f\"; echo; }; done; \
         h=$(cat \"$c\" \"$d\"/conf.d/*.conf 2>/dev/null | sed -n \"s/^[[:space:]]*hba_file[[:space:]]*=[[:space:]]*'\\([^']*\\)'.*/\\1/p\" | tail -n 1); \
         [ -n \"$h\" ] || h=\"$d/pg_hba.conf\"; \
         [ -f \"$h\" ] && { printf '### hba %s\\n' \"$h\"; head -c 262144 \"$h\"; echo; }; done; \
         [ -n \"$found\" ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || exit 127; exit 0"
    ),
    probe!(
        "stack-redis",
        "printf '### version %s\\n' \"$(redis-server --version 2>/dev/null | head -n 1)\"; \
         found=; for f in /etc/redis/*.conf; do [ -f \"$f\" ] || continue; \
         case \"$f\" in *sentinel*) continue;; esac; found=1; printf '### file %s\\n' \"$f\"; \
         head -c 262144 \"$f\" | sed -E \
         's/^([[:space:]]*(requirepass|masterauth|masteruser|tls-key-file-pass|tls-client-key-file-pass)[[:space:]]+)(\"[^\"]|[^\"[:space:]]).*$/\\1(hidden)/I; \
         /^[[:space:]]*user[[:space:]]/I s/([[:space:]])([<>#!])[^[:space:]]*/\\1\\2(hidden)/g'; \
         echo; done; [ -n \"$found\" ] || command -v redis-server >/dev/null 2>&1 || exit 127; exit 0"
    ),
    probe!(
        "stack-mysql",
        "command -v mysqld >/dev/null 2>&1 || command -v mariadbd >/dev/null 2>&1 || \
         [ -x /usr/sbin/mysqld ] || [ -x /usr/sbin/mariadbd ] || exit 127; \
         for f in /etc/mysql/my.cnf /etc/mysql/mariadb.cnf /etc/mysql/conf.d/*.cnf \
         /etc/mysql/mariadb.conf.d/*.cnf /etc/mysql/mysql.conf.d/*.cnf; do [ -f \"$f\" ] && { \
         printf '### file %s\\n' \"$f\"; head -c 65536 \"$f\" | \
         sed -E 's/^([[:space:]]*[A-Za-z_-]*pass[A-Za-z_-]*[[:space:]]*=).*/\\1 (hidden)/I'; echo; }; \
         done; exit 0"
    ),
    probe!(
        "stack-memcached",
        "command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || exit 127; \
         [ -f /etc/memcached.conf ] && { printf '### file %s\\n' /etc/memcached.conf; \
         head -c 65536 /etc/memcached.conf; echo; }; exit 0"
    ),
    // gunicorn masters of this host's network namespace (the PID namespace may be shared),
    // their working directory, settings module and arguments, then the project's settings,
    // views and urls files. Only DJANGO_SETTINGS_MODULE is taken from the environment.
    probe!(
        "stack-django",
        "me=$(readlink /proc/self/ns/net); \
         ps -e -o pid=,ppid=,comm=,args= 2>/dev/null | awk '{ g[$1] = ($3 ~ /^(gunicorn|python)/) && \
         ($4 ~ /gunicorn/ || $5 ~ /gunicorn/ || $6 ~ /gunicorn/); p[$1] = $2 } \
         END { for (k in g) if (g[k] && !g[p[k]]) print k }' | sort -n | head -n 16 | \
         while read -r p; do [ \"$(readlink /proc/$p/ns/net 2>/dev/null)\" = \"$me\" ] || continue; \
         d=$(readlink /proc/$p/cwd 2>/dev/null) || continue; \
         printf '### gunicorn %s\\n' \"$p\"; printf 'cwd=%s\\n' \"$d\"; \
         printf 'settings=%s\\n' \"$(tr '\\000' '\\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^DJANGO_SETTINGS_MODULE=//p' | head -n 1)\"; \
         printf 'args=%s\\n' \"$(tr '\\000' ' ' < /proc/$p/cmdline | cut -c 1-2000 | \
         sed -E 's/([A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN|KEY)[A-Za-z_]*=)[^ ]*/\\1(hidden)/Ig')\"; \
         find \"$d\" -maxdepth 3 -type f \\( -name 'settings*.py' -o -path '*/settings/*.py' \
         -o -name views.py -o -name urls.py \\) -size -256k 2>/dev/null | sort | head -n 64 | \
         while IFS= read -r f; do printf '### file %s\\n' \"$f\"; \
         sed -E \"s/^([[:space:]]*[A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN)[A-Za-z_]*[[:space:]]*=).*/\\\\1 '(hidden)'/I; \
         s/(['\\\"][A-Za-z_]*(SECRET|PASSWORD|PASSWD|TOKEN)[A-Za-z_]*['\\\"][[:space:]]*:[[:space:]]*).*/\\\\1'(hidden)',/I\" \"$f\"; \
         echo; done; done; \
         command -v gunicorn >/dev/null 2>&1 || [ -d /usr/lib/python3/dist-packages/gunicorn ] || exit 127; exit 0"
    ),
    // One GET of a URL no app routes, on each port a gunicorn (or python) server listens on
    // in this host: only the status and whether Django's debug page came back travel.
    probe!(
        "stack-app-http",
        "command -v ss >/dev/null 2>&1 || exit 127; command -v curl >/dev/null 2>&1 || exit 127; \
         ss -H -tlnp 2>/dev/null | awk '/\"(gunicorn|python[0-9.]*)\"/ {print $4}' | sort -u | head -n 16 | \
         while IFS= read -r a; do port=${a##*:}; addr=${a%:*}; \
         case \"$port\" in ''|*[!0-9]*) continue;; esac; \
         case \"$addr\" in '*'|0.0.0.0|'[::]'|'') addr=127.0.0.1;; esac; \
         case \"$addr\" in *[!0-9.]*) continue;; esac; \
         for s in http https; do \
         b=$(curl -sk --max-time 5 -w '\\n%{http_code}' \"$s://$addr:$port/rampart-probe-unknown-url\" 2>/dev/null | tail -c 1000000); \
         c=$(printf '%s' \"$b\" | tail -n 1); case \"$c\" in ''|000) continue;; esac; \
         if printf '%s' \"$b\" | grep -q 'DEBUG = True'; then d=debug; else d=nodebug; fi; \
         printf '### app %s %s %s %s\\n' \"$port\" \"$s\" \"$c\" \"$d\"; break; done; done; exit 0"
    ),
];

/// The tool each probe needs, for "not installed" states.
fn tool_of(probe: &str) -> &'static str {
    match probe {
        "ip-addr" | "ip-route" | "ip6-route" => "ip",
        "ufw" | "ufw-rules" | "ufw-rules6" => "ufw",
        "iptables-legacy" => "iptables-legacy-save",
        "ip6tables-legacy" => "ip6tables-legacy-save",
        "iptables-nft" => "iptables-nft-save",
        "ip6tables-nft" => "ip6tables-nft-save",
        "nft" => "nft",
        "firewalld" => "firewalld",
        "ss" => "ss",
        "fail2ban" => "fail2ban",
        "wireguard" => "wg",
        "openvpn" => "openvpn",
        "sshd" => "sshd",
        "nginx" => "nginx",
        "services" => "ps",
        "stack-postgres" => "postgres",
        "stack-redis" => "redis-server",
        "stack-mysql" => "mysqld",
        "stack-memcached" => "memcached",
        "stack-django" => "gunicorn",
        "stack-app-http" => "curl",
        _ => "sh",
    }
}

/// The one framed script that collects a whole host.
pub fn host_script() -> Result<ReadCommand, crate::ssh::CommandError> {
    let probes: Vec<&ReadCommand> = PROBES.iter().collect();
    ReadCommand::framed("collect", &probes)
}

/// Words with which tools refuse for lack of privileges.
fn is_permission_denied(text: &str) -> bool {
    const WORDS: [&str; 8] = [
        "Permission denied",
        "you must be root",
        "You need to be root",
        "Operation not permitted",
        "a password is required",
        "a terminal is required",
        "no hostkeys available",
        "must be run as root",
    ];
    WORDS.iter().any(|w| text.contains(w))
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    let mut l = super::clean(line);
    if l.len() > 300 {
        let mut cut = 300;
        while !l.is_char_boundary(cut) {
            cut -= 1;
        }
        l.truncate(cut);
    }
    l
}

/// One probe's output, as text, with its outcome.
struct Out {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Looks a probe's frame up and classifies failures. `Ok` carries the frame even when the
/// exit status is not zero (some tools report state that way); callers decide.
fn frame(frames: &[Frame], name: &str) -> Probed<Out> {
    let Some(f) = frames.iter().find(|f| f.name == name) else {
        return Probed::Failed {
            stage: name.to_string(),
            message: "the probe produced no frame (output cut short?)".into(),
        };
    };
    let out = Out {
        stdout: String::from_utf8_lossy(&f.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&f.stderr).into_owned(),
        status: f.exit_status,
    };
    match out.status {
        None => Probed::Failed {
            stage: name.to_string(),
            message: "the probe was cut short (no exit status)".into(),
        },
        Some(127) => Probed::NotInstalled {
            tool: tool_of(name).to_string(),
        },
        Some(0) => Probed::Ok(out),
        Some(_) if is_permission_denied(&out.stderr) || is_permission_denied(&out.stdout) => {
            Probed::PermissionDenied {
                stage: name.to_string(),
                message: first_line(if out.stderr.trim().is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                }),
            }
        }
        Some(_) => Probed::Ok(out),
    }
}

/// A probe whose non-zero exit is a failure.
fn strict(frames: &[Frame], name: &str) -> Probed<String> {
    match frame(frames, name) {
        Probed::Ok(o) if o.status == Some(0) => Probed::Ok(o.stdout),
        Probed::Ok(o) => Probed::Failed {
            stage: name.to_string(),
            message: format!(
                "exit status {}: {}",
                o.status.unwrap_or(-1),
                first_line(if o.stderr.trim().is_empty() {
                    &o.stdout
                } else {
                    &o.stderr
                })
            ),
        },
        other => other.map(|o| o.stdout),
    }
}

fn parsed<T, E: std::fmt::Display>(stage: &str, r: Result<T, E>) -> Probed<T> {
    match r {
        Ok(v) => Probed::Ok(v),
        Err(e) => Probed::Failed {
            stage: format!("parse {stage}"),
            message: e.to_string(),
        },
    }
}

/// Splits text at lines starting with `prefix`: the part before the first such line, and
/// (rest of the marker line, body) for each.
fn sections<'a>(text: &'a str, prefix: &str) -> (String, Vec<(&'a str, String)>) {
    let mut head = String::new();
    let mut parts: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(prefix) {
            parts.push((rest.trim(), String::new()));
        } else {
            let buf = match parts.last_mut() {
                Some((_, b)) => b,
                None => &mut head,
            };
            buf.push_str(line);
            buf.push('\n');
        }
    }
    (head, parts)
}

fn build_facts(frames: &[Frame]) -> Probed<Facts> {
    strict(frames, "facts").map(|text| {
        let mut f = Facts::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k {
                "hostname" => f.hostname = super::clean(v),
                "uname" => {
                    let mut w = v.split_whitespace();
                    f.kernel = w.next().map(super::clean).unwrap_or_default();
                    f.machine = w.next().map(super::clean).unwrap_or_default();
                }
                "uptime" => f.uptime_secs = counters::parse_uptime(v),
                "init" => f.init = Some(super::clean(v)),
                _ => {}
            }
        }
        if let Probed::Ok(t) = strict(frames, "os-release")
            && let Ok(os) = facts::parse_os_release(&t)
        {
            f.os = os;
        }
        if let Probed::Ok(t) = strict(frames, "ip-addr")
            && let Ok(i) = facts::parse_ip_addr(&t)
        {
            f.interfaces = i;
        }
        for name in ["ip-route", "ip6-route"] {
            if let Probed::Ok(t) = strict(frames, name)
                && let Ok(r) = facts::parse_ip_route(&t)
            {
                f.routes.extend(r);
            }
        }
        f
    })
}

fn build_fail2ban(frames: &[Frame]) -> Probed<Fail2ban> {
    let out = match frame(frames, "fail2ban") {
        Probed::Ok(o) => o,
        other => return other.map(|_| Fail2ban::default()),
    };
    let text = format!("{}{}", out.stdout, out.stderr);
    let (head, jails) = sections(&out.stdout, "### jail ");
    let overview = match fail2ban::parse_overview(if jails.is_empty() { &text } else { &head }) {
        Ok(o) => o,
        Err(e) => return parsed("fail2ban", Err(e)),
    };
    match &overview {
        fail2ban::Overview::PermissionDenied(m) => {
            return Probed::PermissionDenied {
                stage: "fail2ban".into(),
                message: m.clone(),
            };
        }
        fail2ban::Overview::NotRunning => {
            return Probed::Ok(fail2ban::build(&overview, None, Vec::new()));
        }
        fail2ban::Overview::Running { .. } => {}
    }
    let mut list = Vec::new();
    for (name, body) in jails {
        match fail2ban::parse_jail(name, &body) {
            Ok(j) => list.push(j),
            Err(e) => return parsed("fail2ban", Err(e)),
        }
    }
    Probed::Ok(fail2ban::build(&overview, None, list))
}

fn build_vpn(frames: &[Frame], facts: &Probed<Facts>) -> Probed<Vpn> {
    let wireguard = match strict(frames, "wireguard") {
        Probed::Ok(t) => parsed("wireguard", vpn::parse_wg_dump(&t, None)),
        other => other.map(|_| Vec::new()),
    };
    let wireguard = wireguard.map(|mut ifs| {
        if let Some(f) = facts.ok() {
            for w in &mut ifs {
                w.up = f.interfaces.iter().find(|i| i.name == w.name).map(|i| i.up);
            }
        }
        ifs
    });
    let openvpn = match strict(frames, "openvpn") {
        Probed::Ok(t) => {
            let (_, files) = sections(&t, "### file ");
            let mut out = Vec::new();
            let mut err = None;
            for (path, body) in files {
                match vpn::parse_openvpn(path, &body) {
                    Ok(s) => out.push(s),
                    Err(e) => err = Some(e),
                }
            }
            match err {
                Some(e) if out.is_empty() => parsed("openvpn", Err(e)),
                _ => Probed::Ok(out),
            }
        }
        other => other.map(|_| Vec::new()),
    };
    Probed::Ok(Vpn { wireguard, openvpn })
}

fn build_counters(frames: &[Frame]) -> Probed<Counters> {
    match strict(frames, "counters") {
        Probed::Ok(t) => {
            let (head, parts) = sections(&t, "### ");
            let mut c = Counters {
                uptime_secs: counters::parse_uptime(&head),
                ..Counters::default()
            };
            for (name, body) in parts {
                match name {
                    "dev" => match counters::parse_net_dev(&body) {
                        Ok(d) => c.interfaces = d,
                        Err(e) => return parsed("counters", Err(e)),
                    },
                    "snmp" => c.tcp = counters::parse_snmp(&body).ok(),
                    "conntrack" => {
                        let mut l = body.lines();
                        c.conntrack = l
                            .next()
                            .and_then(|n| counters::parse_conntrack(n, l.next()));
                    }
                    _ => {}
                }
            }
            Probed::Ok(c)
        }
        other => other.map(|_| Counters::default()),
    }
}

/// Turns the frames of one [`host_script`] run into the host's state. Pure: every part is
/// built on its own, so one failing probe or parser loses nothing else.
pub fn state_from_frames(host: &str, frames: &[Frame]) -> HostState {
    let facts = build_facts(frames);

    // Firewall: every backend's output, whatever state each is in.
    let texts: Vec<(&str, Probed<String>)> = [
        "ufw",
        "ufw-rules",
        "ufw-rules6",
        "iptables-legacy",
        "ip6tables-legacy",
        "iptables-nft",
        "ip6tables-nft",
        "nft",
    ]
    .iter()
    .map(|n| (*n, strict(frames, n)))
    .collect();
    let get = |n: &str| -> Probed<&str> {
        texts.iter().find(|(k, _)| *k == n).map_or(
            Probed::NotInstalled {
                tool: n.to_string(),
            },
            |(_, p)| p.as_ref().map(String::as_str),
        )
    };
    let firewalld_running = match frame(frames, "firewalld") {
        Probed::Ok(o) => Some(o.stdout.trim() == "running"),
        _ => None,
    };
    let inputs = firewall::Inputs {
        ufw_status: get("ufw"),
        ufw_user_rules: get("ufw-rules").ok().copied(),
        ufw_user6_rules: get("ufw-rules6").ok().copied(),
        iptables_legacy: get("iptables-legacy"),
        ip6tables_legacy: get("ip6tables-legacy"),
        iptables_nft: get("iptables-nft"),
        ip6tables_nft: get("ip6tables-nft"),
        nft: get("nft"),
        firewalld_running,
    };
    let any_ruleset = [
        &inputs.ufw_status,
        &inputs.iptables_legacy,
        &inputs.iptables_nft,
        &inputs.nft,
    ]
    .iter()
    .any(|p| p.is_ok());
    let denied = [
        &inputs.ufw_status,
        &inputs.iptables_legacy,
        &inputs.iptables_nft,
        &inputs.nft,
    ]
    .iter()
    .find(|p| matches!(p, Probed::PermissionDenied { .. }))
    .map(|p| p.as_ref().map(|_| ()));
    let firewall = match (any_ruleset, denied) {
        (false, Some(Probed::PermissionDenied { stage, message })) => {
            Probed::PermissionDenied { stage, message }
        }
        _ => Probed::Ok(firewall::assemble(&inputs)),
    };

    let listeners = match strict(frames, "ss") {
        Probed::Ok(t) => parsed("ss", listeners::parse(&t)),
        other => other.map(|_| Vec::new()),
    };
    let fail2ban = build_fail2ban(frames);
    let vpn = build_vpn(frames, &facts);
    let sshd = match frame(frames, "sshd") {
        Probed::Ok(o) if o.status == Some(0) => parsed("sshd", sshd::parse(&o.stdout)),
        Probed::Ok(o) if sshd::is_permission_problem(&o.stderr) => Probed::PermissionDenied {
            stage: "sshd".into(),
            message: first_line(&o.stderr),
        },
        Probed::Ok(o) => Probed::Failed {
            stage: "sshd".into(),
            message: first_line(&o.stderr),
        },
        other => other.map(|_| crate::state::Sshd::default()),
    };
    let (nginx, tls) = match frame(frames, "nginx") {
        Probed::Ok(o) => {
            let (conf, certs) = match o.stdout.split_once(TLS_MARKER) {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (o.stdout.clone(), String::new()),
            };
            let n = parsed("nginx", nginx::parse(&conf));
            let (c, errs) = tls::parse_files(&certs);
            let t = if c.is_empty() && !errs.is_empty() {
                Probed::Failed {
                    stage: "parse tls".into(),
                    message: errs.join("; "),
                }
            } else {
                Probed::Ok(c)
            };
            (n, t)
        }
        other => {
            let t = other.as_ref().map(|_| Vec::new());
            (other.map(|_| crate::state::Nginx::default()), t)
        }
    };
    let services = match strict(frames, "services") {
        Probed::Ok(t) => {
            let (head, parts) = sections(&t, "### systemd");
            match services::parse_ps(&head) {
                Ok((own, procs)) => {
                    let mut s = services::from_processes(own, &procs);
                    if let Some((_, body)) = parts.first() {
                        services::apply_systemd(&mut s, body);
                    }
                    Probed::Ok(s)
                }
                Err(e) => parsed("services", Err(e)),
            }
        }
        other => other.map(|_| crate::state::Services::default()),
    };
    let counters = build_counters(frames);
    let stack = build_stack(frames);

    let mut errors = Vec::new();
    for p in PROBES {
        if !frames.iter().any(|f| f.name == p.name()) {
            errors.push(StateError {
                stage: "frames".into(),
                message: format!("no output for probe {}", p.name()),
            });
        }
    }
    HostState {
        host: host.to_string(),
        collected_at: None,
        facts,
        firewall,
        listeners,
        fail2ban,
        vpn,
        sshd,
        nginx,
        tls,
        services,
        counters,
        stack,
        errors,
    }
}

/// The data stores and apps. A stack probe that failed is kept in `unread`, so a check that
/// needed it can say it could not decide rather than say "fine".
fn build_stack(frames: &[Frame]) -> Stack {
    let mut st = Stack::default();
    let mut read = |name: &str| -> Option<String> {
        match frame(frames, name) {
            Probed::Ok(o) => Some(o.stdout),
            Probed::NotInstalled { .. } => None,
            Probed::PermissionDenied { stage, message } | Probed::Failed { stage, message } => {
                st.unread.push(StateError { stage, message });
                None
            }
        }
    };
    let pg = read("stack-postgres");
    let redis = read("stack-redis");
    let mysql = read("stack-mysql");
    let memcached = read("stack-memcached");
    let apps = read("stack-django");
    let http = read("stack-app-http");
    let mut failed = |stage: &str, e: ParseError| {
        st.unread.push(StateError {
            stage: format!("parse {stage}"),
            message: e.to_string(),
        });
    };
    let mut out = Stack::default();
    if let Some(t) = pg {
        match datastore::parse_postgres(&t) {
            Ok(v) => out.postgres = v,
            Err(e) => failed("stack-postgres", e),
        }
    }
    if let Some(t) = redis {
        match datastore::parse_redis(&t) {
            Ok(v) => out.redis = v,
            Err(e) => failed("stack-redis", e),
        }
    }
    if let Some(t) = mysql {
        match datastore::parse_mysql(&t) {
            Ok(v) => out.mysql = Some(v),
            Err(e) => failed("stack-mysql", e),
        }
    }
    if let Some(t) = memcached {
        match datastore::parse_memcached_probe(&t) {
            Ok(v) => out.memcached = v,
            Err(e) => failed("stack-memcached", e),
        }
    }
    if let Some(t) = apps {
        match django::parse_apps(&t) {
            Ok(v) => out.apps = v,
            Err(e) => failed("stack-django", e),
        }
    }
    if let Some(t) = http {
        match django::parse_app_probes(&t) {
            Ok(v) => out.app_probes = v,
            Err(e) => failed("stack-app-http", e),
        }
    }
    out.unread = st.unread;
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn f(name: &str, status: Option<i32>, out: &str, err: &str) -> Frame {
        Frame {
            name: name.into(),
            exit_status: status,
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
        }
    }

    #[test]
    fn every_probe_has_a_valid_name_and_the_script_frames() {
        let s = host_script().unwrap();
        assert_eq!(s.probes().len(), PROBES.len());
        let text = s.render(false);
        assert!(text.contains("nft -j list ruleset"));
    }

    #[test]
    fn one_failing_probe_loses_nothing_else() {
        let frames = vec![
            f(
                "facts",
                Some(0),
                "hostname=h\nuname=6.1 x86_64\nuptime=5.5\ninit=sh\n",
                "",
            ),
            f("ss", Some(1), "", "ss: garbage\n"),
            f("sshd", Some(127), "", ""),
            f(
                "ufw",
                Some(1),
                "",
                "ERROR: You need to be root to run this script\n",
            ),
            f(
                "nft",
                Some(1),
                "",
                "Error: cache initialization failed: Operation not permitted\n",
            ),
            f(
                "fail2ban",
                Some(255),
                "ERROR Failed to access socket path: /x. Is fail2ban running?\n",
                "",
            ),
            f("counters", None, "1.0\n", ""),
        ];
        let st = state_from_frames("h", &frames);
        assert_eq!(st.facts.ok().unwrap().hostname, "h");
        assert_eq!(st.facts.ok().unwrap().kernel, "6.1");
        assert!(matches!(st.listeners, Probed::Failed { .. }));
        assert!(matches!(st.sshd, Probed::NotInstalled { ref tool } if tool == "sshd"));
        assert!(
            matches!(st.firewall, Probed::PermissionDenied { .. }),
            "{:?}",
            st.firewall
        );
        assert!(!st.fail2ban.ok().unwrap().running);
        assert!(matches!(st.counters, Probed::Failed { .. }));
        assert!(st.errors.iter().any(|e| e.message.contains("nginx")));
    }
}
