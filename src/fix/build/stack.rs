//! The stack fixes: `pg-enable-tls` and `redis-bind-private`. Built, like the others, from
//! the host's typed state: paths from a version number and a checked cluster or file name,
//! pg_hba line numbers, a port and the host's own address. The Redis password is read on the
//! host into `REDISCLI_AUTH` and never travels; file contents travel on stdin.

use super::{Built, Expect, Input, Step, built};
use crate::fix::FixError;
use crate::fix::catalogue::FixSpec;
use crate::inventory::Address;
use crate::ssh::{MutatingCommand, SafeName};
use crate::state::{Postgres, Redis};

/// `/etc/postgresql/VERSION/CLUSTER/postgresql.conf` → (VERSION, CLUSTER).
fn pg_cluster(config: &str) -> Option<(u64, SafeName)> {
    let rest = config.strip_prefix("/etc/postgresql/")?;
    let rest = rest.strip_suffix("/postgresql.conf")?;
    let (version, cluster) = rest.split_once('/')?;
    let version = version.parse().ok()?;
    if cluster.starts_with('.') || cluster.contains("..") || cluster.contains('/') {
        return None;
    }
    Some((version, SafeName::new(cluster).ok()?))
}

/// The drop-in `ssl = on` (and Debian's snakeoil pair when no certificate is configured).
pub fn pg_tls_conf(configured_cert: bool) -> String {
    let mut s = String::from("# written by rampart (fix pg-enable-tls)\nssl = on\n");
    if !configured_cert {
        s.push_str("ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'\n");
        s.push_str("ssl_key_file = '/etc/ssl/private/ssl-cert-snakeoil.key'\n");
    }
    s
}

/// Writes the drop-in (stdin), turns the named pg_hba `host` lines into `hostssl`, reloads
/// (pg_reload_conf: never a restart), and checks `SHOW ssl` says on and pg_hba has no error;
/// otherwise puts both files back and reloads again.
/// Arguments: VERSION CLUSTER PORT LINE...
const PG_APPLY: &str = "PATH=$PATH:/usr/sbin:/sbin:/usr/bin; d=\"/etc/postgresql/$1/$2\"; port=\"$3\"; shift 3; \
f=\"$d/conf.d/zz-rampart-tls.conf\"; h=\"$d/pg_hba.conf\"; \
q() { setpriv --reuid=postgres --regid=postgres --init-groups -- psql -X -h /run/postgresql -p \"$port\" -d postgres -tAqc \"$1\"; }; \
mkdir -p \"$d/conf.d\" && cp -p \"$h\" \"$h.rampart-bak\" || exit 1; \
umask 022; cat > \"$f.rampart-new\" && mv -f \"$f.rampart-new\" \"$f\" || exit 1; \
for n in \"$@\"; do sed -i -E \"${n}s/^([[:space:]]*)host([[:space:]])/\\1hostssl\\2/\" \"$h\" || break; done; \
q 'SELECT pg_reload_conf()' >/dev/null; i=0; while [ $i -lt 10 ]; do \
if [ \"$(q 'SHOW ssl')\" = on ] && [ -z \"$(q 'SELECT 1 FROM pg_hba_file_rules WHERE error IS NOT NULL LIMIT 1')\" ]; then \
rm -f \"$h.rampart-bak\"; echo \"ssl = on, pg_hba reloaded\"; exit 0; fi; i=$((i+1)); sleep 0.5; done; \
rm -f \"$f\"; mv -f \"$h.rampart-bak\" \"$h\"; q 'SELECT pg_reload_conf()' >/dev/null; \
echo \"ssl did not come on (see the PostgreSQL log): the drop-in and pg_hba were put back\" >&2; exit 1";

fn pick<'a, T>(
    spec: &FixSpec,
    i: &Input<'_>,
    what: &str,
    all: &'a [T],
    port_of: impl Fn(&T) -> u16,
) -> Result<&'a T, FixError> {
    let matching: Vec<&T> = all
        .iter()
        .filter(|x| i.params.port.is_none_or(|p| p == port_of(x)))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(i.precondition(
            spec,
            match i.params.port {
                Some(p) => format!("no {what} on port {p} was found"),
                None => format!("no {what} was found"),
            },
        )),
        _ => Err(i.precondition(
            spec,
            format!("several {what} servers: name one with --param port=PORT"),
        )),
    }
}

