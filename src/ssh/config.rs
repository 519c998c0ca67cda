//! `~/.ssh/config`: the subset rampart honours, parsed and looked up as OpenSSH does.
//!
//! Owns: parsing ssh_config text (`Host` blocks with patterns and `!` negation, `Include`,
//! `Key value` and `Key=value`, quoted arguments), "first value wins" lookup (IdentityFile
//! accumulates), and `%`/`~` expansion of paths. The keys honoured are `HostName`, `User`,
//! `Port`, `IdentityFile`, `CertificateFile`, `IdentitiesOnly`, `ProxyJump`,
//! `UserKnownHostsFile` and `StrictHostKeyChecking`;
//! everything else is ignored, and so are `Match` blocks (whose conditions may run commands).
//! [`parse`] and [`SshConfig::lookup`] are pure; [`SshConfig::load`] reads files (and the files
//! they include) and nothing else.
//!
//! Must not: execute anything (`ProxyCommand`, `Match exec`, `LocalCommand` are never honoured).

use std::path::{Path, PathBuf};

use crate::ssh::known_hosts::wildcard_match;

/// A line of ssh_config that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// When a directive applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Always,
    /// A `Host` line's patterns (lower-cased).
    Host(Vec<String>),
    /// Inside a `Match` block: never evaluated by rampart.
    Never,
}

impl Condition {
    fn applies(&self, host: &str) -> bool {
        match self {
            Condition::Always => true,
            Condition::Never => false,
            Condition::Host(patterns) => {
                let host = host.to_ascii_lowercase();
                let mut positive = false;
                for p in patterns {
                    if let Some(neg) = p.strip_prefix('!') {
                        if wildcard_match(neg.as_bytes(), host.as_bytes()) {
                            return false;
                        }
                    } else if wildcard_match(p.as_bytes(), host.as_bytes()) {
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

/// One `Key args...` line, with the block condition it sits under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Directive {
    /// Conditions of the enclosing blocks (outer `Host` of an `Include`, then the inner one).
    conditions: Vec<Condition>,
    /// Lower-cased key.
    key: String,
    args: Vec<String>,
    file: PathBuf,
    line: usize,
}

/// What one file says, before includes are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Directive(Directive),
    Include {
        conditions: Vec<Condition>,
        patterns: Vec<String>,
    },
}

/// A parsed ssh_config, includes resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    directives: Vec<Directive>,
}

/// What `StrictHostKeyChecking` asks for. rampart never accepts a changed key, so `no` and
/// `off` mean the same as `accept-new` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    Yes,
    AcceptNew,
}

/// One hop of a `ProxyJump` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// The settings ssh_config gives one host; `None` or empty where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    /// `CertificateFile` values (accumulate, like `IdentityFile`), unexpanded.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentitiesOnly`: offer only the identity and certificate files configured, not every
    /// key the agent holds.
    pub identities_only: Option<bool>,
    /// `Some(vec![])` for `ProxyJump none`.
    pub proxy_jump: Option<Vec<JumpHost>>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
}

/// Splits an ssh_config line into its key and argument words: the key ends at whitespace or
/// `=`, then arguments are whitespace separated and `"` quotes group.
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let key_end = text.find([' ', '\t', '=']).unwrap_or(text.len());
    let (key, rest) = text.split_at(key_end);
    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let mut words = vec![key.to_string()];
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut has_word = false;
    for c in rest.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_word = true;
            }
            ' ' | '\t' if !in_quotes => {
                if has_word {
                    words.push(std::mem::take(&mut cur));
                    has_word = false;
                }
            }
            c => {
                cur.push(c);
                has_word = true;
            }
        }
    }
    if in_quotes {
        return Err("unterminated quote".into());
    }
    if has_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses one file's text. `outer` are the conditions in force where the file is included.
