//! The fix catalogue: every fix rampart can apply, with the checks it resolves, what it
//! needs, how it is verified and undone, and how much it can hurt. Pure data: the commands
//! themselves are built in [`super::build`] from the host's typed state.
//!
//! IDs are public (CLI, journal, findings' `fix`): never rename one.

/// How much a fix can hurt if it goes wrong.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Changes a running daemon's state only (start it, ban an address).
    Low,
    /// Changes configuration that cannot cut access (nginx, fail2ban jails, the VPN link).
    Medium,
    /// Can cut access (firewall, sshd): guarded, and rolled back by the host on its own
    /// unless rampart reconnects and re-verifies.
    High,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// A parameter a fix takes (`--param key=value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub key: &'static str,
    pub required: bool,
    pub help: &'static str,
}

const fn p(key: &'static str, required: bool, help: &'static str) -> ParamSpec {
    ParamSpec {
        key,
        required,
        help,
    }
}

/// The parameter every fix with a rollback timer accepts.
pub const ROLLBACK_PARAM: ParamSpec = p(
    "rollback",
    false,
    "seconds before the host restores the saved state unless rampart re-verified (5-600, default 60)",
);

/// The default rollback timer, seconds.
pub const DEFAULT_ROLLBACK_SECS: u64 = 60;

/// One fix of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixSpec {
    pub id: &'static str,
    /// What it does, in one line.
    pub title: &'static str,
    /// The check IDs whose findings it resolves.
    pub resolves: &'static [&'static str],
    pub risk: Risk,
    /// Arms a rollback timer on the host before changing anything.
    pub rollback_timer: bool,
    pub params: &'static [ParamSpec],
    /// What must hold on the host before it runs, in words (checked in `build`).
    pub preconditions: &'static str,
    /// How success is established.
    pub verification: &'static str,
    /// How it is undone.
    pub rollback: &'static str,
}

impl FixSpec {
    /// The parameter of that key, including the rollback timer's.
    pub fn param(&self, key: &str) -> Option<&ParamSpec> {
        self.params
            .iter()
            .chain(self.rollback_timer.then_some(&ROLLBACK_PARAM))
            .find(|p| p.key == key)
    }
}

const PORT: ParamSpec = p("port", true, "the port (1-65535)");
const PROTO: ParamSpec = p("proto", false, "tcp or udp (default tcp)");
const SEGMENT: ParamSpec = p("segment", true, "an inventory segment name, e.g. app");
const IP: ParamSpec = p("ip", true, "an IPv4 or IPv6 address");
const JAIL: ParamSpec = p("jail", false, "the fail2ban jail (default sshd)");

