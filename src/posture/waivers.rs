//! Waivers: a TOML file that accepts named findings for a while, with a justification.
//!
//! ```toml
//! [[waiver]]
//! check = "FW-STALE-RULE"
//! host = "web*"            # a glob: `*` any run of characters, `?` one character
//! justification = "port 8443 is reserved for the blue/green switch in March"
//! expires = "2027-01-31"   # the last day the waiver applies
//! ```
//!
//! This module owns the file format, its validation and [`apply`]. A malformed file is an
//! error naming `file:line: key`, never silently ignored: a waiver that quietly fails to parse
//! would hide nothing and a waiver that quietly applies to the wrong thing would hide too much.
//! It reads only the waiver file; it never looks at hosts.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Finding, WaiverRef, check_info};

/// A calendar date (proleptic Gregorian), as waivers write it: `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`, checking the day exists in that month.
    pub fn parse(s: &str) -> Result<Date, String> {
        let bad = || format!("{s:?} is not a date (YYYY-MM-DD)");
        let mut parts = s.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if !(all_digits(y) && all_digits(m) && all_digits(d)) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        let day: u8 = d.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(format!("{s:?}: month {month} does not exist"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(format!("{s:?}: day {day} does not exist in that month"));
        }
        Ok(Date { year, month, day })
    }

    /// The date of a Unix timestamp (seconds), in UTC.
    pub fn from_unix(secs: i64) -> Date {
        let days = secs.div_euclid(86_400);
        civil_from_days(days)
    }

    /// Today, in UTC, from the system clock.
    pub fn today() -> Date {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Date::from_unix(secs)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    Date {
        year: i32::try_from(y).unwrap_or(i32::MAX),
        month: u8::try_from(m).unwrap_or(1),
        day: u8::try_from(d).unwrap_or(1),
    }
}

/// One validated waiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// A check ID from the catalogue.
    pub check: String,
    /// A glob over host names (`fleet` for fleet-wide findings).
    pub host: String,
    pub justification: String,
    /// The last day the waiver applies.
    pub expires: Date,
    /// `file:line` of the `[[waiver]]` table.
    pub source: String,
}

impl Waiver {
    /// True when this waiver covers `f` (whether or not it has expired).
    pub fn covers(&self, f: &Finding) -> bool {
        self.check == f.check && glob_match(&self.host, &f.host)
    }

    /// True once `today` is past the expiry date.
    pub fn expired(&self, today: Date) -> bool {
        today > self.expires
    }
}

/// A waiver file that cannot be used. The message names the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    #[error("{path}: cannot read the waiver file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: String,
        line: usize,
        key: String,
        message: String,
    },
}

