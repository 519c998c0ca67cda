//! OpenSSH user certificates against real sshd on loopback (`TrustedUserCAKeys`, no
//! authorized key for the client): a `KEY-cert.pub` beside the key, a `CertificateFile` from
//! ssh_config, a certificate held by ssh-agent, an expired and a not-yet-valid certificate
//! (held back before sending, with an error naming host, file, key ID and window),
//! `IdentitiesOnly`, and a `ProxyJump` chain of two bastions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ssh_sshd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rampart::ssh::{AgentChoice, ErrorKind, ReadCommand, Transport};
use ssh_sshd::{Client, KeyPair, Sshd, SshdOptions, keygen};

const ID: ReadCommand = ReadCommand::new("id", "id -un");

/// A user CA, and an sshd set-up that trusts it and authorizes no key of the client.
struct Ca {
    key: KeyPair,
    /// A key nobody uses, so authorized_keys never lets the client in.
    stranger: KeyPair,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        Ca {
            key: keygen(dir, "user_ca", "ed25519", ""),
            stranger: keygen(dir, "stranger", "ed25519", ""),
        }
    }

    fn sshd(&self) -> Sshd {
        let ca_pub = self.key.private.with_extension("pub");
        Sshd::start(
            &self.stranger.public,
            SshdOptions {
                extra: vec![format!("TrustedUserCAKeys {}", ca_pub.display())],
                ..SshdOptions::default()
            },
        )
    }

    /// Signs `key`'s public half for principal root; the certificate goes to `out`.
    fn sign(&self, key: &Path, key_id: &str, validity: &str, out: &Path) {
        let pubkey = key.with_extension("pub");
        let pubkey = if pubkey.exists() {
            pubkey
        } else {
            PathBuf::from(format!("{}.pub", key.display()))
        };
        let st = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(&self.key.private)
            .args(["-I", key_id, "-n", "root", "-V", validity])
            .arg(&pubkey)
            .status()
            .unwrap();
        assert!(st.success());
        let made = PathBuf::from(format!(
            "{}-cert.pub",
            pubkey.display().to_string().trim_end_matches(".pub")
        ));
        if made != out {
            std::fs::rename(&made, out).unwrap();
        }
    }
}

fn cert_beside(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}-cert.pub", key.display()))
}

#[tokio::test]
async fn cert_beside_the_key_logs_in_without_an_authorized_key() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let sshd = ca.sshd();
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);

    // Without a certificate the key alone is refused: authorized_keys does not hold it.
    let tr = Transport::from_specs(vec![spec.clone()], client.options()).unwrap();
    let err = tr.exec("h", &ID).await.unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::AuthFailed { .. }), "{err}");

    ca.sign(
        &client.key.private,
        "alice@rampart-test",
        "-5m:+1h",
        &cert_beside(&client.key.private),
    );
    let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");
    let log = sshd.log_text();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("ID alice@rampart-test"),
        "{log}"
    );
}

#[tokio::test]
async fn certificate_file_from_ssh_config() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let sshd = ca.sshd();
    client.trust(&sshd);
    let certs = client.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let cert = certs.join("fleet.cert");
    ca.sign(&client.key.private, "fleet-cert", "-5m:+1h", &cert);
    let inv = rampart::inventory::Inventory::parse(
        &format!(
            "[[host]]\nname = \"db1\"\naddress = \"{}\"\nport = {}\nuser = \"root\"\n\
             identity_files = [\"{}\"]\nknown_hosts = [\"{}\"]\n",
            sshd.addr,
            sshd.port,
            client.key.private.display(),
            client.known_hosts.display()
        ),
        Path::new("inventory.toml"),
    )
    .unwrap();
    let cfg = rampart::ssh::config::parse(
        &format!("Host db1\n  CertificateFile {}\n", cert.display()),
        Path::new("ssh_config"),
    )
    .unwrap();
    let mut opts = client.options();
    opts.ssh_config = Some(cfg);
    let tr = Transport::new(&inv, opts).unwrap();
    assert_eq!(tr.exec("db1", &ID).await.unwrap().stdout, b"root\n");
    assert!(sshd.log_text().contains("ID fleet-cert"));
}

