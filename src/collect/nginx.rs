//! nginx: the configuration dump of `nginx -T` (each file after a
//! `# configuration file PATH:` line), tokenized, with `include`s resolved against the
//! dumped files, then read for server blocks, listens, HTTPS redirects, rate limiting,
//! TLS protocols and certificate paths. Pure: no I/O.

use super::{ParseError, check_size, clean};
use crate::state::{
    ConfLine, LimitReq, LimitReqZone, Nginx, NginxHeader, NginxListen, NginxServer, ProxyPass,
};

const WHAT: &str = "nginx -T";

/// How deep includes and blocks may nest.
const MAX_DEPTH: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Semi,
    Open,
    Close,
}

/// One directive, with its block when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    pub file: String,
    pub line: usize,
    pub block: Option<Vec<Directive>>,
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            ';' => {
                chars.next();
                out.push((Tok::Semi, line));
            }
            '{' => {
                chars.next();
                out.push((Tok::Open, line));
            }
            '}' => {
                chars.next();
                out.push((Tok::Close, line));
            }
            '"' | '\'' => {
                let q = c;
                chars.next();
                let start = line;
                let mut w = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => {
                            if let Some(n) = chars.next() {
                                w.push(n);
                            }
                        }
                        Some(c) if c == q => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            w.push(c);
                        }
                        None => return Err(format!("unterminated quote from line {start}")),
                    }
                }
                out.push((Tok::Word(w), start));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == ';' || c == '{' || c == '}' {
                        break;
                    }
                    // `${var}` keeps its braces inside a word.
                    if c == '$' {
                        w.push(c);
                        chars.next();
                        if chars.peek() == Some(&'{') {
                            for c in chars.by_ref() {
                                w.push(c);
                                if c == '}' {
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                    if c == '\\' {
                        chars.next();
                        if let Some(n) = chars.next() {
                            w.push(n);
                        }
                        continue;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push((Tok::Word(w), line));
            }
        }
    }
    Ok(out)
}

fn build(
    toks: &[(Tok, usize)],
    pos: &mut usize,
    file: &str,
    depth: usize,
) -> Result<Vec<Directive>, String> {
    if depth > MAX_DEPTH {
        return Err("blocks nested too deep".into());
    }
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut first_line = 0;
    while *pos < toks.len() {
        let (t, line) = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Word(w) => {
                if words.is_empty() {
                    first_line = *line;
                }
                words.push(w.clone());
            }
            Tok::Semi => {
                if !words.is_empty() {
                    let name = words.remove(0);
                    out.push(Directive {
                        name,
                        args: std::mem::take(&mut words),
                        file: file.to_string(),
                        line: first_line,
                        block: None,
                    });
                }
            }
            Tok::Open => {
                if words.is_empty() {
                    return Err(format!("line {line}: block without a name"));
                }
                let name = words.remove(0);
                let block = build(toks, pos, file, depth + 1)?;
                out.push(Directive {
                    name,
                    args: std::mem::take(&mut words),
                    file: file.to_string(),
                    line: first_line,
                    block: Some(block),
                });
            }
            Tok::Close => {
                if depth == 0 {
                    return Err(format!("line {line}: unexpected }}"));
                }
                return Ok(out);
            }
        }
    }
    if depth > 0 {
        return Err("unclosed block at end of file".into());
    }
    Ok(out)
}

