//! Effective sshd settings from `sshd -T` (lower-case `key value` lines), and the `Match`
//! blocks of the host's configuration with `sshd -T -C` answers for connections they apply
//! to (the `sshd` probe's `### match` / `### set` / `### spec` sections). Pure: no I/O.

use std::net::IpAddr;

use super::{ParseError, check_size, clean};
use crate::state::{PermitRootLogin, Sshd, SshdMatch, SshdMatchProbe};

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

/// Parses the whole `sshd` probe: `sshd -T` first, then one section per `Match` block.
/// A `### spec` whose answer is not a settings list (sshd refused the connection spec) is
/// dropped: the block's written settings still speak for it.
pub fn parse_with_matches(text: &str) -> Result<Sshd, ParseError> {
    check_size(WHAT, text)?;
    let global_end = text
        .lines()
        .position(|l| l.starts_with("### "))
        .unwrap_or(usize::MAX);
    let global: String = text
        .lines()
        .take(global_end)
        .flat_map(|l| [l, "\n"])
        .collect();
    let mut sshd = parse(&global)?;
    let mut current: Option<SshdMatch> = None;
    let mut spec: Option<(SshdMatchProbe, String)> = None;
    let finish_spec = |spec: &mut Option<(SshdMatchProbe, String)>, m: &mut Option<SshdMatch>| {
        if let (Some((mut probe, answer)), Some(m)) = (spec.take(), m.as_mut())
            && let Ok(s) = parse(&answer)
        {
            probe.effective = s.auth();
            m.probes.push(probe);
        }
    };
    for line in text.lines().skip(global_end) {
        if let Some(rest) = line.strip_prefix("### match ") {
            finish_spec(&mut spec, &mut current);
            if let Some(m) = current.take() {
                sshd.matches.push(m);
            }
            let (origin, criteria) = split_origin(rest);
            current = Some(SshdMatch {
                origin,
                criteria,
                ..SshdMatch::default()
            });
        } else if let Some(rest) = line.strip_prefix("### set ") {
            finish_spec(&mut spec, &mut current);
            let (origin, setting) = split_origin(rest);
            let (k, v) = setting
                .split_once(char::is_whitespace)
                .unwrap_or((&setting, ""));
            if let Some(m) = current.as_mut() {
                m.body
                    .push((k.to_ascii_lowercase(), clean(v.trim()), origin));
            }
        } else if let Some(rest) = line.strip_prefix("### spec ") {
            finish_spec(&mut spec, &mut current);
            spec = Some((spec_of(rest), String::new()));
        } else if let Some((_, answer)) = spec.as_mut() {
            answer.push_str(line);
            answer.push('\n');
        }
    }
    finish_spec(&mut spec, &mut current);
    if let Some(m) = current.take() {
        sshd.matches.push(m);
    }
    Ok(sshd)
}

/// `FILE:LINE: rest` → (`FILE:LINE`, `rest`).
fn split_origin(s: &str) -> (String, String) {
    match s.split_once(": ") {
        Some((o, r)) => (clean(o), clean(r.trim())),
        None => (String::new(), clean(s.trim())),
    }
}

/// `addr=A,user=U,host=H` → the probe's connection (unknown keys ignored).
fn spec_of(s: &str) -> SshdMatchProbe {
    let mut p = SshdMatchProbe::default();
    for kv in s.trim().split(',') {
        match kv.split_once('=') {
            Some(("addr", a)) => p.addr = a.parse::<IpAddr>().ok(),
            Some(("user", u)) => p.user = Some(clean(u)),
            _ => {}
        }
    }
    p
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
    fn match_blocks_come_with_what_sshd_says_for_a_matching_connection() {
        let text = include_str!("../../tests/fixtures/sshd/probe-match-blocks.txt");
        let s = parse_with_matches(text).unwrap();
        // The global part is `sshd -T` alone.
        assert_eq!(s.password_authentication, Some(false));
        assert!(!s.auth().passwords_possible());
        assert_eq!(s.matches.len(), 3);

        let admin = &s.matches[0];
        assert_eq!(admin.origin, "/tmp/sshdt/sshd_config:8");
        assert_eq!(admin.criteria, "Address 10.77.9.0/24,!10.77.9.5");
        assert_eq!(admin.probes.len(), 1);
        assert_eq!(admin.probes[0].addr, Some("10.77.9.1".parse().unwrap()));
        assert_eq!(admin.probes[0].user.as_deref(), Some("root"));
        assert!(admin.probes[0].effective.passwords_possible());
        assert_eq!(
            admin.body,
            [(
                "passwordauthentication".to_string(),
                "yes".to_string(),
                "/tmp/sshdt/sshd_config:9".to_string()
            )]
        );

        let deploy = &s.matches[1];
        assert_eq!(deploy.probes[0].user.as_deref(), Some("deploy"));
        assert_eq!(deploy.probes[0].addr, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(
            deploy.probes[0].effective.permit_root_login,
            Some(PermitRootLogin::Yes)
        );
        assert!(!deploy.probes[0].effective.passwords_possible());

        // Group criteria cannot be put to `sshd -T -C`: only the written body remains.
        let group = &s.matches[2];
        assert!(group.probes.is_empty());
        assert_eq!(group.body[0].0, "passwordauthentication");
    }

    #[test]
    fn a_refused_spec_is_dropped_and_a_plain_probe_has_no_matches() {
        let plain = "passwordauthentication no\nport 22\n";
        assert!(parse_with_matches(plain).unwrap().matches.is_empty());
        let refused = "passwordauthentication no\n### match /etc/ssh/sshd_config:3: Address 10.0.0.0/8\n\
                       ### spec addr=10.0.0.1,user=root\nBad connection spec\n";
        let s = parse_with_matches(refused).unwrap();
        assert_eq!(s.matches.len(), 1);
        assert!(s.matches[0].probes.is_empty());
        // sshd -T failing is still an error.
        assert!(parse_with_matches("### match x:1: all\n").is_err());
    }

    #[test]
    fn authentication_methods_without_passwords_make_password_auth_inert() {
        let mut a = crate::state::SshdAuth {
            password_authentication: Some(true),
            authentication_methods: vec!["publickey".into()],
            ..Default::default()
        };
        assert!(!a.passwords_possible());
        a.authentication_methods = vec!["publickey,password publickey".into()];
        assert!(a.passwords_possible());
        a.authentication_methods = vec!["publickey,keyboard-interactive:pam".into()];
        assert!(a.passwords_possible());
        a.authentication_methods = vec!["any".into()];
        assert!(a.passwords_possible());
        a.password_authentication = Some(false);
        assert!(!a.passwords_possible());
    }

    #[test]
    fn without_password_is_prohibit_password() {
        let s = parse("permitrootlogin without-password\n").unwrap();
        assert_eq!(s.permit_root_login, Some(PermitRootLogin::ProhibitPassword));
    }
}