pub(super) fn pg_enable_tls(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let pg: &Postgres = pick(
        spec,
        i,
        "PostgreSQL",
        &i.state.stack.postgres,
        Postgres::port,
    )?;
    let port = pg.port();
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: &["TLS-INTERNAL-MISSING"],
            port: Some(port),
        }],
        i.ssh_port(),
    );
    let (version, cluster) = pg_cluster(&pg.config).ok_or_else(|| {
        i.precondition(
            spec,
            format!(
                "the cluster's configuration {} is not /etc/postgresql/VERSION/CLUSTER/postgresql.conf",
                pg.config
            ),
        )
    })?;
    let hba_file = format!("/etc/postgresql/{version}/{}/pg_hba.conf", cluster.as_str());
    let nossl: Vec<String> = pg
        .hba
        .iter()
        .filter(|r| r.non_local() && r.kind == "hostnossl" && r.method != "reject")
        .map(|r| r.at.cite())
        .collect();
    if !nossl.is_empty() {
        return Err(i.precondition(
            spec,
            format!(
                "pg_hba asks for no TLS on purpose ({}): change those lines by hand",
                nossl.join("; ")
            ),
        ));
    }
    let lines: Vec<usize> = pg
        .hba
        .iter()
        .filter(|r| r.non_local() && r.kind == "host" && r.method != "reject")
        .map(|r| r.at.line)
        .collect();
    if !lines.is_empty() && pg.hba.iter().any(|r| r.at.file != hba_file) {
        return Err(i.precondition(
            spec,
            format!("pg_hba is not {hba_file} (hba_file is set elsewhere): not edited"),
        ));
    }
    let included = pg
        .settings
        .get("include_dir")
        .is_some_and(|s| s.value == "conf.d" || s.value.ends_with("/conf.d"));
    if pg.ssl_on() && lines.is_empty() {
        b.notes.push(format!(
            "{}: PostgreSQL on port {port} has ssl = on and no plain `host` line for other hosts: nothing to do",
            i.host.name
        ));
        return Ok(b);
    }
    if !included {
        return Err(i.precondition(
            spec,
            "postgresql.conf has no `include_dir = 'conf.d'`: a drop-in would not be read",
        ));
    }
    let configured =
        pg.settings.contains_key("ssl_cert_file") && pg.settings.contains_key("ssl_key_file");
    if !configured {
        b.notes.push(
            "no ssl_cert_file/ssl_key_file configured: using Debian's snakeoil pair (ssl-cert)"
                .into(),
        );
    }
    let mut cmd = MutatingCommand::new(spec.id, "sh")
        .arg("-c")
        .arg(PG_APPLY)
        .arg("rampart-fix")
        .number(version)
        .name_arg(&cluster)
        .port(port);
    for l in &lines {
        cmd = cmd.number(*l as u64);
    }
    b.steps.push(Step {
        what: format!(
            "write conf.d/zz-rampart-tls.conf (ssl = on), make pg_hba line(s) {} hostssl, \
             reload (pg_reload_conf, never a restart), check SHOW ssl; put both back if ssl \
             does not come on",
            lines
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        command: cmd.stdin(pg_tls_conf(configured).into_bytes()),
    });
    Ok(b)
}

