//! The Traffic pane's state: each host's rate history and the rows.

#[allow(unused_imports)]
use super::*;

/// A host's traffic history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficHistory {
    /// Bytes/s in + out over non-loopback interfaces, oldest first.
    pub total: VecDeque<f64>,
    pub last: Option<CounterRates>,
}

impl TrafficHistory {
    /// The latest total bytes/s.
    pub fn current(&self) -> Option<f64> {
        self.total.back().copied()
    }
}

impl App {
    /// Traffic rows: indexes into `hosts`, in inventory order.
    pub fn traffic_rows(&self) -> Vec<usize> {
        let filter = self.filter(Pane::Traffic);
        (0..self.hosts.len())
            .filter(|i| {
                let h = &self.hosts[*i];
                filter.is_none_or(|f| f.matches([h.name.as_str(), h.segment.as_str()]))
            })
            .collect()
    }
}
