//! Live traffic: the pcap stream reader ([`pcap`]), frame decoding with pnet ([`decode`]),
//! the bounded flow table with top-K lists ([`flows`], [`topk`]), and the captures that feed
//! them: `tcpdump` on a host over an SSH exec channel, or pnet's datalink on this machine
//! ([`capture`]).
//!
//! Owns turning captured bytes into a [`flows::FlowSnapshot`]. Must not: keep memory that
//! grows with traffic (everything is bounded), block the console (captures run in their own
//! tasks and publish snapshots), or leave a capture running on a host after its view closes.

pub mod capture;
pub mod decode;
pub mod flows;
pub mod pcap;
pub mod topk;

pub use decode::{Decoded, IpPacket, Transport, decode};
pub use flows::{FlowSnapshot, FlowTable};
pub use pcap::{PcapError, PcapReader};

/// Feeds every complete record of `reader` through the decoder into `table`, timing each
/// packet with `now_ns` when given (the receive time: robust to a host's clock skew) or with
/// its capture time. Returns the number of records consumed; a corrupt stream is an error.
pub fn drain(
    reader: &mut PcapReader,
    table: &mut FlowTable,
    now_ns: Option<u64>,
) -> Result<usize, PcapError> {
    let mut n = 0;
    loop {
        let Some(rec) = reader.next_record()? else {
            return Ok(n);
        };
        n += 1;
        let ts = now_ns.unwrap_or(rec.ts_nanos);
        match decode(rec.linktype, rec.data) {
            Ok(Decoded::Ip(p)) => {
                // Bytes on the wire: the frame's original length.
                table.observe(ts, &p, rec.orig_len);
            }
            Ok(Decoded::NotIp { .. }) => table.observe_not_ip(ts),
            Err(_) => table.observe_error(ts),
        }
    }
}
