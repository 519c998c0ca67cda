//! VPN state: WireGuard (`wg show all dump`) and OpenVPN status files (versions 1, 2
//! and 3). Private and preshared keys never enter state. Pure: no I/O.

use ipnet::IpNet;

use super::{ParseError, check_size, clean};
use crate::state::{OpenVpnClient, OpenVpnStatus, WgInterface, WgPeer};

const WG: &str = "wg show all dump";
const OVPN: &str = "openvpn status";

fn opt_field(s: &str) -> Option<&str> {
    match s {
        "(none)" | "off" | "" => None,
        other => Some(other),
    }
}

/// Parses `wg show all dump` (tab-separated; interface lines have 5 fields, peer lines 9).
/// `wg show IFACE dump` (4 and 8 fields) is accepted with `single` naming the interface.
pub fn parse_wg_dump(text: &str, single: Option<&str>) -> Result<Vec<WgInterface>, ParseError> {
    check_size(WG, text)?;
    let mut out: Vec<WgInterface> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut f: Vec<&str> = line.split('\t').collect();
        if matches!(f.len(), 4 | 8) {
            let Some(name) = single else {
                return Err(ParseError::new(
                    WG,
                    n,
                    "per-interface dump without an interface name",
                ));
            };
            f.insert(0, name);
        }
        let bad = |what: &str| ParseError::new(WG, n, format!("bad {what}"));
        match f.len() {
            5 => {
                // iface, private key (dropped), public key, listen port, fwmark
                out.push(WgInterface {
                    name: clean(f[0]),
                    public_key: opt_field(f[2]).map(clean).unwrap_or_default(),
                    listen_port: match opt_field(f[3]) {
                        Some(p) => Some(p.parse().map_err(|_| bad("listen port"))?),
                        None => None,
                    },
                    fwmark: match opt_field(f[4]) {
                        Some(m) => Some(
                            match m.strip_prefix("0x") {
                                Some(h) => u32::from_str_radix(h, 16),
                                None => m.parse(),
                            }
                            .map_err(|_| bad("fwmark"))?,
                        ),
                        None => None,
                    },
                    up: None,
                    peers: Vec::new(),
                });
            }
            9 => {
                let iface = out
                    .iter_mut()
                    .rev()
                    .find(|w| w.name == f[0])
                    .ok_or_else(|| ParseError::new(WG, n, "peer before its interface"))?;
                let allowed_ips = match opt_field(f[4]) {
                    Some(list) => list
                        .split(',')
                        .map(|s| s.trim().parse::<IpNet>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| bad("allowed ips"))?,
                    None => Vec::new(),
                };
                let handshake: u64 = f[5].parse().map_err(|_| bad("latest handshake"))?;
                iface.peers.push(WgPeer {
                    public_key: clean(f[1]),
                    has_preshared_key: opt_field(f[2]).is_some(),
                    endpoint: opt_field(f[3]).map(clean),
                    allowed_ips,
                    latest_handshake: (handshake != 0).then_some(handshake),
                    rx_bytes: f[6].parse().map_err(|_| bad("rx bytes"))?,
                    tx_bytes: f[7].parse().map_err(|_| bad("tx bytes"))?,
                    persistent_keepalive: match opt_field(f[8]) {
                        Some(k) => Some(k.parse().map_err(|_| bad("keepalive"))?),
                        None => None,
                    },
                });
            }
            other => {
                return Err(ParseError::new(
                    WG,
                    n,
                    format!("{other} fields, expected 5 or 9"),
                ));
            }
        }
    }
    Ok(out)
}

