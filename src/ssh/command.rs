//! Commands a host may be sent: read-only probes compiled into the binary, framed scripts
//! made of them, and mutating commands built from typed values.
//!
//! Owns: [`ReadCommand`] (only ever made of `&'static str` pieces, so no inventory or remote
//! text can reach a shell through it), framing several probes into one script with a
//! delimiter per probe carrying its exit status, the pure frame parser, and
//! [`MutatingCommand`], whose arguments are typed values (IP, CIDR, port, checked name) each
//! quoted for `sh`.
//!
//! Must not: accept a runtime `String` as command text, or send anything (the transport does,
//! and only a `Transport<ReadWrite>` sends a [`MutatingCommand`]).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

/// A read-only probe, or a framed script of probes. Its text comes only from string literals
/// of the binary (`&'static str`), plus a nonce the framing generates itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCommand {
    name: &'static str,
    body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Static(&'static str),
    Framed {
        nonce: String,
        probes: Vec<(&'static str, &'static str)>,
    },
}

/// A framed script could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("probe name {0:?} is not [a-z0-9_.-]+")]
    BadProbeName(&'static str),
    #[error("a framed script needs at least one probe")]
    Empty,
    #[error("{0:?} is not a safe name ([A-Za-z0-9_.@:-], not starting with '-', 1-64 chars)")]
    BadName(String),
}

impl ReadCommand {
    /// A probe: a name (used in frames and in the command log) and a POSIX `sh` script.
    /// `const`, so probes can be `const` items of the collectors.
    pub const fn new(name: &'static str, script: &'static str) -> ReadCommand {
        ReadCommand {
            name,
            body: Body::Static(script),
        }
    }

