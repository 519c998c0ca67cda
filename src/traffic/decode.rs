//! Decoding one captured frame into what the flow table needs (addresses, protocol, ports,
//! TCP flags, length), with pnet's `packet` module: Ethernet (with 802.1Q/802.1ad tags),
//! Linux cooked capture v1 and v2 (`tcpdump -i any`), raw IP, IPv4, IPv6 (skipping the common
//! extension headers), TCP, UDP, ICMP and ICMPv6.
//!
//! Pure and total: any byte string gives a value or a [`DecodeError`], never a panic. Lengths
//! are checked here before pnet reads a field, because a capture cut by the snap length (or
//! a hostile one) says one length in its headers and holds fewer bytes.

use std::net::IpAddr;

use pnet::packet::ethernet::{EtherTypes, EthernetPacket};
use pnet::packet::icmp::IcmpPacket;
use pnet::packet::icmpv6::Icmpv6Packet;
use pnet::packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet::packet::ipv4::Ipv4Packet;
use pnet::packet::ipv6::Ipv6Packet;
use pnet::packet::sll::SLLPacket;
use pnet::packet::sll2::SLL2Packet;
use pnet::packet::tcp::TcpPacket;
use pnet::packet::udp::UdpPacket;

/// `LINKTYPE_*` values rampart decodes (pcap-linktype(7)).
pub mod linktype {
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP flags, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;

    pub fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }
    /// A connection attempt: SYN without ACK.
    pub fn is_syn(self) -> bool {
        self.has(Self::SYN) && !self.has(Self::ACK)
    }
    /// The answer to one: SYN and ACK.
    pub fn is_syn_ack(self) -> bool {
        self.has(Self::SYN) && self.has(Self::ACK)
    }
}

/// The transport layer of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `flags` is `None` when the snap length cut the TCP header after the ports.
    Tcp {
        sport: u16,
        dport: u16,
        flags: Option<TcpFlags>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        icmp_type: u8,
        code: u8,
    },
    Icmpv6 {
        icmp_type: u8,
        code: u8,
    },
    /// Another IP protocol, or a transport header cut before its ports.
    Other {
        protocol: u8,
    },
}

impl Transport {
    /// `tcp`, `udp`, `icmp`, `icmp6` or the protocol number.
    pub fn label(&self) -> String {
        match self {
            Transport::Tcp { .. } => "tcp".into(),
            Transport::Udp { .. } => "udp".into(),
            Transport::Icmp { .. } => "icmp".into(),
            Transport::Icmpv6 { .. } => "icmp6".into(),
            Transport::Other { protocol } => format!("ip/{protocol}"),
        }
    }

    /// Source and destination ports for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            Transport::Tcp { sport, dport, .. } | Transport::Udp { sport, dport } => {
                Some((sport, dport))
            }
            _ => None,
        }
    }
}

/// An IP packet, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport,
    /// Length of the IP packet as the header says (0 when the header does not say, e.g.
    /// IPv6 jumbograms).
    pub ip_len: u32,
}

/// What a frame held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Ip(IpPacket),
    /// ARP, LLDP, …: counted, not decoded.
    NotIp {
        ethertype: u16,
    },
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("link type {0} is not decoded (Ethernet, Linux cooked v1/v2 and raw IP are)")]
    UnknownLinkType(u32),
    #[error("{layer} header cut short ({have} of {need} bytes)")]
    Truncated {
        layer: &'static str,
        have: usize,
        need: usize,
    },
    #[error("{layer}: {why}")]
    Malformed {
        layer: &'static str,
        why: &'static str,
    },
}

fn truncated(layer: &'static str, have: usize, need: usize) -> DecodeError {
    DecodeError::Truncated { layer, have, need }
}

