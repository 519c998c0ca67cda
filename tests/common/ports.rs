//! Loopback ports for servers a test starts itself (Alertmanager, nginx, Prometheus, a
//! `rampart watch --metrics`), without trusting that a port picked a moment ago is still
//! free when the server binds it.
//!
//! Tests in one binary run in parallel, and so do other things on the machine: a port that
//! `bind(127.0.0.1:0)` handed out and released can be taken again before the server binds
//! it. A "something answers on the port" check then passes against somebody else's socket,
//! and nginx, which binds its ports one by one and gives up on the first it cannot have,
//! resets the connections already queued on the others. So the test asks the kernel who owns
//! the listening socket, and starts again on fresh ports when it is not the server it began.

use std::process::Child;
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The socket inodes listening on TCP `port` (IPv4 or IPv6, any address) in this namespace.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port != Some(port) {
                continue;
            }
            if let Ok(inode) = f[9].parse() {
                out.push(inode);
            }
        }
    }
    out
}

/// Whether process `pid` holds a socket listening on TCP `port`.
pub fn listens(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|l| {
                l.to_str()?
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse::<u64>()
                    .ok()
            })
            .is_some_and(|i| inodes.contains(&i))
    })
}

/// Waits until `child` itself listens on every one of `ports`. `Err` (with what it saw) when
/// the child exits first, typically because a port was taken, or after `limit`.
pub fn wait_owned(child: &mut Child, ports: &[u16], limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited ({status}) before listening on {ports:?}"));
        }
        let missing: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| !listens(child.id(), *p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("not listening on {missing:?} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a server on `n` fresh ports: `spawn` gets the ports and returns the child, which
/// must come to listen on all of them itself. Tries again on new ports (a few times) when it
/// does not, and panics with `what` and every attempt's reason when it never does.
pub fn start_on_free_ports(
    what: &str,
    n: usize,
    mut spawn: impl FnMut(&[u16]) -> Child,
) -> (Child, Vec<u16>) {
    let mut reasons = Vec::new();
    for _ in 0..5 {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut child = spawn(&ports);
        match wait_owned(&mut child, &ports, Duration::from_secs(30)) {
            Ok(()) => return (child, ports),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                reasons.push(e);
            }
        }
    }
    panic!("{what} never came to listen on its own ports: {reasons:?}");
}
