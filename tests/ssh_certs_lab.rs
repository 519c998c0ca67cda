//! User certificates against the practice lab: every lab sshd trusts the lab's user CA
//! (`TrustedUserCAKeys`, `STATE/user_ca.pub`). A key no host authorizes logs in through the
//! bastion with a certificate the CA signed; an expired certificate is held back with an
//! error naming the host, the file, the key ID and the window; and a `ProxyJump` chain of two
//! bastions (edge, then web1) reaches app1.
//!
//! Run inside a sandbox: `dev/sandbox NAME cargo test --test ssh_certs_lab`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart::inventory::Inventory;
use rampart::ssh::transport::resolve_specs;
use rampart::ssh::{AgentChoice, ErrorKind, ReadCommand, Transport, TransportOptions};

const HOSTNAME: ReadCommand = ReadCommand::new("hostname", "cat /proc/sys/kernel/hostname");

fn lab_options(inv: &Inventory, dir: &Path) -> TransportOptions {
    TransportOptions {
        user_known_hosts: false,
        agent: AgentChoice::Off,
        default_identities: false,
        ssh_config: Some(Default::default()),
        command_log: Some(dir.join("commands.jsonl")),
        ..TransportOptions::from_inventory(inv)
    }
}

/// A fresh key (authorized nowhere) and its certificate from the lab CA, for root.
fn certified_key(lab: &common::Lab, dir: &Path, key_id: &str, validity: &str) -> PathBuf {
    let key = dir.join(format!("{key_id}_ed25519"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", key_id, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let ca = lab.state_dir.join("user_ca");
    assert!(ca.exists(), "lab up made no user CA at {}", ca.display());
    let st = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", key_id, "-n", "root", "-V", validity])
        .arg(format!("{}.pub", key.display()))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(PathBuf::from(format!("{}-cert.pub", key.display())).exists());
    key
}

/// The shipped inventory's hosts, with `key` as the only identity file.
fn specs_with_key(
    inv: &Inventory,
    opts: &TransportOptions,
    key: &Path,
) -> Vec<rampart::ssh::HostSpec> {
    let mut specs = resolve_specs(inv, &Default::default(), opts).unwrap();
    for s in &mut specs {
        s.identity_files = vec![key.to_path_buf()];
    }
    specs
}

fn auth_log(lab: &common::Lab, host: &str) -> String {
    std::fs::read_to_string(lab.host_path(host, "/var/log/auth.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_logs_in_through_the_bastion_without_an_authorized_key() {
    let lab = common::ensure_lab();
    let inv =
        Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = certified_key(&lab, tmp.path(), "lab-cert-ok", "-5m:+1h");
    let opts = lab_options(&inv, tmp.path());

    // The key alone is authorized nowhere: without its certificate, edge refuses it.
    let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
    let aside = tmp.path().join("aside-cert.pub");
    std::fs::rename(&cert, &aside).unwrap();
    let tr = Transport::from_specs(specs_with_key(&inv, &opts, &key), opts.clone()).unwrap();
    let err = tr.exec("web1", &HOSTNAME).await.unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::AuthFailed { .. }), "{err}");
    std::fs::rename(&aside, &cert).unwrap();

    let tr = Transport::from_specs(specs_with_key(&inv, &opts, &key), opts).unwrap();
    let out = tr
        .exec("web1", &HOSTNAME)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "web1");
    for host in ["edge", "web1"] {
        let log = auth_log(&lab, host);
        assert!(
            log.lines()
                .any(|l| l.contains("Accepted publickey for root") && l.contains("ID lab-cert-ok")),
            "{host}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused_before_sending_with_a_clear_error() {
    let lab = common::ensure_lab();
    let inv =
        Inventory::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let key = certified_key(&lab, tmp.path(), "lab-cert-expired", "20200101:20200102");
    let opts = lab_options(&inv, tmp.path());
    let tr = Transport::from_specs(specs_with_key(&inv, &opts, &key), opts).unwrap();
    let err = tr.exec("db1", &HOSTNAME).await.unwrap_err();
    assert!(
        matches!(*err.kind, ErrorKind::CertificateNotValid { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    eprintln!("{text}");
    // The bastion is the first hop that needs it: the error says so, for db1.
    assert!(
        text.starts_with("db1 via edge: at edge: certificate "),
        "{text}"
    );
    for want in [
        format!("{}-cert.pub", key.display()),
        "key ID \"lab-cert-expired\"".to_string(),
        "is expired: valid from ".to_string(),
        " to 2020-01-0".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} missing: {text}");
    }
    // Never offered: edge's sshd saw no certificate with this key ID.
    assert!(!auth_log(&lab, "edge").contains("lab-cert-expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_chain_of_two_bastions() {
    let lab = common::ensure_lab();
    let tmp = tempfile::tempdir().unwrap();
    let key = certified_key(&lab, tmp.path(), "lab-cert-chain", "-5m:+1h");
    // app1 reached as ssh_config says: through edge, then web1 (whose connection to app1
    // comes from the DMZ: app1's firewall is off).
    let inv = Inventory::parse(
        &format!(
            "[defaults]\nuser = \"root\"\nidentity_files = [\"{}\"]\nknown_hosts = [\"{}\"]\n\n\
             [[host]]\nname = \"app1\"\naddress = \"{}\"\nbastion = \"none\"\n",
            key.display(),
            lab.known_hosts().display(),
            common::address("app1"),
        ),
        Path::new("inventory.toml"),
    )
    .unwrap();
    let cfg = rampart::ssh::config::parse(
        &format!(
            "Host app1\n  ProxyJump root@{},root@{}\n",
            common::BASTION,
            common::address("web1")
        ),
        Path::new("ssh_config"),
    )
    .unwrap();
    let mut opts = lab_options(&inv, tmp.path());
    opts.ssh_config = Some(cfg);
    let tr = Transport::new(&inv, opts).unwrap();
    assert_eq!(
        tr.via("app1"),
        vec![
            common::BASTION.to_string(),
            common::address("web1").to_string()
        ]
    );
    let out = tr
        .exec("app1", &HOSTNAME)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app1");
    // app1 saw the login come from web1, with the certificate.
    let log = auth_log(&lab, "app1");
    let from_web1 = format!(
        "Accepted publickey for root from {} ",
        common::address("web1")
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&from_web1) && l.contains("ID lab-cert-chain")),
        "{log}"
    );
}
