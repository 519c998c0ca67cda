//! The fix dialog's state and actions: planning, confirmation (typed for risky fixes), the
//! plan in words or the exact commands (Tab), progress and result.

#[allow(unused_imports)]
use super::*;

/// The fix dialog's state.
#[derive(Debug, Clone, PartialEq)]
pub struct FixDialog {
    pub host: String,
    pub fix: String,
    pub params: Vec<(String, String)>,
    pub stage: FixStage,
    /// Scroll of the plan (or of the command list).
    pub scroll: usize,
    /// Show the exact commands instead of the plan in words (Tab switches).
    pub raw: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FixStage {
    /// Waiting for the plan.
    Planning,
    /// Showing the plan; `typed` is the confirmation typed so far (risky fixes).
    Confirm {
        plan: FixPlan,
        typed: String,
    },
    Running {
        plan: FixPlan,
        log: Vec<String>,
    },
    Done {
        plan: Option<FixPlan>,
        ok: bool,
        verified: bool,
        message: String,
        log: Vec<String>,
    },
}

pub(super) fn running(plan: Option<FixPlan>, log: Vec<String>) -> FixStage {
    match plan {
        Some(plan) => FixStage::Running { plan, log },
        None => FixStage::Done {
            plan: None,
            ok: false,
            verified: false,
            message: "progress without a plan".into(),
            log,
        },
    }
}

impl App {
    pub(super) fn plan_arrived(&mut self, plan: FixPlan) -> bool {
        if self.fixes_disabled(&plan.host) {
            // Defence in depth: a plan that arrives anyway never opens the dialog.
            self.error(format!(
                "READ-ONLY: fix {} on {} not offered",
                plan.fix, plan.host
            ));
            if let Mode::Fix(_) = self.mode {
                self.mode = Mode::Normal;
            }
            return true;
        }
        if let Mode::Fix(d) = &mut self.mode
            && d.stage == FixStage::Planning
            && d.host == plan.host
            && d.fix == plan.fix
        {
            d.stage = FixStage::Confirm {
                plan,
                typed: String::new(),
            };
            return true;
        }
        false
    }

    pub(super) fn fix_progress(&mut self, p: FixProgress) -> bool {
        let Mode::Fix(d) = &mut self.mode else {
            // The dialog was closed; the result still deserves a line.
            if let FixProgress::Finished { ok, message, .. } = &p {
                let text = format!("fix finished: {message}");
                if *ok {
                    self.info(text);
                } else {
                    self.error(text);
                }
                return true;
            }
            return false;
        };
        let (plan, mut log) = match std::mem::replace(&mut d.stage, FixStage::Planning) {
            FixStage::Running { plan, log } => (Some(plan), log),
            FixStage::Confirm { plan, .. } => (Some(plan), Vec::new()),
            FixStage::Done { plan, log, .. } => (plan, log),
            FixStage::Planning => (None, Vec::new()),
        };
        d.stage = match p {
            FixProgress::Step { message } => {
                log.push(format!("» {message}"));
                running(plan, log)
            }
            FixProgress::Output { line } => {
                log.push(line);
                running(plan, log)
            }
            FixProgress::Finished {
                ok,
                verified,
                message,
            } => FixStage::Done {
                plan,
                ok,
                verified,
                message,
                log,
            },
            FixProgress::Refused { reason } => FixStage::Done {
                plan,
                ok: false,
                verified: false,
                message: format!("refused: {reason}"),
                log,
            },
        };
        true
    }

    pub(super) fn fix_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let Mode::Fix(d) = &mut self.mode else {
            return None;
        };
        let page = usize::from(self.size.1.saturating_sub(10)).max(1);
        match key.code {
            KeyCode::Up => {
                d.scroll = d.scroll.saturating_sub(1);
                return None;
            }
            KeyCode::Down => {
                d.scroll = d.scroll.saturating_add(1);
                return None;
            }
            KeyCode::PageUp => {
                d.scroll = d.scroll.saturating_sub(page);
                return None;
            }
            KeyCode::PageDown => {
                d.scroll = d.scroll.saturating_add(page);
                return None;
            }
            // The plan in words ↔ the exact commands.
            KeyCode::Tab | KeyCode::BackTab => {
                d.raw = !d.raw;
                d.scroll = 0;
                return None;
            }
            _ => {}
        }
        match &mut d.stage {
            FixStage::Planning => {
                if key.code == KeyCode::Esc {
                    self.mode = Mode::Normal;
                }
                None
            }
            FixStage::Confirm { plan, typed } => {
                let risky = plan.risk == Risk::High;
                match key.code {
                    KeyCode::Esc => {
                        self.mode = Mode::Normal;
                        self.info("fix cancelled; nothing was sent");
                        None
                    }
                    KeyCode::Char('n') if !risky => {
                        self.mode = Mode::Normal;
                        self.info("fix cancelled; nothing was sent");
                        None
                    }
                    KeyCode::Backspace if risky => {
                        typed.pop();
                        None
                    }
                    KeyCode::Char(c) if risky => {
                        typed.push(c);
                        None
                    }
                    KeyCode::Enter | KeyCode::Char('y') => {
                        if risky && *typed != plan.host {
                            self.message = Some(Message {
                                error: true,
                                text: format!(
                                    "type the host name ({}) exactly to confirm",
                                    plan.host
                                ),
                            });
                            return None;
                        }
                        let plan = plan.clone();
                        if self.read_only {
                            self.mode = Mode::Normal;
                            return None;
                        }
                        d.stage = FixStage::Running {
                            plan: plan.clone(),
                            log: Vec::new(),
                        };
                        Some(Effect::ApplyFix {
                            host: plan.host,
                            fix: plan.fix,
                            params: plan.params,
                        })
                    }
                    _ => None,
                }
            }
            FixStage::Running { .. } => {
                if key.code == KeyCode::Esc {
                    self.message = Some(Message {
                        error: false,
                        text: "the fix is running; this dialog closes when it has a result".into(),
                    });
                }
                None
            }
            FixStage::Done { .. } => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                    self.mode = Mode::Normal;
                }
                None
            }
        }
    }
}
