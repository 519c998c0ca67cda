//! ufw: `ufw status verbose` and the tuple comments of `/etc/ufw/user*.rules` (which name
//! app profiles and carry the operator's comments). The rules themselves are read with
//! the iptables parser. Pure: no I/O.

use super::model::{Policies, Policy, UfwRule, UfwStatus};
use crate::collect::{ParseError, check_size, clean};

const WHAT: &str = "ufw status";

fn policy_word(w: &str) -> Option<Policy> {
    Some(match w {
        "allow" => Policy::Accept,
        "deny" => Policy::Drop,
        "reject" => Policy::Reject,
        "disabled" => Policy::Disabled,
        _ => return None,
    })
}

/// Reads "deny (incoming), allow (outgoing), disabled (routed)".
fn parse_defaults(s: &str) -> Policies {
    let mut p = Policies::default();
    for part in s.split(',') {
        let mut w = part.split_whitespace();
        let (Some(pol), Some(dir)) = (w.next(), w.next()) else {
            continue;
        };
        let pol = policy_word(pol);
        match dir.trim_matches(|c| c == '(' || c == ')') {
            "incoming" => p.incoming = pol,
            "outgoing" => p.outgoing = pol,
            "routed" => p.routed = pol,
            _ => {}
        }
    }
    p
}

/// Finds the action column: the first " ALLOW|DENY|REJECT|LIMIT [IN|OUT|FWD] " in a line.
fn split_rule(line: &str) -> Option<(&str, String, &str)> {
    const ACTIONS: [&str; 4] = ["ALLOW", "DENY", "REJECT", "LIMIT"];
    let bytes = line.as_bytes();
    let mut best: Option<(usize, &str)> = None;
    for a in ACTIONS {
        let mut from = 0;
        while let Some(pos) = line[from..].find(a) {
            let at = from + pos;
            let before_ok = at > 0 && bytes[at - 1] == b' ';
            let end = at + a.len();
            let after_ok = end == line.len() || bytes[end] == b' ';
            if before_ok && after_ok {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, a));
                }
                break;
            }
            from = end;
        }
    }
    let (at, a) = best?;
    let to = line[..at].trim_end();
    let mut rest = &line[at + a.len()..];
    let mut action = a.to_string();
    for dir in ["IN", "OUT", "FWD"] {
        if let Some(r) = rest.strip_prefix(' ').and_then(|r| r.strip_prefix(dir))
            && (r.is_empty() || r.starts_with(' '))
        {
            action.push(' ');
            action.push_str(dir);
            rest = r;
            break;
        }
    }
    Some((to, action, rest.trim()))
}

/// Parses `ufw status` or `ufw status verbose` (also numbered).
pub fn parse_status(text: &str) -> Result<UfwStatus, ParseError> {
    check_size(WHAT, text)?;
    let mut st = UfwStatus::default();
    let mut saw_status = false;
    let mut in_rules = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix("Status:") {
            saw_status = true;
            st.active = v.trim() == "active";
            continue;
        }
        if let Some(v) = line.strip_prefix("Logging:") {
            st.logging = Some(clean(v.trim()));
            continue;
        }
        if let Some(v) = line.strip_prefix("Default:") {
            st.policies = parse_defaults(v);
            continue;
        }
        if line.starts_with("New profiles:") {
            continue;
        }
        if line.trim_start().starts_with("To ") && line.contains("Action") {
            in_rules = true;
            continue;
        }
        if line.trim_start().starts_with("--") {
            continue;
        }
        if !in_rules {
            continue;
        }
        // "[ 1] 22/tcp ..." in numbered output.
        let body = match line.trim_start().strip_prefix('[') {
            Some(r) => r.split_once(']').map_or(r, |(_, b)| b).trim_start(),
            None => line,
        };
        let Some((to, action, from)) = split_rule(body) else {
            return Err(ParseError::new(
                WHAT,
                n,
                format!("rule line without an action: {:?}", clean(line)),
            ));
        };
        let (from, comment) = match from.split_once(" # ") {
            Some((f, c)) => (f.trim(), Some(clean(c.trim()))),
            None => match from.strip_prefix("# ") {
                Some(c) => ("", Some(clean(c.trim()))),
                None => (from, None),
            },
        };
        st.rules.push(UfwRule {
            to: clean(to.trim()),
            action,
            from: clean(from),
            comment,
            line: n,
        });
    }
    if !saw_status {
        return Err(ParseError::new(WHAT, 0, "no \"Status:\" line"));
    }
    Ok(st)
}