fn parse_items(text: &str, file: &Path, outer: &[Condition]) -> Result<Vec<Item>, ConfigError> {
    let mut items = Vec::new();
    let mut block = Condition::Always;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let err = |message: String| ConfigError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words = split_words(trimmed).map_err(&err)?;
        if words.is_empty() {
            continue;
        }
        let key = words.remove(0).to_ascii_lowercase();
        let mut conditions = outer.to_vec();
        match key.as_str() {
            "host" => {
                if words.is_empty() {
                    return Err(err("Host without patterns".into()));
                }
                block = Condition::Host(
                    words
                        .iter()
                        .flat_map(|w| w.split(','))
                        .filter(|p| !p.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect(),
                );
                continue;
            }
            "match" => {
                // `Match all` is the only form that needs no evaluation.
                block = if words.len() == 1 && words[0].eq_ignore_ascii_case("all") {
                    Condition::Always
                } else {
                    Condition::Never
                };
                continue;
            }
            _ => {}
        }
        conditions.push(block.clone());
        if words.is_empty() {
            return Err(err(format!("{key} without a value")));
        }
        if key == "include" {
            items.push(Item::Include {
                conditions,
                patterns: words,
            });
        } else {
            items.push(Item::Directive(Directive {
                conditions,
                key,
                args: words,
                file: file.to_path_buf(),
                line,
            }));
        }
    }
    Ok(items)
}

/// Parses ssh_config text without following `Include` (pure; includes are dropped).
pub fn parse(text: &str, file: &Path) -> Result<SshConfig, ConfigError> {
    let directives = parse_items(text, file, &[])?
        .into_iter()
        .filter_map(|i| match i {
            Item::Directive(d) => Some(d),
            Item::Include { .. } => None,
        })
        .collect();
    Ok(SshConfig { directives })
}

/// Include depth OpenSSH allows.
const MAX_INCLUDE_DEPTH: usize = 16;

impl SshConfig {
    /// Reads a config file and the files it includes. A missing top-level file is an empty
    /// config.
    pub fn load(path: &Path) -> Result<SshConfig, ConfigError> {
        let mut directives = Vec::new();
        let home = crate::paths::home_dir();
        load_into(path, &[], &home, 0, &mut directives)?;
        Ok(SshConfig { directives })
    }

    /// The user's `~/.ssh/config` (empty when absent).
    pub fn load_user() -> Result<SshConfig, ConfigError> {
        SshConfig::load(&crate::paths::home_dir().join(".ssh/config"))
    }

    /// The settings for `host` (the name as given, before `HostName`).
    pub fn lookup(&self, host: &str) -> HostConfig {
        let mut out = HostConfig::default();
        let mut seen_ukh = false;
        let mut hostname_raw: Option<String> = None;
        for d in &self.directives {
            if !d.conditions.iter().all(|c| c.applies(host)) {
                continue;
            }
            let first = d.args[0].clone();
            match d.key.as_str() {
                "hostname" if hostname_raw.is_none() => hostname_raw = Some(first),
                "user" if out.user.is_none() => out.user = Some(first),
                "port" if out.port.is_none() => out.port = first.parse().ok(),
                "identityfile" => out.identity_files.push(PathBuf::from(first)),
                "certificatefile" => out.certificate_files.push(PathBuf::from(first)),
                "identitiesonly" if out.identities_only.is_none() => {
                    out.identities_only = match first.to_ascii_lowercase().as_str() {
                        "yes" | "true" => Some(true),
                        "no" | "false" => Some(false),
                        _ => None,
                    };
                }
                "proxyjump" if out.proxy_jump.is_none() => {
                    out.proxy_jump = Some(if first.eq_ignore_ascii_case("none") {
                        Vec::new()
                    } else {
                        parse_jumps(&d.args.join(","))
                    });
                }
                "userknownhostsfile" if !seen_ukh => {
                    seen_ukh = true;
                    if !first.eq_ignore_ascii_case("none") {
                        out.user_known_hosts_files = d.args.iter().map(PathBuf::from).collect();
                    }
                }
                "stricthostkeychecking" if out.strict_host_key_checking.is_none() => {
                    out.strict_host_key_checking = match first.to_ascii_lowercase().as_str() {
                        "yes" | "ask" => Some(StrictHostKeyChecking::Yes),
                        "accept-new" | "no" | "off" => Some(StrictHostKeyChecking::AcceptNew),
                        _ => None,
                    };
                }
                _ => {}
            }
        }
        out.hostname = hostname_raw.map(|h| expand_tokens(&h, host, host, "", 0));
        out
    }
}

