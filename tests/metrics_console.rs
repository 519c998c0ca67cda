#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `rampart console --metrics ADDR` serves the same `/metrics` as `rampart watch`: the real
//! console in tmux on the practice lab (read-only), scraped over HTTP while it runs.

mod common;

use common::tmux::Tmux;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(url: &str) -> Option<String> {
    let mut r = ureq::get(url).call().ok()?;
    r.body_mut().read_to_string().ok()
}

#[test]
fn the_console_serves_metrics_of_what_it_collected() {
    let _lab = common::ensure_lab();
    let port = free_port();
    let cmd = format!(
        "{} --read-only --inventory {}/inventory.toml console --metrics 127.0.0.1:{port}",
        env!("CARGO_BIN_EXE_rampart"),
        env!("CARGO_MANIFEST_DIR")
    );
    let t = Tmux::start("metrics-console", &cmd);
    t.wait_for("every lab host, collected", |s| {
        common::HOSTS.iter().all(|(h, _)| s.contains(h)) && s.contains("refreshed")
    });
    let url = format!("http://127.0.0.1:{port}/metrics");
    // The figures are recorded just after the screen says "refreshed": poll briefly (a
    // failure deadline, not a speed assertion).
    let start = Instant::now();
    let body = loop {
        if let Some(b) = scrape(&url).filter(|b| {
            b.contains("rampart_collections_total 1") || b.contains("rampart_collections_total 2")
        }) {
            break b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no metrics at {url}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for (h, _) in common::HOSTS {
        assert!(
            body.contains(&format!("rampart_host_up{{host=\"{h}\"}} 1\n")),
            "{h}:\n{body}"
        );
        assert!(
            body.contains(&format!("rampart_host_score{{host=\"{h}\"}} ")),
            "{h}"
        );
    }
    assert!(
        body.contains(
            "rampart_findings{host=\"app1\",check=\"FW-NONE\",severity=\"critical\"} 1\n"
        ),
        "{body}"
    );
    assert!(body.contains("# TYPE rampart_alerts_firing gauge"));
    t.keys(&["q"]);
}
