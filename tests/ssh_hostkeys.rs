//! Host keys against real sshd: unknown refused then learned with accept-new, changed
//! refused with file and line, @revoked, @cert-authority (valid, expired, wrong principal),
//! hashed entries, and a bastion never vouching for its target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ssh_sshd;

use std::process::Command;

use rampart::ssh::{ConnState, ErrorKind, HostKeyPolicy, ReadCommand, Transport};
use ssh_sshd::{CertSpec, Client, Sshd, SshdOptions, key_part, keygen};

const ID: ReadCommand = ReadCommand::new("id", "id -un");

fn fingerprint(pub_line: &str, dir: &std::path::Path) -> String {
    let f = dir.join("fp.pub");
    std::fs::write(&f, pub_line).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&f)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn unknown_refused_then_learned_with_accept_new() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let expected_fp = fingerprint(&sshd.host_key.public, client.dir.path());

    let strict = Transport::from_specs(vec![spec.clone()], client.options()).unwrap();
    let err = strict.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::HostKeyUnknown { fingerprint } => assert_eq!(fingerprint, &expected_fp),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&expected_fp), "{err}");
    assert!(matches!(
        strict.states()["h"],
        ConnState::HostKeyRefused { .. }
    ));
    // Nothing was run: sshd never saw an exec.
    assert!(!sshd.log_text().contains("req exec"));

    let learned = client.dir.path().join("learned_known_hosts");
    let mut opts = client.options();
    opts.learn_into = Some(learned.clone());
    let mut spec_new = spec.clone();
    spec_new.host_keys = HostKeyPolicy::AcceptNew;
    let accept = Transport::from_specs(vec![spec_new], opts).unwrap();
    let out = accept.exec("h", &ID).await.unwrap();
    assert_eq!(out.stdout, b"root\n");
    let text = std::fs::read_to_string(&learned).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with(&format!("[{}]:{},[h]:{} ", sshd.addr, sshd.port, sshd.port)));
    assert!(text.contains(&key_part(&sshd.host_key.public)));

    // OpenSSH agrees the learned line is for this host.
    let q = format!("[{}]:{}", sshd.addr, sshd.port);
    let f = Command::new("ssh-keygen")
        .args(["-F", &q, "-f"])
        .arg(&learned)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&f.stdout).contains("found: line 1"));

    // A strict transport that reads the learned file now trusts the host.
    let mut spec2 = spec.clone();
    spec2.known_hosts = vec![learned.clone()];
    let again = Transport::from_specs(vec![spec2], client.options()).unwrap();
    assert_eq!(again.exec("h", &ID).await.unwrap().stdout, b"root\n");
}

#[tokio::test]
async fn changed_key_refused_with_file_and_line_even_with_accept_new() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    let other = keygen(client.dir.path(), "other", "ed25519", "");
    let text = format!(
        "# header\nsomewhere.else {}\n[{}]:{} {}\n",
        key_part(&other.public),
        sshd.addr,
        sshd.port,
        key_part(&other.public)
    );
    std::fs::write(&client.known_hosts, text).unwrap();
    let mut spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    spec.host_keys = HostKeyPolicy::AcceptNew;
    let learned = client.dir.path().join("learned");
    let mut opts = client.options();
    opts.learn_into = Some(learned.clone());
    let t = Transport::from_specs(vec![spec], opts).unwrap();
    let err = t.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::HostKeyChanged { at, .. } => {
            assert_eq!(at.line, 3);
            assert_eq!(at.file, client.known_hosts);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "host key changed ({}:3)",
            client.known_hosts.display()
        )),
        "{msg}"
    );
    match &t.states()["h"] {
        ConnState::HostKeyRefused { location, .. } => {
            assert_eq!(
                location.as_deref(),
                Some(format!("{}:3", client.known_hosts.display()).as_str())
            )
        }
        s => panic!("{s:?}"),
    }
    assert!(!learned.exists(), "a changed key must never be learned");
}

#[tokio::test]
async fn revoked_key_refused_even_if_listed() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let mut text = std::fs::read_to_string(&client.known_hosts).unwrap();
    text.push_str(&format!("@revoked * {}\n", key_part(&sshd.host_key.public)));
    std::fs::write(&client.known_hosts, text).unwrap();
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let t = Transport::from_specs(vec![spec], client.options()).unwrap();
    let err = t.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::HostKeyRevoked { at, .. } => assert_eq!(at.line, 2),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hashed_entries_are_matched() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let st = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&client.known_hosts)
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = std::fs::read_to_string(&client.known_hosts).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let t = Transport::from_specs(vec![spec], client.options()).unwrap();
    assert_eq!(t.exec("h", &ID).await.unwrap().stdout, b"root\n");
}

async fn cert_case(principals: &str, validity: &str) -> Result<(), ErrorKind> {
    let client = Client::new();
    let ca = keygen(client.dir.path(), "ca", "ed25519", "");
    let sshd = Sshd::start(
        &client.key.public,
        SshdOptions {
            host_cert: Some(CertSpec {
                ca: ca.private.clone(),
                principals: principals.to_string(),
                validity: validity.to_string(),
            }),
            ..Default::default()
        },
    );
    // Only the CA is known: the plain host key is not.
    std::fs::write(
        &client.known_hosts,
        format!("# CA\n@cert-authority [127.*]:* {}\n", key_part(&ca.public)),
    )
    .unwrap();
    let spec = sshd.spec("certhost", &client.key.private, &client.known_hosts);
    let t = Transport::from_specs(vec![spec], client.options()).unwrap();
    match t.exec("certhost", &ID).await {
        Ok(out) => {
            assert_eq!(out.stdout, b"root\n");
            Ok(())
        }
        Err(e) => Err(*e.kind),
    }
}

#[tokio::test]
async fn host_certificate_signed_by_trusted_ca() {
    cert_case("certhost", "-5m:+1h").await.unwrap();
}

#[tokio::test]
async fn expired_host_certificate_refused() {
    match cert_case("certhost", "20200101:20200102").await {
        Err(ErrorKind::CertificateRefused { at, problem }) => {
            assert_eq!(at.line, 2);
            assert_eq!(problem.to_string(), "it has expired");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn host_certificate_for_another_host_refused() {
    match cert_case("otherhost,db9", "-5m:+1h").await {
        Err(ErrorKind::CertificateRefused { problem, .. }) => {
            assert!(problem.to_string().contains("otherhost"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bastion_never_vouches_for_its_target() {
    let client = Client::new();
    let edge = Sshd::start(&client.key.public, SshdOptions::default());
    let target = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&edge);
    let e = edge.spec("edge", &client.key.private, &client.known_hosts);
    let mut t = target.spec("db1", &client.key.private, &client.known_hosts);
    t.via = Some("edge".into());
    let tr = Transport::from_specs(vec![e, t], client.options()).unwrap();
    let err = tr.exec("db1", &ID).await.unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::HostKeyUnknown { .. }));
    assert!(
        err.to_string()
            .starts_with("db1 via edge: host key unknown"),
        "{err}"
    );
    // The bastion itself is fine.
    assert_eq!(tr.exec("edge", &ID).await.unwrap().stdout, b"root\n");
    assert!(!target.log_text().contains("req exec"));
}