/// A `### tuple ###` line of user.rules, which precedes the iptables rules it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// "allow", "deny", "reject", "limit" (with "_log" etc. as written).
    pub action: String,
    pub protocol: String,
    pub dport: String,
    pub dst: String,
    pub sport: String,
    pub src: String,
    /// The app profile named by the rule ("OpenSSH"), if any.
    pub app: Option<String>,
    /// "in", "out", "in_eth0", ...
    pub direction: String,
    pub comment: Option<String>,
    /// 1-based line of the tuple.
    pub line: usize,
    /// How many iptables rules follow it (before the next tuple or section end).
    pub rules: usize,
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn unpercent(s: &str) -> String {
    s.replace("%20", " ")
}

/// Reads the tuples of a `user.rules` / `user6.rules` file.
pub fn parse_tuples(text: &str) -> Result<Vec<Tuple>, ParseError> {
    check_size("ufw user.rules", text)?;
    let mut out: Vec<Tuple> = Vec::new();
    let mut counting = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(t) = line.strip_prefix("### tuple ###") {
            let mut words: Vec<&str> = t.split_whitespace().collect();
            let comment = match words.last().and_then(|w| w.strip_prefix("comment=")) {
                Some(hex) => {
                    let c = unhex(hex).map(|c| clean(&c));
                    words.pop();
                    c
                }
                None => None,
            };
            // action proto dport dst sport src [dapp sapp] direction
            if words.len() < 7 {
                return Err(ParseError::new(
                    "ufw user.rules",
                    i + 1,
                    "tuple with fewer than 7 fields",
                ));
            }
            let direction = words.last().map(|s| clean(s)).unwrap_or_default();
            let app = if words.len() >= 9 {
                let dapp = words[6];
                let sapp = words[7];
                [dapp, sapp]
                    .into_iter()
                    .find(|a| *a != "-")
                    .map(|a| clean(&unpercent(a)))
            } else {
                None
            };
            out.push(Tuple {
                action: clean(words[0]),
                protocol: clean(words[1]),
                dport: clean(words[2]),
                dst: clean(words[3]),
                sport: clean(words[4]),
                src: clean(words[5]),
                app,
                direction,
                comment,
                line: i + 1,
                rules: 0,
            });
            counting = true;
        } else if line.starts_with("### ") {
            counting = false;
        } else if counting
            && (line.starts_with("-A ") || line.starts_with("-I "))
            && let Some(t) = out.last_mut()
        {
            t.rules += 1;
        }
    }
    Ok(out)
}

impl Tuple {
    /// How the tuple reads as a comment on the rules it made.
    pub fn describe(&self) -> String {
        let mut s = match &self.app {
            Some(app) => format!("ufw {} {app}", self.action),
            None => format!("ufw {} {} {}", self.action, self.protocol, self.dport),
        };
        if self.src != "0.0.0.0/0" && self.src != "::/0" {
            s.push_str(&format!(" from {}", self.src));
        }
        if let Some(c) = &self.comment {
            s.push_str(&format!(" ({c})"));
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_overflowing_columns() {
        let (to, action, from) =
            split_rule("80,443/tcp (Nginx Full (v6)) ALLOW IN    Anywhere (v6)").unwrap();
        assert_eq!(to, "80,443/tcp (Nginx Full (v6))");
        assert_eq!(action, "ALLOW IN");
        assert_eq!(from, "Anywhere (v6)");
        // A profile named like an action does not confuse the split.
        let (to, action, _) =
            split_rule("DENYLIST                   DENY        Anywhere").unwrap();
        assert_eq!(to, "DENYLIST");
        assert_eq!(action, "DENY");
    }

    #[test]
    fn status_without_status_line_is_an_error() {
        assert!(parse_status("ERROR: You need to be root to run this script\n").is_err());
    }

    #[test]
    fn tuple_comment_is_hex_decoded() {
        let t = parse_tuples(
            "### tuple ### allow tcp 22 0.0.0.0/0 any 10.0.0.0/8 in comment=6869\n-A ufw-user-input -j ACCEPT\n",
        )
        .unwrap();
        assert_eq!(t[0].comment.as_deref(), Some("hi"));
        assert_eq!(t[0].rules, 1);
        assert_eq!(t[0].describe(), "ufw allow tcp 22 from 10.0.0.0/8 (hi)");
    }
}
