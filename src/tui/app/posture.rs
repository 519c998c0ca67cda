//! The Posture pane's state and actions: the findings in order, the selected one, starting
//! a fix from it.

#[allow(unused_imports)]
use super::*;

impl App {
    /// Posture rows: indexes into `findings`, scoped and filtered; un-waived first, most
    /// severe first.
    pub fn posture_rows(&self) -> Vec<usize> {
        let filter = self.filter(Pane::Posture);
        let mut rows: Vec<usize> = (0..self.findings.len())
            .filter(|i| {
                let f = &self.findings[*i];
                self.posture_host.as_ref().is_none_or(|h| &f.host == h)
                    && filter.is_none_or(|flt| {
                        flt.matches(
                            [
                                f.check.as_str(),
                                f.host.as_str(),
                                f.title.as_str(),
                                f.severity.as_str(),
                            ]
                            .into_iter()
                            .chain(f.evidence.iter().map(String::as_str)),
                        )
                    })
            })
            .collect();
        rows.sort_by(|a, b| {
            let (fa, fb) = (&self.findings[*a], &self.findings[*b]);
            fa.is_waived()
                .cmp(&fb.is_waived())
                .then(fb.severity.cmp(&fa.severity))
                .then_with(|| fa.host.cmp(&fb.host))
                .then_with(|| fa.check.cmp(&fb.check))
                .then_with(|| fa.title.cmp(&fb.title))
        });
        rows
    }

    pub fn selected_finding(&self) -> Option<&Finding> {
        let rows = self.posture_rows();
        let i = self.clamped_row(Pane::Posture)?;
        rows.get(i).and_then(|f| self.findings.get(*f))
    }

    pub(super) fn start_fix(&mut self) -> Option<Effect> {
        if self.pane() != Some(Pane::Posture) {
            self.info("fixes start from a finding: open Posture (2), select it, press f");
            return None;
        }
        let Some(f) = self.selected_finding().cloned() else {
            self.info("no finding selected");
            return None;
        };
        let Some(fix) = f.fix.clone() else {
            self.info(format!("{} has no one-key fix", f.check));
            return None;
        };
        if self.read_only {
            self.error(
                "READ-ONLY: fixes are disabled (console started read-only); nothing was sent",
            );
            return None;
        }
        if self.fixes_disabled(&f.host) {
            self.error(format!(
                "READ-ONLY: the inventory marks {} read_only; nothing was sent",
                f.host
            ));
            return None;
        }
        self.mode = Mode::Fix(Box::new(FixDialog {
            host: f.host.clone(),
            fix: fix.clone(),
            params: f.fix_params.clone(),
            stage: FixStage::Planning,
            scroll: 0,
            raw: false,
        }));
        Some(Effect::PlanFix {
            host: f.host,
            fix,
            params: f.fix_params,
        })
    }
}
