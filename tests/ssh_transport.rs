//! The transport against real OpenSSH sshd processes on loopback: hops, exec, caps,
//! timeouts, limits, keepalive, reconnection, and what reaches sshd.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ssh_sshd;

use std::time::{Duration, Instant};

use rampart::ssh::log::CommandLog;
use rampart::ssh::{ConnState, ErrorKind, ReadCommand, Transport};
use ssh_sshd::{Client, Sshd, SshdOptions};

const ECHO: ReadCommand = ReadCommand::new("echo", "echo hello; echo oops >&2; exit 3");
const HOSTNAME: ReadCommand = ReadCommand::new("whoami", "id -un");

#[tokio::test]
async fn direct_and_through_a_bastion_chain() {
    let client = Client::new();
    let edge = Sshd::start(&client.key.public, SshdOptions::default());
    let inner = Sshd::start(&client.key.public, SshdOptions::default());
    let target = Sshd::start(&client.key.public, SshdOptions::default());
    for s in [&edge, &inner, &target] {
        client.trust(s);
    }
    let kh = &client.known_hosts;
    let id = &client.key.private;
    let e = edge.spec("edge", id, kh);
    let mut i = inner.spec("inner", id, kh);
    i.via = Some("edge".into());
    let mut t = target.spec("db1", id, kh);
    t.via = Some("inner".into());
    let transport = Transport::from_specs(vec![e, i, t], client.options()).unwrap();

    let out = transport.exec("db1", &ECHO).await.unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"oops\n");
    assert_eq!(out.exit_status, Some(3));
    assert!(!out.truncated);
    assert_eq!(
        transport.via("db1"),
        vec!["edge".to_string(), "inner".to_string()]
    );
    for h in ["edge", "inner", "db1"] {
        let st = transport.states()[h].clone();
        assert!(matches!(st, ConnState::Ready { .. }), "{h}: {st:?}");
    }
    let out = transport.exec("edge", &HOSTNAME).await.unwrap();
    assert_eq!(out.stdout, b"root\n");

    // The target's sshd saw a connection from loopback forwarded by the inner bastion, not a
    // direct one: the inner bastion's log shows the direct-tcpip request.
    assert!(
        inner.log_text().contains("direct-tcpip"),
        "no direct-tcpip at inner"
    );
    assert!(
        edge.log_text().contains("direct-tcpip"),
        "no direct-tcpip at edge"
    );

    // Every command was logged with host, hops, status and duration.
    let records = CommandLog::read_all(&transport.command_log_path()).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].host, "db1");
    assert_eq!(records[0].via, vec!["edge", "inner"]);
    assert_eq!(records[0].exit_status, Some(3));
    assert_eq!(records[0].kind, "read");
    assert!(records[0].command.contains(&ECHO.render(false)));
    assert_eq!(records[1].host, "edge");
    transport.close().await;
}

#[tokio::test]
async fn framed_script_over_ssh() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let transport = Transport::from_specs(vec![spec], client.options()).unwrap();
    let script = ReadCommand::framed("facts", &[&ECHO, &HOSTNAME]).unwrap();
    let out = transport.exec("h", &script).await.unwrap();
    let frames = script.parse_frames(&out.stdout, &out.stderr);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].name, "echo");
    assert_eq!(frames[0].exit_status, Some(3));
    assert_eq!(frames[0].stdout, b"hello\n");
    assert_eq!(frames[0].stderr, b"oops\n");
    assert_eq!(frames[1].stdout, b"root\n");
    assert_eq!(out.exit_status, Some(0));
}

#[tokio::test]
async fn output_cap_truncates_and_flags() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let mut opts = client.options();
    opts.output_cap = 100_000;
    let transport = Transport::from_specs(vec![spec], opts).unwrap();
    const BIG: ReadCommand = ReadCommand::new("big", "head -c 50000000 /dev/zero");
    let out = transport.exec("h", &BIG).await.unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 100_000);
    // The connection is still usable afterwards.
    let out = transport.exec("h", &HOSTNAME).await.unwrap();
    assert_eq!(out.stdout, b"root\n");
    let records = CommandLog::read_all(&transport.command_log_path()).unwrap();
    assert!(records[0].truncated);
}

#[tokio::test]
async fn command_timeout_closes_the_channel() {
    let client = Client::new();
    // One session at a time: if the timed-out channel leaked, the next command could never
    // get a session.
    let sshd = Sshd::start(
        &client.key.public,
        SshdOptions {
            extra: vec!["MaxSessions 1".into()],
            ..Default::default()
        },
    );
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let mut opts = client.options();
    opts.command_timeout = Duration::from_secs(1);
    opts.max_channels_per_connection = 1;
    let transport = Transport::from_specs(vec![spec], opts).unwrap();
    const SLOW: ReadCommand = ReadCommand::new("slow", "sleep 30");
    let started = Instant::now();
    let err = transport.exec("h", &SLOW).await.unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::CommandTimeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let out = transport.exec("h", &HOSTNAME).await.unwrap();
    assert_eq!(out.stdout, b"root\n");
    // No `sleep 30` left running on the host.
    let ps = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 30$"])
        .output()
        .unwrap();
    let pids: Vec<u32> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let under_sshd = ssh_sshd::children(sshd.pid());
    assert!(
        pids.iter().all(|p| !under_sshd.contains(p)),
        "sleep still running under sshd"
    );
    let records = CommandLog::read_all(&transport.command_log_path()).unwrap();
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("timed out")
    );
}

#[tokio::test]
async fn no_pty_x11_or_agent_request_reaches_sshd() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let transport = Transport::from_specs(vec![spec], client.options()).unwrap();
    for _ in 0..3 {
        transport.exec("h", &HOSTNAME).await.unwrap();
    }
    assert!(transport.states()["h"] == ConnState::Ready { strict_kex: true });
    transport.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = sshd.log_text();
    // Positive control: sshd logs channel requests at DEBUG3.
    assert!(
        log.contains("req exec"),
        "sshd log does not show requests:\n{log}"
    );
    for forbidden in ["pty-req", "x11-req", "auth-agent-req", "req shell", "env"] {
        let hit = log
            .lines()
            .find(|l| l.contains("input_channel_req") && l.contains(forbidden));
        assert!(hit.is_none(), "sshd saw {forbidden}: {hit:?}");
    }
    // Compression was not negotiated.
    assert!(!log.contains("compression: zlib"), "compression negotiated");
}
