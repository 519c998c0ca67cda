#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The lab's Django stack end to end: a page fetched through nginx (web1, web2) → gunicorn →
//! Django on app1 → PostgreSQL 15 on db1, with the hit counter in cache1's Redis; and the
//! deliberate differences between the two paths (web1: verified TLS to 8443, DEBUG off;
//! web2: plain HTTP to 8000, DEBUG on).

mod common;

fn hits(page: &str) -> u64 {
    page.trim()
        .rsplit("hits=")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hit counter in {page:?}"))
}

#[test]
fn a_page_goes_through_nginx_gunicorn_django_postgres_and_redis() {
    let lab = common::ensure_lab();
    // The item comes from PostgreSQL (a migration seeded it); the counter from Redis.
    let first = lab.ssh_ok("web1", "curl -sS --fail https://10.77.10.11/app/ -k");
    assert!(first.starts_with("labapp items=lab-item hits="), "{first}");
    let second = lab.ssh_ok("web2", "curl -sS --fail https://10.77.10.12/app/ -k");
    assert!(
        second.starts_with("labapp items=lab-item hits="),
        "{second}"
    );
    // Both apps share cache1's counter: it went up between the two.
    assert!(hits(&second) > hits(&first), "{first} then {second}");

    // The counter really lives in cache1's Redis (no password there: the deliberate mistake).
    let keys = lab.exec("cache1", "redis-cli", &["-h", "10.77.12.21", "--scan"]);
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(keys.contains("rampart-lab-hits"), "{keys}");
    // The rows really live in db1's PostgreSQL.
    let rows = lab.exec(
        "db1",
        "setpriv",
        &[
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
            "psql",
            "-h",
            "/run/postgresql",
            "-d",
            "labapp",
            "-tAc",
            "SELECT name FROM items_item",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&rows.stdout).trim(), "lab-item");

    // app1's own Redis answers only on loopback and only with its password.
    let noauth = lab.exec("app1", "redis-cli", &["-h", "127.0.0.1", "ping"]);
    let noauth = String::from_utf8_lossy(&noauth.stdout);
    assert!(noauth.contains("NOAUTH"), "{noauth}");
}

#[test]
fn web2s_app_shows_debug_pages_and_web1s_does_not() {
    let lab = common::ensure_lab();
    let w2 = lab.ssh_ok("web2", "curl -sk https://10.77.10.12/app/nope");
    assert!(w2.contains("DEBUG = True"), "web2's app runs with DEBUG on");
    let w1 = lab.ssh_ok("web1", "curl -sk https://10.77.10.11/app/nope");
    assert!(
        !w1.contains("DEBUG = True") && w1.contains("Not Found"),
        "{w1}"
    );
    // web1's hop is TLS the proxy verifies; a plain request to the TLS port fails.
    let conf =
        std::fs::read_to_string(lab.host_path("web1", "/etc/nginx/sites-enabled/lab")).unwrap();
    assert!(
        conf.contains("proxy_pass https://10.77.11.11:8443;"),
        "{conf}"
    );
    assert!(conf.contains("proxy_ssl_verify on;"), "{conf}");
}
