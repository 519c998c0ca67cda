//! Authentication against real sshd: ssh-agent, identity files, an encrypted key with its
//! passphrase (asked once), headless refusal, and a clear failure listing what was tried.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ssh_sshd;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart::ssh::{AgentChoice, ErrorKind, ReadCommand, Transport};
use ssh_sshd::{Client, Sshd, SshdOptions, keygen};

const ID: ReadCommand = ReadCommand::new("id", "id -un");

struct Agent {
    child: Child,
    socket: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &std::path::Path, key: &std::path::Path) -> Agent {
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
async fn agent_auth_direct_and_through_bastion() {
    let client = Client::new();
    let edge = Sshd::start(&client.key.public, SshdOptions::default());
    let target = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&edge);
    client.trust(&target);
    let agent = start_agent(client.dir.path(), &client.key.private);
    // No identity file anywhere: only the agent can authenticate.
    let mut e = edge.spec("edge", &client.key.private, &client.known_hosts);
    e.identity_files.clear();
    let mut t = target.spec("db1", &client.key.private, &client.known_hosts);
    t.identity_files.clear();
    t.via = Some("edge".into());
    let mut opts = client.options();
    opts.agent = AgentChoice::Socket(agent.socket.clone());
    let tr = Transport::from_specs(vec![e, t], opts).unwrap();
    assert_eq!(tr.exec("db1", &ID).await.unwrap().stdout, b"root\n");
    assert!(target.log_text().contains("Accepted publickey for root"));

    // Without the agent the same hosts cannot be reached, so the agent was what worked.
    let mut e = edge.spec("edge", &client.key.private, &client.known_hosts);
    e.identity_files.clear();
    let no_agent = Transport::from_specs(vec![e], client.options()).unwrap();
    let err = no_agent.exec("edge", &ID).await.unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains("no key to offer"), "{err}");
}

#[tokio::test]
async fn wrong_key_fails_naming_what_was_tried() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let stranger = keygen(client.dir.path(), "stranger", "ed25519", "");
    let spec = sshd.spec("h", &stranger.private, &client.known_hosts);
    let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
    let err = tr.exec("h", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::AuthFailed { user, tried } => {
            assert_eq!(user, "root");
            assert_eq!(tried, &vec![stranger.private.display().to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn encrypted_key_asks_passphrase_once() {
    let client = Client::new();
    let enc = keygen(client.dir.path(), "enc", "ed25519", "correct horse");
    let a = Sshd::start(&enc.public, SshdOptions::default());
    let b = Sshd::start(&enc.public, SshdOptions::default());
    let c = Sshd::start(&enc.public, SshdOptions::default());
    let specs: Vec<_> = [(&a, "a"), (&b, "b"), (&c, "c")]
        .iter()
        .map(|(s, n)| {
            client.trust(s);
            s.spec(n, &enc.private, &client.known_hosts)
        })
        .collect();

    // Headless: no way to ask, so a clear error naming the file.
    let headless = Transport::from_specs(specs.clone(), client.options()).unwrap();
    let err = headless.exec("a", &ID).await.unwrap_err();
    match &*err.kind {
        ErrorKind::PassphraseRequired(p) => assert_eq!(p, &enc.private),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("ssh-add"), "{err}");

    // With a prompt: asked once for three hosts connecting at the same time.
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let mut opts = client.options();
    opts.passphrase = Some(Arc::new(move |_path: &std::path::Path| {
        counter.fetch_add(1, Ordering::SeqCst);
        Some("correct horse".to_string())
    }));
    let tr = Transport::from_specs(specs.clone(), opts).unwrap();
    let hosts = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    for (h, r) in tr.exec_many(&hosts, &ID).await {
        assert_eq!(r.unwrap().stdout, b"root\n", "{h}");
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // A wrong passphrase is reported as such.
    let mut opts = client.options();
    opts.passphrase = Some(Arc::new(|_: &std::path::Path| Some("wrong".to_string())));
    let tr = Transport::from_specs(specs, opts).unwrap();
    let err = tr.exec("a", &ID).await.unwrap_err();
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
}

#[tokio::test]
async fn rsa_identity_file() {
    let client = Client::new();
    let rsa = keygen(client.dir.path(), "rsa", "rsa", "");
    let sshd = Sshd::start(&rsa.public, SshdOptions::default());
    client.trust(&sshd);
    let spec = sshd.spec("h", &rsa.private, &client.known_hosts);
    let tr = Transport::from_specs(vec![spec], client.options()).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");
    // A SHA-2 signature was used, never ssh-rsa (SHA-1).
    let log = sshd.log_text();
    assert!(log.contains("Accepted publickey for root"), "{log}");
    assert!(log.contains("rsa-sha2-"), "{log}");
}