/// Decodes one frame of the given link type.
pub fn decode(linktype: u32, frame: &[u8]) -> Result<Decoded, DecodeError> {
    match linktype {
        linktype::ETHERNET => {
            let eth =
                EthernetPacket::new(frame).ok_or_else(|| truncated("ethernet", frame.len(), 14))?;
            let mut ethertype = eth.get_ethertype().0;
            let mut rest = &frame[14..];
            // Up to two VLAN tags (802.1ad outer, 802.1Q inner).
            for _ in 0..2 {
                if ethertype != EtherTypes::Vlan.0
                    && ethertype != EtherTypes::QinQ.0
                    && ethertype != 0x9100
                {
                    break;
                }
                if rest.len() < 4 {
                    return Err(truncated("vlan", rest.len(), 4));
                }
                ethertype = u16::from_be_bytes([rest[2], rest[3]]);
                rest = &rest[4..];
            }
            by_ethertype(ethertype, rest)
        }
        linktype::LINUX_SLL => {
            // pnet's minimum size for SLL leaves out the 8-byte address field, so a short
            // frame passes `new` and panics in a getter: check the real size first.
            if frame.len() < 16 {
                return Err(truncated("sll", frame.len(), 16));
            }
            let sll = SLLPacket::new(frame).ok_or_else(|| truncated("sll", frame.len(), 16))?;
            by_ethertype(sll.get_protocol().0, &frame[16..])
        }
        linktype::LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(truncated("sll2", frame.len(), 20));
            }
            let sll = SLL2Packet::new(frame).ok_or_else(|| truncated("sll2", frame.len(), 20))?;
            by_ethertype(sll.get_protocol_type().0, &frame[20..])
        }
        linktype::RAW => match frame.first().map(|b| b >> 4) {
            Some(4) => ipv4(frame),
            Some(6) => ipv6(frame),
            Some(_) => Err(DecodeError::Malformed {
                layer: "raw ip",
                why: "version is neither 4 nor 6",
            }),
            None => Err(truncated("raw ip", 0, 1)),
        },
        linktype::IPV4 => ipv4(frame),
        linktype::IPV6 => ipv6(frame),
        other => Err(DecodeError::UnknownLinkType(other)),
    }
}

fn by_ethertype(ethertype: u16, payload: &[u8]) -> Result<Decoded, DecodeError> {
    if ethertype == EtherTypes::Ipv4.0 {
        ipv4(payload)
    } else if ethertype == EtherTypes::Ipv6.0 {
        ipv6(payload)
    } else {
        Ok(Decoded::NotIp { ethertype })
    }
}

fn ipv4(b: &[u8]) -> Result<Decoded, DecodeError> {
    let ip = Ipv4Packet::new(b).ok_or_else(|| truncated("ipv4", b.len(), 20))?;
    if ip.get_version() != 4 {
        return Err(DecodeError::Malformed {
            layer: "ipv4",
            why: "version is not 4",
        });
    }
    let ihl = usize::from(ip.get_header_length()) * 4;
    if ihl < 20 {
        return Err(DecodeError::Malformed {
            layer: "ipv4",
            why: "header length under 20 bytes",
        });
    }
    if b.len() < ihl {
        return Err(truncated("ipv4 options", b.len(), ihl));
    }
    let total = usize::from(ip.get_total_length());
    // The captured payload: what the header claims, cut by what was captured.
    let end = if total >= ihl {
        total.min(b.len())
    } else {
        b.len()
    };
    let payload = &b[ihl..end];
    // Only the first fragment carries the transport header.
    let transport = if ip.get_fragment_offset() != 0 {
        Transport::Other {
            protocol: ip.get_next_level_protocol().0,
        }
    } else {
        transport(ip.get_next_level_protocol(), payload, false)
    };
    Ok(Decoded::Ip(IpPacket {
        src: IpAddr::V4(ip.get_source()),
        dst: IpAddr::V4(ip.get_destination()),
        transport,
        ip_len: total as u32,
    }))
}

fn ipv6(b: &[u8]) -> Result<Decoded, DecodeError> {
    let ip = Ipv6Packet::new(b).ok_or_else(|| truncated("ipv6", b.len(), 40))?;
    if ip.get_version() != 6 {
        return Err(DecodeError::Malformed {
            layer: "ipv6",
            why: "version is not 6",
        });
    }
    let plen = usize::from(ip.get_payload_length());
    let end = if plen == 0 {
        b.len()
    } else {
        (40 + plen).min(b.len())
    };
    let mut next = ip.get_next_header();
    let mut rest = &b[40..end];
    // Walk hop-by-hop, routing, destination options and fragment headers (bounded).
    let mut fragment_later = false;
    for _ in 0..8 {
        let n = next.0;
        let len = match n {
            0 | 43 | 60 => {
                if rest.len() < 2 {
                    return Err(truncated("ipv6 extension", rest.len(), 2));
                }
                (usize::from(rest[1]) + 1) * 8
            }
            44 => {
                if rest.len() < 8 {
                    return Err(truncated("ipv6 fragment", rest.len(), 8));
                }
                let offset = u16::from_be_bytes([rest[2], rest[3]]) >> 3;
                fragment_later = offset != 0;
                8
            }
            _ => break,
        };
        if rest.len() < len {
            return Err(truncated("ipv6 extension", rest.len(), len));
        }
        next = IpNextHeaderProtocol(rest[0]);
        rest = &rest[len..];
    }
    let transport = if fragment_later {
        Transport::Other { protocol: next.0 }
    } else {
        transport(next, rest, true)
    };
    Ok(Decoded::Ip(IpPacket {
        src: IpAddr::V6(ip.get_source()),
        dst: IpAddr::V6(ip.get_destination()),
        transport,
        ip_len: if plen == 0 { 0 } else { (40 + plen) as u32 },
    }))
}

