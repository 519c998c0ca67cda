//! known_hosts: parsing and the host-key decision, as OpenSSH makes it.
//!
//! Owns: the known_hosts line format (hashed `|1|salt|hash` names, `[host]:port`,
//! comma-separated patterns with `*`/`?` wildcards and `!` negation, `@revoked`,
//! `@cert-authority`), the decision for a presented host key or host certificate, and the
//! text of a learned entry. Parsing and deciding are pure; the only I/O here is
//! [`KnownHostsFile::load`] and [`append_learned`], kept apart so the matcher can be tested
//! (and fuzzed) on text alone.
//!
//! Must not: trust anything the network says about which key a host should have (the bastion
//! never vouches for a target), or learn a key that differs from a known one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, HashAlg, PublicKey};
use sha1::Sha1;

/// What a line says about the key it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Marker {
    /// A plain host key.
    None,
    /// `@revoked`: this key must never be accepted for the matching hosts.
    Revoked,
    /// `@cert-authority`: host certificates signed by this key are accepted for the hosts.
    CertAuthority,
}

/// The host-name field of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostField {
    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`: one name, stored hashed.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns, already lower-cased (OpenSSH compares case-insensitively).
    Patterns(Vec<String>),
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number in its file.
    pub line: usize,
    pub marker: Marker,
    pub hosts: HostField,
    pub key: PublicKey,
}

/// A line OpenSSH would ignore, kept so it can be reported instead of silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: usize,
    pub reason: String,
}

/// The parsed content of one known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    pub entries: Vec<Entry>,
    pub skipped: Vec<SkippedLine>,
}

/// Parses known_hosts text. Never fails as a whole: like OpenSSH, a malformed line is
/// skipped (and listed in `skipped`) so that one bad line cannot make every host unknown.
pub fn parse(text: &str) -> KnownHosts {
    let mut out = KnownHosts::default();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        match parse_line(raw) {
            Ok(Some((marker, hosts, key))) => out.entries.push(Entry {
                line,
                marker,
                hosts,
                key,
            }),
            Ok(None) => {}
            Err(reason) => out.skipped.push(SkippedLine { line, reason }),
        }
    }
    out
}

type ParsedLine = (Marker, HostField, PublicKey);

fn parse_line(raw: &str) -> Result<Option<ParsedLine>, String> {
    let text = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
    let mut first = fields.next().ok_or("empty line")?;
    let marker = if let Some(name) = first.strip_prefix('@') {
        let marker = match name {
            "revoked" => Marker::Revoked,
            "cert-authority" => Marker::CertAuthority,
            other => return Err(format!("unknown marker @{other}")),
        };
        first = fields.next().ok_or("marker without host patterns")?;
        marker
    } else {
        Marker::None
    };
    let hosts = parse_host_field(first)?;
    let key_type = fields.next().ok_or("missing key type")?;
    let key_b64 = fields.next().ok_or("missing key data")?;
    let key = PublicKey::from_openssh(&format!("{key_type} {key_b64}"))
        .map_err(|e| format!("unreadable {key_type} key: {e}"))?;
    Ok(Some((marker, hosts, key)))
}

fn parse_host_field(field: &str) -> Result<HostField, String> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("hashed name without hash")?;
        let salt = B64.decode(salt).map_err(|_| "hashed name: bad salt")?;
        let hash = B64.decode(hash).map_err(|_| "hashed name: bad hash")?;
        // OpenSSH only writes 20-byte salts and SHA-1 sized hashes; anything else never matches.
        if salt.len() != 20 || hash.len() != 20 {
            return Err("hashed name: wrong length".into());
        }
        return Ok(HostField::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return Err("unknown hashed name format".into());
    }
    Ok(HostField::Patterns(
        field
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
    ))
}

/// The name under which a host is looked up: `host` on port 22, `[host]:port` otherwise
/// (exactly what OpenSSH writes and looks up).
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether a host field matches one lookup name (already formatted with [`lookup_name`]).
pub fn host_field_matches(field: &HostField, name: &str) -> bool {
    match field {
        HostField::Hashed { salt, hash } => {
            let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                return false;
            };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        HostField::Patterns(patterns) => match_pattern_list(name, patterns),
    }
}

/// OpenSSH's `match_pattern_list` on a host: a negated pattern that matches rejects the
/// line outright, otherwise any positive pattern that matches accepts it.
fn match_pattern_list(name: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(negated.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if wildcard_match(pattern.as_bytes(), name.as_bytes()) {
            positive = true;
        }
    }
    positive
}

/// `*` matches any run of bytes (also empty), `?` exactly one byte; everything else itself.
pub fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point: linear in practice and no recursion depth to abuse.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// A known_hosts file: where it came from and what it says.
#[derive(Debug, Clone)]
pub struct KnownHostsFile {
    pub path: PathBuf,
    pub content: KnownHosts,
}

impl KnownHostsFile {
    /// Reads and parses a file; a missing file is an empty one (as for OpenSSH).
    pub fn load(path: &Path) -> std::io::Result<KnownHostsFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        Ok(KnownHostsFile {
            path: path.to_path_buf(),
            content: parse(&text),
        })
    }

    /// Builds a file from text already in memory (tests, fuzzing).
    pub fn from_text(path: impl Into<PathBuf>, text: &str) -> KnownHostsFile {
        KnownHostsFile {
            path: path.into(),
            content: parse(text),
        }
    }
}

/// Where a decision came from: a file and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Who is being checked: the names a host is known by and its port.
#[derive(Debug, Clone)]
pub struct HostQuery {
    /// Bare names (address first, then the inventory name), without port decoration.
    pub names: Vec<String>,
    pub port: u16,
}

impl HostQuery {
    pub fn new(names: impl IntoIterator<Item = String>, port: u16) -> HostQuery {
        let mut out: Vec<String> = Vec::new();
        for n in names {
            let n = n.to_ascii_lowercase();
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
        HostQuery { names: out, port }
    }

    fn lookup_names(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| lookup_name(n, self.port))
            .collect()
    }
}

/// The key or certificate a server presented during key exchange.
#[derive(Debug, Clone)]
pub enum Presented {
    Key(PublicKey),
    Certificate(Box<Certificate>),
}

impl Presented {
    /// The SHA256 fingerprint of the host's own key (for a certificate: its certified key),
    /// the string a person compares with `ssh-keygen -lf`.
    pub fn fingerprint(&self) -> String {
        self.plain_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The bare public key (a certificate's certified key).
    pub fn plain_key(&self) -> PublicKey {
        match self {
            Presented::Key(k) => k.clone(),
            Presented::Certificate(c) => PublicKey::new(c.public_key().clone(), ""),
        }
    }
}

/// Why a host certificate signed by a trusted CA was still refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    NotAHostCertificate,
    BadSignature,
    NotYetValid,
    Expired,
    WrongPrincipal { principals: Vec<String> },
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertProblem::NotAHostCertificate => f.write_str("it is a user certificate"),
            CertProblem::BadSignature => f.write_str("its signature does not verify"),
            CertProblem::NotYetValid => f.write_str("it is not valid yet"),
            CertProblem::Expired => f.write_str("it has expired"),
            CertProblem::WrongPrincipal { principals } => {
                write!(f, "it names other hosts ({})", principals.join(","))
            }
        }
    }
}

/// The host-key decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is listed for this host (or its certificate is signed by a listed CA).
    Trusted { at: Location, via_ca: bool },
    /// The key (or the certificate's CA) is marked `@revoked` for this host.
    Revoked { at: Location, fingerprint: String },
    /// A different key of the same type is listed for this host: possible interception.
    Changed { at: Location, fingerprint: String },
    /// A certificate signed by a trusted CA that is not valid for this host now.
    CertificateRefused {
        at: Location,
        problem: CertProblem,
        fingerprint: String,
    },
    /// No key of this type is known for this host.
    Unknown {
        fingerprint: String,
        /// Lines that list keys of other types for this host (OpenSSH mentions them too).
        other_keys: Vec<Location>,
    },
}

impl Verdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, Verdict::Trusted { .. })
    }
}

struct Hit<'a> {
    file: &'a Path,
    entry: &'a Entry,
}

impl Hit<'_> {
    fn location(&self) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: self.entry.line,
        }
    }
}

/// Lines of all files whose host field matches any of the query's names, in file order.
fn matching<'a>(files: &'a [KnownHostsFile], query: &HostQuery) -> Vec<Hit<'a>> {
    let names = query.lookup_names();
    let mut hits = Vec::new();
    for file in files {
        for entry in &file.content.entries {
            if names.iter().any(|n| host_field_matches(&entry.hosts, n)) {
                hits.push(Hit {
                    file: &file.path,
                    entry,
                });
            }
        }
    }
    hits
}

/// The lines (file index, line) that match a query, for tests comparing with `ssh-keygen -F`.
pub fn matching_lines(
    files: &[KnownHostsFile],
    query: &HostQuery,
) -> Vec<(PathBuf, usize, Marker)> {
    matching(files, query)
        .into_iter()
        .map(|h| (h.file.to_path_buf(), h.entry.line, h.entry.marker))
        .collect()
}

/// Decides whether a presented host key or certificate is trusted for a host, following
/// OpenSSH's order: revocation first, then certificate authorities, then plain keys.
/// `now` is seconds since the Unix epoch (passed in so the decision stays pure).
pub fn check(
    files: &[KnownHostsFile],
    query: &HostQuery,
    presented: &Presented,
    now: u64,
) -> Verdict {
    let hits = matching(files, query);
    let plain = presented.plain_key();
    let fingerprint = presented.fingerprint();

    // A revoked key is refused whatever else is listed, and so is a certificate whose CA
    // has been revoked.
    let ca_key = match presented {
        Presented::Certificate(c) => Some(c.signature_key().clone()),
        Presented::Key(_) => None,
    };
    for hit in hits.iter().filter(|h| h.entry.marker == Marker::Revoked) {
        let k = hit.entry.key.key_data();
        if k == plain.key_data() || ca_key.as_ref() == Some(k) {
            return Verdict::Revoked {
                at: hit.location(),
                fingerprint,
            };
        }
    }

    if let Presented::Certificate(cert) = presented {
        let ca = hits.iter().find(|h| {
            h.entry.marker == Marker::CertAuthority
                && h.entry.key.key_data() == cert.signature_key()
        });
        if let Some(ca) = ca {
            return match certificate_problem(cert, query, now) {
                None => Verdict::Trusted {
                    at: ca.location(),
                    via_ca: true,
                },
                Some(problem) => Verdict::CertificateRefused {
                    at: ca.location(),
                    problem,
                    fingerprint,
                },
            };
        }
        // No CA vouches for it: like OpenSSH, fall back to the certified key itself.
    }

    let plain_hits: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.entry.marker == Marker::None)
        .collect();
    if let Some(hit) = plain_hits
        .iter()
        .find(|h| h.entry.key.key_data() == plain.key_data())
    {
        return Verdict::Trusted {
            at: hit.location(),
            via_ca: false,
        };
    }
    let algorithm = plain.key_data().algorithm();
    if let Some(hit) = plain_hits
        .iter()
        .find(|h| h.entry.key.key_data().algorithm() == algorithm)
    {
        return Verdict::Changed {
            at: hit.location(),
            fingerprint,
        };
    }
    Verdict::Unknown {
        fingerprint,
        other_keys: plain_hits.iter().map(|h| h.location()).collect(),
    }
}

fn certificate_problem(cert: &Certificate, query: &HostQuery, now: u64) -> Option<CertProblem> {
    if cert.cert_type() != CertType::Host {
        return Some(CertProblem::NotAHostCertificate);
    }
    // The CA key was matched by the caller; this proves the CA actually signed it.
    if cert.verify_signature().is_err() {
        return Some(CertProblem::BadSignature);
    }
    if now < cert.valid_after() {
        return Some(CertProblem::NotYetValid);
    }
    if now >= cert.valid_before() {
        return Some(CertProblem::Expired);
    }
    let principals = cert.valid_principals();
    // OpenSSH accepts a host certificate without principals, and matches host principals
    // as patterns (so a CA can certify `*.example.com`).
    if !principals.is_empty()
        && !query.names.iter().any(|n| {
            principals
                .iter()
                .any(|p| wildcard_match(p.to_ascii_lowercase().as_bytes(), n.as_bytes()))
        })
    {
        return Some(CertProblem::WrongPrincipal {
            principals: principals.to_vec(),
        });
    }
    None
}

/// Key algorithms listed (as plain keys) for a host, in file order, so the client can ask
/// the server for a key type it already knows instead of one that would look "unknown".
pub fn known_algorithms(
    files: &[KnownHostsFile],
    query: &HostQuery,
) -> Vec<russh::keys::Algorithm> {
    let mut out = Vec::new();
    for hit in matching(files, query) {
        if hit.entry.marker == Marker::None {
            let alg = hit.entry.key.algorithm();
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
    }
    out
}

/// Whether some `@cert-authority` line applies to the host (then host certificates are
/// worth asking for).
pub fn has_cert_authority(files: &[KnownHostsFile], query: &HostQuery) -> bool {
    matching(files, query)
        .iter()
        .any(|h| h.entry.marker == Marker::CertAuthority)
}

/// The line `accept-new` appends for a newly learned key: every name of the host, with
/// `[name]:port` when the port is not 22, in clear (like OpenSSH with `HashKnownHosts no`).
pub fn learned_line(query: &HostQuery, key: &PublicKey) -> Result<String, String> {
    let names: Vec<String> = query.lookup_names();
    if names.is_empty() {
        return Err("no name to record the key under".into());
    }
    let key_text = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(|e| e.to_string())?;
    Ok(format!("{} {}", names.join(","), key_text.trim_end()))
}

/// Appends a learned line to a known_hosts file, creating it (and its directory) if needed,
/// and starting on a fresh line if the file does not end with one.
pub fn append_learned(path: &Path, line: &str) -> std::io::Result<usize> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let existing = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with(b"\n") {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    let lines_before = existing.iter().filter(|&&b| b == b'\n').count();
    Ok(lines_before + 1 + usize::from(!existing.is_empty() && !existing.ends_with(b"\n")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const ED1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDGI8kov72hsN4KaTHXUk9vnqu6Zq1zu3RMjM2a/Uish";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBdyitfHF1tPGH9avGTLFcCEquSz70R/oymnTeiuUZfv";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn q(name: &str, port: u16) -> HostQuery {
        HostQuery::new([name.to_string()], port)
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"*.example.com", b"a.example.com"));
        assert!(!wildcard_match(b"*.example.com", b"example.com"));
        assert!(wildcard_match(b"10.77.?.1*", b"10.77.9.10"));
        assert!(!wildcard_match(b"10.77.?.1", b"10.77.10.1"));
        assert!(wildcard_match(b"a*b*c", b"aXXbYYc"));
        assert!(!wildcard_match(b"a*b*c", b"aXXbYY"));
        assert!(wildcard_match(b"[*]:2222", b"[h]:2222"));
    }

    #[test]
    fn negation_overrides_positive() {
        let pats = vec!["*.example.com".to_string(), "!bad.example.com".to_string()];
        assert!(match_pattern_list("good.example.com", &pats));
        assert!(!match_pattern_list("bad.example.com", &pats));
        // Negation alone never matches anything.
        assert!(!match_pattern_list("x", &["!y".to_string()]));
    }

    #[test]
    fn hashed_entry_matches_only_its_name() {
        // Produced by `ssh-keygen -H` for "a.example.com".
        let text = format!("|1|3eCHrkfrHPs3qhL+QXOZHCGucEU=|/dW744ouJw9JEvuXdIUQ8CjazNM= {ED1}\n");
        let kh = parse(&text);
        assert_eq!(kh.entries.len(), 1);
        assert!(host_field_matches(&kh.entries[0].hosts, "a.example.com"));
        assert!(!host_field_matches(&kh.entries[0].hosts, "b.example.com"));
    }

    #[test]
    fn port_decoration() {
        assert_eq!(lookup_name("Host", 22), "host");
        assert_eq!(lookup_name("10.0.0.1", 2222), "[10.0.0.1]:2222");
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let text =
            format!("# comment\n\n@bogus h {ED1}\nh ssh-ed25519 !!!\nh\n|2|x|y {ED1}\nok {ED1}\n");
        let kh = parse(&text);
        assert_eq!(kh.entries.len(), 1);
        assert_eq!(kh.entries[0].line, 7);
        assert_eq!(
            kh.skipped.iter().map(|s| s.line).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
    }

    #[test]
    fn decisions() {
        let text = format!("h1 {ED1}\nh2 {ED2}\n@revoked h3 {ED1}\nh3 {ED1}\n[h4]:2222 {ED1}\n");
        let files = vec![KnownHostsFile::from_text("kh", &text)];
        let k1 = Presented::Key(key(ED1));
        assert!(check(&files, &q("h1", 22), &k1, 0).is_trusted());
        match check(&files, &q("h2", 22), &k1, 0) {
            Verdict::Changed { at, .. } => assert_eq!(at.line, 2),
            v => panic!("{v:?}"),
        }
        match check(&files, &q("h3", 22), &k1, 0) {
            Verdict::Revoked { at, .. } => assert_eq!(at.line, 3),
            v => panic!("{v:?}"),
        }
        assert!(check(&files, &q("h4", 2222), &k1, 0).is_trusted());
        assert!(matches!(
            check(&files, &q("h4", 22), &k1, 0),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&files, &q("nobody", 22), &k1, 0),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn learned_line_round_trips() {
        let query = HostQuery::new(["10.0.0.5".to_string(), "DB1".to_string()], 2200);
        let line = learned_line(&query, &key(ED1)).unwrap();
        assert!(line.starts_with("[10.0.0.5]:2200,[db1]:2200 ssh-ed25519 "));
        let files = vec![KnownHostsFile::from_text("kh", &line)];
        assert!(check(&files, &q("db1", 2200), &Presented::Key(key(ED1)), 0).is_trusted());
    }

    #[test]
    fn append_adds_newline_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        assert_eq!(append_learned(&path, "a").unwrap(), 1);
        std::fs::write(&path, "a\nb").unwrap();
        assert_eq!(append_learned(&path, "c").unwrap(), 3);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\nc\n");
    }
}
