#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The defences on the practice lab (issue 14, the guide half), against the real programs:
//! TLS-NO-HSTS on web2 and not on web1 (nginx's configuration and the host's own HTTPS
//! answer), IPS-JAIL-BLIND on vpn1's systemd-backend jail and on no other host, CrowdSec on
//! edge running offline with its decisions read as bans, the Zabbix agent on vpn1
//! recognised, and the `nginx-add-hsts` fix clearing web2's finding, then sending nothing the
//! second time. Every change a test makes is put back by a drop guard, pass or fail.

mod common;

use common::Lab;
use rampart::collect::collect_fleet;
use rampart::state::{FleetState, KnownService, Probed};

use common::Scratch as Env;

impl Env {
    /// The fresh audit's JSON report of the named hosts.
    fn audit(&self, hosts: &str) -> serde_json::Value {
        let out = self.dir.path().join("audit.json");
        let o = self.run(&[
            "audit",
            "--no-history",
            "--format",
            "json",
            "--hosts",
            hosts,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "audit: {o:?}");
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
    }
}

fn findings(doc: &serde_json::Value, host: &str, check: &str) -> Vec<serde_json::Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["host"] == host && f["check"] == check)
        .cloned()
        .collect()
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

/// Runs a shell script on a host when dropped (restores what a test changed).
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
                "restore on {} failed: {}",
                self.host,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn each_defence_check_fires_on_its_misconfigured_host_only() {
    let lab = common::ensure_lab();
    let env = Env::new(&lab);
    let doc = env.audit("*");
    // HSTS: web2 has none, in its configuration and in its own answer; web1 sends it.
    let hsts = findings(&doc, "web2", "TLS-NO-HSTS");
    assert_eq!(hsts.len(), 1, "{doc:#}");
    let ev = hsts[0]["evidence"].to_string();
    assert!(ev.contains("sites-enabled/lab"), "{ev}");
    assert!(
        ev.contains("answered 200 without Strict-Transport-Security"),
        "{ev}"
    );
    assert!(findings(&doc, "web1", "TLS-NO-HSTS").is_empty());
    // The blind jail: vpn1's sshd-journal only; its sshd jail (and every other host's) reads
    // /var/log/auth.log, which exists.
    let blind: Vec<_> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "IPS-JAIL-BLIND")
        .collect();
    assert_eq!(blind.len(), 1, "{blind:#?}");
    assert_eq!(blind[0]["host"], "vpn1");
    assert!(blind[0]["title"].as_str().unwrap().contains("sshd-journal"));
    assert!(
        blind[0]["evidence"]
            .to_string()
            .contains("/etc/fail2ban/jail.d/rampart-lab.local"),
        "{}",
        blind[0]["evidence"]
    );
    // No monitoring finding anywhere: vpn1's Zabbix agent counts (and node exporter too).
    assert!(findings(&doc, "vpn1", "MON-AGENT-MISSING").is_empty());
}

async fn collect(lab: &Lab, hosts: &[&str]) -> FleetState {
    let dir = tempfile::tempdir().unwrap();
    let t = lab.transport(Some(&dir.path().join("commands.jsonl")));
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    collect_fleet(&t, &names).await
}

