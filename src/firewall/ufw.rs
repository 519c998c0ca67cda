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

/// The marker that starts the output of the `ufw` probe when it reads ufw's files instead of
/// running `ufw status verbose` (whose Python start-up cost a host ~75 ms per collection).
pub const FILES_MARKER: &str = "### rampart ufw files";

/// What the `ufw` probe read: the `KEY=value` lines of `/etc/ufw/ufw.conf` and
/// `/etc/default/ufw`, and the forwarding sysctls ufw consults for "(routed)".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    settings: Vec<(String, String)>,
    /// `net.ipv4.ip_forward`, `net.ipv6.conf.default.forwarding`, `...all.forwarding`.
    forwarding: [bool; 3],
    /// `/proc/sys/net/ipv6` exists (ufw's `use_ipv6` needs it).
    ipv6_proc: bool,
}

impl Files {
    fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the `ufw` probe's file output (after [`FILES_MARKER`]): `KEY=value` lines (quotes
/// removed), `forward=A B C` and `ipv6proc=yes|no`.
pub fn parse_files(text: &str) -> Result<Files, ParseError> {
    check_size("ufw files", text)?;
    let mut f = Files::default();
    let mut saw_forward = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        match k {
            "forward" => {
                saw_forward = true;
                for (i, w) in v.split_whitespace().take(3).enumerate() {
                    f.forwarding[i] = w == "1";
                }
            }
            "ipv6proc" => f.ipv6_proc = v == "yes",
            _ => f.settings.push((k.to_string(), v.to_ascii_lowercase())),
        }
    }
    if !saw_forward {
        return Err(ParseError::new("ufw files", 0, "no forward= line"));
    }
    Ok(f)
}

/// One `### tuple ###` of user.rules as ufw's status reads it.
struct StatusRule {
    action: String,
    logtype: String,
    forward: bool,
    protocol: String,
    dport: String,
    dst: String,
    sport: String,
    src: String,
    dapp: String,
    sapp: String,
    direction: String,
    iface_in: String,
    iface_out: String,
    comment: String,
    v6: bool,
}

fn status_rules(text: &str, v6: bool) -> Vec<StatusRule> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(t) = line.trim().strip_prefix("### tuple ###") else {
            continue;
        };
        let mut words: Vec<&str> = t.split_whitespace().collect();
        let comment = match words.last().and_then(|w| w.strip_prefix("comment=")) {
            Some(hex) => {
                let c = unhex(hex).unwrap_or_default();
                words.pop();
                c
            }
            None => String::new(),
        };
        if words.len() < 7 {
            continue;
        }
        let (forward, action) = match words[0].strip_prefix("route:") {
            Some(a) => (true, a),
            None => (false, words[0]),
        };
        let (action, logtype) = action.split_once('_').unwrap_or((action, ""));
        let (dapp, sapp) = if words.len() >= 9 {
            let app = |a: &str| {
                if a == "-" {
                    String::new()
                } else {
                    unpercent(a)
                }
            };
            (app(words[6]), app(words[7]))
        } else {
            (String::new(), String::new())
        };
        let dir_word = words.last().copied().unwrap_or("in");
        let mut direction = String::from("in");
        let (mut iface_in, mut iface_out) = (String::new(), String::new());
        for (i, part) in dir_word.split('!').enumerate() {
            let (d, iface) = part.split_once('_').unwrap_or((part, ""));
            if i == 0 {
                direction = d.to_string();
            }
            match d {
                "in" => iface_in = iface.to_string(),
                "out" => iface_out = iface.to_string(),
                _ => {}
            }
        }
        out.push(StatusRule {
            action: action.to_string(),
            logtype: logtype.to_string(),
            forward,
            protocol: words[1].to_string(),
            dport: words[2].to_string(),
            dst: words[3].to_string(),
            sport: words[4].to_string(),
            src: words[5].to_string(),
            dapp,
            sapp,
            direction,
            iface_in,
            iface_out,
            comment,
            v6,
        });
    }
    out
}

fn is_any(addr: &str) -> bool {
    addr == "0.0.0.0/0" || addr == "::/0"
}

/// One side ("dst" or "src") of a rule as `ufw status verbose` prints it.
fn location(r: &StatusRule, dst: bool) -> String {
    let (addr, port, app) = if dst {
        (&r.dst, &r.dport, &r.dapp)
    } else {
        (&r.src, &r.sport, &r.sapp)
    };
    let mut loc = if is_any(addr) {
        String::new()
    } else {
        addr.clone()
    };
    if port != "any" {
        if loc.is_empty() {
            loc = port.clone();
        } else {
            loc = format!("{loc} {port}");
        }
        if r.protocol != "any" {
            loc.push('/');
            loc.push_str(&r.protocol);
        }
        if !app.is_empty() {
            loc.push_str(" (");
            loc.push_str(app);
            if r.v6 && addr == "::/0" {
                loc.push_str(" (v6)");
            }
            loc.push(')');
        }
    }
    if port == "any" {
        if is_any(addr) {
            loc = "Anywhere".to_string();
            if r.protocol != "any" && r.dst == r.src && r.dport == r.sport {
                loc.push('/');
                loc.push_str(&r.protocol);
            }
            if addr == "::/0" {
                loc.push_str(" (v6)");
            }
        } else if r.protocol != "any" && r.dport == r.sport {
            loc.push('/');
            loc.push_str(&r.protocol);
        }
    } else if r.v6 && r.src == "::/0" && r.dst == "::/0" && !loc.contains(" (v6)") {
        loc.push_str(" (v6)");
    }
    let (here, there) = if r.forward {
        (&r.iface_out, &r.iface_in)
    } else {
        (&r.iface_in, &r.iface_out)
    };
    let iface = if dst { here } else { there };
    if !iface.is_empty() {
        loc.push_str(" on ");
        loc.push_str(iface);
    }
    loc
}

