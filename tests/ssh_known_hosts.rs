//! Differential test: rampart's known_hosts matcher against OpenSSH's own (`ssh-keygen -F`),
//! on a matrix of entries covering every host-field form, and the same file hashed with
//! `ssh-keygen -H`.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use rampart::ssh::known_hosts::{HostQuery, KnownHostsFile, Marker, matching_lines};

fn keygen(dir: &Path, name: &str, kind: &str) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lines `ssh-keygen -F` reports for a query, with their marker.
fn openssh_matches(file: &Path, query: &str) -> BTreeSet<(usize, Marker)> {
    let out = Command::new("ssh-keygen")
        .arg("-F")
        .arg(query)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut set = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# Host ") {
            let (_, after) = rest.split_once(" found: line ").unwrap();
            let mut parts = after.split_whitespace();
            let n: usize = parts.next().unwrap().parse().unwrap();
            let marker = match parts.next() {
                Some("REVOKED") => Marker::Revoked,
                Some("CA") => Marker::CertAuthority,
                None => Marker::None,
                Some(other) => panic!("unexpected marker {other}"),
            };
            set.insert((n, marker));
        }
    }
    set
}

fn ours(file: &Path, host: &str, port: u16) -> BTreeSet<(usize, Marker)> {
    let files = vec![KnownHostsFile::load(file).unwrap()];
    matching_lines(&files, &HostQuery::new([host.to_string()], port))
        .into_iter()
        .map(|(_, line, marker)| (line, marker))
        .collect()
}

fn entries(ed: &str, ecdsa: &str, rsa: &str) -> Vec<String> {
    let hosts = [
        "alpha.example.com",
        "beta.example.com,gamma.example.com",
        "10.77.0.10",
        "[10.77.0.10]:2222",
        "[alpha.example.com]:22",
        "*.example.com",
        "*.example.com,!beta.example.com",
        "!*.example.com,delta.example.com",
        "web?.lab",
        "web*",
        "db[12].lab",
        "*",
        "10.77.1?.*",
        "10.77.*.11",
        "[10.77.10.*]:2200",
        "[*]:2222",
        "UPPER.Example.COM",
        "::1",
        "[::1]:2222",
        "fe80::*",
        "a*b*c",
        "?",
        "app1,app2,app3",
        "app1,!app2,app*",
        "omega.example.org",
        "[omega.example.org]:65535",
        "x.y.z,*.y.z,!w.y.z",
        "*.lab,!vpn*.lab",
        "vpn1.lab",
        "edge",
        "[edge]:2022,edge",
        "10.77.12.11,db1",
    ];
    let keys = [ed, ecdsa, rsa];
    let mut out = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let key = keys[i % keys.len()];
        let line = match i % 11 {
            3 => format!("@revoked {h} {key}"),
            7 => format!("@cert-authority {h} {key}"),
            _ => format!("{h} {key} comment-{i}"),
        };
        out.push(line);
        if i % 5 == 0 {
            out.push(format!("# a comment after entry {i}"));
        }
        if i % 9 == 0 {
            out.push(String::new());
        }
    }
    out
}

fn queries() -> Vec<(String, u16)> {
    let names = [
        "alpha.example.com",
        "beta.example.com",
        "gamma.example.com",
        "delta.example.com",
        "epsilon.example.com",
        "example.com",
        "10.77.0.10",
        "10.77.10.11",
        "10.77.12.11",
        "10.77.1.11",
        "web1.lab",
        "web12.lab",
        "web1",
        "db1.lab",
        "db1",
        "upper.example.com",
        "::1",
        "fe80::1",
        "axbyc",
        "ab",
        "q",
        "app1",
        "app2",
        "app3",
        "omega.example.org",
        "x.y.z",
        "w.y.z",
        "vpn1.lab",
        "edge",
        "nobody.invalid",
    ];
    let mut out = Vec::new();
    for n in names {
        for port in [22u16, 2222, 2200, 2022, 65535] {
            out.push((n.to_string(), port));
        }
    }
    out
}

fn openssh_query(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

#[test]
fn matcher_agrees_with_ssh_keygen_on_a_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed", "ed25519");
    let ecdsa = keygen(dir.path(), "ec", "ecdsa");
    let rsa = keygen(dir.path(), "rsa", "rsa");
    let lines = entries(&ed, &ecdsa, &rsa);
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, lines.join("\n") + "\n").unwrap();
    let usable = lines
        .iter()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert!(usable >= 30, "matrix has only {usable} entries");

    let mut compared = 0;
    let mut non_empty = 0;
    for (host, port) in queries() {
        let theirs = openssh_matches(&kh, &openssh_query(&host, port));
        let mine = ours(&kh, &host, port);
        assert_eq!(mine, theirs, "query {host} port {port}");
        compared += 1;
        non_empty += usize::from(!theirs.is_empty());
    }
    // The matrix must exercise matches, not only misses.
    assert!(
        non_empty > 40,
        "only {non_empty} of {compared} queries matched anything"
    );
}

#[test]
fn hashed_file_agrees_with_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed", "ed25519");
    // Only plain names can be hashed; ssh-keygen -H leaves wildcard lines as they are.
    let plain: Vec<String> = [
        "alpha.example.com",
        "beta.example.com,gamma.example.com",
        "10.77.0.10",
        "[10.77.0.10]:2222",
        "db1,10.77.12.11",
        "*.lab",
    ]
    .iter()
    .map(|h| format!("{h} {ed}"))
    .collect();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, plain.join("\n") + "\n").unwrap();
    let status = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(status.status.success());
    let hashed = std::fs::read_to_string(&kh).unwrap();
    assert!(hashed.lines().filter(|l| l.starts_with("|1|")).count() >= 7);

    let mut matched = 0;
    for (host, port) in [
        ("alpha.example.com", 22),
        ("gamma.example.com", 22),
        ("10.77.0.10", 22),
        ("10.77.0.10", 2222),
        ("db1", 22),
        ("10.77.12.11", 22),
        ("web1.lab", 22),
        ("delta.example.com", 22),
        ("alpha.example.com", 2222),
    ] {
        let theirs = openssh_matches(&kh, &openssh_query(host, port));
        let mine = ours(&kh, host, port);
        assert_eq!(mine, theirs, "query {host} port {port}");
        matched += usize::from(!mine.is_empty());
    }
    assert!(matched >= 7);
}