/// Binds Redis to the host's private address (and loopback) and turns protected mode on, at
/// runtime and in its file (CONFIG REWRITE), in one connection. The password, if any, is
/// read from the file on the host into REDISCLI_AUTH. Arguments: CONF_STEM PORT ADDR.
const REDIS_APPLY: &str = "PATH=$PATH:/usr/sbin:/sbin:/usr/bin; c=\"/etc/redis/$1.conf\"; port=\"$2\"; addr=\"$3\"; \
a=$(sed -n -E 's/^[[:space:]]*requirepass[[:space:]]+//p' \"$c\" | tail -n 1 | sed -E 's/^\"(.*)\"$/\\1/'); \
if [ -n \"$a\" ]; then export REDISCLI_AUTH=\"$a\"; fi; unset a; \
cp -p \"$c\" \"$c.rampart-bak\" || exit 1; \
out=$(printf 'CONFIG SET bind \"%s 127.0.0.1 -::1\"\\nCONFIG SET protected-mode yes\\nCONFIG REWRITE\\nCONFIG GET protected-mode\\n' \"$addr\" \
| redis-cli -h \"$addr\" -p \"$port\" 2>&1); printf '%s\\n' \"$out\"; \
if printf '%s' \"$out\" | grep -q '^yes$' && ! printf '%s' \"$out\" | grep -q -i 'err'; then rm -f \"$c.rampart-bak\"; exit 0; fi; \
mv -f \"$c.rampart-bak\" \"$c\"; echo \"redis did not take the settings: its file was put back\" >&2; exit 1";

pub(super) fn redis_bind_private(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let r: &Redis = pick(spec, i, "Redis", &i.state.stack.redis, |r| r.port)?;
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: &["DATA-NO-AUTH"],
            port: Some(r.port),
        }],
        i.ssh_port(),
    );
    let addr = match &i.host.address {
        Address::Ip(std::net::IpAddr::V4(a)) if a.is_private() => *a,
        other => {
            return Err(i.precondition(
                spec,
                format!("the inventory address {other} is not a private IPv4 address to bind to"),
            ));
        }
    };
    if r.port == 0 {
        return Err(i.precondition(spec, "Redis has no plaintext port (port 0)"));
    }
    let stem = r
        .config
        .strip_prefix("/etc/redis/")
        .and_then(|s| s.strip_suffix(".conf"))
        .filter(|s| !s.contains('/') && !s.starts_with('.'))
        .and_then(|s| SafeName::new(s).ok())
        .ok_or_else(|| {
            i.precondition(
                spec,
                format!("the configuration {} is not /etc/redis/NAME.conf", r.config),
            )
        })?;
    let bound_ok =
        r.bind.iter().all(|a| {
            crate::state::is_loopback_word(a) || a.parse::<std::net::Ipv4Addr>() == Ok(addr)
        }) && !r.bind.is_empty();
    if bound_ok && r.protected_mode {
        b.notes.push(format!(
            "{}: Redis on port {} is bound to {addr} and loopback with protected mode on: nothing to do",
            i.host.name, r.port
        ));
        return Ok(b);
    }
    b.steps.push(Step {
        what: format!(
            "CONFIG SET bind \"{addr} 127.0.0.1 -::1\", protected-mode yes, CONFIG REWRITE \
             (one connection; the password stays on the host); put {} back if Redis refuses",
            r.config
        ),
        command: MutatingCommand::new(spec.id, "sh")
            .arg("-c")
            .arg(REDIS_APPLY)
            .arg("rampart-fix")
            .name_arg(&stem)
            .port(r.port)
            .ip(std::net::IpAddr::V4(addr)),
    });
    Ok(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_paths_are_checked() {
        let (v, c) = pg_cluster("/etc/postgresql/15/main/postgresql.conf").unwrap();
        assert_eq!((v, c.as_str()), (15, "main"));
        assert!(pg_cluster("/etc/postgresql/15/../postgresql.conf").is_none());
        assert!(pg_cluster("/etc/postgresql/x/main/postgresql.conf").is_none());
        assert!(pg_cluster("/srv/pg/postgresql.conf").is_none());
        assert!(pg_cluster("/etc/postgresql/15/a;b/postgresql.conf").is_none());
        assert!(pg_tls_conf(false).contains("snakeoil"));
        assert!(!pg_tls_conf(true).contains("snakeoil"));
        assert!(!PG_APPLY.chars().any(char::is_control));
        assert!(!REDIS_APPLY.chars().any(char::is_control));
    }
}
