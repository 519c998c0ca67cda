//! The pcap reader and decoder on real captures made with tcpdump in the lab
//! (tests/fixtures/pcap/README.md), checked packet by packet against tcpdump's own reading
//! of the same files; then truncated streams, garbage, snaplen-cut packets, and proptest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::PathBuf;

use proptest::prelude::*;
use rampart::traffic::decode::{Decoded, Transport, decode, linktype};
use rampart::traffic::flows::FlowTable;
use rampart::traffic::pcap::PcapReader;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap")
}

const FIXTURES: &[&str] = &[
    "eth-web2",
    "snap60-web2",
    "any-sll2-web2",
    "any-sll1-web1",
    "lo-icmp6-web1",
    "nano-udp-vpn1",
];

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(format!("{name}.pcap"))).unwrap()
}

/// What tcpdump said about one packet: addresses, ports and protocol, or "not IP".
#[derive(Debug, PartialEq)]
enum Expect {
    NotIp,
    Ip {
        src: IpAddr,
        dst: IpAddr,
        ports: Option<(u16, u16)>,
        proto: &'static str,
    },
}

/// `a.b.c.d.port` or `::1.port` or a bare address.
fn endpoint(s: &str, with_port: bool) -> (IpAddr, Option<u16>) {
    if with_port {
        let (a, p) = s.rsplit_once('.').unwrap();
        (a.parse().unwrap(), Some(p.parse().unwrap()))
    } else {
        (s.parse().unwrap(), None)
    }
}

fn parse_tcpdump(line: &str) -> Expect {
    let Some(at) = line.find(" IP ").or_else(|| line.find(" IP6 ")) else {
        return Expect::NotIp;
    };
    let rest = line[at..].trim_start();
    let rest = rest.split_once(' ').unwrap().1;
    let (hdr, body) = rest.split_once(": ").unwrap();
    let (a, b) = hdr.split_once(" > ").unwrap();
    let body = body.trim();
    let proto = if body.starts_with("tcp") {
        "tcp"
    } else if body.starts_with("UDP") {
        "udp"
    } else if body.starts_with("ICMP6") {
        "icmp6"
    } else if body.starts_with("ICMP") {
        "icmp"
    } else {
        "other"
    };
    let with_port = matches!(proto, "tcp" | "udp");
    let (src, sp) = endpoint(a, with_port);
    let (dst, dp) = endpoint(b, with_port);
    Expect::Ip {
        src,
        dst,
        ports: sp.zip(dp),
        proto,
    }
}

fn expectations(name: &str) -> Vec<Expect> {
    std::fs::read_to_string(fixture_dir().join(format!("{name}.tcpdump.txt")))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_tcpdump)
        .collect()
}

fn as_expect(d: &Decoded) -> Expect {
    match d {
        Decoded::NotIp { .. } => Expect::NotIp,
        Decoded::Ip(p) => Expect::Ip {
            src: p.src,
            dst: p.dst,
            ports: p.transport.ports(),
            proto: match p.transport {
                Transport::Tcp { .. } => "tcp",
                Transport::Udp { .. } => "udp",
                Transport::Icmp { .. } => "icmp",
                Transport::Icmpv6 { .. } => "icmp6",
                Transport::Other { .. } => "other",
            },
        },
    }
}

/// Every record of a stream, decoded, reading it in chunks of `chunk` bytes.
fn decode_all(bytes: &[u8], chunk: usize) -> (Vec<Result<Decoded, String>>, Option<String>) {
    let mut r = PcapReader::new();
    let mut out = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        r.push(c);
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    out.push(decode(rec.linktype, rec.data).map_err(|e| e.to_string()))
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

#[test]
fn every_fixture_decodes_as_tcpdump_reads_it() {
    for name in FIXTURES {
        let (got, err) = decode_all(&read(name), 1 << 20);
        assert!(err.is_none(), "{name}: {err:?}");
        let want = expectations(name);
        assert_eq!(got.len(), want.len(), "{name}: record count");
        assert!(!want.is_empty(), "{name}: empty fixture");
        let mut ip = 0;
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let g = g.as_ref().unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            assert_eq!(&as_expect(g), w, "{name} packet #{i}");
            if matches!(w, Expect::Ip { .. }) {
                ip += 1;
            }
        }
        assert!(ip > 0, "{name}: no IP packets");
    }
}

