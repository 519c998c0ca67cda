//! The check catalogue: stable IDs, default severities, what a finding means and why it
//! matters, and the fix that resolves it. Reports, waivers, tests and users depend on these
//! IDs: never rename one.

use super::Severity;

/// One check of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    pub id: &'static str,
    pub severity: Severity,
    /// Whether the check looks at one host or at the fleet as a whole.
    pub fleet: bool,
    /// What a finding means, in general terms.
    pub title: &'static str,
    /// One line on why it matters.
    pub why: &'static str,
    /// The fix that resolves it, when one exists.
    pub fix: Option<&'static str>,
}

const fn c(
    id: &'static str,
    severity: Severity,
    title: &'static str,
    why: &'static str,
    fix: Option<&'static str>,
) -> CheckInfo {
    CheckInfo {
        id,
        severity,
        fleet: false,
        title,
        why,
        fix,
    }
}

use Severity::{Critical, High, Low, Medium};

/// Every check rampart knows, in report order.
pub static CATALOGUE: &[CheckInfo] = &[
    c(
        "FW-NONE",
        Critical,
        "no host firewall filters incoming traffic (ufw inactive and no filtering nftables/iptables ruleset)",
        "Without a host firewall every listening service is reachable by anyone who can route to the host.",
        Some("fw-enable-default-deny"),
    ),
    c(
        "FW-DEFAULT-ALLOW",
        High,
        "a firewall is active but incoming traffic is accepted by default",
        "A default-accept policy lets in every port nobody thought to close.",
        Some("fw-enable-default-deny"),
    ),
    c(
        "FW-EXPOSED-PORT",
        High,
        "a port listens on a non-loopback address, the firewall lets it in from outside its allowed segments, and the host's roles don't allow it",
        "Every exposed service is attack surface; only what the role needs should be reachable.",
        Some("fw-close-port"),
    ),
    c(
        "FW-CONTAINER-BYPASS",
        High,
        "a published container port is reachable from sources the host firewall's own rules refuse for that port (Docker's NAT and FORWARD rules come first)",
        "`ufw allow from APP to any port 5432` does nothing for a `-p 5432:5432` container: Docker's DNAT sends the connection past INPUT, the most common way a firewalled database ends up exposed.",
        Some("docker-user-restrict"),
    ),
    c(
        "FW-STALE-RULE",
        Low,
        "an allow rule for a port that nothing listens on",
        "A stale allow rule silently exposes whatever starts listening on that port next.",
        Some("fw-close-port"),
    ),
    c(
        "FW-MULTIPLE",
        Low,
        "more than one firewall manager holds rules (e.g. ufw plus a hand-made nftables table)",
        "Two managers make the effective policy hard to read and easy to break with the next change.",
        None,
    ),
    c(
        "FW-CLOUD-OPEN",
        High,
        "a cloud security group opens a port other than 80/443 to 0.0.0.0/0 or ::/0",
        "The cloud firewall is the outer wall; opening admin or data ports to the world defeats it.",
        None,
    ),
    c(
        "SEG-DB-EXPOSED",
        Critical,
        "a data-tier port (db, cache roles) is reachable from outside its reachable_from segments",
        "Databases belong in private subnets reachable only from the app tier.",
        Some("fw-restrict-to-segment"),
    ),
    c(
        "SEG-SSH-OPEN",
        Medium,
        "SSH on a private host accepts connections from anywhere, not only from the bastion/admin segments",
        "Admin access should pass through the bastion or the VPN, where it is watched and limited.",
        Some("fw-restrict-to-segment"),
    ),
    c(
        "SEG-WRONG-SEGMENT",
        High,
        "a host's address lies outside the segments its role belongs in (e.g. a db host in the dmz)",
        "Segmentation only limits a breach if hosts sit in the segment their role belongs in.",
        None,
    ),
    c(
        "SSH-PASSWORD-AUTH",
        High,
        "sshd accepts passwords",
        "Passwords can be guessed and phished; keys cannot be brute-forced.",
        Some("ssh-disable-password-auth"),
    ),
    c(
        "SSH-ROOT-LOGIN",
        Medium,
        "sshd permits root login with a password",
        "Root is the one account every attacker knows the name of.",
        Some("ssh-disable-root-login"),
    ),
    c(
        "SSH-WEAK-CRYPTO",
        Medium,
        "sshd offers weak ciphers, key exchange or MACs",
        "Weak algorithms let a network attacker downgrade or break the session.",
        None,
    ),
    c(
        "SSH-FORWARDING",
        Low,
        "agent or X11 forwarding allowed on a bastion",
        "A compromised bastion can ride a forwarded agent into every host behind it.",
        None,
    ),
    c(
        "TLS-MISSING",
        High,
        "a web host does not serve HTTPS",
        "Without HTTPS, credentials and session cookies cross the network in clear text.",
        None,
    ),
    c(
        "TLS-NO-REDIRECT",
        Medium,
        "plain HTTP on a web host does not redirect to HTTPS",
        "Users who type the bare name stay on plain HTTP unless it redirects.",
        None,
    ),
    c(
        "TLS-CERT-EXPIRING",
        High,
        "a certificate expires within the threshold (default 21 days); critical once expired",
        "An expired certificate takes the site down for every client that checks it.",
        None,
    ),
    c(
        "TLS-OLD-PROTOCOL",
        Medium,
        "TLS 1.0 or 1.1 enabled",
        "TLS 1.0 and 1.1 are deprecated (RFC 8996) and have known weaknesses.",
        None,
    ),
    c(
        "TLS-NO-HSTS",
        Medium,
        "a web host serves HTTPS without Strict-Transport-Security (nginx add_header inheritance followed, confirmed by the host's own HTTPS answer)",
        "Without HSTS a browser's first plain-HTTP request can be intercepted and kept on HTTP (SSL stripping).",
        Some("nginx-add-hsts"),
    ),
    c(
        "VPN-DOWN",
        High,
        "a vpn-role host has no VPN interface up",
        "With the VPN down, administrators lose their secure way in, or find an insecure one.",
        Some("vpn-restart-interface"),
    ),
    c(
        "VPN-PEER-STALE",
        Medium,
        "a WireGuard peer never completed a handshake, or not within the threshold",
        "A peer that never connects is either broken or a leftover key that should be revoked.",
        None,
    ),
    c(
        "IPS-FAIL2BAN-DOWN",
        High,
        "fail2ban is not running where the role requires it (default: every host with SSH)",
        "Without fail2ban, password guessing and scans go on unpunished.",
        Some("f2b-start"),
    ),
    c(
        "IPS-NO-SSHD-JAIL",
        Medium,
        "fail2ban runs but no enabled jail covers sshd",
        "fail2ban protects only the services it has a jail for.",
        Some("f2b-enable-sshd-jail"),
    ),
    c(
        "IPS-JAIL-BLIND",
        Medium,
        "a running fail2ban jail can never ban: its log files are missing, or its systemd backend has no journal to read",
        "A jail that reads nothing counts no failures, so \"enabled\" protects nothing.",
        None,
    ),
    c(
        "IDS-MISSING",
        Medium,
        "no IDS (Snort, Suricata) runs where the role requires one (default: bastion)",
        "Without an IDS, intrusions at the edge go unseen.",
        None,
    ),
    c(
        "RATE-LIMIT-MISSING",
        Medium,
        "a web host's nginx applies no limit_req to its servers",
        "Without rate limiting one client can exhaust the application (credential stuffing, DoS).",
        Some("nginx-add-rate-limit"),
    ),
    c(
        "TLS-INTERNAL-MISSING",
        High,
        "an internal service other hosts can reach accepts unencrypted connections (PostgreSQL ssl off or pg_hba host/hostnossl for other hosts, Redis plaintext beyond loopback, MySQL without require_secure_transport, nginx proxying to another host over plain HTTP)",
        "Anyone on the path between the hosts reads and changes queries, sessions and passwords.",
        Some("pg-enable-tls"),
    ),
    c(
        "DATA-NO-AUTH",
        Critical,
        "a data store other hosts can reach answers without authentication (Redis without requirepass/ACL users, PostgreSQL trust for other hosts, Memcached beyond loopback)",
        "Whoever reaches the port reads, changes or deletes the data, and Redis can be turned into code execution.",
        Some("redis-bind-private"),
    ),
    c(
        "APP-DEBUG",
        High,
        "the Django app serves its debug pages (DEBUG = True), shown by one GET of an unknown URL on its own port",
        "Debug pages show settings, code paths and SQL to anyone, and make every error a map of the app.",
        None,
    ),
    c(
        "MON-AGENT-MISSING",
        Low,
        "no monitoring agent (node_exporter, Zabbix agent, NRPE) runs",
        "A host nobody monitors fails, or is attacked, without anyone noticing.",
        None,
    ),
    CheckInfo {
        id: "MON-ALERTING-MISSING",
        severity: Low,
        fleet: true,
        title: "no Alertmanager is configured, or it does not answer",
        why: "Alerts nobody receives are not alerts.",
        fix: None,
    },
];

/// The catalogue entry of a check ID.
pub fn check_info(id: &str) -> Option<&'static CheckInfo> {
    CATALOGUE.iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate check IDs");
        for c in CATALOGUE {
            assert!(
                c.id.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                c.id
            );
            assert!(!c.why.is_empty() && !c.title.is_empty(), "{}", c.id);
        }
        assert_eq!(
            check_info("FW-NONE").map(|c| c.severity),
            Some(Severity::Critical)
        );
        assert!(check_info("NOPE").is_none());
    }
}
