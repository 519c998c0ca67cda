#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `rampart watch --metrics` scraped by a real Prometheus (Debian's `prometheus`, started here
//! on loopback with its own config and data directory): two rampart instances, each watching
//! one half of the practice lab as one rampart per bastion or region would (docs/scale.md),
//! scraped by one Prometheus; an alerting rule on rampart's figures fires; and
//! `promtool check metrics` accepts what rampart serves.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills and reaps a child when dropped, pass or fail.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lab inventory with only `names` as hosts (the bastion is always kept: the others jump
/// through it), no alert sinks, and a 2-second refresh.
fn half_inventory(names: &[&str]) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml"))
            .unwrap();
    let (head, rest) = text.split_once("[[host]]").unwrap();
    let hosts_part = rest.split("\n[alerting]").next().unwrap();
    let mut out = head.to_string();
    for block in format!("[[host]]{hosts_part}").split("[[host]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .unwrap()
            .trim_matches('"');
        if name == "edge" || names.contains(&name) {
            out.push_str("[[host]]");
            out.push_str(block);
        }
    }
    out.push_str("\n[console]\nrefresh_secs = 2\n");
    out
}

fn get(url: &str) -> Option<String> {
    let mut r = ureq::get(url).call().ok()?;
    r.body_mut().read_to_string().ok()
}

fn query(prom: &str, q: &str) -> Vec<Value> {
    let url = format!(
        "{prom}/api/v1/query?query={}",
        q.bytes()
            .map(|b| if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    );
    get(&url)
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

/// Polls `f` until it returns `Some` or `give_up` passes (a failure deadline, not a speed
/// assertion: on a busy machine the lab's first collection can take a while).
fn wait_for<T>(what: &str, give_up: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < give_up, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn prometheus_scrapes_two_rampart_instances_and_a_rule_fires() {
    let _lab = common::ensure_lab();
    let dir = tempfile::tempdir().unwrap();
    let halves = [
        ("front", vec!["web1", "web2", "vpn1", "leg1"]),
        ("back", vec!["app1", "db1", "cache1", "dock1", "fwd1"]),
    ];
    let mut watchers = Vec::new();
    let mut targets = Vec::new();
    for (name, hosts) in &halves {
        let inv = dir.path().join(format!("{name}.toml"));
        std::fs::write(&inv, half_inventory(hosts)).unwrap();
        let (child, port) = common::ports::start_on_free_ports("rampart watch", 1, |p| {
            Command::new(common::rampart_bin())
                .arg("-i")
                .arg(&inv)
                .args(["watch", "--no-capture", "--metrics"])
                .arg(format!("127.0.0.1:{}", p[0]))
                .env("XDG_DATA_HOME", dir.path().join("data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let port = port[0];
        watchers.push(Reap(child));
        targets.push(format!("127.0.0.1:{port}"));
    }

    // What rampart serves passes Prometheus' own linter.
    let body = wait_for("a first collection", Duration::from_secs(120), || {
        get(&format!("http://{}/metrics", targets[1]))
            .filter(|b| b.contains("rampart_host_score{host=\"app1\"}"))
    });
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // One Prometheus scrapes both, with a rule on rampart's findings.
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: rampart\n    rules:\n      - alert: HostWithoutFirewall\n        expr: rampart_findings{check=\"FW-NONE\"} > 0\n        labels:\n          severity: critical\n        annotations:\n          summary: '{{ $labels.host }} has no host firewall'\n      - alert: RampartHostDown\n        expr: rampart_host_up == 0\n",
    )
    .unwrap();
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nscrape_configs:\n  - job_name: rampart\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        ),
    )
    .unwrap();
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let (prometheus, prom_port) = common::ports::start_on_free_ports("prometheus", 1, |p| {
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", p[0]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package; .ci/run installs it)")
    });
    let _prometheus = Reap(prometheus);
    let prom = format!("http://127.0.0.1:{}", prom_port[0]);

    // The rule fires on the back half's app1 (the lab ships it without a firewall).
    let alert = wait_for(
        "the HostWithoutFirewall alert",
        Duration::from_secs(120),
        || {
            let v: Value = serde_json::from_str(&get(&format!("{prom}/api/v1/alerts"))?).ok()?;
            v["data"]["alerts"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == "HostWithoutFirewall" && a["state"] == "firing"
                })
                .cloned()
        },
    );
    assert_eq!(alert["labels"]["host"], "app1");
    assert_eq!(alert["labels"]["instance"], targets[1].as_str());

    // Both instances are up, each reports its half, and one query sees the whole lab.
    // Prometheus scrapes each target on its own schedule: wait until it has both.
    let up = wait_for("both targets scraped", Duration::from_secs(60), || {
        let v = query(&prom, "up{job=\"rampart\"}");
        (v.len() == 2).then_some(v)
    });
    assert!(up.iter().all(|s| s["value"][1] == "1"), "{up:?}");
    let per_instance = wait_for("both halves collected", Duration::from_secs(60), || {
        let v = query(&prom, "count by (instance) (rampart_host_up == 1)");
        (v.len() == 2).then_some(v)
    });
    for s in &per_instance {
        let n: usize = s["value"][1].as_str().unwrap().parse().unwrap();
        // Each half's hosts and the bastion they are reached through.
        let want = if s["metric"]["instance"] == targets[0].as_str() {
            halves[0].1.len() + 1
        } else {
            halves[1].1.len() + 1
        };
        assert_eq!(n, want, "{per_instance:?}");
    }
    let fleet = query(&prom, "max by (host) (rampart_host_score)");
    let hosts: std::collections::BTreeSet<String> = fleet
        .iter()
        .map(|s| s["metric"]["host"].as_str().unwrap().to_string())
        .collect();
    let want: std::collections::BTreeSet<String> =
        common::HOSTS.iter().map(|(h, _)| h.to_string()).collect();
    assert_eq!(hosts, want);
    // No host is down, so that rule stays quiet.
    let v: Value = serde_json::from_str(&get(&format!("{prom}/api/v1/alerts")).unwrap()).unwrap();
    assert!(
        !v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "RampartHostDown"),
        "{v}"
    );
    drop(watchers);
}
