//! Text entry: the filter line and the `:` command line (completion, running a command).

#[allow(unused_imports)]
use super::*;

impl App {
    pub(super) fn filter_key(&mut self, key: KeyEvent) {
        let Some(pane) = self.pane() else {
            self.mode = Mode::Normal;
            return;
        };
        let Mode::Filter { input, previous } = &mut self.mode else {
            return;
        };
        match key.code {
            KeyCode::Esc => {
                let prev = std::mem::take(previous);
                self.filters.insert(pane, Filter::new(&prev));
                self.mode = Mode::Normal;
                return;
            }
            KeyCode::Enter => {
                let f = Filter::new(input);
                if let Some(e) = f.error() {
                    let e = format!("invalid regex: {e}");
                    self.error(e);
                    return;
                }
                self.mode = Mode::Normal;
                return;
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => input.push(c),
            KeyCode::Char('u') => input.clear(),
            _ => return,
        }
        // Filter as you type.
        let f = Filter::new(input);
        self.filters.insert(pane, f);
        self.selection.insert(pane, 0);
    }

    pub(super) fn command_key(&mut self, key: KeyEvent) -> Option<Effect> {
        let Mode::Command { input, completion } = &mut self.mode else {
            return None;
        };
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => {
                let line = std::mem::take(input);
                self.mode = Mode::Normal;
                return self.run_command(&line);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
                let themes = self.themes.names();
                match completion {
                    Some((cands, i)) if !cands.is_empty() => {
                        let n = cands.len();
                        *i = if key.code == KeyCode::BackTab {
                            (*i + n - 1) % n
                        } else {
                            (*i + 1) % n
                        };
                        *input = command::complete_with(input, &cands[*i]);
                    }
                    _ => {
                        let cands = command::candidates(input, &names, &themes);
                        match cands.len() {
                            0 => {}
                            1 => {
                                *input = command::complete_with(input, &cands[0]);
                                *completion = None;
                            }
                            _ => {
                                let prefix = command::common_prefix(&cands);
                                let cur = input.rsplit(' ').next().unwrap_or("");
                                if prefix.len() > cur.len() {
                                    *input = command::complete_with(input, &prefix)
                                        .trim_end()
                                        .to_string();
                                    // Keep the list so the next Tab cycles from the start.
                                    *completion = Some((cands, usize::MAX));
                                    if let Some((c, i)) = completion {
                                        *i = c.len() - 1;
                                    }
                                } else {
                                    *input = command::complete_with(input, &cands[0]);
                                    *completion = Some((cands, 0));
                                }
                            }
                        }
                    }
                }
            }
            KeyCode::Backspace => {
                if input.is_empty() {
                    self.mode = Mode::Normal;
                } else {
                    input.pop();
                    *completion = None;
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                input.push(c);
                *completion = None;
            }
            _ => {}
        }
        None
    }

    /// The candidates the command line would offer now (shown under it).
    pub fn command_candidates(&self) -> Vec<String> {
        let Mode::Command { input, completion } = &self.mode else {
            return Vec::new();
        };
        if let Some((c, _)) = completion {
            return c.clone();
        }
        let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        command::candidates(input, &names, &self.themes.names())
    }

    /// Runs a `:` command line.
    pub fn run_command(&mut self, line: &str) -> Option<Effect> {
        self.changed();
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.error(e);
                return None;
            }
        };
        match cmd {
            Command::Fleet => self.show(Pane::Fleet),
            Command::Posture => self.show(Pane::Posture),
            Command::Alerts => self.show(Pane::Alerts),
            Command::Traffic => self.show(Pane::Traffic),
            Command::Host(name) => {
                if self.host(&name).is_some() {
                    self.open_host(&name);
                } else {
                    self.error(format!("no host {name:?} in the inventory"));
                }
                None
            }
            Command::Theme(name) => {
                match self.themes.theme(&name, self.depth) {
                    Ok(t) => {
                        self.theme = t;
                        self.info(format!("theme {name}"));
                    }
                    Err(e) => self.error(e.to_string()),
                }
                None
            }
            Command::Refresh => self.apply(Action::Refresh),
            Command::Quit => Some(Effect::Quit),
            Command::Help => {
                self.mode = Mode::Help;
                None
            }
            Command::Sort(col) => {
                match SortColumn::ALL.iter().find(|c| c.name() == col) {
                    Some(c) => {
                        self.sort = *c;
                        self.info(format!("fleet sorted by {col}"));
                    }
                    None => self.error(format!(
                        "no column {col:?} (columns: {})",
                        command::SORT_COLUMNS.join(", ")
                    )),
                }
                None
            }
            Command::Changes(since) => {
                let since = match since.as_deref().map(crate::store::parse_since) {
                    None => crate::tui::changes::DEFAULT_SINCE,
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        self.error(e.to_string().replacen("--since", ":changes", 1));
                        return None;
                    }
                };
                let host = match &self.view {
                    View::Host(h) => Some(h.clone()),
                    _ => None,
                };
                self.open_changes(since, host)
            }
            Command::Group(g) => {
                match g.as_str() {
                    "none" => self.group = Grouping::None,
                    "role" => self.group = Grouping::Role,
                    "segment" => self.group = Grouping::Segment,
                    other => self.error(format!("no grouping {other:?} (none, role, segment)")),
                }
                None
            }
        }
    }
}
