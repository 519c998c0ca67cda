#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The stack parsers on real files: Debian 12's stock redis.conf, postgresql.conf and
//! pg_hba.conf (tests/fixtures/stack), and the lab's captured frames
//! (tests/fixtures/frames) for db1, cache1, app1, web1 and web2 — parsed offline into the
//! stack state, and the stack checks run on them.

use rampart::collect::datastore;
use rampart::collect::probes::state_from_frames;
use rampart::lab::stack::{DB_PASSWORD, REDIS_PASSWORD, SECRET_KEY};
use rampart::ssh::command::parse_frames;
use rampart::state::HostState;

fn fixture(p: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/stack/{p}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn frames_dir(host: &str) -> String {
    format!(
        "{}/tests/fixtures/frames/{host}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn load(host: &str) -> HostState {
    let dir = frames_dir(host);
    let nonce = std::fs::read_to_string(format!("{dir}/nonce")).unwrap();
    let stdout = std::fs::read(format!("{dir}/stdout")).unwrap();
    let stderr = std::fs::read(format!("{dir}/stderr")).unwrap();
    state_from_frames(host, &parse_frames(nonce.trim(), &stdout, &stderr))
}

#[test]
fn debian_stock_configs_are_loopback_only() {
    let r = datastore::parse_redis_conf("/etc/redis/redis.conf", &fixture("debian-redis.conf"))
        .unwrap();
    assert_eq!(r.bind, vec!["127.0.0.1", "-::1"]);
    assert_eq!(r.bind_at.as_ref().unwrap().line, 87);
    assert!(!r.non_loopback() && r.protected_mode && !r.requirepass && r.port == 6379);

    let text = format!(
        "### cluster /etc/postgresql/15/main/postgresql.conf\n\
         ### file /etc/postgresql/15/main/postgresql.conf\n{}\n\
         ### hba /etc/postgresql/15/main/pg_hba.conf\n{}",
        fixture("debian-postgresql.conf"),
        fixture("debian-pg_hba.conf")
    );
    let pg = datastore::parse_postgres(&text).unwrap();
    assert_eq!(pg.len(), 1);
    assert!(pg[0].ssl_on());
    assert_eq!(pg[0].settings["ssl"].at.line, 105);
    assert_eq!(pg[0].listen_addresses(), vec!["localhost"]);
    assert_eq!(pg[0].port(), 5432);
    assert_eq!(pg[0].hba.len(), 7);
    assert!(pg[0].hba.iter().all(|r| !r.non_local()), "{:?}", pg[0].hba);
}

#[test]
fn lab_frames_show_the_stack() {
    let db1 = load("db1");
    assert!(db1.stack.unread.is_empty(), "{:?}", db1.stack.unread);
    let pg = &db1.stack.postgres[0];
    assert!(!pg.ssl_on());
    assert!(pg.hba.iter().any(|r| r.non_local() && r.allows_plaintext()));

    let cache1 = load("cache1");
    let r = &cache1.stack.redis[0];
    assert!(r.non_loopback() && !r.protected_mode && !r.requires_auth());

    let app1 = load("app1");
    assert!(app1.stack.unread.is_empty(), "{:?}", app1.stack.unread);
    let r = &app1.stack.redis[0];
    assert!(!r.non_loopback() && r.requires_auth());
    let mut ports: Vec<u16> = app1
        .stack
        .apps
        .iter()
        .flat_map(|a| a.ports.clone())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, vec![8000, 8443]);
    let debug: Vec<(u16, bool, bool)> = app1
        .stack
        .app_probes
        .iter()
        .map(|p| (p.port, p.tls, p.debug_page))
        .collect();
    assert!(debug.contains(&(8000, false, true)), "{debug:?}");
    assert!(debug.contains(&(8443, true, false)), "{debug:?}");
    for a in &app1.stack.apps {
        assert!(a.effective_settings().is_some(), "{a:?}");
        assert!(a.views.iter().all(|v| v.limited_by.is_some()), "{a:?}");
    }

    let web1 = load("web1");
    let p = &web1.nginx.ok().unwrap().servers[1].proxy_passes[0];
    assert!(p.tls() && p.verify, "{p:?}");
    assert_eq!(p.location.as_deref(), Some("/app/"));
    let web2 = load("web2");
    let p = &web2.nginx.ok().unwrap().servers[1].proxy_passes[0];
    assert!(!p.tls() && !p.verify, "{p:?}");
    assert_eq!(p.host_port(), Some(("10.77.11.11".to_string(), 8000)));
}

#[test]
fn captured_frames_hold_no_planted_secret() {
    for host in ["app1", "db1", "cache1"] {
        let out = std::fs::read(format!("{}/stdout", frames_dir(host))).unwrap();
        for s in [DB_PASSWORD, REDIS_PASSWORD, SECRET_KEY] {
            assert!(
                !out.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} in {host}'s frames"
            );
        }
    }
    let out =
        String::from_utf8_lossy(&std::fs::read(format!("{}/stdout", frames_dir("app1"))).unwrap())
            .into_owned();
    assert!(out.contains("requirepass (hidden)") && out.contains("SECRET_KEY = '(hidden)'"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    #[test]
    fn stack_parsers_never_panic(s in "(### (cluster|file|hba|version|gunicorn|app) )?[ -~\n\t]{0,400}") {
        let _ = datastore::parse_postgres(&s);
        let _ = datastore::parse_pg_hba("/f", &s);
        let _ = datastore::parse_redis(&s);
        let _ = datastore::parse_redis_conf("/f", &s);
        let _ = datastore::parse_mysql(&s);
        let _ = datastore::parse_memcached("/f", &s);
        let _ = datastore::parse_memcached_probe(&s);
        let _ = rampart::collect::django::parse_apps(&s);
        let _ = rampart::collect::django::parse_app_probes(&s);
        let _ = rampart::collect::django::parse_views("/f", &s);
        let _ = rampart::collect::django::parse_settings("/r/a/settings.py", "a.settings", &s);
    }
}
