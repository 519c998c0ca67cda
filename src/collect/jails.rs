//! What fail2ban's jails read: the jail configuration files (`jail.conf`, `jail.d/*.conf`,
//! `jail.local`, `jail.d/*.local`, in fail2ban's order of precedence, with the
//! `paths-*.conf` they interpolate from), whether a systemd journal exists, and `stat` of
//! the files the running jails poll. Pure: no I/O, and no call to fail2ban-client: the
//! `fail2ban-jails` probe only reads files.

use std::collections::BTreeMap;

use super::{ParseError, check_size, clean};
use crate::state::{JailConfig, JailSources, LogFileStat};

const WHAT: &str = "fail2ban jail files";

/// A value and where it was set.
#[derive(Debug, Clone)]
struct Val {
    value: String,
    at: String,
}

type Sections = BTreeMap<String, BTreeMap<String, Val>>;

/// Reads one INI file into `into` (later files override earlier ones key by key).
fn read_ini(path: &str, body: &str, into: &mut Sections) {
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (i, raw) in body.lines().enumerate() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            last_key = None;
            continue;
        }
        let Some(sec) = &section else { continue };
        // A continuation line (indented) extends the previous value.
        if line.starts_with([' ', '\t']) {
            if let Some(k) = &last_key
                && let Some(v) = into.get_mut(sec).and_then(|s| s.get_mut(k))
            {
                v.value.push('\n');
                v.value.push_str(t);
            }
            continue;
        }
        let split = match (t.find('='), t.find(':')) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = split else { continue };
        let key = t[..at].trim().to_ascii_lowercase();
        let value = t[at + 1..].trim().to_string();
        into.entry(sec.clone()).or_default().insert(
            key.clone(),
            Val {
                value,
                at: format!("{}:{}", clean(path), i + 1),
            },
        );
        last_key = Some(key);
    }
}

/// Looks `key` up in `section`, then in DEFAULT.
fn lookup<'a>(secs: &'a Sections, section: &str, key: &str) -> Option<&'a Val> {
    secs.get(section)
        .and_then(|s| s.get(key))
        .or_else(|| secs.get("DEFAULT").and_then(|s| s.get(key)))
}