#[test]
fn link_types_and_timestamps_are_read_from_the_header() {
    let types: Vec<(String, u32, bool)> = FIXTURES
        .iter()
        .map(|n| {
            let mut r = PcapReader::new();
            r.push(&read(n));
            let first = r.next_record().unwrap().unwrap().ts_nanos;
            let h = r.header().unwrap();
            // tcpdump -tt printed the first timestamp with microseconds: same instant.
            let txt =
                std::fs::read_to_string(fixture_dir().join(format!("{n}.tcpdump.txt"))).unwrap();
            let ts: f64 = txt.split_whitespace().next().unwrap().parse().unwrap();
            assert!(
                (first as f64 / 1e9 - ts).abs() < 1e-5,
                "{n}: {first} vs {ts}"
            );
            (n.to_string(), h.linktype, h.nanos)
        })
        .collect();
    let lt = |n: &str| types.iter().find(|t| t.0 == n).unwrap().1;
    assert_eq!(lt("eth-web2"), linktype::ETHERNET);
    assert_eq!(lt("any-sll2-web2"), linktype::LINUX_SLL2);
    assert_eq!(lt("any-sll1-web1"), linktype::LINUX_SLL);
    assert!(types.iter().find(|t| t.0 == "nano-udp-vpn1").unwrap().2);
}

#[test]
fn chunking_does_not_change_what_comes_out() {
    for name in FIXTURES {
        let bytes = read(name);
        let (whole, _) = decode_all(&bytes, 1 << 20);
        for chunk in [1, 7, 16, 24, 100, 1500] {
            let (got, err) = decode_all(&bytes, chunk);
            assert!(err.is_none());
            assert_eq!(got, whole, "{name} in chunks of {chunk}");
        }
    }
}

#[test]
fn a_truncated_stream_yields_a_prefix_and_no_panic() {
    let bytes = read("any-sll2-web2");
    let (whole, _) = decode_all(&bytes, 1 << 20);
    for cut in (0..bytes.len()).step_by(13) {
        let (got, err) = decode_all(&bytes[..cut], 512);
        assert!(err.is_none(), "a cut stream is incomplete, not corrupt");
        assert!(got.len() <= whole.len());
        assert_eq!(got[..], whole[..got.len()]);
    }
}

#[test]
fn snaplen_cut_packets_still_give_addresses_and_ports() {
    // Same traffic captured twice on web2's eth0: -s 256 and -s 60.
    let (full, _) = decode_all(&read("eth-web2"), 4096);
    let (cut, _) = decode_all(&read("snap60-web2"), 4096);
    let mut r = PcapReader::new();
    r.push(&read("snap60-web2"));
    let mut truncated = 0;
    while let Some(rec) = r.next_record().unwrap() {
        truncated += usize::from(rec.truncated());
        assert!(rec.data.len() <= 60);
    }
    assert!(
        truncated > 0,
        "the fixture has packets cut by the snap length"
    );
    let ports = |v: &[Result<Decoded, String>]| -> Vec<Option<(u16, u16)>> {
        v.iter()
            .map(|d| match d {
                Ok(Decoded::Ip(p)) => p.transport.ports(),
                _ => None,
            })
            .collect()
    };
    assert_eq!(ports(&cut), ports(&full));
}

#[test]
fn garbage_is_an_error_or_nothing_never_a_panic() {
    let mut r = PcapReader::new();
    r.push(b"\x00\x01garbage that is not a pcap stream at all........");
    assert!(r.next_record().is_err());
    // A valid header followed by garbage: each record is read or refused, no panic, and the
    // reader never buffers more than it was given.
    let mut bytes = read("eth-web2")[..24].to_vec();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    let (_, _err) = decode_all(&bytes, 333);
}

