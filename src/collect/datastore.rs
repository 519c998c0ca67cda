//! Data stores: PostgreSQL (`postgresql.conf`, its `conf.d`, `pg_hba.conf`), Redis
//! (`/etc/redis/*.conf`), MySQL/MariaDB option files and `/etc/memcached.conf`, each as the
//! `stack-*` probes print them (`### file PATH` before each file). Pure: no I/O.
//!
//! Secrets are blanked on the host by the probes (`(hidden)`), and dropped again here: a
//! `requirepass`, an ACL password or a `password =` option is kept only as "set".

use super::{ParseError, check_size, clean};
use crate::state::{ConfLine, HbaRule, Memcached, Mysql, PgSetting, Postgres, Redis};

/// Splits a probe's output at `### <kind> PATH` lines: (kind, path, body, first body line's
/// number within the file = 1).
fn files(text: &str) -> Vec<(&str, String, Vec<&str>)> {
    let mut out: Vec<(&str, String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            let (kind, path) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push((kind, clean(path.trim()), Vec::new()));
        } else if let Some((_, _, body)) = out.last_mut() {
            body.push(line);
        }
    }
    out
}

fn conf_line(file: &str, line: usize, text: &str) -> ConfLine {
    ConfLine {
        file: file.to_string(),
        line,
        text: clean(text.trim()),
    }
}

/// A line with a secret keeps its name only.
fn blank_secret(text: &str, name_len: usize) -> String {
    let cut = text
        .char_indices()
        .nth(name_len)
        .map_or(text.len(), |(i, _)| i);
    format!("{} (hidden)", text[..cut].trim_end())
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// One `name = value` line of postgresql.conf: (name, value) with quotes removed.
fn pg_setting(line: &str) -> Option<(String, String)> {
    let l = line.trim();
    if l.is_empty() || l.starts_with('#') {
        return None;
    }
    let (name, rest) = match l.find(|c: char| c == '=' || c.is_whitespace()) {
        Some(i) => (&l[..i], &l[i..]),
        None => return None,
    };
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    let value = if let Some(q) = rest.strip_prefix('\'') {
        // '' is a quote inside a quoted value.
        let mut v = String::new();
        let mut chars = q.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    v.push('\'');
                    chars.next();
                } else {
                    break;
                }
            } else {
                v.push(c);
            }
        }
        v
    } else {
        rest.split(|c: char| c == '#' || c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string()
    };
    Some((name.to_ascii_lowercase(), value))
}

/// pg_hba.conf records (continuation lines joined; `include` lines are not followed).
pub fn parse_pg_hba(file: &str, text: &str) -> Result<Vec<HbaRule>, ParseError> {
    check_size("pg_hba.conf", text)?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let kind = w[0].to_ascii_lowercase();
        let at = conf_line(file, i + 1, raw);
        if kind.starts_with("include") {
            continue;
        }
        let rule = if kind == "local" {
            if w.len() < 4 {
                return Err(ParseError::new(
                    "pg_hba.conf",
                    i + 1,
                    format!("{file}: a local record needs database, user and method"),
                ));
            }
            HbaRule {
                kind,
                database: clean(w[1]),
                user: clean(w[2]),
                address: None,
                method: w[3].to_ascii_lowercase(),
                at,
            }
        } else if kind.starts_with("host") {
            if w.len() < 5 {
                return Err(ParseError::new(
                    "pg_hba.conf",
                    i + 1,
                    format!("{file}: a host record needs database, user, address and method"),
                ));
            }
            // An address with a separate netmask: `10.0.0.0 255.0.0.0 md5`.
            let (address, method) = if !w[3].contains('/')
                && w[3].parse::<std::net::IpAddr>().is_ok()
                && w.len() >= 6
                && w[4].parse::<std::net::IpAddr>().is_ok()
            {
                (format!("{} mask {}", w[3], w[4]), w[5])
            } else {
                (w[3].to_string(), w[4])
            };
            HbaRule {
                kind,
                database: clean(w[1]),
                user: clean(w[2]),
                address: Some(clean(&address)),
                method: method.to_ascii_lowercase(),
                at,
            }
        } else {
            return Err(ParseError::new(
                "pg_hba.conf",
                i + 1,
                format!("{file}: unknown record type {:?}", clean(w[0])),
            ));
        };
        out.push(rule);
    }
    Ok(out)
}

