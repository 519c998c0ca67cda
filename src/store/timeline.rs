//! The console's use of the history: the last snapshot to draw at start, the throttle that
//! keeps an idle console from filling the history, and the drift timeline (what changed,
//! snapshot by snapshot, since a moment) that the Changes view shows.
//!
//! The timeline is the same diff `rampart diff` prints, taken between each pair of
//! consecutive snapshots of one inventory, flattened into dated entries with their evidence.

use serde::Serialize;

use super::{Since, Snapshot, SnapshotMeta, Store, StoreError, diff_snapshots};

/// How often an idle console stores a snapshot: at most one per host per this many seconds
/// while nothing changes. A change is stored at once.
pub const IDLE_RECORD_SECS: i64 = 600;

/// At most this many snapshot pairs are compared for one timeline (the newest).
pub const MAX_PAIRS: usize = 200;

/// The kind of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    PortOpened,
    PortClosed,
    RuleAdded,
    RuleRemoved,
    FindingNew,
    FindingResolved,
    BanAdded,
    BanRemoved,
    HostAdded,
    HostRemoved,
    /// The host could not be reached in the later snapshot (it could before).
    Unreachable,
    /// The host answers again.
    Reachable,
}

impl ChangeKind {
    /// The words shown in the timeline.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::PortOpened => "port opened",
            ChangeKind::PortClosed => "port closed",
            ChangeKind::RuleAdded => "rule added",
            ChangeKind::RuleRemoved => "rule removed",
            ChangeKind::FindingNew => "finding new",
            ChangeKind::FindingResolved => "finding resolved",
            ChangeKind::BanAdded => "ban added",
            ChangeKind::BanRemoved => "ban removed",
            ChangeKind::HostAdded => "host added",
            ChangeKind::HostRemoved => "host removed",
            ChangeKind::Unreachable => "unreachable",
            ChangeKind::Reachable => "reachable again",
        }
    }

    /// True for a change that opens or worsens something (drawn as a warning).
    pub fn is_worse(self) -> bool {
        matches!(
            self,
            ChangeKind::PortOpened
                | ChangeKind::RuleAdded
                | ChangeKind::FindingNew
                | ChangeKind::HostRemoved
                | ChangeKind::Unreachable
        )
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// When the later snapshot was taken, Unix seconds.
    pub at: i64,
    pub host: String,
    pub kind: ChangeKind,
    /// One line: the port, the rule, the finding's check and title, the ban.
    pub what: String,
    /// What Enter shows: the snapshots compared and what was seen.
    pub evidence: Vec<String>,
}

/// The drift timeline between two moments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// What was asked, in words ("since 1d", "since snapshot 42").
    pub since: String,
    /// The first and last snapshot compared (absent when there were fewer than two).
    pub from: Option<SnapshotMeta>,
    pub to: Option<SnapshotMeta>,
    /// Newest first.
    pub changes: Vec<Change>,
    /// Why the timeline is empty or cut short.
    pub note: Option<String>,
}

/// Describes a `Since` in words.
pub fn since_label(since: &Since) -> String {
    match since {
        Since::Previous => "since the previous snapshot".into(),
        Since::Snapshot(id) => format!("since snapshot {id}"),
        Since::Ago(secs) => format!("since {} ago", duration_label(*secs)),
    }
}

