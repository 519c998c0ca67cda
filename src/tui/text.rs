//! Small pure formatting helpers for the panes: times, rates, sparklines, and the one door
//! through which host text reaches a cell ([`safe`]).

use std::borrow::Cow;

/// Host text made safe to draw: control characters and bidi overrides become visible escapes,
/// newlines and tabs become spaces. Every string that came from a host, the inventory or the
/// network goes through here before it reaches a cell (the collectors sanitize too; this is
/// defence in depth).
pub fn safe(s: &str) -> Cow<'_, str> {
    let cleaned = crate::sanitize::clean(s);
    if cleaned.contains(['\n', '\r', '\t']) {
        Cow::Owned(cleaned.replace(['\n', '\r', '\t'], " "))
    } else {
        cleaned
    }
}

/// Owned [`safe`].
pub fn safe_owned(s: &str) -> String {
    safe(s).into_owned()
}

/// (year, month, day) of a day number since 1970-01-01 (civil calendar, proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `HH:MM:SSZ` (UTC) of Unix seconds.
pub fn clock(t: i64) -> String {
    let s = t.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
pub fn date(t: i64) -> String {
    let (y, m, d) = civil(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:MM:SSZ` today, else `MM-DD HH:MMZ`: short and unambiguous in a table.
pub fn when(t: i64, now: i64) -> String {
    if t.div_euclid(86_400) == now.div_euclid(86_400) {
        clock(t)
    } else {
        let (_, m, d) = civil(t.div_euclid(86_400));
        let s = t.rem_euclid(86_400);
        format!("{m:02}-{d:02} {:02}:{:02}Z", s / 3600, (s / 60) % 60)
    }
}

/// A rate in bytes per second, 4 significant characters plus unit: `812B`, `1.2K`, `35M`.
pub fn rate(bps: f64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = bps.max(0.0);
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v < 10.0 && u > 0 {
        format!("{v:.1}{}", units[u])
    } else {
        format!("{v:.0}{}", units[u])
    }
}

/// A count per second: `0`, `12`, `1.5k`.
pub fn per_sec(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const ASCII_BARS: [char; 8] = ['_', '.', ':', '-', '=', '+', '*', '#'];

/// The last `width` samples as a one-line bar chart, scaled to their maximum. Missing samples
/// (history shorter than `width`) are blank on the left.
pub fn sparkline(
    samples: impl DoubleEndedIterator<Item = f64>,
    width: usize,
    ascii: bool,
) -> String {
    let bars = if ascii { &ASCII_BARS } else { &BARS };
    let mut v: Vec<f64> = samples.rev().take(width).collect();
    v.reverse();
    let max = v.iter().copied().fold(0.0f64, f64::max);
    let mut s = " ".repeat(width.saturating_sub(v.len()));
    for x in v {
        let level = if max > 0.0 {
            ((x / max) * 7.0).round().clamp(0.0, 7.0) as usize
        } else {
            0
        };
        s.push(bars[level]);
    }
    s
}

/// Cuts `s` to `width` characters, marking the cut with `…` (or `~` in ASCII mode).
pub fn fit(s: &str, width: usize, ascii: bool) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push(if ascii { '~' } else { '…' });
    out
}

/// An age in the largest unit that fits: `<1m`, `12m`, `3h`, `2d`. Never in seconds: a
/// label that changed every second would redraw an idle console every second.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        "<1m".to_string()
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(clock(0), "00:00:00Z");
        assert_eq!(date(0), "1970-01-01");
        // 2024-02-29 12:34:56 UTC
        assert_eq!(date(1_709_210_096), "2024-02-29");
        assert_eq!(clock(1_709_210_096), "12:34:56Z");
        assert_eq!(when(1_709_210_096, 1_709_210_100), "12:34:56Z");
        assert_eq!(when(1_709_210_096, 1_709_310_100), "02-29 12:34Z");
    }

    #[test]
    fn rates_and_sparklines() {
        assert_eq!(rate(812.0), "812B");
        assert_eq!(rate(1229.0), "1.2K");
        assert_eq!(rate(35.0 * 1024.0 * 1024.0), "35M");
        assert_eq!(per_sec(0.0), "0");
        assert_eq!(per_sec(2.5), "2.5");
        assert_eq!(per_sec(1500.0), "1.5k");
        assert_eq!(sparkline([0.0, 7.0].into_iter(), 4, false), "  ▁█");
        assert_eq!(sparkline([1.0, 2.0, 3.0].into_iter(), 2, true), "+#");
        assert_eq!(sparkline(std::iter::empty(), 3, false), "   ");
        assert_eq!(fit("abcdef", 4, false), "abc…");
        assert_eq!(fit("abc", 4, true), "abc");
    }

    #[test]
    fn safe_text_has_no_controls() {
        let s = safe("a\x1b]0;x\x07b\nc");
        assert_eq!(s, "a\\x1b]0;x\\x07b c");
    }
}