/// The `stack-postgres` probe's output: per cluster, `### cluster PATH`, then `### file PATH`
/// for postgresql.conf and each conf.d file in the order PostgreSQL reads them, then
/// `### hba PATH`.
pub fn parse_postgres(text: &str) -> Result<Vec<Postgres>, ParseError> {
    check_size("postgres config", text)?;
    let mut out: Vec<Postgres> = Vec::new();
    for (kind, path, body) in files(text) {
        match kind {
            "cluster" => out.push(Postgres {
                config: path,
                ..Postgres::default()
            }),
            "file" => {
                let Some(pg) = out.last_mut() else {
                    return Err(ParseError::new("postgres config", 0, "file before cluster"));
                };
                for (i, line) in body.iter().enumerate() {
                    if let Some((name, value)) = pg_setting(line) {
                        // Passphrases and commands are not needed and may carry secrets.
                        let secret = name.contains("pass");
                        let text = if secret {
                            blank_secret(line.trim(), name.len())
                        } else {
                            line.to_string()
                        };
                        pg.settings.insert(
                            name,
                            PgSetting {
                                value: if secret { String::new() } else { clean(&value) },
                                at: conf_line(&path, i + 1, &text),
                            },
                        );
                    }
                }
            }
            "hba" => {
                let Some(pg) = out.last_mut() else {
                    return Err(ParseError::new("pg_hba.conf", 0, "hba before cluster"));
                };
                pg.hba = parse_pg_hba(&path, &body.join("\n"))?;
            }
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Redis

/// One redis.conf (after the probe's `### file PATH` line).
pub fn parse_redis_conf(file: &str, text: &str) -> Result<Redis, ParseError> {
    check_size("redis.conf", text)?;
    let mut r = Redis {
        config: file.to_string(),
        ..Redis::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = super::shell_words(line)
            .unwrap_or_else(|_| line.split_whitespace().map(str::to_string).collect());
        let Some(key) = words.first().map(|k| k.to_ascii_lowercase()) else {
            continue;
        };
        let arg = |n: usize| words.get(n).map(String::as_str).unwrap_or("");
        let at = || conf_line(file, i + 1, line);
        match key.as_str() {
            "bind" => {
                r.bind = words[1..].iter().map(|w| clean(w)).collect();
                r.bind_at = Some(at());
            }
            "port" => {
                r.port = arg(1).parse().map_err(|_| {
                    ParseError::new("redis.conf", i + 1, format!("{file}: port {:?}", arg(1)))
                })?;
                r.port_at = Some(at());
            }
            "tls-port" => r.tls_port = arg(1).parse().ok().filter(|p| *p != 0),
            "protected-mode" => {
                r.protected_mode = arg(1).eq_ignore_ascii_case("yes");
                r.protected_mode_at = Some(at());
            }
            "requirepass" => {
                // The probe sends `(hidden)`; an empty string means no password.
                r.requirepass = !arg(1).is_empty();
            }
            "aclfile" => r.aclfile = Some(clean(arg(1))),
            "user" => {
                let name = clean(arg(1));
                let rules = words.get(2..).unwrap_or_default();
                let has_pass = rules
                    .iter()
                    .any(|w| w.starts_with('>') || w.starts_with('#'));
                let nopass = rules.iter().any(|w| w == "nopass");
                let on = rules.iter().any(|w| w == "on");
                if name == "default" && nopass {
                    r.default_user_nopass = true;
                }
                if has_pass && on && !nopass {
                    r.acl_users_with_password.push(name);
                }
            }
            _ => {}
        }
    }
    Ok(r)
}

/// The `stack-redis` probe's output: `### file PATH` before each server's configuration.
pub fn parse_redis(text: &str) -> Result<Vec<Redis>, ParseError> {
    check_size("redis config", text)?;
    let parts = files(text);
    // `### version Redis server v=7.0.15 sha=...`: the path slot holds the rest of the line.
    let major = parts
        .iter()
        .filter(|(k, _, _)| *k == "version")
        .find_map(|(_, rest, _)| {
            let v = rest.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
            v.split('.').next()?.parse::<u32>().ok()
        });
    parts
        .into_iter()
        .filter(|(k, _, _)| *k == "file")
        .map(|(_, path, body)| {
            parse_redis_conf(&path, &body.join("\n")).map(|mut r| {
                r.major_version = major;
                r
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// MySQL / MariaDB, Memcached

/// MySQL/MariaDB option files (`### file PATH` before each), server groups only.
pub fn parse_mysql(text: &str) -> Result<Mysql, ParseError> {
    check_size("mysql config", text)?;
    let mut m = Mysql::default();
    for (kind, path, body) in files(text) {
        if kind != "file" {
            continue;
        }
        m.files.push(path.clone());
        let mut server = false;
        for (i, raw) in body.iter().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(g) = line.strip_prefix('[') {
                let g = g.trim_end_matches(']').to_ascii_lowercase();
                server = g == "mysqld"
                    || g == "server"
                    || g == "mariadb"
                    || g == "mariadbd"
                    || g.starts_with("mysqld-")
                    || g.starts_with("mariadb-");
                continue;
            }
            if !server {
                continue;
            }
            let key = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
                .replace('_', "-");
            match key.as_str() {
                "bind-address" => m.bind_address = Some(conf_line(&path, i + 1, line)),
                "require-secure-transport" => {
                    m.require_secure_transport = Some(conf_line(&path, i + 1, line));
                }
                "skip-networking" => m.skip_networking = true,
                _ => {}
            }
        }
    }
    Ok(m)
}

/// `/etc/memcached.conf` (one option per line, as Debian ships it).
pub fn parse_memcached(file: &str, text: &str) -> Result<Memcached, ParseError> {
    check_size("memcached.conf", text)?;
    let mut m = Memcached {
        config: file.to_string(),
        ..Memcached::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        match w.next() {
            Some("-l" | "--listen") => {
                m.listen.extend(
                    w.next()
                        .unwrap_or("")
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(clean),
                );
                m.listen_at = Some(conf_line(file, i + 1, line));
            }
            Some("-S" | "--enable-sasl") => m.sasl = true,
            _ => {}
        }
    }
    Ok(m)
}

/// The `stack-memcached` probe's output (`### file PATH` then the file), if a file came.
pub fn parse_memcached_probe(text: &str) -> Result<Option<Memcached>, ParseError> {
    match files(text).into_iter().find(|(k, _, _)| *k == "file") {
        Some((_, path, body)) => parse_memcached(&path, &body.join("\n")).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pg_settings_last_wins_and_quotes_unfold() {
        let t = "### cluster /e/pg.conf\n### file /e/pg.conf\nssl = on\nlisten_addresses = 'a, b' # c\n\
                 ### file /e/conf.d/x.conf\nssl=off\nssl_key_file_pass = 'p''w'\n### hba /e/hba\n\
                 host all all 10.0.0.0 255.0.0.0 md5\nlocal all all peer\n";
        let pg = parse_postgres(t).unwrap();
        assert_eq!(pg.len(), 1);
        let p = &pg[0];
        assert!(!p.ssl_on());
        assert_eq!(p.settings["ssl"].at.cite(), "/e/conf.d/x.conf:1: ssl=off");
        assert_eq!(p.listen_addresses(), vec!["a", "b"]);
        assert_eq!(p.settings["ssl_key_file_pass"].value, "");
        assert!(!p.settings["ssl_key_file_pass"].at.text.contains("p'w"));
        assert_eq!(p.hba.len(), 2);
        assert_eq!(p.hba[0].address.as_deref(), Some("10.0.0.0 mask 255.0.0.0"));
        assert!(p.hba[0].non_local() && p.hba[0].allows_plaintext());
        assert!(!p.hba[1].non_local());
    }

    #[test]
    fn bad_hba_names_file_and_line() {
        let e = parse_pg_hba("/x/pg_hba.conf", "\nhost all\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("/x/pg_hba.conf"));
        assert!(parse_pg_hba("/x", "bogus a b c\n").is_err());
    }

    #[test]
    fn redis_acl_and_password_are_only_flags() {
        let r = parse_redis_conf(
            "/etc/redis/r.conf",
            "bind 10.0.0.5 -::1\nport 6380\nprotected-mode no\nrequirepass (hidden)\n\
             user app on >(hidden) ~* +@all\nuser default on nopass\n",
        )
        .unwrap();
        assert_eq!(r.bind, vec!["10.0.0.5", "-::1"]);
        assert_eq!(r.port, 6380);
        assert!(!r.protected_mode && r.requirepass && r.default_user_nopass);
        assert!(!r.requires_auth(), "default user nopass wins");
        assert_eq!(r.acl_users_with_password, vec!["app"]);
        assert!(r.non_loopback());
        let lo = parse_redis_conf("/r", "bind 127.0.0.1 -::1\n").unwrap();
        assert!(!lo.non_loopback() && lo.protected_mode && !lo.requirepass);
        assert!(parse_redis_conf("/r", "port x\n").is_err());
        // A bare `user` line (no name, no rules) is not a crash.
        assert!(parse_redis_conf("/r", "user\nbind\n").is_ok());
        // No bind line: every interface.
        assert!(
            parse_redis_conf("/r", "port 6379\n")
                .unwrap()
                .non_loopback()
        );
    }

    #[test]
    fn mysql_reads_server_groups_only() {
        let m = parse_mysql(
            "### file /etc/mysql/my.cnf\n[client]\nbind-address = 1.2.3.4\n[mysqld]\n\
             bind_address = 0.0.0.0\nrequire_secure_transport = ON\n",
        )
        .unwrap();
        assert_eq!(m.bind_value(), "0.0.0.0");
        assert!(m.secure_transport_required());
        assert_eq!(m.bind_address.unwrap().line, 4);
    }

    #[test]
    fn memcached_listen_and_sasl() {
        let m = parse_memcached(
            "/etc/memcached.conf",
            "# x\n-m 64\n-l 127.0.0.1,10.1.1.1\n-S\n",
        )
        .unwrap();
        assert_eq!(m.listen, vec!["127.0.0.1", "10.1.1.1"]);
        assert!(m.sasl);
        assert_eq!(m.listen_at.unwrap().line, 3);
        assert!(parse_memcached_probe("").unwrap().is_none());
    }
}
