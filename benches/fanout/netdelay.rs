//! A fixed one-way delay on lab links for the fan-out benchmark, standing in for `tc netem`
//! where the kernel has no `sch_netem` (as on this machine's kernel: CONFIG_NET_SCH_NETEM is
//! not set). An `iptables ... -j NFQUEUE --queue-num Q --queue-bypass` rule hands packets to
//! this process, which holds each one for DELAY_US microseconds and then accepts it, in
//! arrival order. If this process is gone, `--queue-bypass` lets packets through undelayed;
//! the queue fails open when full.
//!
//! `fanout-netdelay QUEUE DELAY_US` (run inside the network namespace of the rule, e.g.
//! `ip netns exec rpl-core`). Runs until killed. Used by benches/fanout/run.sh only.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nfq::{Queue, Verdict};

/// How long to sleep when nothing is due: the resolution of the delay.
const POLL: Duration = Duration::from_micros(100);

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let qnum: u16 = args
        .next()
        .context("usage: fanout-netdelay QUEUE DELAY_US")?
        .parse()?;
    let delay = Duration::from_micros(
        args.next()
            .context("usage: fanout-netdelay QUEUE DELAY_US")?
            .parse()?,
    );
    let mut q = Queue::open().context("open the netfilter queue socket")?;
    q.bind(qnum).with_context(|| format!("bind queue {qnum}"))?;
    // Only the verdict matters: copy no payload to user space.
    q.set_copy_range(qnum, 0)?;
    q.set_queue_max_len(qnum, 65_536)?;
    q.set_fail_open(qnum, true)?;
    q.set_nonblocking(true);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    loop {
        loop {
            match q.recv() {
                Ok(m) => held.push_back((Instant::now() + delay, m)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("receive from the netfilter queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, mut m)) = held.pop_front() {
                m.set_verdict(Verdict::Accept);
                q.verdict(m).context("verdict")?;
            }
        }
        let wait = held.front().map_or(POLL, |(due, _)| {
            due.saturating_duration_since(now).min(POLL)
        });
        std::thread::sleep(wait);
    }
}
