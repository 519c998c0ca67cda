//! Effective sshd settings from `sshd -T` (lower-case `key value` lines). Pure: no I/O.

use super::{ParseError, check_size, clean};
use crate::state::{PermitRootLogin, Sshd};

const WHAT: &str = "sshd -T";

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').filter(|s| !s.is_empty()).map(clean).collect()
}

/// True when the text is sshd refusing to run `-T` for lack of privileges (it cannot read
/// the host keys).
pub fn is_permission_problem(text: &str) -> bool {
    text.contains("no hostkeys available") || text.contains("Permission denied")
}

/// Parses `sshd -T` output.
pub fn parse(text: &str) -> Result<Sshd, ParseError> {
    check_size(WHAT, text)?;
    let mut s = Sshd::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once(' ') {
            Some((k, v)) => (k, v.trim()),
            None => (line, ""),
        };
        if key
            .chars()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            // Not a setting: sshd printed an error.
            return Err(ParseError::new(
                WHAT,
                i + 1,
                format!("not a setting: {:?}", clean(line)),
            ));
        }
        match key {
            "passwordauthentication" => s.password_authentication = yes_no(value),
            "kbdinteractiveauthentication" => s.kbd_interactive_authentication = yes_no(value),
            // The old name, printed by older OpenSSH; the new one wins when both appear.
            "challengeresponseauthentication" if s.kbd_interactive_authentication.is_none() => {
                s.kbd_interactive_authentication = yes_no(value);
            }
            "permitrootlogin" => {
                s.permit_root_login = Some(match value {
                    "yes" => PermitRootLogin::Yes,
                    "no" => PermitRootLogin::No,
                    "prohibit-password" | "without-password" => PermitRootLogin::ProhibitPassword,
                    "forced-commands-only" => PermitRootLogin::ForcedCommandsOnly,
                    _ => {
                        return Err(ParseError::new(
                            WHAT,
                            i + 1,
                            format!("unknown permitrootlogin value {:?}", clean(value)),
                        ));
                    }
                });
            }
            "pubkeyauthentication" => s.pubkey_authentication = yes_no(value),
            "allowagentforwarding" => s.allow_agent_forwarding = yes_no(value),
            "allowtcpforwarding" => s.allow_tcp_forwarding = Some(clean(value)),
            "x11forwarding" => s.x11_forwarding = yes_no(value),
            "maxauthtries" => s.max_auth_tries = value.parse().ok(),
            "port" => {
                if let Ok(p) = value.parse() {
                    s.ports.push(p);
                }
            }
            "listenaddress" => s.listen_addresses.push(clean(value)),
            "ciphers" => s.ciphers = list(value),
            "kexalgorithms" => s.kex_algorithms = list(value),
            "macs" => s.macs = list(value),
            "allowusers" => s.allow_users.extend(value.split_whitespace().map(clean)),
            "allowgroups" => s.allow_groups.extend(value.split_whitespace().map(clean)),
            _ => {}
        }
        s.settings.entry(clean(key)).or_default().push(clean(value));
    }
    if s.settings.is_empty() {
        return Err(ParseError::new(WHAT, 0, "no settings"));
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_not_settings() {
        assert!(parse("/etc/ssh/sshd_config: line 1: Bad configuration option: Bogus\n").is_err());
        assert!(parse("").is_err());
        assert!(is_permission_problem(
            "sshd: no hostkeys available -- exiting.\n"
        ));
    }

    #[test]
    fn without_password_is_prohibit_password() {
        let s = parse("permitrootlogin without-password\n").unwrap();
        assert_eq!(s.permit_root_login, Some(PermitRootLogin::ProhibitPassword));
    }
}
