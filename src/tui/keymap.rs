//! Keys and the actions they stand for. A [`Keymap`] maps a key press to an [`Action`]; the
//! defaults follow vim and k9s, and the user's `keymap.toml` (in the config dir) rebinds any
//! action. Text entry (filter, command line, typed confirmation) reads keys directly and is not
//! remapped.
//!
//! Parsing is pure; errors name the file and line.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the operator asked for. What it does depends on the view; see `App::apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Drill into the selected row.
    Enter,
    /// Close the popup, clear the filter, or go back a view.
    Back,
    Filter,
    Command,
    Refresh,
    Fix,
    Acknowledge,
    Silence,
    /// Fleet: next sort column.
    SortNext,
    /// Fleet: reverse the sort.
    SortReverse,
    /// Fleet: group by none → role → segment.
    Group,
    /// Posture: the selected host only, or the whole fleet.
    Scope,
    ShowFleet,
    ShowPosture,
    ShowAlerts,
    ShowTraffic,
    /// Fleet: show or hide the selected host's preview (always shown on wide terminals).
    Preview,
    /// The drift timeline from the history (fleet-wide, or the host in detail).
    Changes,
}

impl Action {
    pub const ALL: [Action; 28] = [
        Action::Quit,
        Action::Help,
        Action::NextPane,
        Action::PrevPane,
        Action::Up,
        Action::Down,
        Action::Top,
        Action::Bottom,
        Action::PageUp,
        Action::PageDown,
        Action::Enter,
        Action::Back,
        Action::Filter,
        Action::Command,
        Action::Refresh,
        Action::Fix,
        Action::Acknowledge,
        Action::Silence,
        Action::SortNext,
        Action::SortReverse,
        Action::Group,
        Action::Scope,
        Action::ShowFleet,
        Action::ShowPosture,
        Action::ShowAlerts,
        Action::ShowTraffic,
        Action::Preview,
        Action::Changes,
    ];

    /// The name used in `keymap.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::NextPane => "next-pane",
            Action::PrevPane => "prev-pane",
            Action::Up => "up",
            Action::Down => "down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageUp => "page-up",
            Action::PageDown => "page-down",
            Action::Enter => "enter",
            Action::Back => "back",
            Action::Filter => "filter",
            Action::Command => "command",
            Action::Refresh => "refresh",
            Action::Fix => "fix",
            Action::Acknowledge => "acknowledge",
            Action::Silence => "silence",
            Action::SortNext => "sort-next",
            Action::SortReverse => "sort-reverse",
            Action::Group => "group",
            Action::Scope => "scope",
            Action::ShowFleet => "fleet",
            Action::ShowPosture => "posture",
            Action::ShowAlerts => "alerts",
            Action::ShowTraffic => "traffic",
            Action::Preview => "preview",
            Action::Changes => "changes",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    /// What the action does, for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit rampart",
            Action::Help => "this help",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::Top => "first row",
            Action::Bottom => "last row",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Enter => "drill in (host detail)",
            Action::Back => "back / close / clear filter",
            Action::Filter => "filter rows (re: for a regex)",
            Action::Command => "command line (Tab completes)",
            Action::Refresh => "refresh every host now",
            Action::Fix => "fix the selected finding",
            Action::Acknowledge => "acknowledge the selected alert",
            Action::Silence => "silence the selected alert for 1h",
            Action::SortNext => "sort by the next column",
            Action::SortReverse => "reverse the sort",
            Action::Group => "group by role / segment / none",
            Action::Scope => "selected host only / whole fleet",
            Action::ShowFleet => "Fleet pane",
            Action::ShowPosture => "Posture pane",
            Action::ShowAlerts => "Alerts pane",
            Action::ShowTraffic => "Traffic pane",
            Action::Preview => "preview of the selected host",
            Action::Changes => "what changed (history)",
        }
    }
}

/// One key with its modifiers, e.g. `ctrl-c`, `shift-tab`, `G`, `pgdn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    code: KeyCodeOrd,
    ctrl: bool,
    alt: bool,
}

/// `KeyCode` subset with an order, so keys can key a `BTreeMap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum KeyCodeOrd {
    Char(char),
    F(u8),
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Insert,
}