fn load_into(
    path: &Path,
    outer: &[Condition],
    home: &Path,
    depth: usize,
    out: &mut Vec<Directive>,
) -> Result<(), ConfigError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Err(ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: "Include nested too deeply".into(),
        });
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && depth == 0 => return Ok(()),
        Err(e) => {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: 0,
                message: format!("cannot read: {e}"),
            });
        }
    };
    for item in parse_items(&text, path, outer)? {
        match item {
            Item::Directive(d) => out.push(d),
            Item::Include {
                conditions,
                patterns,
            } => {
                for pattern in patterns {
                    for file in include_files(&pattern, home)? {
                        load_into(&file, &conditions, home, depth + 1, out)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Files an `Include` pattern names: `~` expanded, relative to `~/.ssh`, and a `*`/`?`
/// pattern allowed in the last component (sorted, as glob(3) returns them).
fn include_files(pattern: &str, home: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let path = if let Some(rest) = pattern.strip_prefix("~/") {
        home.join(rest)
    } else if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        home.join(".ssh").join(pattern)
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    if !name.contains(['*', '?']) {
        return Ok(if path.exists() {
            vec![path]
        } else {
            Vec::new()
        });
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    !n.starts_with('.') && wildcard_match(name.as_bytes(), n.as_bytes())
                })
            })
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    Ok(files)
}

/// Parses `[user@]host[:port]` items of a comma-separated `ProxyJump` value.
pub fn parse_jumps(value: &str) -> Vec<JumpHost> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (user, rest) = match item.rsplit_once('@') {
                Some((u, r)) => (Some(u.to_string()), r),
                None => (None, item),
            };
            // `[v6]:port` or `host:port`; a bare IPv6 address has several colons.
            let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
                match inner.split_once(']') {
                    Some((h, tail)) => (
                        h.to_string(),
                        tail.strip_prefix(':').and_then(|p| p.parse().ok()),
                    ),
                    None => (rest.to_string(), None),
                }
            } else if rest.matches(':').count() == 1 {
                let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
                (h.to_string(), p.parse().ok())
            } else {
                (rest.to_string(), None)
            };
            JumpHost { user, host, port }
        })
        .collect()
}