#[tokio::test(flavor = "multi_thread")]
async fn collected_state_shows_crowdsec_zabbix_and_the_https_answers() {
    let lab = common::ensure_lab();
    let fleet = collect(&lab, &["edge", "vpn1", "web1"]).await;
    let edge = fleet.host("edge").unwrap();
    let cs = edge
        .defences
        .crowdsec
        .ok()
        .expect("crowdsec collected on edge");
    assert!(cs.running, "{cs:?}");
    assert_eq!(cs.error, None, "{cs:?}");
    let vpn1 = fleet.host("vpn1").unwrap();
    assert!(
        vpn1.services
            .ok()
            .unwrap()
            .running(KnownService::ZabbixAgent),
        "{:?}",
        vpn1.services
    );
    let js = vpn1.defences.jail_sources.ok().unwrap();
    assert!(!js.journal);
    let blind = js.jails.iter().find(|j| j.name == "sshd-journal").unwrap();
    assert!(blind.enabled);
    assert_eq!(blind.backend.as_deref(), Some("systemd"));
    // The sshd jail's file was stat'ed and is there.
    assert!(
        js.files
            .iter()
            .any(|f| f.path == "/var/log/auth.log" && f.exists),
        "{js:?}"
    );
    let web1 = fleet.host("web1").unwrap();
    let https = web1.defences.https.ok().unwrap();
    assert!(
        https
            .iter()
            .any(|f| f.status == Some(200) && f.hsts.as_deref() == Some("max-age=31536000")),
        "{https:?}"
    );
    // No IDS on the lab: the IDS probe says so rather than failing.
    assert!(
        matches!(edge.defences.ids, Probed::NotInstalled { .. }),
        "{:?}",
        edge.defences.ids
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crowdsec_decisions_show_as_bans() {
    let lab = common::ensure_lab_exclusive();
    // A ban made with CrowdSec's own tool on edge (as an operator or its scenarios would).
    let _restore = Restore {
        lab: &lab,
        host: "edge",
        script: "cscli decisions delete --ip 203.0.113.77 >/dev/null 2>&1; true",
    };
    sh(
        &lab,
        "edge",
        "cscli decisions add --ip 203.0.113.77 --duration 1h --reason 'rampart test' 2>&1",
    );
    let fleet = collect(&lab, &["edge"]).await;
    let cs = fleet
        .host("edge")
        .unwrap()
        .defences
        .crowdsec
        .ok()
        .unwrap()
        .clone();
    assert_eq!(
        cs.banned(),
        vec!["203.0.113.77".parse::<std::net::IpAddr>().unwrap()],
        "{cs:?}"
    );
    let d = &cs.decisions[0];
    assert_eq!((d.kind.as_str(), d.origin.as_str()), ("ban", "cscli"));
    // Gone once deleted.
    sh(
        &lab,
        "edge",
        "cscli decisions delete --ip 203.0.113.77 2>&1",
    );
    let fleet = collect(&lab, &["edge"]).await;
    let cs = fleet.host("edge").unwrap().defences.crowdsec.ok().unwrap();
    assert!(cs.decisions.is_empty(), "{cs:?}");
}

#[test]
fn hsts_fix_clears_its_finding_and_is_idempotent() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    let _restore = Restore {
        lab: &lab,
        host: "web2",
        script: "rm -f /etc/nginx/conf.d/rampart-hsts.conf && nginx -s reload",
    };
    assert_eq!(findings(&env.audit("web2"), "web2", "TLS-NO-HSTS").len(), 1);
    let first = env.run(&["fix", "--host", "web2", "--fix", "nginx-add-hsts", "--yes"]);
    assert!(first.status.success(), "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("verified"),
        "{first:?}"
    );
    assert!(findings(&env.audit("web2"), "web2", "TLS-NO-HSTS").is_empty());
    let conf = sh(&lab, "web2", "cat /etc/nginx/conf.d/rampart-hsts.conf");
    assert!(conf.contains("Strict-Transport-Security"), "{conf}");
    // The live answer carries it too (the check confirmed it; so does curl on the host).
    let live = sh(
        &lab,
        "web2",
        "curl -ksS -o /dev/null -D - https://127.0.0.1/",
    );
    assert!(
        live.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{live}"
    );
    let second = env.run(&["fix", "--host", "web2", "--fix", "nginx-add-hsts", "--yes"]);
    assert!(second.status.success(), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already in place: nothing to send"),
        "{second:?}"
    );
}

/// Suricata and Snort alert files planted on edge (neither IDS is packaged here; the files
/// follow the formats' documentation) become IDS-ALERT alerts in `rampart watch`: one per
/// rule and address pair, repeats counted, severity from the IDS's priority.
#[test]
fn ids_alert_files_become_ids_alerts_in_watch() {
    let lab = common::ensure_lab_exclusive();
    let env = Env::new(&lab);
    let _restore = Restore {
        lab: &lab,
        host: "edge",
        script: "rm -rf /var/log/suricata /var/log/snort",
    };
    sh(
        &lab,
        "edge",
        r#"t=$(date -u +%Y-%m-%dT%H:%M:%S.000000+0000); s=$(date +%s); mkdir -p /var/log/suricata /var/log/snort
for p in 41022 41090; do printf '{"timestamp":"%s","flow_id":%s,"event_type":"alert","src_ip":"203.0.113.50","src_port":%s,"dest_ip":"10.77.0.10","dest_port":22,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2001219,"rev":20,"signature":"ET SCAN Potential SSH Scan","category":"Attempted Information Leak","severity":2}}\n' "$t" "$p" "$p"; done > /var/log/suricata/eve.json
printf '{"timestamp":"%s","event_type":"flow","src_ip":"203.0.113.50"}\n' "$t" >> /var/log/suricata/eve.json
printf '{ "seconds" : %s, "proto" : "TCP", "src_ap" : "198.51.100.23:60001", "dst_ap" : "10.77.0.10:80", "rule" : "1:2100498:7", "msg" : "GPL ATTACK_RESPONSE id check returned root", "priority" : 1, "action" : "alert" }\n' "$s" > /var/log/snort/alert_json.txt"#,
    );
    let out = env.run(&["watch", "--json", "--no-capture", "--duration", "10s"]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["alert"] == "IDS-ALERT" && v["state"] == "firing")
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    let suricata = events
        .iter()
        .find(|e| e["check"] == "ids/suricata")
        .unwrap();
    assert_eq!(suricata["host"], "edge");
    assert_eq!(suricata["severity"], "medium");
    let summary = suricata["summary"].as_str().unwrap();
    assert!(
        summary.contains("[1:2001219:20] ET SCAN Potential SSH Scan"),
        "{summary}"
    );
    assert!(summary.contains("(2 in the last hour)"), "{summary}");
    let snort = events.iter().find(|e| e["check"] == "ids/snort").unwrap();
    assert_eq!(snort["severity"], "high");
}