impl Key {
    /// The key of a crossterm event; `None` for keys rampart never binds.
    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let code = match ev.code {
            // Shift is part of the character itself ('G' vs 'g').
            KeyCode::Char(c) => KeyCodeOrd::Char(c),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            KeyCode::Up => KeyCodeOrd::Up,
            KeyCode::Down => KeyCodeOrd::Down,
            KeyCode::Left => KeyCodeOrd::Left,
            KeyCode::Right => KeyCodeOrd::Right,
            KeyCode::Home => KeyCodeOrd::Home,
            KeyCode::End => KeyCodeOrd::End,
            KeyCode::PageUp => KeyCodeOrd::PageUp,
            KeyCode::PageDown => KeyCodeOrd::PageDown,
            KeyCode::Enter => KeyCodeOrd::Enter,
            KeyCode::Esc => KeyCodeOrd::Esc,
            KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => KeyCodeOrd::BackTab,
            KeyCode::Tab => KeyCodeOrd::Tab,
            KeyCode::BackTab => KeyCodeOrd::BackTab,
            KeyCode::Backspace => KeyCodeOrd::Backspace,
            KeyCode::Delete => KeyCodeOrd::Delete,
            KeyCode::Insert => KeyCodeOrd::Insert,
            _ => return None,
        };
        Some(Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// Parses `j`, `G`, `?`, `ctrl-c`, `alt-x`, `shift-tab`, `f5`, `space`, `pgdn`...
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut shift = false;
        let mut rest = s;
        // A lone "-" is the minus key, not a separator.
        while rest.len() > 1 {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").or(lower.strip_prefix("c-")) {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").or(lower.strip_prefix("m-")) {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("shift-") {
                shift = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => {
                if shift && c.is_ascii_alphabetic() {
                    KeyCodeOrd::Char(c.to_ascii_uppercase())
                } else if ctrl && c.is_ascii_alphabetic() {
                    // Terminals send ctrl-C and ctrl-c alike.
                    KeyCodeOrd::Char(c.to_ascii_lowercase())
                } else {
                    KeyCodeOrd::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "space" => KeyCodeOrd::Char(' '),
                "up" => KeyCodeOrd::Up,
                "down" => KeyCodeOrd::Down,
                "left" => KeyCodeOrd::Left,
                "right" => KeyCodeOrd::Right,
                "home" => KeyCodeOrd::Home,
                "end" => KeyCodeOrd::End,
                "pgup" | "pageup" => KeyCodeOrd::PageUp,
                "pgdn" | "pagedown" => KeyCodeOrd::PageDown,
                "enter" | "return" => KeyCodeOrd::Enter,
                "esc" | "escape" => KeyCodeOrd::Esc,
                "tab" if shift => KeyCodeOrd::BackTab,
                "tab" => KeyCodeOrd::Tab,
                "backtab" => KeyCodeOrd::BackTab,
                "backspace" => KeyCodeOrd::Backspace,
                "delete" | "del" => KeyCodeOrd::Delete,
                "insert" | "ins" => KeyCodeOrd::Insert,
                other => match other.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    Some(n) if (1..=24).contains(&n) => KeyCodeOrd::F(n),
                    _ => {
                        return Err(format!(
                            "{s:?} is not a key: write one character (j, G, ?), or a name \
                             (up, down, left, right, home, end, pgup, pgdn, enter, esc, tab, \
                             backtab, backspace, delete, insert, space, f1-f24), optionally \
                             with ctrl-, alt- or shift-"
                        ));
                    }
                },
            },
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => f.write_str("space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "f{n}"),
            KeyCodeOrd::Up => f.write_str("up"),
            KeyCodeOrd::Down => f.write_str("down"),
            KeyCodeOrd::Left => f.write_str("left"),
            KeyCodeOrd::Right => f.write_str("right"),
            KeyCodeOrd::Home => f.write_str("home"),
            KeyCodeOrd::End => f.write_str("end"),
            KeyCodeOrd::PageUp => f.write_str("pgup"),
            KeyCodeOrd::PageDown => f.write_str("pgdn"),
            KeyCodeOrd::Enter => f.write_str("enter"),
            KeyCodeOrd::Esc => f.write_str("esc"),
            KeyCodeOrd::Tab => f.write_str("tab"),
            KeyCodeOrd::BackTab => f.write_str("shift-tab"),
            KeyCodeOrd::Backspace => f.write_str("backspace"),
            KeyCodeOrd::Delete => f.write_str("delete"),
            KeyCodeOrd::Insert => f.write_str("insert"),
        }
    }
}

/// A keymap file that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct KeymapError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Key → action, plus the reverse for help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    keys: BTreeMap<Key, Action>,
}

/// The default bindings.
const DEFAULTS: &[(Action, &[&str])] = &[
    (Action::Quit, &["q", "ctrl-c"]),
    (Action::Help, &["?", "f1"]),
    (Action::NextPane, &["tab"]),
    (Action::PrevPane, &["shift-tab"]),
    (Action::Up, &["up", "k"]),
    (Action::Down, &["down", "j"]),
    (Action::Top, &["home", "g"]),
    (Action::Bottom, &["end", "G"]),
    (Action::PageUp, &["pgup", "ctrl-b"]),
    (Action::PageDown, &["pgdn", "ctrl-f"]),
    (Action::Enter, &["enter", "l", "right"]),
    (Action::Back, &["esc", "h", "left"]),
    (Action::Filter, &["/"]),
    (Action::Command, &[":"]),
    (Action::Refresh, &["r", "ctrl-r"]),
    (Action::Fix, &["f"]),
    (Action::Acknowledge, &["a"]),
    (Action::Silence, &["s"]),
    (Action::SortNext, &["o"]),
    (Action::SortReverse, &["O"]),
    (Action::Group, &["b"]),
    (Action::Scope, &["w"]),
    (Action::Preview, &["p"]),
    (Action::Changes, &["c"]),
    (Action::ShowFleet, &["1"]),
    (Action::ShowPosture, &["2"]),
    (Action::ShowAlerts, &["3"]),
    (Action::ShowTraffic, &["4"]),
];

impl Default for Keymap {
    fn default() -> Self {
        let mut keys = BTreeMap::new();
        for (action, names) in DEFAULTS {
            for n in *names {
                if let Ok(k) = Key::parse(n) {
                    keys.insert(k, *action);
                }
            }
        }
        Keymap { keys }
    }
}

impl Keymap {
    /// The action bound to a key press.
    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        Key::from_event(ev).and_then(|k| self.keys.get(&k).copied())
    }