impl WaiverError {
    /// The line the error points at (0 when the file could not be read).
    pub fn line(&self) -> usize {
        match self {
            WaiverError::Read { .. } => 0,
            WaiverError::Invalid { line, .. } => *line,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    waiver: Vec<Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    check: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    justification: Option<Spanned<String>>,
    expires: Option<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Reads and validates a waiver file.
pub fn load(path: &Path) -> Result<Vec<Waiver>, WaiverError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| WaiverError::Read {
        path: label.clone(),
        source,
    })?;
    parse(&label, &text)
}

/// Parses and validates waiver-file text; `path` only labels errors and waiver sources.
pub fn parse(path: &str, text: &str) -> Result<Vec<Waiver>, WaiverError> {
    let invalid = |offset: usize, key: &str, message: String| WaiverError::Invalid {
        path: path.to_string(),
        line: line_of(text, offset),
        key: key.to_string(),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        // toml names the offending key in its message ("unknown field `x`, expected ...").
        let key = e
            .message()
            .split('`')
            .nth(1)
            .filter(|_| e.message().contains("field"))
            .unwrap_or("waiver")
            .to_string();
        invalid(offset, &key, e.message().trim().to_string())
    })?;
    let mut out = Vec::with_capacity(raw.waiver.len());
    for spanned in raw.waiver {
        let at = spanned.span().start;
        let w = spanned.into_inner();
        let missing = |key: &str, hint: &str| invalid(at, key, format!("missing; {hint}"));
        let check = w
            .check
            .ok_or_else(|| missing("check", "name a check ID such as \"FW-STALE-RULE\""))?;
        if check_info(check.get_ref()).is_none() {
            return Err(invalid(
                check.span().start,
                "check",
                format!(
                    "{:?} is not a check in the catalogue (see `rampart audit --help` or the README)",
                    check.get_ref()
                ),
            ));
        }
        let host = w.host.ok_or_else(|| {
            missing(
                "host",
                "name a host or a glob (`web*`, `*` for every host, `fleet` for fleet findings)",
            )
        })?;
        if host.get_ref().trim().is_empty() {
            return Err(invalid(host.span().start, "host", "is empty".to_string()));
        }
        let justification = w.justification.ok_or_else(|| {
            missing(
                "justification",
                "say why this finding is accepted, for the next auditor",
            )
        })?;
        if justification.get_ref().trim().is_empty() {
            return Err(invalid(
                justification.span().start,
                "justification",
                "is empty; say why this finding is accepted".to_string(),
            ));
        }
        let expires = w
            .expires
            .ok_or_else(|| missing("expires", "give the last day it applies, as YYYY-MM-DD"))?;
        let date = Date::parse(expires.get_ref())
            .map_err(|m| invalid(expires.span().start, "expires", m))?;
        out.push(Waiver {
            check: check.into_inner(),
            host: host.into_inner(),
            justification: justification.into_inner().trim().to_string(),
            expires: date,
            source: format!("{path}:{}", line_of(text, at)),
        });
    }
    Ok(out)
}

/// Marks every finding a live waiver covers (the first one in file order wins) and returns
/// one notice per expired waiver (`file:line: CHECK HOST (expired DATE)`): an expired waiver
/// stops applying and must be seen, so it is reported whether or not it still matches.
pub fn apply(findings: &mut [Finding], waivers: &[Waiver], today: Date) -> Vec<String> {
    for f in findings.iter_mut() {
        if let Some(w) = waivers.iter().find(|w| !w.expired(today) && w.covers(f)) {
            f.waived = Some(WaiverRef {
                justification: w.justification.clone(),
                expires: w.expires.to_string(),
                source: w.source.clone(),
            });
        }
    }
    waivers
        .iter()
        .filter(|w| w.expired(today))
        .map(|w| {
            let matching = findings.iter().filter(|f| w.covers(f)).count();
            format!(
                "{}: {} {} (expired {}; would cover {matching} finding{})",
                w.source,
                w.check,
                w.host,
                w.expires,
                if matching == 1 { "" } else { "s" }
            )
        })
        .collect()
}

/// Shell-style glob over a whole name: `*` matches any run of characters (also none), `?`
/// exactly one; everything else literally. Linear time (no backtracking blow-up).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Where the last `*` was and which name position it is currently standing for.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            Date::parse("2024-02-29"),
            Ok(Date {
                year: 2024,
                month: 2,
                day: 29
            })
        );
        assert!(Date::parse("2023-02-29").is_err());
        assert!(Date::parse("2023-13-01").is_err());
        assert!(Date::parse("2023-1-01").is_err());
        assert!(Date::parse("2023-01-01T00:00").is_err());
        assert!(Date::parse("tomorrow").is_err());
        assert_eq!(Date::from_unix(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix(951_782_400).to_string(), "2000-02-29");
        assert_eq!(Date::from_unix(1_767_225_599).to_string(), "2025-12-31");
        assert_eq!(Date::from_unix(-1).to_string(), "1969-12-31");
    }

    #[test]
    fn globs() {
        assert!(glob_match("web*", "web1"));
        assert!(glob_match("web*", "web"));
        assert!(!glob_match("web*", "aweb1"));
        assert!(glob_match("*", "fleet"));
        assert!(glob_match("web?", "web2"));
        assert!(!glob_match("web?", "web12"));
        assert!(glob_match("*b*1", "db1"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYbd"));
        assert!(glob_match("db1", "db1"));
        assert!(!glob_match("db1", "db12"));
        assert!(glob_match("**", ""));
        assert!(!glob_match("?", ""));
        assert!(glob_match("ünï?ode*", "ünïcode-host"));
    }
}
