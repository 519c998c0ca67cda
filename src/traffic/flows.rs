//! The flow table of one capture: flows (both directions of a 5-tuple) with bytes, packets
//! and TCP handshake state; fixed-size top sources and top destination ports; per-second
//! windows of packets, bytes, new connections, SYN, SYN-ACK and completed handshakes; and
//! per-source fan-out (distinct ports and hosts touched) for scan detection.
//!
//! Bounded whatever the traffic: at most `capacity` flows (the least recently seen are
//! evicted, in batches, so eviction costs O(1) amortised per packet), `TOP_K` keys per top
//! list, `capacity` tracked sources with at most `FANOUT_CAP` targets each. Time comes from
//! the caller (nanoseconds), so fixture tests are deterministic. Pure: no I/O, no clock.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::decode::{IpPacket, TcpFlags, Transport};
use super::topk::TopK;

/// Keys kept per top list.
pub const TOP_K: usize = 64;
/// Distinct (host, port) targets remembered per source.
pub const FANOUT_CAP: usize = 256;
/// Seconds in the sliding window of rates.
pub const WINDOW_SECS: u64 = 10;
const NS: u64 = 1_000_000_000;
/// Top lists are halved this often, so they follow recent traffic.
const DECAY_EVERY_NS: u64 = 30 * NS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Endpoint {
    ip: IpAddr,
    port: u16,
}

/// Both directions of a conversation map to one key: endpoints in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    proto: u8,
    lo: Endpoint,
    hi: Endpoint,
}

/// Where a TCP flow's handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpState {
    /// Seen from the middle: no SYN was captured.
    Midstream,
    SynSent,
    SynAckSeen,
    Established,
    Reset,
    Closed,
}

#[derive(Debug, Clone)]
struct Flow {
    /// The endpoint that sent the first packet (the SYN, for TCP).
    client: Endpoint,
    server: Endpoint,
    proto: &'static str,
    packets: u64,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
    tcp: Option<TcpState>,
}

/// One flow as views show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowView {
    pub proto: &'static str,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub packets: u64,
    pub bytes: u64,
    pub tcp: Option<TcpState>,
    /// Seconds since the flow's last packet.
    pub idle_secs: f64,
    /// Seconds since its first.
    pub age_secs: f64,
}

/// A source and how widely it reached in the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FanOut {
    pub source: IpAddr,
    /// Distinct destination ports it tried.
    pub ports: usize,
    /// Distinct destination hosts it tried.
    pub hosts: usize,
    /// Connection attempts in the window.
    pub attempts: u64,
    /// Up to 10 of the ports, ascending.
    pub sample_ports: Vec<u16>,
}

/// A point-in-time summary of the table: what views draw and detectors read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowSnapshot {
    pub window_secs: f64,
    pub packets_total: u64,
    pub bytes_total: u64,
    pub not_ip_total: u64,
    pub decode_errors_total: u64,
    pub packets_per_sec: f64,
    pub bytes_per_sec: f64,
    pub new_connections_per_sec: f64,
    /// SYNs (without ACK) and SYN-ACKs in the window.
    pub syn: u64,
    pub syn_ack: u64,
    /// SYNs in the window that were neither answered by a completed handshake nor refused
    /// with a reset, per second.
    pub unanswered_syn_per_sec: f64,
    /// (source, packets, bytes), largest first.
    pub top_sources: Vec<(IpAddr, u64, u64)>,
    /// (protocol, port, packets), largest first.
    pub top_dst_ports: Vec<(&'static str, u16, u64)>,
    /// Largest flows by bytes.
    pub top_flows: Vec<FlowView>,
    /// Sources with the widest reach in the window, widest first.
    pub fan_out: Vec<FanOut>,
    /// Sources seen in the window (at most `TOP_K`).
    pub active_sources: Vec<IpAddr>,
    pub flows_tracked: usize,
    pub flows_evicted: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    packets: u64,
    bytes: u64,
    syn: u64,
    syn_ack: u64,
    completed: u64,
    refused: u64,
    new_flows: u64,
}