/// Resolves `%(name)s` references (bounded depth; unknown names stay as written).
fn interpolate(secs: &Sections, section: &str, value: &str, depth: usize) -> String {
    if depth > 10 || !value.contains("%(") {
        return value.to_string();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("%(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(")s") {
            Some(j) => {
                let name = after[..j].to_ascii_lowercase();
                let (sec, key) = match name.split_once('/') {
                    Some(("default", k)) => ("DEFAULT".to_string(), k.to_string()),
                    Some((s, k)) => (s.to_string(), k.to_string()),
                    None => (section.to_string(), name.clone()),
                };
                match lookup(secs, &sec, &key) {
                    Some(v) => {
                        out.push_str(&interpolate(secs, section, &v.value, depth + 1));
                    }
                    _ => {
                        out.push_str("%(");
                        out.push_str(&after[..j]);
                        out.push_str(")s");
                    }
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on"
    )
}

/// Parses the probe's output: `### file PATH` / `### paths PATH` sections, then
/// `### journal yes|no`.
pub fn parse_probe(text: &str) -> Result<JailSources, ParseError> {
    check_size(WHAT, text)?;
    let mut paths: Vec<(String, String)> = Vec::new();
    let mut jails: Vec<(String, String)> = Vec::new();
    let mut journal = false;
    enum Cur {
        None,
        Jail,
        Paths,
    }
    let mut cur = Cur::None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("### file ") {
            jails.push((p.trim().to_string(), String::new()));
            cur = Cur::Jail;
        } else if let Some(p) = line.strip_prefix("### paths ") {
            paths.push((p.trim().to_string(), String::new()));
            cur = Cur::Paths;
        } else if let Some(j) = line.strip_prefix("### journal") {
            journal = j.trim() == "yes";
            cur = Cur::None;
        } else {
            let buf = match cur {
                Cur::Jail => jails.last_mut().map(|(_, b)| b),
                Cur::Paths => paths.last_mut().map(|(_, b)| b),
                Cur::None => None,
            };
            if let Some(b) = buf {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    if jails.is_empty() {
        return Err(ParseError::new(
            WHAT,
            0,
            "no jail configuration file was read",
        ));
    }
    // paths-common before paths-debian (the latter includes the former with `before`).
    paths.sort_by_key(|(p, _)| !p.ends_with("paths-common.conf"));
    let mut secs = Sections::new();
    for (p, b) in paths.iter().chain(jails.iter()) {
        read_ini(p, b, &mut secs);
    }
    let mut out = Vec::new();
    for name in secs.keys() {
        if matches!(
            name.as_str(),
            "DEFAULT" | "INCLUDES" | "Definition" | "Init"
        ) {
            continue;
        }
        // paths-*.conf only define DEFAULT values; a jail is a section of a jail file.
        let get = |k: &str| lookup(&secs, name, k);
        let enabled = get("enabled");
        let backend = get("backend");
        let logpath = get("logpath");
        out.push(JailConfig {
            name: clean(name),
            enabled: enabled.is_some_and(|v| truthy(&interpolate(&secs, name, &v.value, 0))),
            enabled_at: enabled.map(|v| v.at.clone()),
            backend: backend.map(|v| clean(interpolate(&secs, name, &v.value, 0).trim())),
            backend_at: backend.map(|v| v.at.clone()),
            logpath: logpath
                .map(|v| {
                    interpolate(&secs, name, &v.value, 0)
                        .split('\n')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(clean)
                        .collect()
                })
                .unwrap_or_default(),
            logpath_at: logpath.map(|v| v.at.clone()),
        });
    }
    Ok(JailSources {
        jails: out,
        journal,
        files: Vec::new(),
    })
}

/// One `### stat KIND|SIZE|PATH` line of the fail2ban probe (`missing` when absent). The
/// probe prints `-` for the size: a log grows with every line, which no refresh fingerprint
/// can vouch for, and whether a jail can ban depends only on the file being there.
pub fn parse_stat(line: &str) -> Option<LogFileStat> {
    let rest = line.strip_prefix("### stat ")?;
    let mut it = rest.splitn(3, '|');
    let kind = it.next()?.trim();
    let size = it.next()?.trim().parse().ok();
    let path = clean(it.next()?.trim());
    Some(if kind == "missing" {
        LogFileStat {
            path,
            exists: false,
            kind: None,
            size: None,
        }
    } else {
        LogFileStat {
            path,
            exists: true,
            kind: Some(clean(kind)),
            size,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn precedence_interpolation_and_continuations() {
        let t = "### paths /etc/fail2ban/paths-debian.conf\n[DEFAULT]\nsyslog_authpriv = /var/log/auth.log\n\
                 ### paths /etc/fail2ban/paths-common.conf\n[DEFAULT]\ndefault_backend = %(default/backend)s\nsshd_log = %(syslog_authpriv)s\nsshd_backend = %(default_backend)s\n\
                 ### file /etc/fail2ban/jail.conf\n[DEFAULT]\nenabled = false\nbackend = auto\n[sshd]\nlogpath = %(sshd_log)s\nbackend = %(sshd_backend)s\n[apache-auth]\nlogpath = /var/log/a.log\n  /var/log/b.log\n\
                 ### file /etc/fail2ban/jail.d/defaults-debian.conf\n[sshd]\nenabled = true\n\
                 ### journal no\n";
        let s = parse_probe(t).unwrap();
        assert!(!s.journal);
        let sshd = s.jails.iter().find(|j| j.name == "sshd").unwrap();
        assert!(sshd.enabled);
        assert_eq!(
            sshd.enabled_at.as_deref(),
            Some("/etc/fail2ban/jail.d/defaults-debian.conf:2")
        );
        assert_eq!(sshd.logpath, vec!["/var/log/auth.log"]);
        assert_eq!(sshd.backend.as_deref(), Some("auto"));
        let a = s.jails.iter().find(|j| j.name == "apache-auth").unwrap();
        assert!(!a.enabled);
        assert_eq!(a.logpath.len(), 2);
    }

    #[test]
    fn self_reference_terminates() {
        let t = "### file /j\n[x]\nenabled = true\nlogpath = %(logpath)s\n### journal yes\n";
        let s = parse_probe(t).unwrap();
        assert!(s.journal);
        assert_eq!(s.jails.len(), 1);
    }

    #[test]
    fn stat_lines() {
        let m = parse_stat("### stat missing|0|/var/log/x.log").unwrap();
        assert!(!m.exists);
        let f = parse_stat("### stat regular file|42|/var/log/auth.log").unwrap();
        assert_eq!(f.size, Some(42));
        assert!(parse_stat("### stat").is_none());
        assert!(parse_probe("### journal no\n").is_err());
    }
}