fn transport(proto: IpNextHeaderProtocol, b: &[u8], v6: bool) -> Transport {
    let ports = || {
        (b.len() >= 4).then(|| {
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            )
        })
    };
    match proto {
        IpNextHeaderProtocols::Tcp => match TcpPacket::new(b) {
            Some(tcp) => Transport::Tcp {
                sport: tcp.get_source(),
                dport: tcp.get_destination(),
                flags: Some(TcpFlags(tcp.get_flags())),
            },
            None => match ports() {
                Some((sport, dport)) => Transport::Tcp {
                    sport,
                    dport,
                    flags: None,
                },
                None => Transport::Other { protocol: proto.0 },
            },
        },
        IpNextHeaderProtocols::Udp => match UdpPacket::new(b) {
            Some(udp) => Transport::Udp {
                sport: udp.get_source(),
                dport: udp.get_destination(),
            },
            None => Transport::Other { protocol: proto.0 },
        },
        IpNextHeaderProtocols::Icmp if !v6 => match IcmpPacket::new(b) {
            Some(icmp) => Transport::Icmp {
                icmp_type: icmp.get_icmp_type().0,
                code: icmp.get_icmp_code().0,
            },
            None => Transport::Other { protocol: proto.0 },
        },
        IpNextHeaderProtocols::Icmpv6 if v6 => match Icmpv6Packet::new(b) {
            Some(icmp) => Transport::Icmpv6 {
                icmp_type: icmp.get_icmpv6_type().0,
                code: icmp.get_icmpv6_code().0,
            },
            None => Transport::Other { protocol: proto.0 },
        },
        other => Transport::Other { protocol: other.0 },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8, ihl: u8, total: u16) -> Vec<u8> {
        let mut v = vec![
            0x40 | ihl,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            64,
            6,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v.resize(usize::from(ihl) * 4, 0);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&22u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        v.extend(tcp);
        v
    }

    #[test]
    fn raw_ipv4_syn() {
        let d = decode(linktype::RAW, &ipv4_tcp(TcpFlags::SYN, 5, 40)).unwrap();
        let Decoded::Ip(p) = d else { panic!("{d:?}") };
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.transport.ports(), Some((40000, 22)));
        assert!(matches!(p.transport, Transport::Tcp { flags: Some(f), .. } if f.is_syn()));
    }

    #[test]
    fn bad_header_lengths_are_errors_not_panics() {
        let mut b = ipv4_tcp(0, 5, 40);
        b[0] = 0x42; // ihl 2
        assert!(matches!(
            decode(linktype::RAW, &b),
            Err(DecodeError::Malformed { .. })
        ));
        b[0] = 0x4f; // ihl 15 = 60 bytes > 40 captured
        assert!(matches!(
            decode(linktype::RAW, &b),
            Err(DecodeError::Truncated { .. })
        ));
        // total length smaller than the header: take what was captured.
        let b = ipv4_tcp(TcpFlags::ACK, 5, 3);
        assert!(decode(linktype::RAW, &b).is_ok());
        // Cut inside the TCP header: ports known, flags not.
        let b = ipv4_tcp(TcpFlags::SYN, 5, 40);
        let d = decode(linktype::RAW, &b[..26]).unwrap();
        assert!(matches!(
            d,
            Decoded::Ip(IpPacket {
                transport: Transport::Tcp { flags: None, .. },
                ..
            })
        ));
        assert!(decode(linktype::ETHERNET, &[0; 13]).is_err());
        assert!(matches!(
            decode(999, &[0; 64]),
            Err(DecodeError::UnknownLinkType(999))
        ));
    }
}