    /// Several probes as one script (one exec channel, one shell start), each framed by
    /// `@@rampart:<nonce>:begin:<name>` and `@@rampart:<nonce>:end:<name>:<exit status>` on
    /// both stdout and stderr. Nested framed scripts are flattened.
    pub fn framed(
        name: &'static str,
        probes: &[&ReadCommand],
    ) -> Result<ReadCommand, CommandError> {
        let mut flat = Vec::new();
        for p in probes {
            match &p.body {
                Body::Static(s) => flat.push((p.name, *s)),
                Body::Framed { probes, .. } => flat.extend(probes.iter().copied()),
            }
        }
        if flat.is_empty() {
            return Err(CommandError::Empty);
        }
        for (n, _) in &flat {
            if !is_probe_name(n) {
                return Err(CommandError::BadProbeName(n));
            }
        }
        // The nonce keeps a probe's own output (a log line, a file) from forging a frame.
        let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Ok(ReadCommand {
            name,
            body: Body::Framed {
                nonce,
                probes: flat,
            },
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The probes this command consists of (name, script): the read-only allow-list entries
    /// it uses (e.g. for printing a sudoers policy).
    pub fn probes(&self) -> Vec<(&'static str, &'static str)> {
        match &self.body {
            Body::Static(s) => vec![(self.name, *s)],
            Body::Framed { probes, .. } => probes.clone(),
        }
    }

    /// The frame nonce of a framed script.
    pub fn nonce(&self) -> Option<&str> {
        match &self.body {
            Body::Static(_) => None,
            Body::Framed { nonce, .. } => Some(nonce),
        }
    }

    /// The exact text sent to the host. With `sudo`, each probe runs under `sudo -n` (never a
    /// password prompt) as `sh -c '<probe>'`, so a sudoers policy can allow exactly the probes.
    pub fn render(&self, sudo: bool) -> String {
        match &self.body {
            Body::Static(s) => wrap(s, sudo),
            Body::Framed { nonce, probes } => {
                let mut out = String::from("exec </dev/null\n");
                for (name, script) in probes {
                    let begin = format!("@@rampart:{nonce}:begin:{name}");
                    let end = format!("@@rampart:{nonce}:end:{name}");
                    let _ = writeln!(
                        out,
                        "printf '%s\\n' '{begin}'; printf '%s\\n' '{begin}' >&2"
                    );
                    if sudo {
                        let _ = writeln!(out, "{}", wrap(script, true));
                    } else {
                        // A subshell, so a probe's `exit` or `cd` cannot affect the next one;
                        // the newline before `)` ends a trailing comment.
                        let _ = writeln!(out, "(\n{script}\n)");
                    }
                    let _ = writeln!(
                        out,
                        "__rampart_rc=$?; printf '\\n%s:%s\\n' '{end}' \"$__rampart_rc\"; printf '\\n%s:%s\\n' '{end}' \"$__rampart_rc\" >&2"
                    );
                }
                out
            }
        }
    }

    /// Splits a framed script's output into its probes' frames.
    pub fn parse_frames(&self, stdout: &[u8], stderr: &[u8]) -> Vec<Frame> {
        match &self.body {
            Body::Static(_) => Vec::new(),
            Body::Framed { nonce, .. } => parse_frames(nonce, stdout, stderr),
        }
    }
}

fn is_probe_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Quotes a word for POSIX `sh`: inside single quotes everything is literal, and a single
/// quote becomes `'\''`.
pub fn sh_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Wraps command text so the host kills it (and its whole process group) `secs` seconds
/// after it started. Needed because sshd cannot deliver a `signal` request to a root session
/// (it requires privilege separation, which root logins skip), and a closed channel does not
/// stop a command that neither reads nor writes: it would keep its `MaxSessions` slot.
/// A host without `timeout(1)` runs the text unwrapped rather than failing.
pub fn with_remote_timeout(text: &str, secs: u64) -> String {
    format!(
        "t=; command -v timeout >/dev/null 2>&1 && t='timeout -s KILL {secs}'; exec $t sh -c {}",
        sh_quote(text)
    )
}

fn wrap(script: &str, sudo: bool) -> String {
    if sudo {
        format!("sudo -n -- sh -c {}", sh_quote(script))
    } else {
        script.to_string()
    }
}

/// One probe's part of a framed script's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub name: String,
    /// `None` when the frame has no end marker (output truncated, command timed out).
    pub exit_status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Frame {
    pub fn complete(&self) -> bool {
        self.exit_status.is_some()
    }
}

/// Parses framed output (pure). Frames appear in script order; a frame whose end marker is
/// missing gets everything up to the end of the output and `exit_status: None`. Text outside
/// frames is ignored.
pub fn parse_frames(nonce: &str, stdout: &[u8], stderr: &[u8]) -> Vec<Frame> {
    let out = split_stream(nonce, stdout);
    let err = split_stream(nonce, stderr);
    let mut frames: Vec<Frame> = out
        .into_iter()
        .map(|(name, status, body)| Frame {
            name,
            exit_status: status,
            stdout: body,
            stderr: Vec::new(),
        })
        .collect();
    for (name, status, body) in err {
        match frames
            .iter_mut()
            .find(|f| f.name == name && f.stderr.is_empty())
        {
            Some(f) => {
                f.stderr = body;
                if f.exit_status.is_none() {
                    f.exit_status = status;
                }
            }
            None => frames.push(Frame {
                name,
                exit_status: status,
                stdout: Vec::new(),
                stderr: body,
            }),
        }
    }
    frames
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

type RawFrame = (String, Option<i32>, Vec<u8>);

fn split_stream(nonce: &str, data: &[u8]) -> Vec<RawFrame> {
    let begin_prefix = format!("@@rampart:{nonce}:begin:");
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Some(b) = find(data, begin_prefix.as_bytes(), pos) {
        // A begin marker must start a line.
        if b > 0 && data[b - 1] != b'\n' {
            pos = b + 1;
            continue;
        }
        let name_start = b + begin_prefix.len();
        let Some(nl) = find(data, b"\n", name_start) else {
            break;
        };
        let name = String::from_utf8_lossy(&data[name_start..nl]).into_owned();
        let body_start = nl + 1;
        let end_marker = format!("\n@@rampart:{nonce}:end:{name}:");
        match find(data, end_marker.as_bytes(), body_start.saturating_sub(1)) {
            Some(e) if e >= body_start.saturating_sub(1) => {
                let status_start = e + end_marker.len();
                let status_end = find(data, b"\n", status_start).unwrap_or(data.len());
                let status = std::str::from_utf8(&data[status_start..status_end])
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok());
                let body = if e >= body_start {
                    data[body_start..e].to_vec()
                } else {
                    Vec::new()
                };
                frames.push((name, status, body));
                pos = status_end;
            }
            _ => {
                // No end: the rest belongs to this frame, unless another begin follows.
                let next = find(data, begin_prefix.as_bytes(), body_start);
                let stop = next.unwrap_or(data.len());
                frames.push((name, None, data[body_start..stop].to_vec()));
                pos = stop;
            }
        }
    }
    frames
}

/// A name safe to pass as one shell word to a host tool (a fail2ban jail, an interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeName(String);

impl SafeName {
    pub fn new(s: &str) -> Result<SafeName, CommandError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b));
        if ok {
            Ok(SafeName(s.to_string()))
        } else {
            Err(CommandError::BadName(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Static(&'static str),
    Typed(String),
}

/// A command that changes a host. Built by the `fix` module from a static program name and
/// typed arguments; sent only through a `Transport<ReadWrite>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutatingCommand {
    name: &'static str,
    steps: Vec<Vec<Word>>,
    stdin: Option<Vec<u8>>,
}

impl MutatingCommand {
    /// Starts a command: `name` is what the command log records (e.g. the fix ID),
    /// `program` the first word.
    pub fn new(name: &'static str, program: &'static str) -> MutatingCommand {
        MutatingCommand {
            name,
            steps: vec![vec![Word::Static(program)]],
            stdin: None,
        }
    }

    fn push(mut self, w: Word) -> Self {
        if let Some(last) = self.steps.last_mut() {
            last.push(w);
        }
        self
    }

    /// A literal argument written in the source.
    pub fn arg(self, a: &'static str) -> Self {
        self.push(Word::Static(a))
    }
    pub fn ip(self, ip: IpAddr) -> Self {
        self.push(Word::Typed(ip.to_string()))
    }
    pub fn net(self, net: IpNet) -> Self {
        self.push(Word::Typed(net.to_string()))
    }
    pub fn port(self, port: u16) -> Self {
        self.push(Word::Typed(port.to_string()))
    }
    pub fn number(self, n: u64) -> Self {
        self.push(Word::Typed(n.to_string()))
    }
    pub fn name_arg(self, n: &SafeName) -> Self {
        self.push(Word::Typed(n.0.clone()))
    }

    /// Runs `program` next, only if everything before succeeded (`&&`).
    pub fn then(mut self, program: &'static str) -> Self {
        self.steps.push(vec![Word::Static(program)]);
        self
    }

    /// Bytes fed to the command's standard input (e.g. a config drop-in): data, never
    /// interpreted by the shell.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn stdin_bytes(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// The exact text sent: every word single-quoted, steps joined by `&&`.
    pub fn render(&self, sudo: bool) -> String {
        let text = self
            .steps
            .iter()
            .map(|step| {
                step.iter()
                    .map(|w| match w {
                        Word::Static(s) => sh_quote(s),
                        Word::Typed(s) => sh_quote(s),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" && ");
        if sudo {
            format!("sudo -n -- sh -c {}", sh_quote(&text))
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const UNAME: ReadCommand = ReadCommand::new("uname", "uname -s");
    const FAILS: ReadCommand = ReadCommand::new("fails", "echo out; echo err >&2; exit 3");
    const NO_NL: ReadCommand = ReadCommand::new("no-nl", "printf 'a\\nb'");
    const EMPTY: ReadCommand = ReadCommand::new("empty", "true # trailing comment");
    const QUOTE: ReadCommand = ReadCommand::new("quote", "echo \"it's\" '$HOME'");

    fn run_sh(script: &str) -> (Vec<u8>, Vec<u8>) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (out.stdout, out.stderr)
    }

    #[test]
    fn framed_script_runs_in_sh_and_parses_back() {
        let cmd = ReadCommand::framed("host", &[&UNAME, &FAILS, &NO_NL, &EMPTY, &QUOTE]).unwrap();
        let (out, err) = run_sh(&cmd.render(false));
        let frames = cmd.parse_frames(&out, &err);
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["uname", "fails", "no-nl", "empty", "quote"]);
        assert_eq!(frames[0].exit_status, Some(0));
        assert_eq!(frames[0].stdout, b"Linux\n");
        assert_eq!(frames[1].exit_status, Some(3));
        assert_eq!(frames[1].stdout, b"out\n");
        assert_eq!(frames[1].stderr, b"err\n");
        assert_eq!(frames[2].stdout, b"a\nb");
        assert_eq!(frames[3].stdout, b"");
        assert_eq!(frames[3].exit_status, Some(0));
        assert_eq!(frames[4].stdout, b"it's $HOME\n");
    }

    #[test]
    fn sudo_wrapping_quotes_the_probe() {
        assert_eq!(
            QUOTE.render(true),
            "sudo -n -- sh -c 'echo \"it'\\''s\" '\\''$HOME'\\'''"
        );
        // The quoted form is the same command for sh.
        let inner = QUOTE.render(true).replacen("sudo -n -- ", "", 1);
        assert_eq!(run_sh(&inner).0, b"it's $HOME\n");
    }

    #[test]
    fn truncated_output_yields_incomplete_frame() {
        let cmd = ReadCommand::framed("t", &[&UNAME, &FAILS]).unwrap();
        let (out, err) = run_sh(&cmd.render(false));
        let cut = &out[..out.len() - 10];
        let frames = cmd.parse_frames(cut, &err);
        assert!(frames[0].complete());
        assert_eq!(frames[1].name, "fails");
        assert!(frames[1].stdout.starts_with(b"out\n"));
        // stderr was complete, so the status comes from there.
        assert_eq!(frames[1].exit_status, Some(3));
        let frames = cmd.parse_frames(cut, b"");
        assert_eq!(frames[1].exit_status, None);
    }

    #[test]
    fn forged_markers_with_another_nonce_are_body() {
        let a = ReadCommand::framed("a", &[&UNAME]).unwrap();
        let b = ReadCommand::framed("b", &[&UNAME]).unwrap();
        assert_ne!(a.nonce(), b.nonce());
        let (out_b, _) = run_sh(&b.render(false));
        // A probe of `a` that prints b's framing does not create frames for `a`.
        let mut out = Vec::new();
        out.extend_from_slice(format!("@@rampart:{}:begin:uname\n", a.nonce().unwrap()).as_bytes());
        out.extend_from_slice(&out_b);
        out.extend_from_slice(
            format!("\n@@rampart:{}:end:uname:0\n", a.nonce().unwrap()).as_bytes(),
        );
        let frames = a.parse_frames(&out, b"");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].stdout, out_b);
    }

    #[test]
    fn remote_timeout_wrapper_runs_and_kills() {
        let out = Command::new("sh")
            .arg("-c")
            .arg(with_remote_timeout("echo \"it's\"; exit 4", 5))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"it's\n");
        assert_eq!(out.status.code(), Some(4));
        let started = std::time::Instant::now();
        let out = Command::new("sh")
            .arg("-c")
            .arg(with_remote_timeout("sleep 30", 1))
            .output()
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // timeout(1) signals its whole process group, itself included.
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.signal() == Some(9) || out.status.code() == Some(137),
            "{:?}",
            out.status
        );
        // Without timeout(1) on PATH (only sh is) the command still runs.
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/bin/sh", bin.path().join("sh")).unwrap();
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(with_remote_timeout("echo ran", 5))
            .env("PATH", bin.path())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"ran\n");
    }

    #[test]
    fn bad_probe_names_refused() {
        const BAD: ReadCommand = ReadCommand::new("Bad name", "true");
        assert_eq!(
            ReadCommand::framed("x", &[&BAD]),
            Err(CommandError::BadProbeName("Bad name"))
        );
        assert_eq!(ReadCommand::framed("x", &[]), Err(CommandError::Empty));
    }

    #[test]
    fn parser_survives_garbage() {
        for data in [
            &b""[..],
            b"@@rampart:n:begin:",
            b"@@rampart:n:begin:x\n",
            b"@@rampart:n:begin:x\n\n@@rampart:n:end:x:",
            b"@@rampart:n:begin:x\n\n@@rampart:n:end:x:zz\n",
            b"\xff\xfe@@rampart:n:begin:\xff\n",
        ] {
            let _ = parse_frames("n", data, data);
        }
        let f = parse_frames("n", b"@@rampart:n:begin:x\n\n@@rampart:n:end:x:7\n", b"");
        assert_eq!(f[0].exit_status, Some(7));
        assert_eq!(f[0].stdout, b"");
    }

    #[test]
    fn mutating_words_are_quoted() {
        let jail = SafeName::new("sshd").unwrap();
        let cmd = MutatingCommand::new("f2b-ban-ip", "fail2ban-client")
            .arg("set")
            .name_arg(&jail)
            .arg("banip")
            .ip("10.0.0.1".parse().unwrap())
            .then("true");
        assert_eq!(
            cmd.render(false),
            "'fail2ban-client' 'set' 'sshd' 'banip' '10.0.0.1' && 'true'"
        );
        assert!(SafeName::new("a;b").is_err());
        assert!(SafeName::new("-oX").is_err());
        assert!(SafeName::new("$(x)").is_err());
    }
}
