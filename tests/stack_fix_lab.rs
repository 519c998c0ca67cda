#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The two stack fixes on the lab: `pg-enable-tls` on db1 (ssl = off, `host` lines) and
//! `redis-bind-private` on cache1 (no password, protected-mode no). Each clears its finding
//! in a fresh audit, its second run sends nothing, and the host is put back afterwards, pass
//! or fail (a drop guard), so the other lab tests still see the designed lab.

mod common;

use common::Lab;

use common::Scratch as Env;

impl Env {
    /// (check, title) of the host's findings in a fresh audit.
    fn audit(&self, host: &str) -> Vec<(String, String)> {
        self.findings(host)
            .iter()
            .map(|f| {
                (
                    f["check"].as_str().unwrap().to_string(),
                    f["title"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn sh(lab: &Lab, host: &str, script: &str) -> String {
    let o = lab.exec(host, "sh", &["-c", script]);
    assert!(
        o.status.success(),
        "{host}: {script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Puts a host's files back and reloads, when dropped.
struct Restore<'a> {
    lab: &'a Lab,
    host: &'static str,
    script: &'static str,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let o = self.lab.exec(self.host, "sh", &["-c", self.script]);
        if !o.status.success() {
            eprintln!(
                "restoring {} failed: {}",
                self.host,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

const PG_SAVE: &str = "rm -rf /var/lib/rampart-test-pg && mkdir -p /var/lib/rampart-test-pg && \
    cp -a /etc/postgresql/15/main/pg_hba.conf /var/lib/rampart-test-pg/";
const PG_RESTORE: &str = "rm -f /etc/postgresql/15/main/conf.d/zz-rampart-tls.conf && \
    cp -a /var/lib/rampart-test-pg/pg_hba.conf /etc/postgresql/15/main/pg_hba.conf && \
    setpriv --reuid=postgres --regid=postgres --init-groups -- psql -X -h /run/postgresql -d postgres -tAqc 'SELECT pg_reload_conf()' && \
    rm -rf /var/lib/rampart-test-pg";
const REDIS_SAVE: &str = "rm -rf /var/lib/rampart-test-redis && mkdir -p /var/lib/rampart-test-redis && \
    cp -a /etc/redis/redis.conf /var/lib/rampart-test-redis/";
const REDIS_RESTORE: &str = "cp -a /var/lib/rampart-test-redis/redis.conf /etc/redis/redis.conf && \
    redis-cli -h 127.0.0.1 CONFIG SET protected-mode no && \
    redis-cli -h 127.0.0.1 CONFIG SET bind 10.77.12.21 && rm -rf /var/lib/rampart-test-redis";

fn has(findings: &[(String, String)], check: &str, title_start: &str) -> bool {
    findings
        .iter()
        .any(|(c, t)| c == check && t.starts_with(title_start))
}

/// Applies a fix, checks the finding is gone, applies it again and checks nothing was sent.
fn fix_clears(env: &Env, host: &str, fix: &str, check: &str, title_start: &str) {
    assert!(
        has(&env.audit(host), check, title_start),
        "{host} should show {check} ({title_start}...) before the fix"
    );
    let first = env.run(&["fix", "--host", host, "--fix", fix, "--yes"]);
    assert!(first.status.success(), "{first:?}");
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("verified"), "{err}");
    let after = env.audit(host);
    assert!(
        !has(&after, check, title_start),
        "{host} still shows {check}: {after:?}"
    );
    let second = env.run(&["fix", "--host", host, "--fix", fix, "--yes"]);
    assert!(second.status.success(), "{second:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("already in place: nothing to send"), "{out}");
}

#[test]
fn pg_enable_tls_turns_tls_on_with_a_reload() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    sh(&lab, "db1", PG_SAVE);
    let _restore = Restore {
        lab: &lab,
        host: "db1",
        script: PG_RESTORE,
    };
    let pid_before = sh(&lab, "db1", "cat /run/postgresql/lab.pid");
    fix_clears(
        &env,
        "db1",
        "pg-enable-tls",
        "TLS-INTERNAL-MISSING",
        "PostgreSQL",
    );
    // A reload, not a restart: the same postmaster, now with TLS and hostssl.
    assert_eq!(sh(&lab, "db1", "cat /run/postgresql/lab.pid"), pid_before);
    let hba = sh(&lab, "db1", "cat /etc/postgresql/15/main/pg_hba.conf");
    assert!(
        hba.lines()
            .any(|l| l.starts_with("hostssl ") && l.contains("labapp")),
        "{hba}"
    );
    // The loopback line stays `host`; the app segment's is `hostssl` now.
    assert!(
        !hba.lines()
            .any(|l| l.starts_with("host ") && l.contains("10.77.11.0/24")),
        "{hba}"
    );
    // The app still reads its database, now over TLS (psycopg2 prefers it).
    let page = lab.ssh_ok("web1", "curl -sS --fail -k https://10.77.10.11/app/");
    assert!(page.starts_with("labapp items=lab-item"), "{page}");
}

#[test]
fn redis_bind_private_turns_protected_mode_on() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    sh(&lab, "cache1", REDIS_SAVE);
    let _restore = Restore {
        lab: &lab,
        host: "cache1",
        script: REDIS_RESTORE,
    };
    fix_clears(
        &env,
        "cache1",
        "redis-bind-private",
        "DATA-NO-AUTH",
        "Redis",
    );
    // Other hosts without the password are now refused.
    let o = lab.exec("app1", "redis-cli", &["-h", "10.77.12.21", "ping"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("DENIED"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let conf = sh(&lab, "cache1", "cat /etc/redis/redis.conf");
    assert!(conf.contains("protected-mode yes"), "{conf}");
}