/// Every fix, in documentation order.
pub static FIXES: &[FixSpec] = &[
    FixSpec {
        id: "fw-enable-default-deny",
        title: "allow SSH from the admin segments and rampart's own source first, then deny incoming by default and enable the firewall (ufw where installed, nftables otherwise)",
        resolves: &["FW-NONE", "FW-DEFAULT-ALLOW"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[],
        preconditions: "ufw or nft installed; the host's SSH port known (sshd -T, else the inventory)",
        verification: "re-collect: no FW-NONE / FW-DEFAULT-ALLOW, and SSH from the guarded sources is admitted by the new ruleset",
        rollback: "the saved /etc/ufw (and whether ufw was active), or the saved nft ruleset, restored by the host's timer",
    },
    FixSpec {
        id: "fw-close-port",
        title: "remove the allow rule(s) that let a port in (on an iptables-legacy host: drop new connections to it first in INPUT)",
        resolves: &["FW-EXPOSED-PORT", "FW-STALE-RULE"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[PORT, PROTO],
        preconditions: "the port is let in by ufw or nftables rules (not by a default-accept policy: run fw-enable-default-deny first); each rule is simple (one port, at most one source); or the host's filter is iptables-legacy's own (no manager) and the port is delivered locally, not translated to another one",
        verification: "re-collect: the port is no longer let in from outside, no FW-EXPOSED-PORT / FW-STALE-RULE for it",
        rollback: "the saved firewall state (iptables-legacy: the saved tables, restored with iptables-legacy-restore), restored by the host's timer",
    },
    FixSpec {
        id: "fw-restrict-to-segment",
        title: "replace \"allow PORT from anywhere\" with \"allow PORT from SEGMENT\"",
        resolves: &["SEG-DB-EXPOSED", "SEG-SSH-OPEN"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[PORT, SEGMENT, PROTO],
        preconditions: "the segment exists in the inventory; the port is let in from outside it by simple ufw or nftables rules, or by a firewalld zone bound to sources (rebound to the segment with firewall-cmd)",
        verification: "re-collect: the port is let in only from the segment's networks; the finding is gone (firewalld: only then the same change with --permanent)",
        rollback: "the saved firewall state (firewalld: /etc/firewalld, then firewall-cmd --reload), restored by the host's timer",
    },
    FixSpec {
        id: "docker-user-restrict",
        title: "let only the allowed segments reach a published container port: RETURN rules for them (and for the containers' own networks) and a DROP for the rest in DOCKER-USER, by the connection's original port",
        resolves: &["FW-CONTAINER-BYPASS", "SEG-DB-EXPOSED"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[
            PORT,
            PROTO,
            p(
                "segment",
                false,
                "the segment still allowed (default: the segments the host's roles allow the port from, else the admin segments)",
            ),
        ],
        preconditions: "a running container publishes the port; Docker's DOCKER-USER chain exists (iptables-nft or legacy); the host has an interface of its own with an IPv4 address",
        verification: "re-collect: the port is let in only from the allowed segments; no FW-CONTAINER-BYPASS / SEG-DB-EXPOSED for it; SSH from the guarded sources still admitted",
        rollback: "the host's timer deletes exactly the DOCKER-USER rules this run added (by their comment), leaving Docker's own rules and containers as they are",
    },
    FixSpec {
        id: "f2b-start",
        title: "start fail2ban (systemctl where systemd is PID 1, else fail2ban-client start)",
        resolves: &["IPS-FAIL2BAN-DOWN"],
        risk: Risk::Low,
        rollback_timer: false,
        params: &[],
        preconditions: "fail2ban installed and not running",
        verification: "re-collect: fail2ban answers; no IPS-FAIL2BAN-DOWN",
        rollback: "fail2ban-client stop (or systemctl stop fail2ban)",
    },
    FixSpec {
        id: "f2b-enable-sshd-jail",
        title: "enable the sshd jail in a drop-in (jail.d/zz-rampart-sshd.local), test the configuration, reload",
        resolves: &["IPS-NO-SSHD-JAIL"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[],
        preconditions: "fail2ban running without a jail covering sshd",
        verification: "re-collect: a jail covering sshd runs; no IPS-NO-SSHD-JAIL",
        rollback: "remove the drop-in and reload fail2ban",
    },
    FixSpec {
        id: "f2b-ban-ip",
        title: "ban an address in a fail2ban jail",
        resolves: &[],
        risk: Risk::Low,
        rollback_timer: false,
        params: &[IP, JAIL],
        preconditions: "fail2ban running with the jail; the address is not the bastion's, rampart's own or in an admin segment",
        verification: "re-collect: the address is in the jail's banned list",
        rollback: "f2b-unban-ip",
    },
    FixSpec {
        id: "f2b-unban-ip",
        title: "unban an address from a fail2ban jail",
        resolves: &[],
        risk: Risk::Low,
        rollback_timer: false,
        params: &[IP, JAIL],
        preconditions: "fail2ban running with the jail",
        verification: "re-collect: the address is not in the jail's banned list",
        rollback: "f2b-ban-ip",
    },
    FixSpec {
        id: "ssh-disable-password-auth",
        title: "PasswordAuthentication no and KbdInteractiveAuthentication no in an sshd_config.d drop-in, sshd -t, reload (never restart)",
        resolves: &["SSH-PASSWORD-AUTH"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[],
        preconditions: "sshd installed; public-key authentication not disabled (rampart logs in with keys)",
        verification: "re-collect over a fresh connection: sshd -T says passwordauthentication no; no SSH-PASSWORD-AUTH",
        rollback: "the saved sshd_config.d restored and sshd reloaded by the host's timer",
    },
    FixSpec {
        id: "ssh-disable-root-login",
        title: "PermitRootLogin prohibit-password (no when rampart does not log in as root) in an sshd_config.d drop-in, sshd -t, reload",
        resolves: &["SSH-ROOT-LOGIN"],
        risk: Risk::High,
        rollback_timer: true,
        params: &[],
        preconditions: "sshd installed",
        verification: "re-collect over a fresh connection: sshd -T permitrootlogin is not yes; no SSH-ROOT-LOGIN",
        rollback: "the saved sshd_config.d restored and sshd reloaded by the host's timer",
    },
    FixSpec {
        id: "nginx-add-rate-limit",
        title: "a limit_req_zone and an http-level limit_req in conf.d/rampart-rate-limit.conf, nginx -t, reload",
        resolves: &["RATE-LIMIT-MISSING"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[
            p(
                "rate",
                false,
                "requests per second per client address (1-100000, default 10)",
            ),
            p("burst", false, "burst size (0-100000, default 20)"),
        ],
        preconditions: "nginx installed, its configuration valid, and no zone named rampart_perip yet",
        verification: "re-collect: every content server applies limit_req; no RATE-LIMIT-MISSING",
        rollback: "remove the drop-in, nginx -t, reload",
    },
    FixSpec {
        id: "nginx-add-hsts",
        title: "an http-level add_header Strict-Transport-Security \"max-age=31536000\" always in conf.d/rampart-hsts.conf, nginx -t, reload",
        resolves: &["TLS-NO-HSTS"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[],
        preconditions: "nginx installed, its configuration valid, and no TLS server or location with add_headers of its own (which would not inherit the header)",
        verification: "re-collect: every TLS server sends Strict-Transport-Security, in nginx -T and in the host's own HTTPS answer; no TLS-NO-HSTS",
        rollback: "remove the drop-in, nginx -t, reload (browsers keep HSTS for max-age)",
    },
    FixSpec {
        id: "vpn-restart-interface",
        title: "bring a WireGuard interface down and up again (systemctl restart wg-quick@IF where systemd is PID 1)",
        resolves: &["VPN-DOWN"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[p(
            "iface",
            false,
            "the interface (default: the host's only WireGuard interface, else wg0)",
        )],
        preconditions: "the interface exists or has a wg-quick configuration",
        verification: "re-collect: the interface is up; no VPN-DOWN",
        rollback: "none needed: the interface was down",
    },
    FixSpec {
        id: "pg-enable-tls",
        title: "ssl = on in conf.d/zz-rampart-tls.conf (the cluster's own certificate, else Debian's snakeoil), pg_hba `host` lines for other hosts made `hostssl`, reload (never a restart)",
        resolves: &["TLS-INTERNAL-MISSING"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[p(
            "port",
            false,
            "the cluster's port, when the host has several",
        )],
        preconditions: "one PostgreSQL cluster under /etc/postgresql/VERSION/CLUSTER with include_dir 'conf.d'; no `hostnossl` line for other hosts",
        verification: "on the host: SHOW ssl says on and pg_hba_file_rules has no error after pg_reload_conf; then re-collect: no TLS-INTERNAL-MISSING for the port",
        rollback: "on the host, when ssl does not come on: the drop-in removed, pg_hba put back, reloaded",
    },
    FixSpec {
        id: "redis-bind-private",
        title: "bind Redis to the host's private address and loopback and turn protected mode on (CONFIG SET, CONFIG REWRITE; the password never travels)",
        resolves: &["DATA-NO-AUTH"],
        risk: Risk::Medium,
        rollback_timer: false,
        params: &[p(
            "port",
            false,
            "the Redis port, when the host has several",
        )],
        preconditions: "one Redis configured in /etc/redis/NAME.conf; the inventory address is a private IPv4 address",
        verification: "CONFIG GET protected-mode says yes; then re-collect: no DATA-NO-AUTH for the port",
        rollback: "on the host, when Redis refuses: its file put back",
    },
];

/// The catalogue entry of a fix ID.
pub fn fix_spec(id: &str) -> Option<&'static FixSpec> {
    FIXES.iter().find(|f| f.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::CATALOGUE;

    #[test]
    fn every_fix_a_check_names_exists_and_resolves_it() {
        for c in CATALOGUE {
            if let Some(fix) = c.fix {
                let spec = fix_spec(fix).unwrap_or_else(|| panic!("{}: fix {fix} missing", c.id));
                assert!(
                    spec.resolves.contains(&c.id),
                    "{fix} does not list {}",
                    c.id
                );
            }
        }
    }

    #[test]
    fn resolved_checks_exist_and_ids_are_unique() {
        let mut ids: Vec<&str> = FIXES.iter().map(|f| f.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), FIXES.len());
        for f in FIXES {
            for c in f.resolves {
                assert!(
                    crate::posture::check_info(c).is_some(),
                    "{}: unknown check {c}",
                    f.id
                );
            }
            // Whatever can cut access has a rollback timer.
            assert_eq!(f.risk == Risk::High, f.rollback_timer, "{}", f.id);
        }
        assert_eq!(FIXES.len(), 15);
    }
}