/// `90` → "1m30s", `86400` → "1d".
pub fn duration_label(secs: u64) -> String {
    let mut out = String::new();
    let mut rest = secs;
    for (unit, n) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if rest >= n {
            out.push_str(&format!("{}{unit}", rest / n));
            rest %= n;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The snapshots of `inventory`, oldest first (all of them when none names it, so a history
/// written under another path still shows).
fn metas_of(store: &Store, inventory: &str) -> Result<Vec<SnapshotMeta>, StoreError> {
    let all = store.snapshots()?;
    let own: Vec<SnapshotMeta> = all
        .iter()
        .filter(|m| m.inventory == inventory)
        .cloned()
        .collect();
    Ok(if own.is_empty() { all } else { own })
}

/// The newest stored snapshot of `inventory`, in full.
pub fn latest_of(store: &Store, inventory: &str) -> Result<Option<Snapshot>, StoreError> {
    let metas = metas_of(store, inventory)?;
    metas.last().map(|m| store.load(m.id)).transpose()
}

/// The newest snapshot of `inventory` taken at or before `at`, else the oldest one.
pub fn at_or_before(
    store: &Store,
    inventory: &str,
    at: i64,
) -> Result<Option<Snapshot>, StoreError> {
    let metas = metas_of(store, inventory)?;
    let m = metas
        .iter()
        .rev()
        .find(|m| m.taken_at <= at)
        .or_else(|| metas.first());
    m.map(|m| store.load(m.id)).transpose()
}

/// Flattens a diff between two consecutive snapshots into timeline entries.
pub fn changes_between(a: &Snapshot, b: &Snapshot) -> Vec<Change> {
    let d = diff_snapshots(a, b);
    let at = b.meta.taken_at;
    let compared = format!(
        "snapshot {} ({} {}) → snapshot {} ({} {})",
        a.meta.id,
        a.meta.source.as_str(),
        super::rfc3339(a.meta.taken_at),
        b.meta.id,
        b.meta.source.as_str(),
        super::rfc3339(b.meta.taken_at)
    );
    let mut out = Vec::new();
    let mut push = |host: &str, kind: ChangeKind, what: String, mut evidence: Vec<String>| {
        evidence.push(compared.clone());
        out.push(Change {
            at,
            host: host.to_string(),
            kind,
            what,
            evidence,
        });
    };
    for f in &d.findings_new {
        let mut ev = vec![format!(
            "{} ({}): {}",
            f.check,
            f.severity.as_str(),
            f.title
        )];
        ev.extend(f.evidence.iter().cloned());
        push(
            &f.host,
            ChangeKind::FindingNew,
            format!("{} {}", f.check, f.title),
            ev,
        );
    }
    for f in &d.findings_resolved {
        let mut ev = vec![format!(
            "{} ({}) no longer fires: {}",
            f.check,
            f.severity.as_str(),
            f.title
        )];
        ev.extend(f.evidence.iter().map(|e| format!("was: {e}")));
        push(
            &f.host,
            ChangeKind::FindingResolved,
            format!("{} {}", f.check, f.title),
            ev,
        );
    }
    for h in &d.hosts_added {
        push(h, ChangeKind::HostAdded, h.clone(), Vec::new());
    }
    for h in &d.hosts_removed {
        push(h, ChangeKind::HostRemoved, h.clone(), Vec::new());
    }
    for h in &d.hosts {
        let lists = [
            (ChangeKind::PortOpened, &h.ports_opened, "now listening"),
            (
                ChangeKind::PortClosed,
                &h.ports_closed,
                "no longer listening",
            ),
            (
                ChangeKind::RuleAdded,
                &h.rules_added,
                "rule now in the firewall",
            ),
            (
                ChangeKind::RuleRemoved,
                &h.rules_removed,
                "rule gone from the firewall",
            ),
            (ChangeKind::BanAdded, &h.bans_added, "banned by fail2ban"),
            (ChangeKind::BanRemoved, &h.bans_removed, "no longer banned"),
        ];
        for (kind, items, why) in lists {
            for it in items {
                push(&h.host, kind, it.clone(), vec![format!("{why}: {it}")]);
            }
        }
    }
    // Parts not compared (not collected in one of the two) are not changes: they would repeat
    // for every pair. Reachability that flips is.
    for hb in &b.hosts {
        let Some(ha) = a.hosts.iter().find(|h| h.host == hb.host) else {
            continue;
        };
        match (ha.reachable, hb.reachable) {
            (true, false) => push(
                &hb.host,
                ChangeKind::Unreachable,
                "could not be collected".into(),
                vec!["the host's state was not collected in the later snapshot".into()],
            ),
            (false, true) => push(
                &hb.host,
                ChangeKind::Reachable,
                "collected again".into(),
                vec!["the host's state was collected again".into()],
            ),
            _ => {}
        }
    }
    out
}

/// True when nothing a person would call a change happened between two snapshots (parts
/// that were not collected are not changes).
pub fn unchanged(a: &Snapshot, b: &Snapshot) -> bool {
    changes_between(a, b).is_empty()
}

/// The timeline of `inventory` since `since` (relative to `now`), newest first.
pub fn timeline(
    store: &Store,
    inventory: &str,
    since: &Since,
    now: i64,
) -> Result<Timeline, StoreError> {
    let metas = metas_of(store, inventory)?;
    let mut t = Timeline {
        since: since_label(since),
        from: None,
        to: None,
        changes: Vec::new(),
        note: None,
    };
    let start = match since {
        Since::Previous => metas.len().saturating_sub(2),
        Since::Snapshot(id) => match metas.iter().position(|m| m.id == *id) {
            Some(i) => i,
            None => {
                t.note = Some(format!("no snapshot {id} in the history"));
                return Ok(t);
            }
        },
        Since::Ago(secs) => {
            let cutoff = now.saturating_sub(i64::try_from(*secs).unwrap_or(i64::MAX));
            metas
                .iter()
                .rposition(|m| m.taken_at <= cutoff)
                .unwrap_or(0)
        }
    };
    let window = metas.get(start..).unwrap_or_default();
    if window.len() < 2 {
        t.note = Some(match metas.len() {
            0 => "no snapshots in the history yet (the console stores one after its first collection)".into(),
            _ => "only one snapshot in this window: nothing to compare yet".into(),
        });
        t.to = window.last().cloned();
        return Ok(t);
    }
    let pairs = window.len() - 1;
    let skip = pairs.saturating_sub(MAX_PAIRS);
    if skip > 0 {
        t.note = Some(format!(
            "only the newest {MAX_PAIRS} of {pairs} snapshot pairs are shown"
        ));
    }
    let window = &window[skip..];
    t.from = window.first().cloned();
    t.to = window.last().cloned();
    let mut prev = store.load(window[0].id)?;
    for m in &window[1..] {
        let next = store.load(m.id)?;
        t.changes.extend(changes_between(&prev, &next));
        prev = next;
    }
    t.changes.reverse();
    Ok(t)
}

/// Decides when the console stores a snapshot: at once when something changed since the
/// last one it stored, else at most once per [`IDLE_RECORD_SECS`]. Pure: the caller records.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Snapshot>,
}

impl Throttle {
    /// A throttle that compares with `last` (the newest stored snapshot), if any.
    pub fn new(last: Option<Snapshot>) -> Throttle {
        Throttle { last }
    }

    /// Whether `next` (taken at `next.meta.taken_at`) should be stored.
    pub fn due(&self, next: &Snapshot) -> bool {
        let Some(last) = &self.last else {
            return true;
        };
        if next.meta.taken_at.saturating_sub(last.meta.taken_at) >= IDLE_RECORD_SECS {
            return true;
        }
        !unchanged(last, next)
    }

    /// Remembers `snap` as the last one stored.
    pub fn stored(&mut self, snap: Snapshot) {
        self.last = Some(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{HostSnapshot, Source};

    fn snap(id: i64, at: i64, ports: &[u16]) -> Snapshot {
        let listeners: Vec<serde_json::Value> = ports
            .iter()
            .map(|p| serde_json::json!({"protocol": "tcp", "address": "0.0.0.0", "port": p}))
            .collect();
        Snapshot {
            meta: SnapshotMeta {
                id,
                taken_at: at,
                source: Source::Console,
                inventory: "inv.toml".into(),
                hosts: 1,
                findings: 0,
            },
            hosts: vec![HostSnapshot {
                host: "web1".into(),
                reachable: true,
                state: serde_json::json!({"listeners": {"status": "ok", "value": listeners}}),
            }],
            findings: Vec::new(),
        }
    }

    #[test]
    fn an_idle_console_stores_once_per_ten_minutes_and_a_change_at_once() {
        let mut t = Throttle::default();
        let first = snap(0, 1000, &[22]);
        assert!(t.due(&first), "the first collection is stored");
        t.stored(first);
        assert!(!t.due(&snap(0, 1030, &[22])), "nothing changed 30 s later");
        assert!(!t.due(&snap(0, 1000 + IDLE_RECORD_SECS - 1, &[22])));
        assert!(t.due(&snap(0, 1000 + IDLE_RECORD_SECS, &[22])));
        assert!(t.due(&snap(0, 1031, &[22, 8080])), "a port opened");
    }

    #[test]
    fn a_port_opened_between_two_snapshots_is_one_entry_with_evidence() {
        let c = changes_between(&snap(1, 1000, &[22]), &snap(2, 2000, &[22, 8080]));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, ChangeKind::PortOpened);
        assert_eq!(c[0].host, "web1");
        assert_eq!(c[0].at, 2000);
        assert!(c[0].what.contains("8080/tcp"), "{c:?}");
        assert!(
            c[0].evidence.iter().any(|e| e.contains("snapshot 1")),
            "{c:?}"
        );
    }
}