#[derive(Debug, Clone)]
struct SourceTrack {
    last_ns: u64,
    /// (host, port, last time) of each distinct target.
    targets: Vec<(IpAddr, u16, u64)>,
    attempts: Vec<u64>,
}

/// The bounded flow table.
#[derive(Debug)]
pub struct FlowTable {
    capacity: usize,
    flows: HashMap<FlowKey, Flow>,
    evicted: u64,
    buckets: [Bucket; WINDOW_SECS as usize],
    sources: TopK<IpAddr>,
    dst_ports: TopK<(&'static str, u16)>,
    fanout: HashMap<IpAddr, SourceTrack>,
    last_decay_ns: u64,
    now_ns: u64,
    packets: u64,
    bytes: u64,
    not_ip: u64,
    errors: u64,
}

impl FlowTable {
    /// A table of at most `capacity` flows (and as many tracked sources); at least 16.
    pub fn new(capacity: usize) -> Self {
        FlowTable {
            capacity: capacity.max(16),
            flows: HashMap::new(),
            evicted: 0,
            buckets: [Bucket::default(); WINDOW_SECS as usize],
            sources: TopK::new(TOP_K),
            dst_ports: TopK::new(TOP_K),
            fanout: HashMap::new(),
            last_decay_ns: 0,
            now_ns: 0,
            packets: 0,
            bytes: 0,
            not_ip: 0,
            errors: 0,
        }
    }

    /// Flows held now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counts a frame that was not IP (ARP…).
    pub fn observe_not_ip(&mut self, ts_ns: u64) {
        self.tick(ts_ns);
        self.not_ip += 1;
    }

    /// Counts a frame that did not decode.
    pub fn observe_error(&mut self, ts_ns: u64) {
        self.tick(ts_ns);
        self.errors += 1;
    }

    fn tick(&mut self, ts_ns: u64) {
        // Time never goes backwards inside the table (out-of-order timestamps happen with
        // `-i any`): a late packet counts in the current second.
        self.now_ns = self.now_ns.max(ts_ns);
        if self.last_decay_ns == 0 {
            self.last_decay_ns = self.now_ns;
        } else if self.now_ns - self.last_decay_ns >= DECAY_EVERY_NS {
            self.sources.decay();
            self.dst_ports.decay();
            self.last_decay_ns = self.now_ns;
        }
    }

    fn bucket(&mut self) -> &mut Bucket {
        let second = self.now_ns / NS;
        let b = &mut self.buckets[(second % WINDOW_SECS) as usize];
        if b.second != second {
            *b = Bucket {
                second,
                ..Bucket::default()
            };
        }
        b
    }

