//! Captures that feed a flow table: `tcpdump` on a host over an SSH exec channel
//! ([`spawn_remote`]), or this machine's interface with pnet's datalink ([`spawn_local`]).
//! Each runs in its own task (or thread, for datalink's blocking reads) and publishes a
//! [`FlowSnapshot`] every [`SNAPSHOT_EVERY`] on a channel, so nothing here blocks a caller.
//!
//! The remote capture is tied to its channel: the script runs tcpdump in the background and
//! a watcher that kills it when the channel's stdin closes, which happens when the
//! [`CaptureTask`] is dropped, when the connection drops, and when rampart is killed (the
//! remote sshd closes the session). Must not: send anything but the one static
//! [`CAPTURE`] probe, or buffer without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::flows::{FlowSnapshot, FlowTable};
use super::pcap::PcapReader;
use crate::ssh::{ReadCommand, StreamChunk, Transport};

/// How often a capture publishes a snapshot.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// Flows kept per capture.
pub const FLOW_CAPACITY: usize = 4096;

/// The remote capture. Finds this session's own SSH connection (from `SSH_CONNECTION`, or,
/// when sudo reset the environment, from the nearest parent process that has it) and leaves
/// it out of the capture filter, so the capture does not watch itself. Headers only (snap
/// length 160), unbuffered pcap on stdout. tcpdump runs in the background; a watcher reading
/// the channel's stdin kills it when stdin closes, so no tcpdump outlives the channel.
pub const CAPTURE: ReadCommand = ReadCommand::new(
    "capture",
    r#"c=$SSH_CONNECTION
p=$PPID
n=0
while [ -z "$c" ] && [ "${p:-1}" -gt 1 ] && [ $n -lt 8 ]; do
  c=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
  p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null)
  n=$((n+1))
done
set -- $c
if [ $# -eq 4 ]; then
  f="not (tcp and host $1 and port $2 and host $3 and port $4)"
else
  echo "rampart: this session's address is unknown; leaving all of tcp port 22 out" >&2
  f="not tcp port 22"
fi
command -v tcpdump >/dev/null 2>&1 || { echo "rampart: tcpdump is not installed on this host" >&2; exit 127; }
exec 3<&0
tcpdump -U -w - -s 160 -i any -n "$f" </dev/null &
t=$!
( cat <&3 >/dev/null 2>&1; kill $t 2>/dev/null ) >/dev/null 2>&1 &
w=$!
exec 3<&-
wait $t
r=$?
kill $w 2>/dev/null
exit $r"#,
);

/// What a capture reports.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureEvent {
    /// The latest summary of the host's traffic.
    Snapshot {
        host: String,
        snapshot: Box<FlowSnapshot>,
    },
    /// The capture could not start or stopped; the message says why and what to do.
    Failed { host: String, message: String },
}

