//! Commands a host may be sent: read-only probes compiled into the binary, framed scripts
//! made of them, and mutating commands built from typed values.
//!
//! Owns: [`ReadCommand`] (only ever made of `&'static str` pieces, so no inventory or remote
//! text can reach a shell through it), framing several probes into one script with a
//! delimiter per probe carrying its exit status (the probes running concurrently on the host,
//! their output in order), the pure frame parser, and
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
    alone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Static(&'static str),
    Framed { nonce: String, probes: Vec<Part> },
}

/// One probe of a framed script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    name: &'static str,
    script: &'static str,
    alone: bool,
}

/// How many probes of a framed script run at once on the host (besides the session's shell).
pub const LANES: usize = 4;

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
            alone: false,
        }
    }

    /// A probe that must not run beside other probes of its framed script: it reads the
    /// process or socket table, where the other probes' own processes and sockets would
    /// show. In a framed script it runs before the concurrent part starts.
    pub const fn alone(name: &'static str, script: &'static str) -> ReadCommand {
        ReadCommand {
            name,
            body: Body::Static(script),
            alone: true,
        }
    }

    /// Several probes as one script (one exec channel, one shell start), each framed by
    /// `@@rampart:<nonce>:begin:<name>` and `@@rampart:<nonce>:end:<name>:<exit status>` on
    /// both stdout and stderr. Nested framed scripts are flattened. See [`ReadCommand::render`]
    /// for how the probes run (concurrently where they may, output in this order).
    pub fn framed(
        name: &'static str,
        probes: &[&ReadCommand],
    ) -> Result<ReadCommand, CommandError> {
        let mut flat = Vec::new();
        for p in probes {
            match &p.body {
                Body::Static(s) => flat.push(Part {
                    name: p.name,
                    script: s,
                    alone: p.alone,
                }),
                Body::Framed { probes, .. } => flat.extend(probes.iter().copied()),
            }
        }
        if flat.is_empty() {
            return Err(CommandError::Empty);
        }
        for p in &flat {
            if !is_probe_name(p.name) {
                return Err(CommandError::BadProbeName(p.name));
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
            alone: false,
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
            Body::Framed { probes, .. } => probes.iter().map(|p| (p.name, p.script)).collect(),
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
    ///
    /// A framed script of two or more probes that may run beside others runs them
    /// concurrently, in at most [`LANES`] background lanes (each taking the next probe not
    /// yet taken, in order), after the
    /// [`ReadCommand::alone`] probes have run one by one. Each probe's frame goes to its own
    /// files in a private directory (`mktemp -d`, in `/dev/shm` where it can, removed on
    /// exit), and the files are written out in the probes' order at the end: the output is
    /// byte for byte what running them one after the other gives. Where no directory can be
    /// made, the probes run one after the other, as a script of one such probe always does.
    ///
    /// The cost of writing out at the end: a probe that hangs (`systemctl` facing a hung
    /// systemd; the probes that ask Docker, CrowdSec or firewalld give up after 10 s on their
    /// own) holds back every frame until the remote timeout kills the script, and the
    /// host's whole collection fails, where the one-by-one script kept the frames of the
    /// probes before the hung one. Either way nothing is shown as known that was not read.
    pub fn render(&self, sudo: bool) -> String {
        match &self.body {
            Body::Static(s) => wrap(s, sudo),
            Body::Framed { nonce, probes } => render_framed(nonce, probes, sudo),
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

/// One probe and its frame markers, as it runs in a framed script.
fn write_probe(out: &mut String, nonce: &str, p: &Part, sudo: bool) {
    let (name, script) = (p.name, p.script);
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

/// The probes one after the other, straight to the channel.
fn render_one_by_one(nonce: &str, probes: &[Part], sudo: bool) -> String {
    let mut out = String::from("exec </dev/null\n");
    for p in probes {
        write_probe(&mut out, nonce, p, sudo);
    }
    out
}

fn render_framed(nonce: &str, probes: &[Part], sudo: bool) -> String {
    if probes.iter().filter(|p| !p.alone).count() < 2 {
        return render_one_by_one(nonce, probes, sudo);
    }
    let mut out = String::from("exec </dev/null\n");
    // Each probe, frame markers included, as a function: called one after the other, or
    // with its output into its own files.
    for (i, p) in probes.iter().enumerate() {
        let _ = writeln!(out, "__rampart_p{i}() {{");
        write_probe(&mut out, nonce, p, sudo);
        out.push_str("}\n");
    }
    // A script killed by the remote timeout (SIGKILL: no trap runs) leaves its directory:
    // the next script of the same user removes those older than ten minutes (no live script
    // is that old). `find` starts only when the shell's own glob sees such a directory.
    out.push_str(
        "for __rampart_x in /dev/shm/rampart.??????; do [ -d \"$__rampart_x\" ] && \
         find /dev/shm -maxdepth 1 -type d -name 'rampart.??????' -user \"$(id -u)\" -mmin +10 \
         -exec rm -rf -- {} + 2>/dev/null; break; done\n",
    );
    out.push_str(
        "__rampart_d=$(mktemp -d /dev/shm/rampart.XXXXXX 2>/dev/null || mktemp -d 2>/dev/null) \
         || __rampart_d=\n",
    );
    out.push_str("if [ -z \"$__rampart_d\" ] || [ ! -d \"$__rampart_d\" ]; then\n");
    for i in 0..probes.len() {
        let _ = writeln!(out, "__rampart_p{i}");
    }
    out.push_str("exit 0\nfi\n");
    out.push_str(
        "trap 'rm -rf -- \"$__rampart_d\"' EXIT; trap 'exit 129' HUP; trap 'exit 143' TERM\n",
    );
    let file =
        |i: usize| format!("__rampart_p{i} >\"$__rampart_d/{i}.o\" 2>\"$__rampart_d/{i}.e\"");
    for (i, _) in probes.iter().enumerate().filter(|(_, p)| p.alone) {
        let _ = writeln!(out, "{}", file(i));
    }
    // The lanes share one queue, the probes in order: each takes the next probe no lane has
    // claimed yet (a claim is a file created with O_EXCL, `set -C`: built into the shell, no
    // process), so a slow probe holds up one lane, not the probes dealt after it. `true`, not
    // `:`: a failed redirection of a special built-in such as `:` ends the shell, here the lane.
    let together: Vec<String> = (0..probes.len())
        .filter(|&i| !probes[i].alone)
        .map(|i| i.to_string())
        .collect();
    let lane = format!(
        "{{ for __rampart_i in {}; do set -C; {{ true >\"$__rampart_d/$__rampart_i.c\"; }} 2>/dev/null; \
         __rampart_c=$?; set +C; [ \"$__rampart_c\" = 0 ] || continue; \
         \"__rampart_p$__rampart_i\" >\"$__rampart_d/$__rampart_i.o\" 2>\"$__rampart_d/$__rampart_i.e\"; done; }} &",
        together.join(" ")
    );
    for _ in 0..LANES.min(together.len()) {
        let _ = writeln!(out, "{lane}");
    }
    out.push_str("wait\n");
    let list = |ext: &str| {
        (0..probes.len())
            .map(|i| format!("\"$__rampart_d/{i}.{ext}\""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(out, "cat {}\ncat {} >&2", list("o"), list("e"));
    out
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

    const SLEEP_A: ReadCommand = ReadCommand::new("sleep-a", "sleep 0.6; echo a; echo a2 >&2");
    const SLEEP_B: ReadCommand = ReadCommand::new("sleep-b", "sleep 0.6; printf b; exit 5");
    const SLEEP_C: ReadCommand = ReadCommand::new("sleep-c", "sleep 0.6; echo c >&2");
    const SLEEP_D: ReadCommand = ReadCommand::new("sleep-d", "sleep 0.6; echo d");
    /// Says whether a probe that runs beside others (`mark`) had started before it.
    const ALONE: ReadCommand = ReadCommand::alone(
        "alone",
        "[ -e \"$RAMPART_TEST_DIR/mark\" ] && echo after || echo before",
    );
    const MARK: ReadCommand = ReadCommand::new("mark", ": > \"$RAMPART_TEST_DIR/mark\"");
    /// Prints the script's own temporary directory (to check it is removed).
    const OWN_DIR: ReadCommand = ReadCommand::new("own-dir", "echo \"$__rampart_d\"");

    fn run_sh_in(script: &str, dir: &std::path::Path, path: Option<&str>) -> (Vec<u8>, Vec<u8>) {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).env("RAMPART_TEST_DIR", dir);
        if let Some(p) = path {
            c.env("PATH", p);
        }
        let out = c.output().unwrap();
        (out.stdout, out.stderr)
    }

    #[test]
    fn concurrent_probes_give_the_bytes_of_one_after_the_other() {
        let all = [
            &UNAME, &MARK, &SLEEP_A, &FAILS, &ALONE, &SLEEP_B, &NO_NL, &SLEEP_C, &EMPTY, &SLEEP_D,
            &QUOTE,
        ];
        let cmd = ReadCommand::framed("host", &all).unwrap();
        let Body::Framed { nonce, probes } = &cmd.body else {
            panic!("framed")
        };
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let (out, err) = run_sh_in(&cmd.render(false), dir.path(), None);
        // Four probes of 0.6 s each, in at most four lanes.
        assert!(started.elapsed() < std::time::Duration::from_millis(2000));
        std::fs::remove_file(dir.path().join("mark")).unwrap();
        let one_by_one = render_one_by_one(nonce, probes, false);
        let (seq_out, seq_err) = run_sh_in(&one_by_one, dir.path(), None);
        // Byte for byte the same, but for what `alone` saw: one after the other, `mark` ran
        // before it.
        let out_as_seq = String::from_utf8_lossy(&out).replacen("\nbefore\n", "\nafter\n", 1);
        assert_eq!(out_as_seq, String::from_utf8_lossy(&seq_out));
        assert_eq!(
            String::from_utf8_lossy(&err),
            String::from_utf8_lossy(&seq_err)
        );
        let frames = cmd.parse_frames(&out, &err);
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "uname", "mark", "sleep-a", "fails", "alone", "sleep-b", "no-nl", "sleep-c",
                "empty", "sleep-d", "quote"
            ]
        );
        // The probe that runs alone ran before the concurrent ones.
        assert_eq!(frames[4].stdout, b"before\n");
        assert_eq!(frames[5].exit_status, Some(5));
        assert_eq!(frames[5].stdout, b"b");
        assert_eq!(frames[7].stderr, b"c\n");
    }

    /// Sleeps, then leaves a mark; the quick probes log whether that mark was there yet.
    static SLOW: ReadCommand = ReadCommand::new(
        "slow",
        "sleep 3; : > \"$RAMPART_TEST_DIR/slow-done\"; echo slow >> \"$RAMPART_TEST_DIR/runs\"",
    );
    static QUICK: [ReadCommand; 6] = {
        const fn q(name: &'static str) -> ReadCommand {
            ReadCommand::new(
                name,
                "if [ -e \"$RAMPART_TEST_DIR/slow-done\" ]; then w=after; else w=before; fi; \
                 echo \"quick $w\" >> \"$RAMPART_TEST_DIR/runs\"; echo \"$w\"",
            )
        }
        [q("q1"), q("q2"), q("q3"), q("q4"), q("q5"), q("q6")]
    };

    #[test]
    fn lanes_share_one_queue_so_a_slow_probe_holds_up_no_other_and_each_runs_once() {
        let all: Vec<&ReadCommand> = std::iter::once(&SLOW).chain(&QUICK).collect();
        let cmd = ReadCommand::framed("host", &all).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = run_sh_in(&cmd.render(false), dir.path(), None);
        let frames = cmd.parse_frames(&out, &err);
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["slow", "q1", "q2", "q3", "q4", "q5", "q6"]);
        // Each probe ran exactly once.
        let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
        let mut lines: Vec<&str> = runs.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines.len(), 7, "{runs}");
        assert_eq!(lines.iter().filter(|l| **l == "slow").count(), 1, "{runs}");
        // Dealt in turn, q4 would have waited behind `slow` in its lane; from one queue the
        // other lanes take every quick probe while `slow` sleeps.
        for f in &frames[1..] {
            assert_eq!(f.stdout, b"before\n", "{} ran after slow: {runs}", f.name);
        }
    }

    #[test]
    fn a_killed_scripts_old_directory_is_removed_by_the_next_and_a_young_one_kept() {
        let shm = std::path::Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let tag = format!("{:06}", fastrand::u32(..1_000_000));
        let (old, young) = (
            shm.join(format!("rampart.o{}", &tag[1..])),
            shm.join(format!("rampart.y{}", &tag[1..])),
        );
        for d in [&old, &young] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("18.o"), "left behind\n").unwrap();
        }
        let aged = std::process::Command::new("touch")
            .args(["-d", "20 minutes ago"])
            .arg(&old)
            .status()
            .unwrap();
        assert!(aged.success());
        let cmd = ReadCommand::framed("host", &[&UNAME, &FAILS]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = run_sh_in(&cmd.render(false), dir.path(), None);
        let gone = !old.exists();
        let kept = young.exists();
        let _ = std::fs::remove_dir_all(&old);
        let _ = std::fs::remove_dir_all(&young);
        assert!(gone, "{} left behind", old.display());
        assert!(kept, "{} (a live script's, maybe) removed", young.display());
        assert_eq!(cmd.parse_frames(&out, &err).len(), 2);
    }

    #[test]
    fn concurrent_script_removes_its_directory_and_runs_without_one() {
        let cmd = ReadCommand::framed("host", &[&UNAME, &OWN_DIR, &FAILS]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = run_sh_in(&cmd.render(false), dir.path(), None);
        let frames = cmd.parse_frames(&out, &err);
        let own = String::from_utf8_lossy(&frames[1].stdout)
            .trim()
            .to_string();
        assert!(own.contains("rampart."), "{own:?}");
        assert!(!std::path::Path::new(&own).exists(), "{own} left behind");
        // No mktemp on PATH: the probes run one after the other, with the same frames.
        let bin = tempfile::tempdir().unwrap();
        for tool in ["sh", "uname"] {
            let real = ["/bin", "/usr/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap();
            std::os::unix::fs::symlink(real, bin.path().join(tool)).unwrap();
        }
        let (out2, err2) = run_sh_in(
            &cmd.render(false),
            dir.path(),
            Some(bin.path().to_str().unwrap()),
        );
        let frames2 = cmd.parse_frames(&out2, &err2);
        assert_eq!(frames2.len(), 3);
        assert_eq!(frames2[0].stdout, frames[0].stdout);
        assert_eq!(frames2[1].stdout, b"\n");
        assert_eq!(frames2[2].exit_status, Some(3));
    }

    #[test]
    fn a_script_of_one_concurrent_probe_runs_one_after_the_other() {
        let cmd = ReadCommand::framed("host", &[&ALONE, &UNAME]).unwrap();
        assert!(!cmd.render(false).contains("mktemp"));
        let cmd = ReadCommand::framed("host", &[&UNAME, &QUOTE]).unwrap();
        assert!(cmd.render(true).contains("mktemp"));
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
