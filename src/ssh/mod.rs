//! The SSH transport (russh): hops through bastions, strict host keys, authentication,
//! exec with caps and timeouts, bounded fan-out. It never shells out to `ssh`.
//!
//! Owns everything between a host name and the bytes a command printed on it:
//! [`known_hosts`] (the host-key decision), [`config`] (`~/.ssh/config`), [`auth`] (agent, certificates and
//! identity files), [`command`] (what may be sent), [`log`] (what was sent), [`transport`]
//! (connections, limits, state, exec), [`error`].
//!
//! Must not: shell out to `ssh`; request a PTY, X11 or agent forwarding; accept a host key
//! that known_hosts does not vouch for (or, with `accept-new`, one that differs from a known
//! one); send a command made from runtime text.
//!
//! # Read-only by construction
//! A [`ReadCommand`] is made only from `&'static str` (string literals compiled into the
//! binary); several probes become one framed script with [`ReadCommand::framed`], and
//! [`ReadCommand::parse_frames`] splits the output back. A [`MutatingCommand`] is built from
//! typed values and can only be sent by a [`Transport<ReadWrite>`], which only
//! [`Transport::with_write`] makes, from a [`WriteGrant`] that [`WriteGrant::obtain`] refuses
//! in read-only mode. Every command sent is appended to the command log (JSONL).
//!
//! # Use
//! ```no_run
//! # async fn demo(inv: &rampart::inventory::Inventory) -> Result<(), rampart::ssh::SshError> {
//! use rampart::ssh::{ReadCommand, Transport, TransportOptions};
//! const UNAME: ReadCommand = ReadCommand::new("uname", "uname -a");
//! const UPTIME: ReadCommand = ReadCommand::new("uptime", "cat /proc/uptime");
//! let transport = Transport::new(inv, TransportOptions::from_inventory(inv))?;
//! let script = ReadCommand::framed("facts", &[&UNAME, &UPTIME]).expect("static probe names");
//! let out = transport.exec("db1", &script).await?;
//! for frame in script.parse_frames(&out.stdout, &out.stderr) {
//!     println!("{} exited {:?}: {} bytes", frame.name, frame.exit_status, frame.stdout.len());
//! }
//! let mut state = transport.subscribe("db1").expect("known host");
//! println!("db1 is {}", *state.borrow_and_update());
//! # Ok(()) }
//! ```
//!
//! # Connections
//! One authenticated connection per host; a host behind a bastion is reached through a
//! `direct-tcpip` channel of the bastion's connection (chains work the same way), and its
//! host key is checked under its own name. Unauthenticated handshakes per sshd are bounded
//! (`max_handshakes_per_sshd`, default 4, under `MaxStartups`), session channels per
//! connection too (`max_channels_per_connection`, default 8, under `MaxSessions`, lowered
//! when sshd refuses one; refused opens are retried). Timeouts for connect, handshake and
//! command; keepalive; an established connection that drops is reconnected in the
//! background with jittered exponential backoff. Each host's [`ConnState`] is published on a
//! `tokio::sync::watch` channel ([`Transport::subscribe`], [`Transport::states`]).
//! [`report::print_connection_states`] connects to every host and prints a table (for
//! `rampart audit --connect-only`).
//!
//! # Commands on the wire
//! What is sent is the probe text, or the framed script, wrapped as
//! `timeout -s KILL <command_timeout+1> sh -c '<text>'` when the host has `timeout(1)`
//! (`TransportOptions::remote_timeout`):
//! sshd cannot deliver a `signal` request to a root session (root logins skip privilege
//! separation), so without it a command that outlives its timeout would keep its
//! `MaxSessions` slot. The exact text sent, wrapper included, is what the command log records.
//! A framed script runs its probes concurrently on the host, at most
//! [`command::LANES`] at a time, each frame into a private `mktemp -d` directory (in
//! `/dev/shm` where it can), written out in the probes' order and removed on exit: the only
//! thing a read-only script writes. A timed-out script is killed with `SIGKILL`, so its
//! directory stays behind, until the next framed script of the same user removes such
//! directories older than ten minutes.
//! Nothing else reaches sshd: no PTY, X11, agent-forwarding or env requests, no shell request,
//! compression off; key exchange prefers curve25519 and keeps strict-kex.
//!
//! # Options from the command line
//! `--accept-new` sets `TransportOptions::host_keys = HostKeyPolicy::AcceptNew` (learns into
//! `learn_into`, default `~/.ssh/known_hosts`); a console sets `passphrase` to a prompt,
//! headless modes leave it `None`.

pub mod auth;
pub mod command;
pub mod config;
pub mod error;
pub mod known_hosts;
pub mod log;
pub mod report;
pub mod transport;

pub use auth::{AgentChoice, PassphraseFn};
pub use command::{CommandError, Frame, MutatingCommand, ReadCommand, SafeName};
pub use error::{ErrorKind, SshError, Stage};
pub use report::{ConnectRow, connect_report, print_connection_states, render_table};
pub use transport::{
    ConnState, ExecOutput, ExecStream, HostKeyPolicy, HostSpec, ReadOnly, ReadOnlyReason,
    ReadWrite, StreamChunk, Transport, TransportOptions, WriteGrant,
};
