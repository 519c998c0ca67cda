//! `rampart init --from-ssh-config`: every `Host` alias without wildcards becomes a host; its
//! settings are looked up as OpenSSH would (first value wins, `Host *` blocks apply), through
//! [`crate::ssh::config`]. `ProxyJump` becomes the bastion; the hosts others jump through get
//! the bastion role. Roles come from `--role-map` or are guessed from the alias.

use std::path::Path;

use super::{ImportError, Imported, ImportedHost, Jump, RoleMap, guess_role};
use crate::ssh::config::{self, SshConfig};

/// Reads `path` (and the files it includes, for the settings) and imports it.
pub fn import(path: &Path, roles: &RoleMap) -> Result<Imported, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::Invalid {
        file: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    let cfg = SshConfig::load(path).map_err(|e| ImportError::Parse {
        file: e.file,
        line: e.line,
        message: e.message,
    })?;
    Ok(from_config(&text, &cfg, roles))
}

/// Imports ssh_config text on its own (includes are not followed). Pure.
pub fn parse(text: &str, file: &Path, roles: &RoleMap) -> Result<Imported, ImportError> {
    let cfg = config::parse(text, file).map_err(|e| ImportError::Parse {
        file: e.file,
        line: e.line,
        message: e.message,
    })?;
    Ok(from_config(text, &cfg, roles))
}

/// The aliases of `Host` lines that name one host (no `*`, `?` or `!`), in file order.
pub fn aliases(text: &str) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut includes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let key_end = line.find([' ', '\t', '=']).unwrap_or(line.len());
        let (key, rest) = line.split_at(key_end);
        let rest = rest.trim_start_matches([' ', '\t', '=']);
        if key.eq_ignore_ascii_case("include") {
            includes.push(rest.to_string());
        }
        if !key.eq_ignore_ascii_case("host") {
            continue;
        }
        for word in rest.split_whitespace() {
            let word = word.trim_matches('"');
            if word.is_empty() || word.contains(['*', '?', '!']) {
                continue;
            }
            if !out.iter().any(|a| a == word) {
                out.push(word.to_string());
            }
        }
    }
    (out, includes)
}

fn from_config(text: &str, cfg: &SshConfig, roles: &RoleMap) -> Imported {
    let mut imp = Imported::default();
    let (names, includes) = aliases(text);
    for inc in includes {
        imp.needs_human(format!(
            "Include {inc}: its settings apply, but its Host entries are not imported; import that file too"
        ));
    }
    let mut jumps: Vec<(String, Vec<Jump>)> = Vec::new();
    for alias in names {
        let c = cfg.lookup(&alias);
        let mut host = ImportedHost {
            name: alias.clone(),
            address: c.hostname.filter(|h| *h != alias),
            port: c.port.filter(|p| *p != 22),
            user: c.user,
            identity_files: c
                .identity_files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            known_hosts: c
                .user_known_hosts_files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            ..ImportedHost::default()
        };
        let stem = alias
            .trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '-' | '_'))
            .to_string();
        match roles.get(&alias).or_else(|| roles.get(&stem)) {
            Some(Some(r)) => host.roles.push(r.to_string()),
            Some(None) => {}
            None => {
                if let Some(r) = guess_role(&alias) {
                    host.roles.push(r.to_string());
                    imp.guessed(format!("{alias} has role {r} (from its name)"));
                }
            }
        }
        let before = imp.hosts.len();
        imp.push_host(host);
        if let (Some(h), Some(j)) = (imp.hosts.get(before), c.proxy_jump) {
            let hops = j
                .into_iter()
                .map(|j| Jump {
                    user: j.user,
                    host: j.host,
                    port: j.port,
                })
                .collect();
            jumps.push((h.name.clone(), hops));
        }
    }
    for (name, hops) in jumps {
        imp.set_jumps(&name, &hops);
    }
    imp.bastions_get_role();
    imp.report_roleless();
    if imp.hosts.is_empty() {
        imp.needs_human("no Host entry without wildcards: nothing to import");
    }
    imp.needs_human(
        "[segments]: an ssh_config says nothing about networks; add your segments (name = CIDRs) for the segmentation checks",
    );
    imp
}
