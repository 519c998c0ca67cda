//! An incremental reader of the classic pcap format (what `tcpdump -w -` writes): bytes are
//! pushed in as they arrive, whole records come out. Micro- and nanosecond magic, either byte
//! order. Pure: no I/O, bounded memory (a record larger than the snap length, or than
//! [`MAX_RECORD`], is a corrupt stream, not a reason to buffer forever).

/// The largest record accepted whatever the header says (libpcap's own maximum snap length).
pub const MAX_RECORD: usize = 262_144;

/// The global header of a pcap stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapHeader {
    pub big_endian: bool,
    pub nanos: bool,
    pub version: (u16, u16),
    pub snaplen: u32,
    /// The link type (`LINKTYPE_*`): 1 Ethernet, 113 Linux cooked, 276 Linux cooked v2…
    pub linktype: u32,
}

/// One captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_nanos: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The stream's link type (from its header).
    pub linktype: u32,
    /// The captured bytes (at most the snap length), borrowed from the reader's buffer.
    pub data: &'a [u8],
}

impl Record<'_> {
    /// True when the packet was cut by the snap length.
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// The stream is not pcap, or is corrupt. The offset is in bytes from the stream's start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    #[error("not a pcap stream: magic {0:#010x} (is tcpdump writing pcap with -w -?)")]
    BadMagic(u32),
    #[error(
        "pcap stream corrupt at byte {offset}: record of {len} bytes exceeds the limit {limit}"
    )]
    RecordTooLarge { offset: u64, len: u32, limit: u32 },
    #[error(
        "pcap stream corrupt at byte {offset}: captured length {incl} exceeds the original {orig}"
    )]
    Inconsistent { offset: u64, incl: u32, orig: u32 },
}

/// Incremental reader: [`PcapReader::push`] bytes, then take records with
/// [`PcapReader::next_record`] until it returns `Ok(None)` (needs more bytes).
#[derive(Debug, Default)]
pub struct PcapReader {
    buf: Vec<u8>,
    /// Start of unread bytes in `buf` (compacted now and then, so pushes stay cheap).
    pos: usize,
    /// Bytes consumed before `buf[0]`.
    base: u64,
    header: Option<PcapHeader>,
    failed: Option<PcapError>,
}

const GLOBAL_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

impl PcapReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The global header, once read.
    pub fn header(&self) -> Option<PcapHeader> {
        self.header
    }

    /// Bytes buffered but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends bytes from the stream. After an error, bytes are dropped.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete record; `Ok(None)` when more bytes are needed. An error is final:
    /// the same error comes back on every later call.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(Some((start, end, ts_nanos, orig_len))) => Ok(Some(Record {
                ts_nanos,
                orig_len,
                linktype: self.header.map_or(0, |h| h.linktype),
                data: &self.buf[start..end],
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                self.pos = 0;
                Err(e)
            }
        }
    }

    /// The next record's data range, time and original length, consuming it.
    fn step(&mut self) -> Result<Option<(usize, usize, u64, u32)>, PcapError> {
        let avail = &self.buf[self.pos..];
        let header = match self.header {
            Some(h) => h,
            None => {
                if avail.len() < GLOBAL_HEADER {
                    return Ok(None);
                }
                let h = parse_global_header(&avail[..GLOBAL_HEADER])?;
                self.header = Some(h);
                self.pos += GLOBAL_HEADER;
                h
            }
        };
        let avail = &self.buf[self.pos..];
        if avail.len() < RECORD_HEADER {
            return Ok(None);
        }
        let rd = |i: usize| {
            let b = [avail[i], avail[i + 1], avail[i + 2], avail[i + 3]];
            if header.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (secs, frac, incl, orig) = (rd(0), rd(4), rd(8), rd(12));
        let offset = self.base + self.pos as u64;
        // Some writers put 0 or a bogus snaplen in the header; never trust it beyond MAX_RECORD.
        let limit = if header.snaplen == 0 {
            MAX_RECORD as u32
        } else {
            header.snaplen.min(MAX_RECORD as u32)
        };
        if incl > limit {
            return Err(PcapError::RecordTooLarge {
                offset,
                len: incl,
                limit,
            });
        }
        if incl > orig {
            return Err(PcapError::Inconsistent { offset, incl, orig });
        }
        let need = RECORD_HEADER + incl as usize;
        if avail.len() < need {
            return Ok(None);
        }
        let start = self.pos + RECORD_HEADER;
        self.pos += need;
        let frac_nanos = if header.nanos {
            u64::from(frac)
        } else {
            u64::from(frac).saturating_mul(1000)
        };
        let ts = u64::from(secs)
            .saturating_mul(1_000_000_000)
            .saturating_add(frac_nanos);
        Ok(Some((start, self.pos, ts, orig)))
    }
}

/// Parses the 24-byte global header.
pub fn parse_global_header(b: &[u8]) -> Result<PcapHeader, PcapError> {
    if b.len() < GLOBAL_HEADER {
        return Err(PcapError::BadMagic(0));
    }
    let magic_le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let (big_endian, nanos) = match magic_le {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        other => return Err(PcapError::BadMagic(other)),
    };
    let u16_at = |i: usize| {
        let x = [b[i], b[i + 1]];
        if big_endian {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    };
    let u32_at = |i: usize| {
        let x = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if big_endian {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    };
    Ok(PcapHeader {
        big_endian,
        nanos,
        version: (u16_at(4), u16_at(6)),
        snaplen: u32_at(16),
        // The upper bits hold FCS information (pcap-linktype(7)); the link type is the low 16.
        linktype: u32_at(20) & 0xffff,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header(snaplen: u32, linktype: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&snaplen.to_le_bytes());
        v.extend_from_slice(&linktype.to_le_bytes());
        v
    }

    fn record(secs: u32, usecs: u32, data: &[u8], orig: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [secs, usecs, data.len() as u32, orig] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn records_come_out_whatever_the_chunking() {
        let mut stream = header(256, 1);
        stream.extend(record(10, 5, b"abcdef", 6));
        stream.extend(record(11, 0, b"xy", 60));
        for chunk in 1..stream.len() {
            let mut r = PcapReader::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                r.push(c);
                while let Some(rec) = r.next_record().unwrap() {
                    got.push((rec.ts_nanos, rec.data.to_vec(), rec.truncated()));
                }
            }
            assert_eq!(got.len(), 2, "chunk {chunk}");
            assert_eq!(got[0].1, b"abcdef");
            assert_eq!(got[0].0, 10_000_005_000);
            assert!(got[1].2);
            assert_eq!(r.header().unwrap().linktype, 1);
            assert_eq!(r.buffered(), 0);
        }
    }

    #[test]
    fn oversized_and_inconsistent_records_are_errors() {
        let mut s = header(64, 1);
        s.extend(record(1, 0, &[0; 65], 65));
        let mut r = PcapReader::new();
        r.push(&s);
        assert!(matches!(
            r.next_record(),
            Err(PcapError::RecordTooLarge { offset: 24, .. })
        ));
        // Final: stays failed.
        assert!(r.next_record().is_err());
        let mut s = header(64, 1);
        s.extend(record(1, 0, &[0; 10], 5));
        let mut r = PcapReader::new();
        r.push(&s);
        assert!(matches!(
            r.next_record(),
            Err(PcapError::Inconsistent { .. })
        ));
    }

    #[test]
    fn garbage_is_refused_at_the_magic() {
        let mut r = PcapReader::new();
        r.push(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        assert!(matches!(r.next_record(), Err(PcapError::BadMagic(_))));
    }
}
