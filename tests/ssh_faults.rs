//! Faults and limits against real sshd: MaxStartups and MaxSessions never cause a failure,
//! a dead or stalled host fails at its own timeout while the others complete, a frozen sshd
//! is detected by keepalive, and hosts come back after their bastion's sshd restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ssh_sshd;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use rampart::ssh::{ConnState, ErrorKind, HostSpec, ReadCommand, Transport};
use ssh_sshd::{Client, Sshd, SshdOptions, fresh_loopback};

const ID: ReadCommand = ReadCommand::new("id", "id -un");
const BUSY: ReadCommand = ReadCommand::new("busy", "sleep 0.2; id -un");

async fn wait_state(
    tr: &Transport,
    host: &str,
    within: Duration,
    pred: impl Fn(&ConnState) -> bool,
) -> ConnState {
    let mut rx = tr.subscribe(host).unwrap();
    let deadline = Instant::now() + within;
    loop {
        let cur = rx.borrow_and_update().clone();
        if pred(&cur) {
            return cur;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
            return rx.borrow().clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_startups_and_max_sessions_never_fail() {
    let client = Client::new();
    let edge = Sshd::start(
        &client.key.public,
        SshdOptions {
            extra: vec!["MaxStartups 3:50:5".into()],
            ..Default::default()
        },
    );
    client.trust(&edge);
    let mut specs = vec![edge.spec("edge", &client.key.private, &client.known_hosts)];
    let mut targets = Vec::new();
    for i in 0..5 {
        let t = Sshd::start(
            &client.key.public,
            SshdOptions {
                extra: vec!["MaxSessions 2".into(), "MaxStartups 3:50:5".into()],
                ..Default::default()
            },
        );
        client.trust(&t);
        let mut s = t.spec(&format!("t{i}"), &client.key.private, &client.known_hosts);
        s.via = Some("edge".into());
        specs.push(s);
        targets.push(t);
    }
    // Eight more names for one sshd that refuses every unauthenticated connection beyond
    // three: the per-sshd handshake bound (two) keeps them all working.
    let crowded = Sshd::start(
        &client.key.public,
        SshdOptions {
            extra: vec!["MaxStartups 3:100:3".into(), "MaxSessions 2".into()],
            ..Default::default()
        },
    );
    client.trust(&crowded);
    for i in 0..8 {
        specs.push(crowded.spec(&format!("c{i}"), &client.key.private, &client.known_hosts));
    }
    let mut opts = client.options();
    opts.max_handshakes_per_sshd = 2;
    // Our default (8 channels) is far above MaxSessions 2: sshd refuses, we adapt and retry.
    let tr = Transport::from_specs(specs, opts).unwrap();
    let mut jobs = Vec::new();
    for host in tr.hosts() {
        for _ in 0..6 {
            let tr = tr.clone();
            let host = host.clone();
            jobs.push(tokio::spawn(async move {
                (host.clone(), tr.exec(&host, &BUSY).await)
            }));
        }
    }
    let mut ok = 0;
    for j in jobs {
        let (host, r) = j.await.unwrap();
        match r {
            Ok(out) => {
                assert_eq!(out.stdout, b"root\n", "{host}");
                ok += 1;
            }
            Err(e) => panic!("{host}: {e}"),
        }
    }
    assert_eq!(ok, 14 * 6);
    // sshd did refuse sessions beyond MaxSessions: the retry path was exercised.
    let refused = targets
        .iter()
        .chain(std::iter::once(&crowded))
        .filter(|t| t.log_text().contains("no more sessions"))
        .count();
    assert!(
        refused > 0,
        "MaxSessions was never hit; the test proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_stalled_hosts_fail_at_their_timeouts_while_others_complete() {
    let client = Client::new();
    let good = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&good);
    // Nothing listens here: refused at once.
    let closed_addr = fresh_loopback();
    let closed_port = TcpListener::bind(format!("{closed_addr}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Accepts TCP but never says a word (an sshd stalled before its banner).
    let stall_addr = fresh_loopback();
    let stall = TcpListener::bind(format!("{stall_addr}:0")).unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    let mut specs = vec![good.spec("good", &client.key.private, &client.known_hosts)];
    let mut dead = HostSpec::direct("dead", &closed_addr, closed_port, "root");
    dead.known_hosts = vec![client.known_hosts.clone()];
    specs.push(dead);
    let mut stalled = HostSpec::direct("stalled", &stall_addr, stall_port, "root");
    stalled.known_hosts = vec![client.known_hosts.clone()];
    specs.push(stalled);
    let mut opts = client.options();
    opts.connect_timeout = Duration::from_secs(2);
    opts.handshake_timeout = Duration::from_secs(3);
    let tr = Transport::from_specs(specs, opts).unwrap();

    let t0 = Instant::now();
    let timed = |h: &'static str| {
        let tr = tr.clone();
        async move {
            let r = tr.exec(h, &ID).await;
            (r, t0.elapsed())
        }
    };
    let ((good_r, good_t), (dead_r, dead_t), (stall_r, stall_t)) =
        tokio::join!(timed("good"), timed("dead"), timed("stalled"));
    assert_eq!(good_r.unwrap().stdout, b"root\n");
    let dead_e = dead_r.unwrap_err();
    assert!(matches!(*dead_e.kind, ErrorKind::Connect(_)), "{dead_e}");
    assert!(
        dead_t < Duration::from_secs(2),
        "refused connect took {dead_t:?}"
    );
    let stall_e = stall_r.unwrap_err();
    assert!(
        matches!(*stall_e.kind, ErrorKind::HandshakeTimeout(_)),
        "{stall_e}"
    );
    // It failed at its own timeout (3 s), not later, and did not hold up the good host.
    assert!(
        stall_t >= Duration::from_secs(3) && stall_t < Duration::from_secs(6),
        "{stall_t:?}"
    );
    assert!(good_t < stall_t);
    assert!(matches!(tr.states()["dead"], ConnState::Failed { .. }));
    assert!(matches!(tr.states()["stalled"], ConnState::Failed { .. }));
    drop(stall);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_sshd_detected_by_keepalive_then_recovers() {
    let client = Client::new();
    let sshd = Sshd::start(&client.key.public, SshdOptions::default());
    client.trust(&sshd);
    let spec = sshd.spec("h", &client.key.private, &client.known_hosts);
    let mut opts = client.options();
    opts.keepalive_interval = Duration::from_secs(1);
    opts.keepalive_max = 2;
    opts.command_timeout = Duration::from_secs(30);
    opts.handshake_timeout = Duration::from_secs(2);
    opts.reconnect_attempts = 30;
    opts.reconnect_base = Duration::from_millis(200);
    opts.reconnect_max = Duration::from_secs(1);
    let tr = Transport::from_specs(vec![spec], opts).unwrap();
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");

    sshd.freeze(true);
    let t0 = Instant::now();
    let err = tr.exec("h", &ID).await.unwrap_err();
    let took = t0.elapsed();
    // Keepalive (1 s, 2 unanswered) noticed, long before the 30 s command timeout; the
    // exec then tried one fresh connection, which the frozen sshd cannot answer either.
    assert!(
        matches!(
            *err.kind,
            ErrorKind::Disconnected(_) | ErrorKind::HandshakeTimeout(_)
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let st = wait_state(&tr, "h", Duration::from_secs(5), |s| {
        matches!(s, ConnState::Reconnecting { .. })
    })
    .await;
    assert!(matches!(st, ConnState::Reconnecting { .. }), "{st:?}");

    sshd.freeze(false);
    let st = wait_state(&tr, "h", Duration::from_secs(20), ConnState::is_ready).await;
    assert!(st.is_ready(), "{st:?}");
    assert_eq!(tr.exec("h", &ID).await.unwrap().stdout, b"root\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_reconnect_after_bastion_sshd_restart() {
    let client = Client::new();
    let mut edge = Sshd::start(&client.key.public, SshdOptions::default());
    let a = Sshd::start(&client.key.public, SshdOptions::default());
    let b = Sshd::start(&client.key.public, SshdOptions::default());
    for s in [&edge, &a, &b] {
        client.trust(s);
    }
    let mut specs = vec![edge.spec("edge", &client.key.private, &client.known_hosts)];
    for (s, n) in [(&a, "a"), (&b, "b")] {
        let mut sp = s.spec(n, &client.key.private, &client.known_hosts);
        sp.via = Some("edge".into());
        specs.push(sp);
    }
    let mut opts = client.options();
    opts.reconnect_base = Duration::from_millis(200);
    opts.reconnect_max = Duration::from_secs(1);
    opts.reconnect_attempts = 20;
    let tr = Transport::from_specs(specs, opts).unwrap();
    for h in ["a", "b"] {
        assert_eq!(tr.exec(h, &ID).await.unwrap().stdout, b"root\n");
    }
    let edge_conns_before = edge.log_text().matches("Accepted publickey").count();
    assert_eq!(
        edge_conns_before, 1,
        "one connection to the bastion for both targets"
    );

    let mut rx_a = tr.subscribe("a").unwrap();
    for h in ["edge", "a"] {
        let mut rx = tr.subscribe(h).unwrap();
        let h = h.to_string();
        tokio::spawn(async move {
            let t0 = Instant::now();
            while rx.changed().await.is_ok() {
                eprintln!("DBG {h} {:?} {:?}", t0.elapsed(), *rx.borrow());
            }
        });
    }
    edge.restart();

    // The targets see their carrier go and reconnect on their own.
    let saw_reconnecting = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if matches!(*rx_a.borrow_and_update(), ConnState::Reconnecting { .. }) {
                return true;
            }
            if rx_a.changed().await.is_err() {
                return false;
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(saw_reconnecting, "a never went to reconnecting");
    for h in ["edge", "a", "b"] {
        let st = wait_state(&tr, h, Duration::from_secs(20), ConnState::is_ready).await;
        assert!(st.is_ready(), "{h}: {st:?}");
    }
    for h in ["a", "b"] {
        assert_eq!(tr.exec(h, &ID).await.unwrap().stdout, b"root\n");
    }
    // No pile-up: the restarted bastion saw exactly one new connection.
    let after = edge.log_text().matches("Accepted publickey").count();
    assert_eq!(after, 2, "bastion connections: {after}");
}