fn policy_text(v: Option<&str>) -> &'static str {
    match v {
        Some("accept") => "allow",
        Some("reject") => "reject",
        _ => "deny",
    }
}

/// The text `ufw status verbose` would print, built from ufw's own files and the live
/// ruleset, as ufw 0.36 builds it: "Status: active" when ufw's `ufw-user-input` chain is
/// loaded (`chains_loaded`; ufw asks `iptables -L ufw-user-input`), the logging level and
/// default policies from `ufw.conf` and `/etc/default/ufw` ("disabled (routed)" when no
/// forwarding sysctl is on), and the rules from the tuples of `user.rules` / `user6.rules`.
/// Pure; the result goes through [`parse_status`] like the command's output.
pub fn status_text(
    files: &Files,
    user_rules: Option<&str>,
    user6_rules: Option<&str>,
    chains_loaded: bool,
) -> String {
    if !chains_loaded {
        return "Status: inactive\n".to_string();
    }
    let mut out = String::from("Status: active\n");
    let logging = match files.get("LOGLEVEL") {
        Some("off") => "off".to_string(),
        Some(l @ ("on" | "low" | "medium" | "high" | "full")) => format!("on ({l})"),
        _ => "unknown".to_string(),
    };
    out.push_str(&format!("Logging: {logging}\n"));
    let use_v6 = files.get("IPV6") == Some("yes") && files.ipv6_proc;
    let forwarding =
        files.forwarding[0] || (use_v6 && (files.forwarding[1] || files.forwarding[2]));
    let routed = if forwarding {
        policy_text(files.get("DEFAULT_FORWARD_POLICY"))
    } else {
        "disabled"
    };
    out.push_str(&format!(
        "Default: {} (incoming), {} (outgoing), {routed} (routed)\n",
        policy_text(files.get("DEFAULT_INPUT_POLICY")),
        policy_text(files.get("DEFAULT_OUTPUT_POLICY")),
    ));
    out.push_str(&format!(
        "New profiles: {}\n",
        files.get("DEFAULT_APPLICATION_POLICY").unwrap_or("skip")
    ));
    let mut rules = status_rules(user_rules.unwrap_or_default(), false);
    if use_v6 {
        rules.extend(status_rules(user6_rules.unwrap_or_default(), true));
    }
    let (mut incoming, mut outgoing, mut routed_rules) =
        (String::new(), String::new(), String::new());
    for r in &rules {
        let attrib = if r.logtype.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.logtype.to_ascii_lowercase())
        };
        let dir = if r.forward {
            "FWD".to_string()
        } else {
            r.direction.to_ascii_uppercase()
        };
        let comment = if r.comment.is_empty() {
            String::new()
        } else {
            format!(" # {}", r.comment)
        };
        let line = format!(
            "{:<26} {:<12}{:<26}{attrib}{comment}\n",
            location(r, true),
            format!("{} {dir}", r.action.to_ascii_uppercase()),
            location(r, false),
        );
        if r.forward {
            routed_rules.push_str(&line);
        } else if r.direction == "out" {
            outgoing.push_str(&line);
        } else {
            incoming.push_str(&line);
        }
    }
    if !(incoming.is_empty() && outgoing.is_empty() && routed_rules.is_empty()) {
        out.push_str("\nTo                         Action      From\n");
        out.push_str("--                         ------      ----\n");
        for part in [incoming, outgoing, routed_rules] {
            if !part.is_empty() {
                out.push_str(&part);
                out.push('\n');
            }
        }
    }
    out
}

/// Whether an iptables-save dump has ufw's `ufw-user-input` (or `ufw6-user-input`) chain.
pub fn chains_loaded(iptables_save: &str) -> bool {
    iptables_save
        .lines()
        .any(|l| l.starts_with(":ufw-user-input ") || l.starts_with(":ufw6-user-input "))
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

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/ufw/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn status_from_files_equals_ufw_status_verbose() {
        let probe = fixture("files.txt");
        let files = parse_files(probe.strip_prefix(FILES_MARKER).unwrap()).unwrap();
        let (v4, v6) = (fixture("user.rules"), fixture("user6.rules"));
        let text = status_text(&files, Some(&v4), Some(&v6), true);
        let ours = parse_status(&text).unwrap();
        let real = parse_status(&fixture("status-verbose-active.txt")).unwrap();
        assert_eq!(ours, real, "{text}");
        // Without ufw's chains in the live ruleset, ufw says inactive, whatever its files say.
        let off = parse_status(&status_text(&files, Some(&v4), Some(&v6), false)).unwrap();
        assert_eq!(
            off,
            parse_status(&fixture("status-verbose-inactive.txt")).unwrap()
        );
        assert!(!chains_loaded(
            &fixture("user.rules").replace(":ufw-user-input", ":x")
        ));
        assert!(chains_loaded(&fixture("user.rules")));
    }

    #[test]
    fn routed_policy_follows_the_forwarding_sysctls() {
        let probe = fixture("files.txt").replace("forward=0 0 0", "forward=1 0 0");
        let files = parse_files(probe.strip_prefix(FILES_MARKER).unwrap()).unwrap();
        let st = parse_status(&status_text(&files, None, None, true)).unwrap();
        assert_eq!(st.policies.routed, Some(Policy::Drop));
        assert!(st.rules.is_empty());
        assert!(parse_files("LOGLEVEL=low\n").is_err());
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