#[test]
fn the_flow_table_summarises_a_fixture() {
    let bytes = read("eth-web2");
    let mut r = PcapReader::new();
    r.push(&bytes);
    let mut t = FlowTable::new(1024);
    let n = rampart::traffic::drain(&mut r, &mut t, None).unwrap();
    let want = expectations("eth-web2");
    assert_eq!(n, want.len());
    let s = t.snapshot(0);
    let ip_packets = want
        .iter()
        .filter(|w| matches!(w, Expect::Ip { .. }))
        .count() as u64;
    assert_eq!(s.packets_total, ip_packets);
    assert_eq!(
        s.not_ip_total,
        want.len() as u64 - ip_packets,
        "ARP counted apart"
    );
    // The tcpdump text's SYNs to web2 (first packet of each TCP flow from 10.77.10.11).
    let web1: IpAddr = "10.77.10.11".parse().unwrap();
    assert!(s.top_sources.iter().any(|x| x.0 == web1));
    assert!(s.top_dst_ports.iter().any(|x| x.1 == 443));
    assert!(s.top_flows.iter().all(|f| f.packets > 0));
    let sum: u64 = s.top_flows.iter().map(|f| f.packets).sum();
    assert!(sum <= ip_packets);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(lt in prop::sample::select(vec![1u32, 101, 113, 228, 229, 276, 0, 7]),
                           bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(lt, &bytes);
    }

    #[test]
    fn mutated_fixture_records_never_panic(idx in 0usize..40, pos in 0usize..120, val in any::<u8>(),
                                          cut in 0usize..200, which in 0usize..6) {
        let bytes = read(FIXTURES[which]);
        let mut r = PcapReader::new();
        r.push(&bytes);
        let mut recs = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            recs.push((rec.linktype, rec.data.to_vec()));
        }
        let (lt, mut data) = recs[idx % recs.len()].clone();
        if !data.is_empty() {
            let p = pos % data.len();
            data[p] = val;
        }
        data.truncate(cut);
        let mut t = FlowTable::new(16);
        if let Ok(Decoded::Ip(p)) = decode(lt, &data) {
            t.observe(1, &p, data.len() as u32);
        }
        prop_assert!(t.len() <= 16);
    }

    #[test]
    fn pcap_reader_never_panics_on_mutated_streams(pos in 0usize..6000, val in any::<u8>(), chunk in 1usize..700) {
        let mut bytes = read("any-sll2-web2");
        let p = pos % bytes.len();
        bytes[p] = val;
        let _ = decode_all(&bytes, chunk);
    }
}

/// Measurement, not a check (run with `--release -- --ignored --nocapture`): packets per
/// second through the reader, decoder and flow table, replaying the lab captures.
#[test]
#[ignore]
fn measure_decode_throughput() {
    let mut stream = read("any-sll2-web2");
    let header = stream[..24].to_vec();
    let records = stream.split_off(24);
    // Offsets of each record's IPv4 source address (LINUX_SLL2: 20-byte link header),
    // so every copy comes from other addresses: many flows, evictions, full top-K lists.
    let mut src_at = Vec::new();
    let mut off = 0;
    while off + 16 <= records.len() {
        let incl = u32::from_le_bytes(records[off + 8..off + 12].try_into().unwrap()) as usize;
        let data = off + 16;
        if incl >= 20 + 20 && records[data] == 0x08 && records[data + 1] == 0x00 {
            src_at.push(data + 20 + 12);
        }
        off = data + incl;
    }
    let mut big = header;
    for i in 0..2000u32 {
        let mut copy = records.clone();
        for &a in &src_at {
            copy[a + 2] = (i >> 8) as u8;
            copy[a + 3] = i as u8;
        }
        big.extend_from_slice(&copy);
    }
    let mut r = PcapReader::new();
    let mut t = FlowTable::new(4096);
    let start = std::time::Instant::now();
    let mut n = 0;
    for c in big.chunks(64 * 1024) {
        r.push(c);
        n += rampart::traffic::drain(&mut r, &mut t, None).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let snap = t.snapshot(0);
    eprintln!(
        "{n} packets ({} MB of pcap) in {secs:.3}s: {:.0} packets/s; {} flows held, {} evicted",
        big.len() / 1_000_000,
        n as f64 / secs,
        snap.flows_tracked,
        snap.flows_evicted
    );
    assert!(n > 0);
}
