//! Escaping for each output syntax. Every function first makes control characters visible
//! (`crate::sanitize::clean`), so even text that skipped sanitizing cannot carry a terminal
//! escape or a character XML forbids.

use crate::sanitize::{clean, clean_line};

/// XML text and attribute content. XML 1.0 cannot carry most C0 controls even as character
/// references, so they are made visible first; U+FFFE and U+FFFF are not XML characters either.
pub fn xml(s: &str) -> String {
    let cleaned = clean(s);
    let mut out = String::with_capacity(cleaned.len() + 8);
    for c in cleaned.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute values normalize raw newlines and tabs to spaces; references survive.
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\u{fffe}' => out.push_str("\\u{fffe}"),
            '\u{ffff}' => out.push_str("\\u{ffff}"),
            c => out.push(c),
        }
    }
    out
}

/// HTML text and attribute content.
pub fn html(s: &str) -> String {
    let cleaned = clean(s);
    let mut out = String::with_capacity(cleaned.len() + 8);
    for c in cleaned.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline text, safe inside a table cell: one line, and every character that
/// Markdown (CommonMark + GFM tables) or embedded HTML would act on is backslash-escaped.
pub fn markdown(s: &str) -> String {
    let line = clean_line(s);
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a terminal, keeping newlines (evidence may span lines).
pub fn terminal(s: &str) -> String {
    clean(s).into_owned()
}

/// One line for a terminal.
pub fn terminal_line(s: &str) -> String {
    clean_line(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            xml("a<b & \"c\" 'd'\n\u{1b}[31m"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&#10;\\x1b[31m"
        );
        assert_eq!(
            html("<script>'&'</script>"),
            "&lt;script&gt;&#39;&amp;&#39;&lt;/script&gt;"
        );
        assert_eq!(markdown("a|b\nc *d* <e>"), "a\\|b c \\*d\\* \\<e\\>");
        assert_eq!(
            terminal_line("x\u{1b}]0;pwned\u{7}y"),
            "x\\x1b]0;pwned\\x07y"
        );
    }
}
