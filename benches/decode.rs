//! Packet decoding: a pcap stream, fed in 64 KiB chunks as an SSH channel delivers it,
//! through the reader, the pnet decoder and the bounded flow table, in packets per second
//! on one core (the bench is single-threaded).
//!
//! Input: the file named by `RAMPART_BENCH_PCAP` (benches/fanout/run.sh captures one from
//! real lab traffic on the bastion during the fan-out runs), and always the lab captures kept
//! as test fixtures (tests/fixtures/pcap), so the bench also runs on a machine without a lab.
//!
//! Run: `cargo bench --bench decode` (or `RAMPART_BENCH_PCAP=FILE cargo bench --bench decode`).
//! The reference point, `tcpdump -r FILE -w /dev/null` on the same file, is timed by
//! benches/fanout/run.sh.

// A bench that cannot read its input must stop loudly.
#![allow(clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart::traffic::capture::FLOW_CAPACITY;
use rampart::traffic::{FlowTable, PcapReader, drain};

/// What an SSH channel hands over at a time, roughly.
const CHUNK: usize = 64 * 1024;

/// Records in a pcap file.
fn count(bytes: &[u8]) -> usize {
    let mut r = PcapReader::new();
    r.push(bytes);
    let mut n = 0;
    while let Ok(Some(_)) = r.next_record() {
        n += 1;
    }
    n
}

/// One pass: the whole stream through reader, decoder and flow table.
fn pass(bytes: &[u8]) -> (usize, usize) {
    let mut reader = PcapReader::new();
    let mut table = FlowTable::new(FLOW_CAPACITY);
    let mut n = 0;
    for chunk in bytes.chunks(CHUNK) {
        reader.push(chunk);
        match drain(&mut reader, &mut table, None) {
            Ok(k) => n += k,
            Err(e) => panic!("pcap: {e}"),
        }
    }
    (n, table.len())
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("RAMPART_BENCH_PCAP") {
        match std::fs::read(&p) {
            Ok(b) => v.push(("lab_capture".to_string(), b)),
            Err(e) => panic!("RAMPART_BENCH_PCAP={p}: {e}"),
        }
    }
    for f in ["eth-web2", "any-sll2-web2"] {
        let p = format!(
            "{}/tests/fixtures/pcap/{f}.pcap",
            env!("CARGO_MANIFEST_DIR")
        );
        match std::fs::read(&p) {
            Ok(b) => v.push((format!("fixture_{f}"), b)),
            Err(e) => panic!("{p}: {e}"),
        }
    }
    v
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, bytes) in inputs() {
        let packets = count(&bytes);
        let (seen, flows) = pass(&bytes);
        eprintln!(
            "decode {name}: {} bytes, {packets} packets ({seen} through the table), {flows} flows",
            bytes.len()
        );
        g.throughput(Throughput::Elements(packets as u64));
        g.bench_function(format!("pcap_to_flow_table_{name}"), |b| {
            b.iter(|| pass(black_box(&bytes)));
        });
    }
    g.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