/// Splits the dump into files: `(path, text)` in order.
pub fn split_dump(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(p) = line
            .strip_prefix("# configuration file ")
            .and_then(|p| p.strip_suffix(':'))
        {
            out.push((p.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// `*` and `?` glob over a whole path, as nginx's include does for one directory level.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) && pattern[p] != b'*'
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            // `*` does not cross a `/`.
            if text[mark] == b'/' {
                return false;
            }
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// The most directives include expansion may produce: includes can repeat a file many
/// times (or include themselves), and expansion must stay bounded whatever the dump says.
const MAX_EXPANDED: usize = 200_000;

struct Tree {
    files: Vec<(String, Vec<Directive>)>,
    prefix: String,
    budget: std::cell::Cell<usize>,
}

impl Tree {
    /// Replaces `include` directives by the directives of the files they name.
    fn expand(&self, dirs: &[Directive], depth: usize, out: &mut Vec<Directive>) {
        for d in dirs {
            if self.budget.get() == 0 {
                return;
            }
            self.budget.set(self.budget.get() - 1);
            if d.name == "include" && d.block.is_none() {
                if depth >= MAX_DEPTH {
                    continue;
                }
                let Some(pat) = d.args.first() else { continue };
                let pat = if pat.starts_with('/') {
                    pat.clone()
                } else {
                    format!("{}/{pat}", self.prefix)
                };
                for (path, body) in &self.files {
                    if glob(pat.as_bytes(), path.as_bytes()) {
                        self.expand(body, depth + 1, out);
                    }
                }
                continue;
            }
            let mut d = d.clone();
            if let Some(b) = d.block.take() {
                let mut inner = Vec::new();
                self.expand(&b, depth + 1, &mut inner);
                d.block = Some(inner);
            }
            out.push(d);
        }
    }
}

fn parse_listen(d: &Directive) -> NginxListen {
    let raw = d.args.first().cloned().unwrap_or_default();
    let mut l = NginxListen {
        raw: clean(&raw),
        ..NginxListen::default()
    };
    for a in d.args.iter().skip(1) {
        match a.as_str() {
            "ssl" => l.ssl = true,
            "http2" | "quic" => l.http2 = true,
            "default_server" | "default" => l.default_server = true,
            _ => {}
        }
    }
    if raw.starts_with("unix:") {
        l.address = Some(clean(&raw));
        return l;
    }
    if let Ok(p) = raw.parse::<u16>() {
        l.port = Some(p);
        return l;
    }
    let (addr, port) = match raw.rfind(':') {
        Some(i) if !raw[i..].contains(']') => (&raw[..i], raw[i + 1..].parse().ok()),
        _ => (raw.as_str(), Some(80)),
    };
    l.address = Some(clean(addr));
    l.port = port;
    l
}

fn limit_req(d: &Directive, location: Option<&str>) -> LimitReq {
    let mut l = LimitReq {
        location: location.map(clean),
        file: clean(&d.file),
        line: d.line,
        ..LimitReq::default()
    };
    for a in &d.args {
        if let Some(z) = a.strip_prefix("zone=") {
            l.zone = clean(z);
        } else if let Some(b) = a.strip_prefix("burst=") {
            l.burst = b.parse().ok();
        } else if a == "nodelay" {
            l.nodelay = true;
        }
    }
    l
}

fn is_https_redirect(d: &Directive) -> bool {
    match d.name.as_str() {
        "return" => {
            let code_ok = d
                .args
                .first()
                .is_some_and(|c| matches!(c.as_str(), "301" | "302" | "303" | "307" | "308"));
            code_ok && d.args.get(1).is_some_and(|u| u.starts_with("https://"))
                || d.args.first().is_some_and(|u| u.starts_with("https://"))
        }
        "rewrite" => d.args.get(1).is_some_and(|u| u.starts_with("https://")),
        _ => false,
    }
}

/// `proxy_ssl_verify on` among these directives, else what the enclosing level said.
fn verify_of(dirs: &[Directive], outer: bool) -> bool {
    dirs.iter()
        .rfind(|d| d.name == "proxy_ssl_verify")
        .map_or(outer, |d| d.args.first().is_some_and(|a| a == "on"))
}

fn proxy_pass(d: &Directive, location: Option<&str>, verify: bool) -> Option<ProxyPass> {
    (d.name == "proxy_pass").then(|| ProxyPass {
        location: location.map(clean),
        target: clean(d.args.first().map_or("", String::as_str)),
        at: ConfLine {
            file: clean(&d.file),
            line: d.line,
            text: clean(&format!("proxy_pass {};", d.args.join(" "))),
        },
        verify,
    })
}

fn walk_locations(dirs: &[Directive], server: &mut NginxServer, depth: usize) {
    walk_locations_verify(dirs, server, depth, verify_of(dirs, false));
}

fn walk_locations_verify(dirs: &[Directive], server: &mut NginxServer, depth: usize, verify: bool) {
    if depth > MAX_DEPTH {
        return;
    }
    for d in dirs {
        let Some(block) = &d.block else { continue };
        if d.name == "location" {
            let pattern = d.args.join(" ");
            server.locations.push(clean(&pattern));
            let inner_verify = verify_of(block, verify);
            for inner in block {
                if inner.name == "limit_req" {
                    server.limit_req.push(limit_req(inner, Some(&pattern)));
                }
                if let Some(p) = proxy_pass(inner, Some(&pattern), inner_verify) {
                    server.proxy_passes.push(p);
                }
                if (pattern == "/" || pattern == "= /") && is_https_redirect(inner) {
                    server.redirects_to_https = true;
                }
            }
            walk_locations_verify(block, server, depth + 1, inner_verify);
        } else if d.name == "if" && block.iter().any(is_https_redirect) {
            server.redirects_to_https = true;
        }
    }
}

fn server_of(
    d: &Directive,
    http_limits: &[LimitReq],
    http_protocols: &Option<Vec<String>>,
) -> NginxServer {
    let mut s = NginxServer {
        file: clean(&d.file),
        line: d.line,
        limit_req: http_limits.to_vec(),
        ..NginxServer::default()
    };
    let block = d.block.as_deref().unwrap_or_default();
    let mut ssl_on = false;
    for x in block {
        match x.name.as_str() {
            "listen" => s.listens.push(parse_listen(x)),
            "server_name" => s.server_names.extend(x.args.iter().map(|a| clean(a))),
            "ssl_certificate" => s.ssl_certificates.extend(x.args.first().map(|a| clean(a))),
            "ssl_certificate_key" => s
                .ssl_certificate_keys
                .extend(x.args.first().map(|a| clean(a))),
            "ssl_protocols" => s.ssl_protocols = Some(x.args.iter().map(|a| clean(a)).collect()),
            "limit_req" => s.limit_req.push(limit_req(x, None)),
            "ssl" => ssl_on = x.args.first().is_some_and(|a| a == "on"),
            "proxy_pass" => s
                .proxy_passes
                .extend(proxy_pass(x, None, verify_of(block, false))),
            _ if x.block.is_none() && is_https_redirect(x) => s.redirects_to_https = true,
            _ => {}
        }
    }
    if ssl_on {
        for l in &mut s.listens {
            l.ssl = true;
        }
    }
    if s.listens.is_empty() {
        // nginx's default is `listen *:80` (or 8000 when not root); assume 80.
        s.listens.push(NginxListen {
            raw: "*:80 (default)".into(),
            address: Some("*".into()),
            port: Some(80),
            ..NginxListen::default()
        });
    }
    if s.ssl_protocols.is_none() && s.serves_tls() {
        s.ssl_protocols.clone_from(http_protocols);
    }
    walk_locations(block, &mut s, 0);
    s
}

/// The headers one level (http, server, location) sets itself.
#[derive(Default)]
struct LevelHeaders {
    /// Where its first `add_header` is: a level with any `add_header` inherits none.
    first_add_header: Option<String>,
    /// Its own Strict-Transport-Security, from `add_header` or headers-more's
    /// `more_set_headers` (which is not subject to the inheritance rule).
    hsts: Option<NginxHeader>,
    hsts_from_more: bool,
}

fn level_headers(block: &[Directive]) -> LevelHeaders {
    let mut h = LevelHeaders::default();
    for d in block.iter().filter(|d| d.block.is_none()) {
        match d.name.as_str() {
            "add_header" => {
                if h.first_add_header.is_none() {
                    h.first_add_header = Some(format!("{}:{}", clean(&d.file), d.line));
                }
                if d.args
                    .first()
                    .is_some_and(|n| n.eq_ignore_ascii_case("strict-transport-security"))
                {
                    h.hsts = Some(NginxHeader {
                        value: d.args.get(1).map(|v| clean(v)).unwrap_or_default(),
                        always: d.args.iter().skip(2).any(|a| a == "always"),
                        file: clean(&d.file),
                        line: d.line,
                    });
                }
            }
            "more_set_headers" => {
                for a in &d.args {
                    if let Some((name, value)) = a.split_once(':')
                        && name
                            .trim()
                            .eq_ignore_ascii_case("strict-transport-security")
                    {
                        h.hsts = Some(NginxHeader {
                            value: clean(value.trim()),
                            always: true,
                            file: clean(&d.file),
                            line: d.line,
                        });
                        h.hsts_from_more = true;
                    }
                }
            }
            _ => {}
        }
    }
    h
}

/// The HSTS a level sends, given what its parent sends (nginx: a level with an `add_header`
/// of its own inherits none of its parent's).
fn effective(own: &LevelHeaders, parent: &Option<NginxHeader>) -> Option<NginxHeader> {
    if own.hsts.is_some() {
        return own.hsts.clone();
    }
    if own.first_add_header.is_some() {
        None
    } else {
        parent.clone()
    }
}

fn hsts_in_locations(
    dirs: &[Directive],
    parent: &Option<NginxHeader>,
    server: &mut NginxServer,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    for d in dirs {
        let Some(block) = &d.block else { continue };
        if d.name != "location" {
            continue;
        }
        let own = level_headers(block);
        let eff = effective(&own, parent);
        if parent.is_some() && eff.is_none() {
            server.hsts_dropped_in.push(format!(
                "location {} at {}:{} (its add_header at {})",
                clean(&d.args.join(" ")),
                clean(&d.file),
                d.line,
                own.first_add_header.clone().unwrap_or_default()
            ));
        }
        hsts_in_locations(block, &eff, server, depth + 1);
    }
}

/// Fills a server's HSTS fields from its block and the http level's HSTS.
fn apply_hsts(server: &mut NginxServer, d: &Directive, http_hsts: &Option<NginxHeader>) {
    let block = d.block.as_deref().unwrap_or_default();
    let own = level_headers(block);
    server.own_add_header = own.first_add_header.clone();
    server.hsts = effective(&own, http_hsts);
    let eff = server.hsts.clone();
    hsts_in_locations(block, &eff, server, 0);
}

/// Parses `nginx -T` output (stderr and stdout together).
pub fn parse(text: &str) -> Result<Nginx, ParseError> {
    check_size(WHAT, text)?;
    let mut n = Nginx {
        syntax_ok: text.contains("syntax is ok") && text.contains("test is successful"),
        ..Nginx::default()
    };
    let files = split_dump(text);
    if files.is_empty() {
        if text.contains("test failed") || text.contains("[emerg]") {
            return Ok(n);
        }
        return Err(ParseError::new(
            WHAT,
            0,
            "no \"# configuration file\" sections",
        ));
    }
    let mut parsed = Vec::new();
    for (path, body) in &files {
        let toks = tokenize(body)
            .map_err(|e| ParseError::new(WHAT, 0, format!("{}: {e}", clean(path))))?;
        let mut pos = 0;
        let dirs = build(&toks, &mut pos, path, 0)
            .map_err(|e| ParseError::new(WHAT, 0, format!("{}: {e}", clean(path))))?;
        parsed.push((path.clone(), dirs));
    }
    n.files = files.iter().map(|(p, _)| clean(p)).collect();
    let main = parsed[0].0.clone();
    let prefix = main.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let tree = Tree {
        files: parsed,
        prefix,
        budget: std::cell::Cell::new(MAX_EXPANDED),
    };
    let mut root = Vec::new();
    tree.expand(&tree.files[0].1, 0, &mut root);
    for http in root.iter().filter(|d| d.name == "http") {
        let block = http.block.as_deref().unwrap_or_default();
        let mut limits = Vec::new();
        for d in block {
            match d.name.as_str() {
                "limit_req_zone" => {
                    let mut z = LimitReqZone {
                        key: d.args.first().map(|a| clean(a)).unwrap_or_default(),
                        file: clean(&d.file),
                        line: d.line,
                        ..LimitReqZone::default()
                    };
                    for a in &d.args {
                        if let Some(v) = a.strip_prefix("zone=") {
                            let (name, size) = v.split_once(':').unwrap_or((v, ""));
                            z.name = clean(name);
                            z.size = (!size.is_empty()).then(|| clean(size));
                        } else if let Some(r) = a.strip_prefix("rate=") {
                            z.rate = Some(clean(r));
                        }
                    }
                    n.limit_req_zones.push(z);
                }
                "limit_req" => limits.push(limit_req(d, None)),
                "ssl_protocols" => {
                    n.ssl_protocols = Some(d.args.iter().map(|a| clean(a)).collect())
                }
                _ => {}
            }
        }
        n.http_hsts = level_headers(block).hsts;
        for d in block
            .iter()
            .filter(|d| d.name == "server" && d.block.is_some())
        {
            let mut s = server_of(d, &limits, &n.ssl_protocols);
            apply_hsts(&mut s, d, &n.http_hsts);
            n.servers.push(s);
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn glob_stays_in_one_directory() {
        assert!(glob(
            b"/etc/nginx/sites-enabled/*",
            b"/etc/nginx/sites-enabled/default"
        ));
        assert!(!glob(
            b"/etc/nginx/sites-enabled/*",
            b"/etc/nginx/sites-enabled/a/b"
        ));
        assert!(glob(
            b"/etc/nginx/conf.d/*.conf",
            b"/etc/nginx/conf.d/x.conf"
        ));
        assert!(!glob(
            b"/etc/nginx/conf.d/*.conf",
            b"/etc/nginx/conf.d/x.confd"
        ));
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        let t = "# configuration file /e/nginx.conf:\nhttp { server { listen 80;\n";
        assert!(parse(t).is_err());
        let t = "# configuration file /e/nginx.conf:\n}\n";
        assert!(parse(t).is_err());
    }

    #[test]
    fn include_cycles_terminate() {
        let t = "# configuration file /e/nginx.conf:\ninclude /e/nginx.conf;\nhttp { server { listen 81; } }\n";
        let n = parse(t).unwrap();
        assert!(!n.servers.is_empty());
    }

    #[test]
    fn add_header_inheritance_decides_hsts() {
        let t = "# configuration file /e/nginx.conf:\n\
                 http {\n\
                 add_header Strict-Transport-Security \"max-age=63072000\" always;\n\
                 server { listen 443 ssl; server_name a; location / { } location /api { add_header X-Frame-Options DENY; } }\n\
                 server { listen 443 ssl; server_name b; add_header X-Content-Type-Options nosniff; }\n\
                 server { listen 443 ssl; server_name c; add_header X-A 1; add_header Strict-Transport-Security max-age=300; }\n\
                 }\n";
        let n = parse(t).unwrap();
        assert_eq!(n.http_hsts.as_ref().unwrap().line, 2);
        let a = &n.servers[0];
        assert!(a.hsts.as_ref().unwrap().always);
        assert_eq!(a.hsts_dropped_in.len(), 1, "{:?}", a.hsts_dropped_in);
        assert!(a.hsts_dropped_in[0].starts_with("location /api at /e/nginx.conf:3"));
        let b = &n.servers[1];
        assert!(b.hsts.is_none(), "a server add_header drops the http one");
        assert_eq!(b.own_add_header.as_deref(), Some("/e/nginx.conf:4"));
        let c = &n.servers[2];
        assert_eq!(c.hsts.as_ref().unwrap().value, "max-age=300");
        assert!(!c.hsts.as_ref().unwrap().always);
    }

    #[test]
    fn listen_forms() {
        let d = |a: &[&str]| Directive {
            name: "listen".into(),
            args: a.iter().map(|s| s.to_string()).collect(),
            file: String::new(),
            line: 1,
            block: None,
        };
        assert_eq!(parse_listen(&d(&["[::]:443", "ssl"])).port, Some(443));
        assert!(parse_listen(&d(&["[::]:443", "ssl"])).ssl);
        assert_eq!(parse_listen(&d(&["127.0.0.1"])).port, Some(80));
        assert_eq!(parse_listen(&d(&["8080"])).port, Some(8080));
    }
}
