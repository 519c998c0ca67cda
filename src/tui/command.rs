//! The `:` command line: parsing and Tab completion. Pure; `App` runs what is parsed.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Fleet,
    Posture,
    Alerts,
    Traffic,
    Host(String),
    Theme(String),
    Refresh,
    Quit,
    Help,
    /// Fleet sort column by name.
    Sort(String),
    /// Fleet grouping: `role`, `segment` or `none`.
    Group(String),
    /// The drift timeline since a duration (`1d`, `30m`) or a snapshot (`42`); a day when
    /// none is given.
    Changes(Option<String>),
}

/// Command words, in the order completion offers them.
pub const WORDS: &[&str] = &[
    "fleet", "posture", "alerts", "traffic", "host", "theme", "refresh", "quit", "help", "sort",
    "group", "changes",
];

/// Arguments some commands take besides host and theme names.
pub const SORT_COLUMNS: &[&str] = &[
    "host", "state", "roles", "segment", "score", "findings", "traffic",
];
pub const GROUPS: &[&str] = &["none", "role", "segment"];

/// Parses a command line (without the leading `:`).
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Err("empty command".into());
    };
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Err(format!("unexpected {extra:?}"));
    }
    let need = |what: &str| -> Result<String, String> {
        arg.map(str::to_string)
            .ok_or_else(|| format!(":{first} needs a {what}"))
    };
    let no_arg = |c: Command| match arg {
        Some(a) => Err(format!(":{first} takes no argument (got {a:?})")),
        None => Ok(c),
    };
    match first {
        "fleet" | "f" => no_arg(Command::Fleet),
        "posture" | "p" => no_arg(Command::Posture),
        "alerts" | "a" => no_arg(Command::Alerts),
        "traffic" | "t" => no_arg(Command::Traffic),
        "host" | "h" => need("host name").map(Command::Host),
        "theme" => need("theme name").map(Command::Theme),
        "refresh" | "r" => no_arg(Command::Refresh),
        "quit" | "q" | "q!" => no_arg(Command::Quit),
        "help" => no_arg(Command::Help),
        "sort" => need("column").map(Command::Sort),
        "group" => need("grouping (none, role, segment)").map(Command::Group),
        "changes" | "c" => Ok(Command::Changes(arg.map(str::to_string))),
        other => Err(format!(
            "unknown command {other:?} (commands: {})",
            WORDS.join(", ")
        )),
    }
}

/// The candidates that complete the word under the cursor (the last word of `line`).
pub fn candidates(line: &str, hosts: &[String], themes: &[String]) -> Vec<String> {
    let ends_with_space = line.ends_with(' ');
    let words: Vec<&str> = line.split_whitespace().collect();
    let (index, prefix) = match (words.len(), ends_with_space) {
        (0, _) => (0, ""),
        (n, true) => (n, ""),
        (n, false) => (n - 1, words[n - 1]),
    };
    let pool: Vec<String> = match index {
        0 => WORDS.iter().map(|s| s.to_string()).collect(),
        1 => match words.first().copied() {
            Some("host" | "h") => hosts.to_vec(),
            Some("theme") => themes.to_vec(),
            Some("sort") => SORT_COLUMNS.iter().map(|s| s.to_string()).collect(),
            Some("group") => GROUPS.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    pool.into_iter().filter(|c| c.starts_with(prefix)).collect()
}

/// `line` with its last word replaced by `word` (and a space after a command that takes an
/// argument).
pub fn complete_with(line: &str, word: &str) -> String {
    let keep = if line.ends_with(' ') || line.is_empty() {
        line.to_string()
    } else {
        match line.rfind(' ') {
            Some(i) => line[..=i].to_string(),
            None => String::new(),
        }
    };
    let mut out = format!("{keep}{word}");
    let first_word = !keep.contains(|c: char| !c.is_whitespace());
    if first_word && matches!(word, "host" | "theme" | "sort" | "group") {
        out.push(' ');
    }
    out
}

/// The longest common prefix of the candidates.
pub fn common_prefix(c: &[String]) -> String {
    let Some(first) = c.first() else {
        return String::new();
    };
    let mut len = first.len();
    for other in &c[1..] {
        len = first
            .char_indices()
            .zip(other.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    first[..len].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("fleet"), Ok(Command::Fleet));
        assert_eq!(parse(" host web1 "), Ok(Command::Host("web1".into())));
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert!(parse("host").is_err());
        assert!(parse("fleet now").is_err());
        assert!(parse("frobnicate").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn completes_words_and_arguments() {
        let hosts = vec!["web1".to_string(), "web2".into(), "db1".into()];
        let themes = vec!["default".to_string(), "light".into()];
        assert_eq!(candidates("ho", &hosts, &themes), ["host"]);
        assert_eq!(candidates("t", &hosts, &themes), ["traffic", "theme"]);
        assert_eq!(candidates("host w", &hosts, &themes), ["web1", "web2"]);
        assert_eq!(candidates("host ", &hosts, &themes).len(), 3);
        assert_eq!(candidates("theme l", &hosts, &themes), ["light"]);
        assert!(candidates("fleet x", &hosts, &themes).is_empty());
        assert_eq!(complete_with("ho", "host"), "host ");
        assert_eq!(complete_with("host w", "web1"), "host web1");
        assert_eq!(complete_with("fl", "fleet"), "fleet");
        assert_eq!(common_prefix(&["web1".into(), "web2".into()]), "web");
        assert_eq!(common_prefix(&["traffic".into(), "theme".into()]), "t");
    }
}
