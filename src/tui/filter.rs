//! Row filters typed after `/`: a case-insensitive substring, or a regular expression after a
//! `re:` prefix. Pure.

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Filter {
    raw: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Substring(String),
    Regex(regex::Regex),
    /// The regex did not compile: matches nothing, and says why.
    Invalid(String),
}

/// The prefix that makes a filter a regular expression.
pub const REGEX_PREFIX: &str = "re:";

impl Filter {
    pub fn new(raw: &str) -> Filter {
        let matcher = match raw.strip_prefix(REGEX_PREFIX) {
            Some(re) => match regex::RegexBuilder::new(re)
                .case_insensitive(true)
                // Bound the compiled size: the pattern is typed by a person, but be safe.
                .size_limit(1 << 20)
                .build()
            {
                Ok(r) => Matcher::Regex(r),
                Err(e) => Matcher::Invalid(e.to_string().lines().last().unwrap_or("").into()),
            },
            None => Matcher::Substring(raw.to_lowercase()),
        };
        Filter {
            raw: raw.to_string(),
            matcher,
        }
    }

    /// The text as typed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// True when the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() || self.raw == REGEX_PREFIX
    }

    /// Why the regex is invalid, if it is.
    pub fn error(&self) -> Option<&str> {
        match &self.matcher {
            Matcher::Invalid(e) => Some(e),
            _ => None,
        }
    }

    /// True when any of `fields` matches.
    pub fn matches<'a>(&self, fields: impl IntoIterator<Item = &'a str>) -> bool {
        if self.is_empty() {
            return true;
        }
        match &self.matcher {
            Matcher::Substring(s) => fields.into_iter().any(|f| f.to_lowercase().contains(s)),
            Matcher::Regex(r) => fields.into_iter().any(|f| r.is_match(f)),
            Matcher::Invalid(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_and_regex() {
        let f = Filter::new("WEB");
        assert!(f.matches(["web1", "dmz"]));
        assert!(!f.matches(["db1", "data"]));
        let r = Filter::new("re:^(web|db)[0-9]$");
        assert!(r.matches(["x", "db1"]));
        assert!(!r.matches(["vpn1"]));
        let bad = Filter::new("re:(");
        assert!(bad.error().is_some());
        assert!(!bad.matches(["("]));
        assert!(Filter::new("").matches(["anything"]));
        assert!(Filter::new("re:").matches(["anything"]));
    }
}
