//! The alert detectors' thresholds, read from the inventory's `[alerting.thresholds]` map.
//! Keys this module reads (others belong to the posture checks, e.g. `cert_days`):
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `ban_spike_per_minute` | 5 | F2B-BAN-SPIKE: fail2ban bans in the last minute at or above this |
//! | `scan_ports` | 20 | LIVE-PORT-SCAN: distinct ports one source tried in the window |
//! | `scan_hosts` | 10 | LIVE-PORT-SCAN: distinct hosts one source tried in the window |
//! | `syn_flood_per_sec` | 100 | LIVE-SYN-FLOOD: SYNs per second neither completed nor refused |
//! | `traffic_spike_factor` | 5 | LIVE-TRAFFIC-SPIKE: rate this many times the moving baseline |
//! | `traffic_spike_min_bytes_per_sec` | 1000000 | LIVE-TRAFFIC-SPIKE: and at least this much |
//! | `resend_secs` | 60 | Alertmanager: firing alerts are re-sent this often |

use std::collections::BTreeMap;

/// Thresholds with their defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub ban_spike_per_minute: f64,
    pub scan_ports: usize,
    pub scan_hosts: usize,
    pub syn_flood_per_sec: f64,
    pub traffic_spike_factor: f64,
    pub traffic_spike_min_bytes_per_sec: f64,
    pub resend_secs: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            ban_spike_per_minute: 5.0,
            scan_ports: 20,
            scan_hosts: 10,
            syn_flood_per_sec: 100.0,
            traffic_spike_factor: 5.0,
            traffic_spike_min_bytes_per_sec: 1_000_000.0,
            resend_secs: 60,
        }
    }
}

impl Thresholds {
    /// Defaults overridden by the map's values. Values that make no sense (not positive)
    /// keep the default, so a typo cannot silence a detector.
    pub fn from_map(m: &BTreeMap<String, f64>) -> Thresholds {
        let mut t = Thresholds::default();
        let get = |k: &str| m.get(k).copied().filter(|v| v.is_finite() && *v > 0.0);
        if let Some(v) = get("ban_spike_per_minute") {
            t.ban_spike_per_minute = v;
        }
        if let Some(v) = get("scan_ports") {
            t.scan_ports = v.ceil() as usize;
        }
        if let Some(v) = get("scan_hosts") {
            t.scan_hosts = v.ceil() as usize;
        }
        if let Some(v) = get("syn_flood_per_sec") {
            t.syn_flood_per_sec = v;
        }
        if let Some(v) = get("traffic_spike_factor") {
            t.traffic_spike_factor = v;
        }
        if let Some(v) = get("traffic_spike_min_bytes_per_sec") {
            t.traffic_spike_min_bytes_per_sec = v;
        }
        if let Some(v) = get("resend_secs") {
            t.resend_secs = v.ceil() as u64;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_overrides_defaults_and_ignores_nonsense() {
        let mut m = BTreeMap::new();
        m.insert("scan_ports".to_string(), 7.0);
        m.insert("ban_spike_per_minute".to_string(), -1.0);
        m.insert("cert_days".to_string(), 3.0);
        let t = Thresholds::from_map(&m);
        assert_eq!(t.scan_ports, 7);
        assert_eq!(t.ban_spike_per_minute, 5.0);
        assert_eq!(t.scan_hosts, 10);
    }
}