/// Parses an OpenVPN status file (`status-version` 1, 2 or 3; server or client).
pub fn parse_openvpn(path: &str, text: &str) -> Result<OpenVpnStatus, ParseError> {
    check_size(OVPN, text)?;
    let mut st = OpenVpnStatus {
        path: clean(path),
        ..OpenVpnStatus::default()
    };
    let mut section = "";
    let mut recognised = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim_end_matches('\r');
        // Version 3 separates with tabs, 1 and 2 with commas.
        let f: Vec<&str> = if line.contains('\t') {
            line.split('\t').collect()
        } else {
            line.split(',').collect()
        };
        let head = f.first().copied().unwrap_or_default();
        match head {
            "OpenVPN CLIENT LIST" => {
                section = "clients";
                recognised = true;
            }
            "ROUTING TABLE" => section = "routes",
            "GLOBAL STATS" | "END" => section = "",
            "OpenVPN STATISTICS" => {
                section = "";
                recognised = true;
            }
            "TITLE" => recognised = true,
            "Updated" if f.len() >= 2 => st.updated = Some(clean(f[1])),
            "TIME" if f.len() >= 2 => {
                recognised = true;
                st.updated = Some(clean(f[1]));
            }
            "HEADER" => {}
            "CLIENT_LIST" => {
                recognised = true;
                // CLIENT_LIST,CN,Real,Virtual v4,Virtual v6,Bytes Received,Bytes Sent,Since,...
                if f.len() < 8 {
                    return Err(ParseError::new(OVPN, n, "CLIENT_LIST with too few fields"));
                }
                let num = |s: &str| {
                    s.parse::<u64>()
                        .map_err(|_| ParseError::new(OVPN, n, "byte count is not a number"))
                };
                st.clients.push(OpenVpnClient {
                    common_name: clean(f[1]),
                    real_address: clean(f[2]),
                    virtual_address: opt_field(f[3]).map(clean),
                    bytes_received: num(f[5])?,
                    bytes_sent: num(f[6])?,
                    connected_since: Some(clean(f[7])),
                });
            }
            _ if section == "clients" && head != "Common Name" && f.len() >= 5 => {
                // Version 1: Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since
                let num = |s: &str| {
                    s.parse::<u64>()
                        .map_err(|_| ParseError::new(OVPN, n, "byte count is not a number"))
                };
                st.clients.push(OpenVpnClient {
                    common_name: clean(f[0]),
                    real_address: clean(f[1]),
                    virtual_address: None,
                    bytes_received: num(f[2])?,
                    bytes_sent: num(f[3])?,
                    connected_since: Some(clean(f[4])),
                });
            }
            _ if section == "routes" && head != "Virtual Address" && f.len() >= 3 => {
                // Virtual Address,Common Name,Real Address,Last Ref
                let cn = f[1];
                if let Some(c) = st
                    .clients
                    .iter_mut()
                    .find(|c| c.common_name == cn && c.virtual_address.is_none())
                {
                    c.virtual_address = Some(clean(f[0]));
                }
            }
            _ => {}
        }
    }
    if !recognised {
        return Err(ParseError::new(OVPN, 0, "not an OpenVPN status file"));
    }
    Ok(st)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dump_keeps_public_key_and_drops_private() {
        let w = parse_wg_dump(
            "wg0\tPRIVATE=\tPUBLIC=\t51820\toff\n\
             wg0\tPEER=\t(none)\t203.0.113.1:51820\t10.0.0.2/32\t1700000000\t10\t20\toff\n",
            None,
        )
        .unwrap();
        assert_eq!(w[0].public_key, "PUBLIC=");
        assert!(!format!("{w:?}").contains("PRIVATE"));
        assert_eq!(w[0].peers[0].latest_handshake, Some(1_700_000_000));
        assert!(!w[0].peers[0].has_preshared_key);
    }

    #[test]
    fn peer_before_interface_and_bad_numbers_fail() {
        assert!(parse_wg_dump("wg0\tP\t(none)\t(none)\t(none)\t0\t0\t0\toff\n", None).is_err());
        assert!(parse_wg_dump("wg0\ta\tb\tport\toff\n", None).is_err());
    }

    #[test]
    fn openvpn_v1_and_v2() {
        let v1 = "OpenVPN CLIENT LIST\nUpdated,Thu Jun  6 10:00:00 2024\n\
                  Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since\n\
                  alice,198.51.100.4:50000,1000,2000,Thu Jun  6 09:00:00 2024\n\
                  ROUTING TABLE\nVirtual Address,Common Name,Real Address,Last Ref\n\
                  10.8.0.6,alice,198.51.100.4:50000,Thu Jun  6 09:59:00 2024\n\
                  GLOBAL STATS\nMax bcast/mcast queue length,0\nEND\n";
        let s = parse_openvpn("/run/openvpn/server.status", v1).unwrap();
        assert_eq!(s.clients.len(), 1);
        assert_eq!(s.clients[0].virtual_address.as_deref(), Some("10.8.0.6"));
        let v2 = "TITLE,OpenVPN 2.6.3\nTIME,2024-06-06 10:00:00,1717668000\n\
                  HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher\n\
                  CLIENT_LIST,bob,203.0.113.9:1194,10.8.0.10,,5,6,2024-06-06 09:00:00,1717664400,UNDEF,0,0,AES-256-GCM\nEND\n";
        let s = parse_openvpn("x", v2).unwrap();
        assert_eq!(s.clients[0].bytes_sent, 6);
        assert!(parse_openvpn("x", "hello\n").is_err());
    }
}