/// Expands `%%`, `%h` (host name), `%n` (name as given), `%r` (remote user), `%p` (port),
/// `%d` (home) and `%u` (local user), and a leading `~/`.
pub fn expand_tokens(raw: &str, hostname: &str, original: &str, user: &str, port: u16) -> String {
    let home = crate::paths::home_dir();
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(hostname),
            Some('n') => out.push_str(original),
            Some('r') => out.push_str(user),
            Some('p') => out.push_str(&port.to_string()),
            Some('d') => out.push_str(&home.to_string_lossy()),
            Some('u') => out.push_str(&std::env::var("USER").unwrap_or_default()),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    if let Some(rest) = out.strip_prefix("~/") {
        return home.join(rest).to_string_lossy().into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> SshConfig {
        parse(text, Path::new("config")).unwrap()
    }

    #[test]
    fn first_value_wins_identity_files_accumulate() {
        let c = cfg("Host db*\n  User dbadmin\n  IdentityFile ~/.ssh/db\n\
                     Host *\n  User fallback\n  Port 2222\n  IdentityFile ~/.ssh/id_ed25519\n");
        let h = c.lookup("db1");
        assert_eq!(h.user.as_deref(), Some("dbadmin"));
        assert_eq!(h.port, Some(2222));
        assert_eq!(
            h.identity_files,
            vec![
                PathBuf::from("~/.ssh/db"),
                PathBuf::from("~/.ssh/id_ed25519")
            ]
        );
        let w = c.lookup("web1");
        assert_eq!(w.user.as_deref(), Some("fallback"));
        assert_eq!(w.identity_files.len(), 1);
    }

    #[test]
    fn negation_and_comma_lists() {
        let c = cfg("Host *.lab !vpn1.lab\n User a\nHost vpn1.lab,other\n User b\n");
        assert_eq!(c.lookup("web1.lab").user.as_deref(), Some("a"));
        assert_eq!(c.lookup("VPN1.lab").user.as_deref(), Some("b"));
        assert_eq!(c.lookup("other").user.as_deref(), Some("b"));
        assert_eq!(c.lookup("none").user, None);
    }

    #[test]
    fn equals_quotes_and_case() {
        let c = cfg("HOST=x\n  hostname=10.0.0.1\n  USER \"with space\"\n  port = 22\n");
        let h = c.lookup("x");
        assert_eq!(h.hostname.as_deref(), Some("10.0.0.1"));
        assert_eq!(h.user.as_deref(), Some("with space"));
        assert_eq!(h.port, Some(22));
    }

    #[test]
    fn hostname_token_and_match_blocks_ignored() {
        let c = cfg("Match exec \"true\"\n User evil\nHost h\n HostName %h.example.com\n");
        let h = c.lookup("h");
        assert_eq!(h.hostname.as_deref(), Some("h.example.com"));
        assert_eq!(h.user, None);
    }

    #[test]
    fn proxy_jump_and_none() {
        let c = cfg(
            "Host a\n ProxyJump root@edge:2022,[::1]:22,plain\nHost b\n ProxyJump none\nHost *\n ProxyJump x\n",
        );
        assert_eq!(
            c.lookup("a").proxy_jump.unwrap(),
            vec![
                JumpHost {
                    user: Some("root".into()),
                    host: "edge".into(),
                    port: Some(2022)
                },
                JumpHost {
                    user: None,
                    host: "::1".into(),
                    port: Some(22)
                },
                JumpHost {
                    user: None,
                    host: "plain".into(),
                    port: None
                },
            ]
        );
        assert_eq!(c.lookup("b").proxy_jump, Some(vec![]));
    }

    #[test]
    fn known_hosts_and_strictness() {
        let c = cfg(
            "Host a\n UserKnownHostsFile /k1 /k2\n StrictHostKeyChecking accept-new\nHost *\n UserKnownHostsFile /k3\n StrictHostKeyChecking no\n",
        );
        let a = c.lookup("a");
        assert_eq!(
            a.user_known_hosts_files,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert_eq!(
            a.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
        let b = c.lookup("b");
        assert_eq!(b.user_known_hosts_files, vec![PathBuf::from("/k3")]);
        assert_eq!(
            b.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("Host a\n User \"open\n", Path::new("/x/config")).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.to_string(), "/x/config:2: unterminated quote");
        assert!(parse("Host\n", Path::new("c")).is_err());
    }

    #[test]
    fn include_keeps_outer_condition() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("inc.conf");
        std::fs::write(&inc, "User included\n").unwrap();
        let main = dir.path().join("config");
        std::fs::write(
            &main,
            format!(
                "Host only\n Include {}\nHost *\n User other\n",
                inc.display()
            ),
        )
        .unwrap();
        let c = SshConfig::load(&main).unwrap();
        assert_eq!(c.lookup("only").user.as_deref(), Some("included"));
        assert_eq!(c.lookup("else").user.as_deref(), Some("other"));
    }

    #[test]
    fn certificate_files_accumulate_and_identities_only_first_wins() {
        let c = cfg(
            "Host db*\n CertificateFile ~/.ssh/db-cert.pub\n IdentitiesOnly yes\n\
                     Host *\n CertificateFile=/etc/ssh/fleet-cert.pub\n IdentitiesOnly no\n",
        );
        let h = c.lookup("db1");
        assert_eq!(
            h.certificate_files,
            vec![
                PathBuf::from("~/.ssh/db-cert.pub"),
                PathBuf::from("/etc/ssh/fleet-cert.pub")
            ]
        );
        assert_eq!(h.identities_only, Some(true));
        let w = c.lookup("web1");
        assert_eq!(w.certificate_files.len(), 1);
        assert_eq!(w.identities_only, Some(false));
        assert_eq!(
            cfg("Host *\n IdentitiesOnly maybe\n")
                .lookup("x")
                .identities_only,
            None
        );
    }

    #[test]
    fn token_expansion() {
        assert_eq!(
            expand_tokens("%h-%r-%p-%%-%n", "h", "orig", "u", 22),
            "h-u-22-%-orig"
        );
    }
}