    /// Adds one decoded packet of `wire_len` bytes seen at `ts_ns`.
    pub fn observe(&mut self, ts_ns: u64, p: &IpPacket, wire_len: u32) {
        self.tick(ts_ns);
        let now = self.now_ns;
        let bytes = u64::from(wire_len);
        self.packets += 1;
        self.bytes += bytes;
        {
            let b = self.bucket();
            b.packets += 1;
            b.bytes += bytes;
        }
        self.sources.add(&p.src, 1, bytes);
        let (proto, proto_name, sport, dport) = match p.transport {
            Transport::Tcp { sport, dport, .. } => (6u8, "tcp", sport, dport),
            Transport::Udp { sport, dport } => (17, "udp", sport, dport),
            Transport::Icmp { icmp_type, code } => (1, "icmp", u16::from(icmp_type), code.into()),
            Transport::Icmpv6 { icmp_type, code } => {
                (58, "icmp6", u16::from(icmp_type), code.into())
            }
            Transport::Other { protocol } => (protocol, "ip", 0, 0),
        };
        let flags = match p.transport {
            Transport::Tcp { flags, .. } => flags,
            _ => None,
        };
        let src = Endpoint {
            ip: p.src,
            port: sport,
        };
        let dst = Endpoint {
            ip: p.dst,
            port: dport,
        };
        let key = if (src.ip, src.port) <= (dst.ip, dst.port) {
            FlowKey {
                proto,
                lo: src,
                hi: dst,
            }
        } else {
            FlowKey {
                proto,
                lo: dst,
                hi: src,
            }
        };
        let is_syn = flags.is_some_and(TcpFlags::is_syn);
        let is_syn_ack = flags.is_some_and(TcpFlags::is_syn_ack);
        if is_syn {
            self.bucket().syn += 1;
        }
        if is_syn_ack {
            self.bucket().syn_ack += 1;
        }
        let mut attempt = false;
        match self.flows.get_mut(&key) {
            Some(f) => {
                f.packets += 1;
                f.bytes += bytes;
                f.last_ns = now;
                let from_client = f.client == src;
                let mut completed = false;
                let mut refused = false;
                if let (Some(st), Some(fl)) = (f.tcp, flags) {
                    let next = if fl.has(TcpFlags::RST) {
                        refused = matches!(st, TcpState::SynSent | TcpState::SynAckSeen);
                        TcpState::Reset
                    } else if fl.is_syn() && from_client {
                        // A retransmitted SYN, or a new connection reusing the tuple.
                        if matches!(st, TcpState::Reset | TcpState::Closed) {
                            attempt = true;
                        }
                        TcpState::SynSent
                    } else if fl.is_syn_ack() && !from_client {
                        TcpState::SynAckSeen
                    } else if st == TcpState::SynAckSeen && from_client && fl.has(TcpFlags::ACK) {
                        completed = true;
                        TcpState::Established
                    } else if fl.has(TcpFlags::FIN) {
                        TcpState::Closed
                    } else {
                        st
                    };
                    f.tcp = Some(next);
                }
                if completed {
                    self.bucket().completed += 1;
                }
                if refused {
                    self.bucket().refused += 1;
                }
            }
            None => {
                if self.flows.len() >= self.capacity {
                    self.evict();
                }
                // The client is who sent the SYN; for a SYN-ACK seen first, the other side;
                // otherwise whoever spoke first.
                let (client, server) = if is_syn_ack { (dst, src) } else { (src, dst) };
                let tcp = flags.map(|fl| {
                    if fl.is_syn() {
                        TcpState::SynSent
                    } else if fl.is_syn_ack() {
                        TcpState::SynAckSeen
                    } else {
                        TcpState::Midstream
                    }
                });
                attempt = is_syn || (proto == 17 && !is_syn_ack);
                self.flows.insert(
                    key,
                    Flow {
                        client,
                        server,
                        proto: proto_name,
                        packets: 1,
                        bytes,
                        first_ns: now,
                        last_ns: now,
                        tcp,
                    },
                );
                self.bucket().new_flows += 1;
                if matches!(proto_name, "tcp" | "udp") && (is_syn || !matches!(proto, 6)) {
                    self.dst_ports.add(&(proto_name, dport), 1, bytes);
                }
            }
        }
        if attempt {
            self.track_fanout(p.src, p.dst, dport, now);
        }
    }

    fn track_fanout(&mut self, src: IpAddr, dst: IpAddr, port: u16, now: u64) {
        if !self.fanout.contains_key(&src) && self.fanout.len() >= self.capacity {
            // Forget the half of the sources seen least recently.
            let mut lasts: Vec<u64> = self.fanout.values().map(|t| t.last_ns).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.fanout.retain(|_, t| t.last_ns > cut);
        }
        let t = self.fanout.entry(src).or_insert_with(|| SourceTrack {
            last_ns: now,
            targets: Vec::new(),
            attempts: Vec::new(),
        });
        t.last_ns = now;
        let horizon = now.saturating_sub(WINDOW_SECS * NS);
        t.targets.retain(|x| x.2 >= horizon);
        t.attempts.retain(|&x| x >= horizon);
        if t.attempts.len() < FANOUT_CAP * 4 {
            t.attempts.push(now);
        }
        if let Some(x) = t.targets.iter_mut().find(|x| x.0 == dst && x.1 == port) {
            x.2 = now;
        } else {
            if t.targets.len() >= FANOUT_CAP {
                t.targets.remove(0);
            }
            t.targets.push((dst, port, now));
        }
    }