/// A running capture. Dropping it stops the capture (and, for a remote one, closes the
/// channel, which ends tcpdump on the host).
#[derive(Debug)]
pub struct CaptureTask {
    host: String,
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl CaptureTask {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True once the capture has ended on its own.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the capture and waits for its channel to close.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for CaptureTask {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Starts `tcpdump` on `host` and sends a snapshot every [`SNAPSHOT_EVERY`] to `tx`.
pub fn spawn_remote<M: Send + Sync + 'static>(
    transport: Transport<M>,
    host: &str,
    tx: mpsc::Sender<CaptureEvent>,
) -> CaptureTask {
    let stop = Arc::new(AtomicBool::new(false));
    let name = host.to_string();
    let task = tokio::spawn(async move {
        if let Err(message) = run_remote(&transport, &name, &tx).await {
            let _ = tx
                .send(CaptureEvent::Failed {
                    host: name.clone(),
                    message,
                })
                .await;
        }
    });
    CaptureTask {
        host: host.to_string(),
        task: Some(task),
        stop,
    }
}

async fn run_remote<M>(
    transport: &Transport<M>,
    host: &str,
    tx: &mpsc::Sender<CaptureEvent>,
) -> Result<(), String> {
    let mut stream = transport
        .exec_stream(host, &CAPTURE)
        .await
        .map_err(|e| format!("cannot start the capture: {e}"))?;
    let mut reader = PcapReader::new();
    let mut table = FlowTable::new(FLOW_CAPACITY);
    let mut stderr = Vec::new();
    let mut tick = tokio::time::interval(SNAPSHOT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut exit = None;
    loop {
        tokio::select! {
            chunk = stream.next_chunk() => match chunk {
                Some(StreamChunk::Stdout(b)) => {
                    reader.push(&b);
                    if let Err(e) = super::drain(&mut reader, &mut table, Some(now_ns())) {
                        stream.close().await;
                        return Err(format!("the capture stream is corrupt: {e}"));
                    }
                }
                Some(StreamChunk::Stderr(b)) => {
                    // Keep the last few KiB: tcpdump's complaint, if any.
                    stderr.extend_from_slice(&b);
                    if stderr.len() > 4096 {
                        stderr.drain(..stderr.len() - 4096);
                    }
                }
                Some(StreamChunk::Exit { status, signal }) => exit = Some((status, signal)),
                None => break,
            },
            _ = tick.tick() => {
                let snap = table.snapshot(now_ns());
                if tx.send(CaptureEvent::Snapshot { host: host.to_string(), snapshot: Box::new(snap) }).await.is_err() {
                    stream.close().await;
                    return Ok(());
                }
            }
        }
    }
    let raw = String::from_utf8_lossy(&stderr).into_owned();
    let text = crate::sanitize::clean(&raw).to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.contains("listening on"))
        .unwrap_or("")
        .trim()
        .to_string();
    let how = match exit {
        Some((Some(127), _)) => {
            "tcpdump is not installed on the host (apt-get install tcpdump)".to_string()
        }
        Some((Some(s), _)) => format!("tcpdump exited with status {s}"),
        Some((None, Some(sig))) => format!("tcpdump was killed by {sig}"),
        _ => "the channel closed".to_string(),
    };
    if last.is_empty() {
        Err(format!("capture ended: {how}"))
    } else {
        Err(format!("capture ended: {how}: {last}"))
    }
}

/// Why a local capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalCaptureError {
    #[error("no interface named {0:?} on this machine (see `ip link`)")]
    NoInterface(String),
    #[error(
        "capturing on {iface} needs CAP_NET_RAW: run as root, or `sudo setcap cap_net_raw+ep $(command -v rampart)`"
    )]
    Permission { iface: String },
    #[error("cannot capture on {iface}: {message}")]
    Other { iface: String, message: String },
}

/// Captures on a local interface with pnet's datalink (needs CAP_NET_RAW), publishing
/// snapshots under `host` (the inventory name this machine stands for). Reads block, so they
/// run on their own thread; the task ends when the [`CaptureTask`] is dropped.
pub fn spawn_local(
    iface: &str,
    host: &str,
    tx: mpsc::Sender<CaptureEvent>,
) -> Result<CaptureTask, LocalCaptureError> {
    use pnet::datalink::{self, Channel, Config};
    let Some(ni) = datalink::interfaces().into_iter().find(|i| i.name == iface) else {
        return Err(LocalCaptureError::NoInterface(iface.to_string()));
    };
    let config = Config {
        read_timeout: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let mut rx = match datalink::channel(&ni, config) {
        Ok(Channel::Ethernet(_, rx)) => rx,
        Ok(_) => {
            return Err(LocalCaptureError::Other {
                iface: iface.to_string(),
                message: "not an Ethernet-like channel".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(LocalCaptureError::Permission {
                iface: iface.to_string(),
            });
        }
        Err(e) => {
            return Err(LocalCaptureError::Other {
                iface: iface.to_string(),
                message: e.to_string(),
            });
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let name = host.to_string();
    let handle = tokio::runtime::Handle::current();
    let thread_tx = tx.clone();
    let task = handle.spawn_blocking(move || {
        let mut table = FlowTable::new(FLOW_CAPACITY);
        let mut last = std::time::Instant::now();
        while !stop2.load(Ordering::SeqCst) {
            match rx.next() {
                Ok(frame) => {
                    let ts = now_ns();
                    let wire = u32::try_from(frame.len()).unwrap_or(u32::MAX);
                    match super::decode(super::decode::linktype::ETHERNET, frame) {
                        Ok(super::Decoded::Ip(p)) => table.observe(ts, &p, wire),
                        Ok(super::Decoded::NotIp { .. }) => table.observe_not_ip(ts),
                        Err(_) => table.observe_error(ts),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    let _ = thread_tx.blocking_send(CaptureEvent::Failed {
                        host: name.clone(),
                        message: format!("local capture stopped: {e}"),
                    });
                    return;
                }
            }
            if last.elapsed() >= SNAPSHOT_EVERY {
                last = std::time::Instant::now();
                let snap = table.snapshot(now_ns());
                if thread_tx
                    .blocking_send(CaptureEvent::Snapshot {
                        host: name.clone(),
                        snapshot: Box::new(snap),
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(CaptureTask {
        host: host.to_string(),
        task: Some(task),
        stop,
    })
}
