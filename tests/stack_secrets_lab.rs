#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Secrets found on hosts never travel: the lab plants a Redis password (app1's redis.conf),
//! a database password and a Django SECRET_KEY (app1's settings.py) where the stack probes
//! read, and none of them may appear in anything rampart prints or writes: reports in every
//! format, the history database (the collected state), the command log, or any other file
//! under its data, state and config dirs.

mod common;
mod hostile_support;

use hostile_support as hs;
use rampart::lab::stack::{DB_PASSWORD, REDIS_PASSWORD, SECRET_KEY};

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn planted_secrets_appear_nowhere_in_rampart_output_or_files() {
    let lab = common::ensure_lab();
    // The secrets are really on the hosts, where the probes look.
    let settings =
        std::fs::read_to_string(lab.host_path("app1", "/var/www/labapp/labsite/settings.py"))
            .unwrap();
    assert!(settings.contains(SECRET_KEY) && settings.contains(DB_PASSWORD));
    let redis = std::fs::read_to_string(lab.host_path("app1", "/etc/redis/redis.conf")).unwrap();
    assert!(redis.contains(REDIS_PASSWORD));

    let home = tempfile::tempdir().unwrap();
    let inv = hs::write_inventory(home.path(), "lab.toml", &hs::lab_inventory_text(&lab, ""));
    let mut printed: Vec<(String, Vec<u8>)> = Vec::new();
    for format in ["json", "text", "markdown", "html", "sarif", "junit"] {
        let out = hs::rampart(home.path())
            .arg("-i")
            .arg(&inv)
            .args(["audit", "--format", format])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push((format!("audit --format {format} (stdout)"), out.stdout));
        printed.push((format!("audit --format {format} (stderr)"), out.stderr));
    }
    // The probes did read the files that hold the secrets (else this test proves nothing).
    let json = String::from_utf8_lossy(&printed[0].1).into_owned();
    assert!(
        json.contains("/var/www/labapp/labsite/settings_debug.py"),
        "the app's settings were read"
    );
    assert!(json.contains("APP-DEBUG"), "{json}");

    let mut files = Vec::new();
    walk(home.path(), &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("history")),
        "the history database was written: {files:?}"
    );
    for f in &files {
        printed.push((f.display().to_string(), std::fs::read(f).unwrap()));
    }
    for (what, bytes) in &printed {
        for secret in [DB_PASSWORD, REDIS_PASSWORD, SECRET_KEY] {
            assert!(!contains(bytes, secret), "{secret} leaked into {what}");
        }
    }
}
