//! The Fleet pane's state and actions: sort columns, grouping, the rows in order, scores and
//! counts per host, the selected host.

#[allow(unused_imports)]
use super::*;

/// Fleet columns the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Host,
    State,
    Roles,
    Segment,
    Score,
    Findings,
    Traffic,
}

impl SortColumn {
    pub const ALL: [SortColumn; 7] = [
        SortColumn::Host,
        SortColumn::State,
        SortColumn::Roles,
        SortColumn::Segment,
        SortColumn::Score,
        SortColumn::Findings,
        SortColumn::Traffic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortColumn::Host => "host",
            SortColumn::State => "state",
            SortColumn::Roles => "roles",
            SortColumn::Segment => "segment",
            SortColumn::Score => "score",
            SortColumn::Findings => "findings",
            SortColumn::Traffic => "traffic",
        }
    }
}

/// Fleet grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    None,
    Role,
    Segment,
}

/// Worse connection states rank higher (for sorting by state).
pub(super) fn state_rank(s: &ConnState) -> u8 {
    match s {
        ConnState::HostKeyRefused { .. } => 5,
        ConnState::Unreachable { .. } => 4,
        ConnState::Pending => 3,
        ConnState::Connecting => 2,
        ConnState::Reconnecting { .. } => 3,
        ConnState::Ok => 1,
    }
}

/// Where a severity is counted in [`App::counts`]: critical, high, medium, low (info is not).
pub(super) fn severity_index(s: Severity) -> Option<usize> {
    match s {
        Severity::Critical => Some(0),
        Severity::High => Some(1),
        Severity::Medium => Some(2),
        Severity::Low => Some(3),
        Severity::Info => None,
    }
}

impl App {
    /// [`App::score`] and [`App::counts`] of every host (indexed like `hosts`), in one pass
    /// over the findings.
    pub fn sort_keys(&self) -> Vec<(Option<u32>, [usize; 4])> {
        let mut by_host: BTreeMap<&str, (u32, [usize; 4])> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| !f.is_waived()) {
            let e = by_host.entry(f.host.as_str()).or_default();
            e.0 = e.0.saturating_add(score::weight(f.severity));
            if let Some(i) = severity_index(f.severity) {
                e.1[i] += 1;
            }
        }
        self.hosts
            .iter()
            .map(|h| {
                let (lost, counts) = by_host.get(h.name.as_str()).copied().unwrap_or_default();
                let reached = !(self.conn_state(&h.name).is_failing()
                    || self.states.get(&h.name).is_none_or(|s| s.is_unreachable()));
                (reached.then(|| 100u32.saturating_sub(lost)), counts)
            })
            .collect()
    }

    /// Un-waived findings of a host by severity: critical, high, medium, low.
    pub fn counts(&self, host: &str) -> [usize; 4] {
        let mut c = [0; 4];
        for f in self
            .findings
            .iter()
            .filter(|f| f.host == host && !f.is_waived())
        {
            if let Some(i) = severity_index(f.severity) {
                c[i] += 1;
            }
        }
        c
    }

    /// The group label of a host under the current grouping.
    pub fn group_of(&self, h: &HostInfo) -> String {
        match self.group {
            Grouping::None => String::new(),
            Grouping::Role => h.roles.first().cloned().unwrap_or_else(|| "-".into()),
            Grouping::Segment => h.segment.clone(),
        }
    }

    /// Fleet rows: indexes into `hosts`, filtered, grouped and sorted.
    pub fn fleet_rows(&self) -> Vec<usize> {
        let filter = self.filter(Pane::Fleet);
        let mut rows: Vec<usize> = (0..self.hosts.len())
            .filter(|i| {
                let h = &self.hosts[*i];
                filter.is_none_or(|f| {
                    let roles = h.roles.join(",");
                    let state = self.conn_state(&h.name);
                    f.matches([
                        h.name.as_str(),
                        h.address.as_str(),
                        roles.as_str(),
                        h.segment.as_str(),
                        state.label(),
                    ])
                })
            })
            .collect();
        // Score and counts once per host, not twice per comparison: asked per comparison they
        // rescan every finding O(n log n) times (1,000 hosts with 800 findings: ~50 ms a frame).
        let keys = match self.sort {
            SortColumn::Score | SortColumn::Findings => self.sort_keys(),
            _ => Vec::new(),
        };
        let key = |i: usize| keys.get(i).copied().unwrap_or((None, [0; 4]));
        // Group labels once per host too (they are built strings).
        let groups: Vec<String> = match self.group {
            Grouping::None => Vec::new(),
            _ => self.hosts.iter().map(|h| self.group_of(h)).collect(),
        };
        // Host names are unique (the inventory refuses duplicates) and break every tie, so
        // the order is total and an unstable sort gives the same rows, faster.
        rows.sort_unstable_by(|a, b| {
            let (ha, hb) = (&self.hosts[*a], &self.hosts[*b]);
            let group = match (groups.get(*a), groups.get(*b)) {
                (Some(ga), Some(gb)) => ga.cmp(gb),
                _ => std::cmp::Ordering::Equal,
            };
            let mut by = match self.sort {
                SortColumn::Host => ha.name.cmp(&hb.name),
                SortColumn::State => state_rank(&self.conn_state(&hb.name))
                    .cmp(&state_rank(&self.conn_state(&ha.name))),
                SortColumn::Roles => ha.roles.cmp(&hb.roles),
                SortColumn::Segment => ha.segment.cmp(&hb.segment),
                // Worst first: no score (unreached) before 0 before 100.
                SortColumn::Score => key(*a)
                    .0
                    .map_or(-1, i64::from)
                    .cmp(&key(*b).0.map_or(-1, i64::from)),
                SortColumn::Findings => key(*b).1.cmp(&key(*a).1),
                SortColumn::Traffic => {
                    let t = |n: &str| {
                        self.traffic
                            .get(n)
                            .and_then(TrafficHistory::current)
                            .unwrap_or(0.0)
                    };
                    t(&hb.name).total_cmp(&t(&ha.name))
                }
            };
            if self.sort_reversed {
                by = by.reverse();
            }
            group.then(by).then_with(|| ha.name.cmp(&hb.name))
        });
        rows
    }

    /// The host selected in the Fleet (or Traffic) pane.
    pub fn selected_fleet_host(&self, pane: Pane) -> Option<&HostInfo> {
        let rows = match pane {
            Pane::Traffic => self.traffic_rows(),
            _ => self.fleet_rows(),
        };
        let i = self.clamped_row(pane)?;
        rows.get(i).and_then(|h| self.hosts.get(*h))
    }
}