#[tokio::test]
async fn expired_and_future_certificates_are_never_sent() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let sshd = ca.sshd();
    client.trust(&sshd);
    let cert = cert_beside(&client.key.private);
    for (validity, problem, from) in [
        ("20200101:20200102", "is expired", " to 2020-01-0"),
        ("+1d:+2d", "is not yet valid", "valid from "),
    ] {
        ca.sign(&client.key.private, "old-cert-7", validity, &cert);
        let spec = sshd.spec("db9", &client.key.private, &client.known_hosts);
        let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
        let err = tr.exec("db9", &ID).await.unwrap_err();
        assert!(
            matches!(*err.kind, ErrorKind::CertificateNotValid { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        for want in [
            "db9: ",
            cert.to_str().unwrap(),
            "key ID \"old-cert-7\"",
            problem,
            from,
            ", now 20",
        ] {
            assert!(text.contains(want), "{want:?} missing from: {text}");
        }
        assert_eq!(err.stage(), rampart::ssh::Stage::Auth);
    }
    // Held back: sshd never saw a certificate offered, only the plain key.
    let log = sshd.log_text();
    assert!(
        !log.contains("ED25519-CERT") && !log.contains("cert-v01"),
        "{log}"
    );
    assert!(!log.contains("old-cert-7"), "{log}");
}

struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path, key: &Path) -> Agent {
    let socket = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // ssh-add adds KEY-cert.pub too when it sits beside the key.
    let st = Command::new("ssh-add")
        .arg(key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    Agent { child, socket }
}

#[tokio::test]
async fn certificate_held_by_the_agent() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let sshd = ca.sshd();
    client.trust(&sshd);
    let agent_dir = tempfile::tempdir().unwrap();
    let key = agent_dir.path().join("agent_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    ca.sign(&key, "agent-held", "-5m:+1h", &cert_beside(&key));
    let agent = start_agent(agent_dir.path(), &key);
    // The key and certificate files go away: only the agent holds them.
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(cert_beside(&key)).unwrap();
    let mut spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    spec.identity_files.clear();
    let mut opts = client.options();
    opts.agent = AgentChoice::Socket(agent.socket.clone());
    let tr = Transport::from_specs(vec![spec], opts).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");
    assert!(sshd.log_text().contains("ID agent-held"));
}

#[tokio::test]
async fn certificate_file_whose_key_only_the_agent_holds() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let sshd = ca.sshd();
    client.trust(&sshd);
    let agent_dir = tempfile::tempdir().unwrap();
    let key = keygen(agent_dir.path(), "agent_plain", "ed25519", "");
    // The agent gets the plain key only (no certificate beside it yet).
    let agent = start_agent(agent_dir.path(), &key.private);
    std::fs::remove_file(&key.private).unwrap();
    let cert = client.dir.path().join("elsewhere.cert");
    ca.sign(&key.private, "file-cert-agent-key", "-5m:+1h", &cert);
    let mut spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    spec.identity_files.clear();
    spec.certificate_files = vec![cert];
    spec.identities_only = true;
    let mut opts = client.options();
    opts.agent = AgentChoice::Socket(agent.socket.clone());
    let tr = Transport::from_specs(vec![spec], opts).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");
    assert!(sshd.log_text().contains("ID file-cert-agent-key"));
}

#[tokio::test]
async fn identities_only_keeps_the_agent_keys_out() {
    let client = Client::new();
    // This sshd authorizes the agent's key, not the configured identity file.
    let agent_key = keygen(client.dir.path(), "agent_only", "ed25519", "");
    let sshd = Sshd::start(&agent_key.public, SshdOptions::default());
    client.trust(&sshd);
    let agent = start_agent(client.dir.path(), &agent_key.private);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let mut opts = client.options();
    opts.agent = AgentChoice::Socket(agent.socket.clone());

    // Without IdentitiesOnly the agent's key gets in.
    let tr = Transport::from_specs(vec![spec.clone()], opts.clone()).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");

    // With it, only the identity file is offered, and it is refused.
    let mut only = spec;
    only.identities_only = true;
    let tr = Transport::from_specs(vec![only], opts).unwrap();
    let err = tr.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::AuthFailed { tried, .. } => {
            assert_eq!(tried, &vec![client.key.private.display().to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn proxy_jump_chain_of_two_bastions_with_certificates() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    let outer = ca.sshd();
    let inner = ca.sshd();
    let target = ca.sshd();
    for s in [&outer, &inner, &target] {
        client.trust(s);
    }
    ca.sign(
        &client.key.private,
        "chain-cert",
        "-5m:+1h",
        &cert_beside(&client.key.private),
    );
    let inv = rampart::inventory::Inventory::parse(
        &format!(
            "[[host]]\nname = \"db1\"\naddress = \"{}\"\nport = {}\nuser = \"root\"\n\
             identity_files = [\"{}\"]\nknown_hosts = [\"{}\"]\n",
            target.addr,
            target.port,
            client.key.private.display(),
            client.known_hosts.display()
        ),
        Path::new("inventory.toml"),
    )
    .unwrap();
    let cfg = rampart::ssh::config::parse(
        &format!(
            "Host db1\n  ProxyJump root@{}:{},root@{}:{}\n",
            outer.addr, outer.port, inner.addr, inner.port
        ),
        Path::new("ssh_config"),
    )
    .unwrap();
    let mut opts = client.options();
    opts.ssh_config = Some(cfg);
    let tr = Transport::new(&inv, opts).unwrap();
    assert_eq!(tr.via("db1"), vec![outer.addr.clone(), inner.addr.clone()]);
    assert_eq!(tr.exec("db1", &ID).await.unwrap().stdout, b"root\n");
    // Each hop logged in with the certificate; the outer bastion forwarded to the inner one,
    // the inner one to the target.
    for s in [&outer, &inner, &target] {
        assert!(s.log_text().contains("ID chain-cert"), "{}", s.log_text());
    }
    for (hop, next) in [(&outer, &inner), (&inner, &target)] {
        let want = format!("target {} port {}", next.addr, next.port);
        assert!(hop.log_text().contains(&want), "{want}: {}", hop.log_text());
    }
}

#[tokio::test]
async fn a_certificate_without_its_key_is_reported_only_when_nothing_else_works() {
    let client = Client::new();
    let ca = Ca::new(client.dir.path());
    // A certificate for a key rampart is not given.
    let other_dir = tempfile::tempdir().unwrap();
    let other = keygen(other_dir.path(), "other", "ed25519", "");
    let cert = client.dir.path().join("orphan.cert");
    ca.sign(&other.private, "orphan", "-5m:+1h", &cert);
    std::fs::remove_file(&other.private).unwrap();

    // sshd authorizes no client key: the orphan certificate is the error.
    let sshd = ca.sshd();
    client.trust(&sshd);
    let mut spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    spec.certificate_files = vec![cert.clone()];
    let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
    let err = tr.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::CertificateFile { path, reason } => {
            assert_eq!(path, &cert);
            assert!(
                reason.contains("neither an identity file nor ssh-agent holds its private key"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }

    // An sshd that authorizes the client's plain key: the orphan does not get in the way.
    let plain = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&plain);
    let mut spec = plain.spec("p", &client.key.private, &client.known_hosts);
    spec.certificate_files = vec![cert];
    let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
    assert_eq!(tr.exec("p", &ID).await.unwrap().stdout, b"root\n");
}