    /// Every key bound to `action`, in display form: the default keys in their documented
    /// order first, then the user's.
    pub fn keys_for(&self, action: Action) -> Vec<String> {
        let defaults: Vec<&str> = DEFAULTS
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.to_vec())
            .unwrap_or_default();
        let mut v: Vec<(usize, bool, String)> = self
            .keys
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| {
                let s = k.to_string();
                let rank = defaults
                    .iter()
                    .position(|d| Key::parse(d).is_ok_and(|dk| dk == *k))
                    .unwrap_or(usize::MAX);
                // Among the user's keys, single characters first: they are what people type.
                (rank, s.chars().count() != 1, s)
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, _, s)| s).collect()
    }

    /// The first key bound to `action`, for hints ("" when unbound).
    pub fn key_for(&self, action: Action) -> String {
        self.keys_for(action).into_iter().next().unwrap_or_default()
    }

    /// Parses a keymap file over the defaults:
    ///
    /// ```toml
    /// [keys]
    /// down = ["j", "down", "ctrl-n"]   # replaces the defaults of `down`
    /// quit = "ctrl-q"                  # one key may be a plain string
    /// group = []                       # unbinds
    /// ```
    ///
    /// A key the file binds is taken away from whatever action had it by default; binding one
    /// key to two actions in the file is an error.
    pub fn parse(text: &str, file: &str) -> Result<Keymap, KeymapError> {
        use toml::de::{DeTable, DeValue};
        let err = |pos: usize, message: String| KeymapError {
            file: file.to_string(),
            line: super::theme::line_of(text, pos),
            message,
        };
        let root = DeTable::parse(text).map_err(|e| {
            err(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        let mut map = Keymap::default();
        // Which file line bound each key, to report conflicts.
        let mut bound_in_file: BTreeMap<Key, (Action, usize)> = BTreeMap::new();
        for (section, value) in root.get_ref() {
            if section.get_ref() != "keys" {
                return Err(err(
                    section.span().start,
                    format!(
                        "unknown section {:?}: the file has one table, [keys]",
                        section.get_ref()
                    ),
                ));
            }
            let DeValue::Table(keys) = value.get_ref() else {
                return Err(err(value.span().start, "[keys] must be a table".into()));
            };
            for (name, v) in keys {
                let Some(action) = Action::from_name(name.get_ref()) else {
                    let all: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                    return Err(err(
                        name.span().start,
                        format!(
                            "unknown action {:?} (actions: {})",
                            name.get_ref(),
                            all.join(", ")
                        ),
                    ));
                };
                let items: Vec<(String, usize)> = match v.get_ref() {
                    DeValue::String(s) => vec![(s.to_string(), v.span().start)],
                    DeValue::Array(a) => {
                        let mut items = Vec::new();
                        for item in a {
                            let DeValue::String(s) = item.get_ref() else {
                                return Err(err(
                                    item.span().start,
                                    format!("keys of {:?} must be strings", action.name()),
                                ));
                            };
                            items.push((s.to_string(), item.span().start));
                        }
                        items
                    }
                    _ => {
                        return Err(err(
                            v.span().start,
                            format!(
                                "{:?} takes a key or a list of keys, e.g. [\"j\", \"down\"]",
                                action.name()
                            ),
                        ));
                    }
                };
                map.keys.retain(|_, a| *a != action);
                for (s, pos) in items {
                    let key = Key::parse(&s).map_err(|m| err(pos, m))?;
                    let line = super::theme::line_of(text, pos);
                    if let Some((other, other_line)) = bound_in_file.get(&key)
                        && *other != action
                    {
                        return Err(err(
                            pos,
                            format!(
                                "key {key} is bound to both {:?} (line {other_line}) and {:?}",
                                other.name(),
                                action.name()
                            ),
                        ));
                    }
                    bound_in_file.insert(key, (action, line));
                    map.keys.insert(key, action);
                }
            }
        }
        Ok(map)
    }

    /// Reads `path` when it exists; the defaults otherwise.
    pub fn load(path: &std::path::Path) -> Result<Keymap, KeymapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Keymap::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
            Err(e) => Err(KeymapError {
                file: path.display().to_string(),
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
}