    /// Drops idle flows, then the least recently seen half if still full.
    fn evict(&mut self) {
        let before = self.flows.len();
        let idle = self.now_ns.saturating_sub(5 * 60 * NS);
        self.flows.retain(|_, f| f.last_ns >= idle);
        if self.flows.len() >= self.capacity {
            let mut lasts: Vec<u64> = self.flows.values().map(|f| f.last_ns).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.flows.retain(|_, f| f.last_ns > cut);
            // Everything seen in the same nanosecond: drop arbitrarily to make room.
            if self.flows.len() >= self.capacity {
                let drop: Vec<FlowKey> =
                    self.flows.keys().take(self.capacity / 2).copied().collect();
                for k in drop {
                    self.flows.remove(&k);
                }
            }
        }
        self.evicted += (before - self.flows.len()) as u64;
    }

    /// A summary as of `now_ns` (usually the time of the latest packet or the wall clock).
    pub fn snapshot(&self, now_ns: u64) -> FlowSnapshot {
        let now = self.now_ns.max(now_ns);
        let this_second = now / NS;
        let oldest = this_second.saturating_sub(WINDOW_SECS - 1);
        let mut sum = Bucket::default();
        for b in &self.buckets {
            if b.second >= oldest && b.second <= this_second && (b.packets > 0 || b.syn > 0) {
                sum.packets += b.packets;
                sum.bytes += b.bytes;
                sum.syn += b.syn;
                sum.syn_ack += b.syn_ack;
                sum.completed += b.completed;
                sum.refused += b.refused;
                sum.new_flows += b.new_flows;
            }
        }
        let secs = WINDOW_SECS as f64;
        let mut flows: Vec<&Flow> = self.flows.values().collect();
        flows.sort_by_key(|f| std::cmp::Reverse(f.bytes));
        let top_flows = flows
            .into_iter()
            .take(20)
            .map(|f| FlowView {
                proto: f.proto,
                client: f.client.ip,
                client_port: f.client.port,
                server: f.server.ip,
                server_port: f.server.port,
                packets: f.packets,
                bytes: f.bytes,
                tcp: f.tcp,
                idle_secs: now.saturating_sub(f.last_ns) as f64 / NS as f64,
                age_secs: now.saturating_sub(f.first_ns) as f64 / NS as f64,
            })
            .collect();
        let horizon = now.saturating_sub(WINDOW_SECS * NS);
        let mut fan_out: Vec<FanOut> = self
            .fanout
            .iter()
            .filter(|(_, t)| t.last_ns >= horizon)
            .map(|(src, t)| {
                let live: Vec<&(IpAddr, u16, u64)> =
                    t.targets.iter().filter(|x| x.2 >= horizon).collect();
                let mut ports: Vec<u16> = live.iter().map(|x| x.1).collect();
                ports.sort_unstable();
                ports.dedup();
                let mut hosts: Vec<IpAddr> = live.iter().map(|x| x.0).collect();
                hosts.sort_unstable();
                hosts.dedup();
                FanOut {
                    source: *src,
                    ports: ports.len(),
                    hosts: hosts.len(),
                    attempts: t.attempts.iter().filter(|&&x| x >= horizon).count() as u64,
                    sample_ports: ports.into_iter().take(10).collect(),
                }
            })
            .collect();
        fan_out.sort_by(|a, b| {
            b.ports
                .max(b.hosts)
                .cmp(&a.ports.max(a.hosts))
                .then(a.source.cmp(&b.source))
        });
        fan_out.truncate(20);
        let mut active_sources: Vec<IpAddr> = self
            .fanout
            .iter()
            .filter(|(_, t)| t.last_ns >= horizon)
            .map(|(s, _)| *s)
            .chain(self.sources.top(TOP_K).into_iter().map(|x| x.0))
            .collect();
        active_sources.sort_unstable();
        active_sources.dedup();
        active_sources.truncate(TOP_K);
        FlowSnapshot {
            window_secs: secs,
            packets_total: self.packets,
            bytes_total: self.bytes,
            not_ip_total: self.not_ip,
            decode_errors_total: self.errors,
            packets_per_sec: sum.packets as f64 / secs,
            bytes_per_sec: sum.bytes as f64 / secs,
            new_connections_per_sec: sum.syn as f64 / secs,
            syn: sum.syn,
            syn_ack: sum.syn_ack,
            unanswered_syn_per_sec: sum.syn.saturating_sub(sum.completed + sum.refused) as f64
                / secs,
            top_sources: self
                .sources
                .top(10)
                .into_iter()
                .map(|(k, c, e, _)| (k, c, e))
                .collect(),
            top_dst_ports: self
                .dst_ports
                .top(10)
                .into_iter()
                .map(|((p, port), c, _, _)| (p, port, c))
                .collect(),
            top_flows,
            fan_out,
            active_sources,
            flows_tracked: self.flows.len(),
            flows_evicted: self.evicted,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> IpPacket {
        IpPacket {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            transport: Transport::Tcp {
                sport,
                dport,
                flags: Some(TcpFlags(flags)),
            },
            ip_len: 40,
        }
    }

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;

    #[test]
    fn a_handshake_is_one_flow_and_completes() {
        let mut t = FlowTable::new(100);
        let t0 = 1_000 * NS;
        t.observe(t0, &tcp("10.0.0.1", 5000, "10.0.0.2", 80, S), 60);
        t.observe(t0 + 1, &tcp("10.0.0.2", 80, "10.0.0.1", 5000, SA), 60);
        t.observe(t0 + 2, &tcp("10.0.0.1", 5000, "10.0.0.2", 80, A), 52);
        t.observe(t0 + 3, &tcp("10.0.0.1", 5000, "10.0.0.2", 80, A), 552);
        let s = t.snapshot(t0 + 4);
        assert_eq!(s.flows_tracked, 1);
        let f = &s.top_flows[0];
        assert_eq!((f.packets, f.bytes), (4, 724));
        assert_eq!(f.server_port, 80);
        assert_eq!(f.tcp, Some(TcpState::Established));
        assert_eq!((s.syn, s.syn_ack), (1, 1));
        assert_eq!(s.unanswered_syn_per_sec, 0.0);
        assert_eq!(s.top_dst_ports[0], ("tcp", 80, 1));
    }

    #[test]
    fn a_scan_shows_as_fan_out_and_unanswered_syns() {
        let mut t = FlowTable::new(64);
        let t0 = 5_000 * NS;
        for port in 1..=100u16 {
            t.observe(
                t0 + u64::from(port) * 1000,
                &tcp("10.0.0.9", 40000, "10.0.0.2", port, S),
                60,
            );
        }
        let s = t.snapshot(t0 + NS);
        assert!(s.flows_tracked <= 64, "bounded: {}", s.flows_tracked);
        assert!(s.flows_evicted >= 36);
        let top = &s.fan_out[0];
        assert_eq!(top.source, "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(top.ports, 100);
        assert_eq!(top.hosts, 1);
        assert_eq!(s.unanswered_syn_per_sec, 10.0);
        // After the window, the fan-out is forgotten.
        let later = t.snapshot(t0 + (WINDOW_SECS + 2) * NS);
        assert!(later.fan_out.is_empty());
        assert_eq!(later.syn, 0);
    }
}
