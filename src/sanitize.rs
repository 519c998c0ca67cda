//! Text from hosts is hostile until cleaned. [`clean`] removes everything that a terminal
//! could act on (ESC and every other C0 control except newline and tab, DEL, the C1 controls,
//! and the Unicode bidirectional overrides and isolates that can make text read differently
//! from what it is), so nothing a host prints reaches the operator's terminal as a control
//! sequence. Removed characters are shown as visible escapes, so the operator still sees that
//! something odd was there.

use std::borrow::Cow;

/// True for a character that must never reach a terminal from remote text.
pub fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi embeddings, overrides and isolates; zero-width marks that hide text
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'
        | '\u{061c}' | '\u{feff}')
}

/// Returns `s` with dangerous characters replaced by a visible escape such as `\x1b` or
/// `\u{202e}`. Borrows when there is nothing to replace (the common case).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Cleans raw bytes: invalid UTF-8 becomes U+FFFD, then [`clean`] applies.
pub fn clean_bytes(b: &[u8]) -> String {
    clean(&String::from_utf8_lossy(b)).into_owned()
}

/// Like [`clean`] but also replaces newlines and tabs: for one-line fields (names, titles).
pub fn clean_line(s: &str) -> String {
    clean(s).replace(['\n', '\r', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        assert_eq!(clean("ok\tline\n"), "ok\tline\n");
        assert_eq!(clean("\x1b]0;pwned\x07name"), "\\x1b]0;pwned\\x07name");
        assert_eq!(clean("a\u{9b}31mb"), "a\\x9b31mb");
        assert_eq!(clean("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(clean_bytes(b"\xff\x1b[2J"), "\u{fffd}\\x1b[2J");
        assert_eq!(clean_line("a\nb"), "a b");
    }

    #[test]
    fn output_never_contains_dangerous_chars() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!clean(&all).chars().any(is_dangerous));
    }
}
