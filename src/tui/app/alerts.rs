//! The Alerts pane's state and actions: alerts raised and resolved (and those the console
//! derives itself when no alert engine runs), the rows in order, acknowledge and silence.

#[allow(unused_imports)]
use super::*;

impl App {
    /// Alert rows: indexes into `alerts`; un-acknowledged and un-silenced first, then most
    /// severe, then most recent.
    pub fn alert_rows(&self) -> Vec<usize> {
        let filter = self.filter(Pane::Alerts);
        let mut rows: Vec<usize> = (0..self.alerts.len())
            .filter(|i| {
                let a = &self.alerts[*i];
                filter.is_none_or(|f| {
                    f.matches([
                        a.kind.as_str(),
                        a.host.as_str(),
                        a.summary.as_str(),
                        a.severity.as_str(),
                    ])
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            let (x, y) = (&self.alerts[*a], &self.alerts[*b]);
            let quiet = |al: &Alert| al.acknowledged || al.is_silenced(self.now);
            quiet(x)
                .cmp(&quiet(y))
                .then(y.severity.cmp(&x.severity))
                .then(y.last_seen.cmp(&x.last_seen))
                .then_with(|| x.id.cmp(&y.id))
        });
        rows
    }

    pub fn selected_alert(&self) -> Option<&Alert> {
        let rows = self.alert_rows();
        let i = self.clamped_row(Pane::Alerts)?;
        rows.get(i).and_then(|a| self.alerts.get(*a))
    }

    pub(super) fn raise(&mut self, a: Alert) -> bool {
        if let Some(old) = self.alerts.iter_mut().find(|o| o.id == a.id) {
            if *old == a {
                return false;
            }
            // The console's own acknowledgement and silence survive a re-fire.
            let (ack, sil) = (old.acknowledged, old.silenced_until);
            *old = a;
            old.acknowledged |= ack;
            old.silenced_until = old.silenced_until.max(sil);
        } else {
            self.alerts.push(a);
        }
        true
    }

    pub(super) fn resolve(&mut self, id: &str) -> bool {
        let before = self.alerts.len();
        self.alerts.retain(|a| a.id != id);
        before != self.alerts.len()
    }

    pub(super) fn local_alert(
        &mut self,
        kind: &str,
        host: &str,
        severity: Severity,
        summary: String,
    ) {
        let id = format!("{kind}:{host}");
        let now = self.now;
        if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
            a.last_seen = now;
            a.count = a.count.saturating_add(1);
            a.summary = summary;
            return;
        }
        self.alerts.push(Alert {
            id,
            kind: kind.to_string(),
            host: host.to_string(),
            severity,
            summary,
            first_seen: now,
            last_seen: now,
            count: 1,
            acknowledged: false,
            silenced_until: None,
        });
    }

    pub(super) fn derive_connection_alerts(&mut self, host: &str, state: &ConnState) {
        match state {
            ConnState::Unreachable { reason } => {
                self.local_alert(
                    "HOST-UNREACHABLE",
                    host,
                    Severity::High,
                    format!("unreachable: {reason}"),
                );
            }
            ConnState::HostKeyRefused { reason } => {
                self.local_alert(
                    "HOSTKEY-REFUSED",
                    host,
                    Severity::Critical,
                    format!("host key refused: {reason}"),
                );
            }
            ConnState::Ok => {
                self.resolve(&format!("HOST-UNREACHABLE:{host}"));
                self.resolve(&format!("HOSTKEY-REFUSED:{host}"));
            }
            ConnState::Pending | ConnState::Connecting | ConnState::Reconnecting { .. } => {}
        }
    }

    pub(super) fn derive_finding_alerts(&mut self, new: &[Finding]) {
        let keys: BTreeSet<String> = new
            .iter()
            .filter(|f| !f.is_waived() && f.severity > Severity::Info)
            .map(Finding::key)
            .collect();
        // The first recomputation is the baseline: nothing in it is "new".
        if let Some(seen) = self.seen_findings.take() {
            let gone: Vec<String> = seen.difference(&keys).cloned().collect();
            for f in new.iter().filter(|f| keys.contains(&f.key())) {
                if !seen.contains(&f.key()) {
                    self.local_alert(
                        "FINDING-NEW",
                        &format!("{}|{}|{}", f.host, f.check, f.title),
                        f.severity,
                        format!("new finding {}: {}", f.check, f.title),
                    );
                    if let Some(a) = self.alerts.last_mut() {
                        a.host = f.host.clone();
                    }
                }
            }
            for k in gone {
                let mut parts = k.splitn(3, '|');
                let (check, host, title) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                self.resolve(&format!("FINDING-NEW:{host}|{check}|{title}"));
            }
        }
        self.seen_findings = Some(keys);
    }

    pub(super) fn acknowledge(&mut self) -> Option<Effect> {
        if self.pane() != Some(Pane::Alerts) {
            self.info("acknowledge works on the Alerts pane (3)");
            return None;
        }
        let id = self.selected_alert()?.id.clone();
        if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
            a.acknowledged = true;
        }
        self.info(format!("acknowledged {id}"));
        Some(Effect::AcknowledgeAlert { id })
    }

    pub(super) fn silence(&mut self) -> Option<Effect> {
        if self.pane() != Some(Pane::Alerts) {
            self.info("silence works on the Alerts pane (3)");
            return None;
        }
        let id = self.selected_alert()?.id.clone();
        let until = self.now + SILENCE_SECS;
        if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
            a.silenced_until = Some(until);
        }
        self.info(format!(
            "silenced {id} until {}",
            crate::tui::text::clock(until)
        ));
        Some(Effect::SilenceAlert { id, until })
    }
}
