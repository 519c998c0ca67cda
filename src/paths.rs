//! Where rampart keeps its files: the XDG base directories, and `~` / `${VAR}` expansion of
//! paths written in the inventory. Pure apart from reading the environment.

use std::path::PathBuf;

/// The user's home directory, from `$HOME` (falls back to `/root` for the root user with an
/// empty environment, as under some CI runners).
pub fn home_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from("/root"),
    }
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() && PathBuf::from(&v).is_absolute() => PathBuf::from(v),
        _ => home_dir().join(fallback),
    }
}

/// `$XDG_STATE_HOME/rampart` (default `~/.local/state/rampart`): logs, the command log, the lab.
pub fn state_dir() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state").join("rampart")
}

/// `$XDG_DATA_HOME/rampart` (default `~/.local/share/rampart`): the history database.
pub fn data_dir() -> PathBuf {
    xdg("XDG_DATA_HOME", ".local/share").join("rampart")
}

/// `$XDG_CONFIG_HOME/rampart` (default `~/.config/rampart`): keymap, user themes.
pub fn config_dir() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config").join("rampart")
}

/// Expands a leading `~` and `${NAME}` references. `${XDG_STATE_HOME}`, `${XDG_DATA_HOME}` and
/// `${XDG_CONFIG_HOME}` fall back to their XDG defaults when unset, so the shipped inventory can
/// name the lab's files wherever the state directory is. An unknown, unset variable expands to
/// nothing, as in a shell.
pub fn expand_tilde(raw: &str) -> PathBuf {
    PathBuf::from(expand_vars(raw))
}

/// String form of [`expand_tilde`].
pub fn expand_vars(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len());
    let rest = if raw == "~" {
        s.push_str(&home_dir().to_string_lossy());
        ""
    } else if let Some(r) = raw.strip_prefix("~/") {
        s.push_str(&home_dir().to_string_lossy());
        s.push('/');
        r
    } else {
        raw
    };
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '$'
            && rest[i + 1..].starts_with('{')
            && let Some(end) = rest[i + 2..].find('}')
        {
            {
                let name = &rest[i + 2..i + 2 + end];
                s.push_str(&lookup(name));
                // Skip past the closing brace.
                while let Some((j, _)) = chars.peek() {
                    if *j > i + 2 + end {
                        break;
                    }
                    chars.next();
                }
                continue;
            }
        }
        s.push(c);
    }
    s
}

fn lookup(name: &str) -> String {
    if let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) {
        return v.to_string_lossy().into_owned();
    }
    let fallback = match name {
        "XDG_STATE_HOME" => ".local/state",
        "XDG_DATA_HOME" => ".local/share",
        "XDG_CONFIG_HOME" => ".config",
        "HOME" => "",
        _ => return String::new(),
    };
    home_dir()
        .join(fallback)
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_and_vars_expand() {
        let home = home_dir();
        assert_eq!(expand_tilde("~/x"), home.join("x"));
        assert_eq!(expand_tilde("/abs/~/x"), PathBuf::from("/abs/~/x"));
        let e = expand_vars("${XDG_STATE_HOME}/rampart/lab/known_hosts");
        assert!(e.ends_with("/rampart/lab/known_hosts"), "{e}");
        assert!(!e.contains('$'), "{e}");
        assert_eq!(expand_vars("${RAMPART_SURELY_UNSET_VAR}/a"), "/a");
        assert_eq!(expand_vars("a${unterminated"), "a${unterminated");
    }
}
