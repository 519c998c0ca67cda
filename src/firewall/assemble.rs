//! Builds the one normalized [`Firewall`] from every backend's output: ufw status and its
//! user rules, iptables-legacy and iptables-nft dumps (IPv4 and IPv6), and the nftables
//! JSON ruleset. Decides which managers are active, which source is authoritative for a
//! table (iptables-nft-save over the `xt` expressions nft prints for the same table), and
//! the default policies. Pure: no I/O.

use std::collections::BTreeMap;

use super::model::{
    Action, Backend, Chain, Family, Firewall, Hook, Manager, Negatable, Policies, Policy, Rule,
};
use crate::state::Probed;

use super::{ipset, iptables, nft, ufw};

/// The raw outputs the firewall is built from; each is what its probe gave.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub ufw_status: Probed<&'a str>,
    pub ufw_user_rules: Option<&'a str>,
    pub ufw_user6_rules: Option<&'a str>,
    pub iptables_legacy: Probed<&'a str>,
    pub ip6tables_legacy: Probed<&'a str>,
    pub iptables_nft: Probed<&'a str>,
    pub ip6tables_nft: Probed<&'a str>,
    pub nft: Probed<&'a str>,
    /// `firewall-cmd --state` said "running"; `None` when firewalld is not installed.
    pub firewalld_running: Option<bool>,
}

/// The outputs added with the whole-path model, apart from [`Inputs`] so that code
/// building `Inputs` field by field keeps compiling; see [`assemble_with`].
#[derive(Debug, Clone)]
pub struct MoreInputs<'a> {
    /// Plain `iptables-save` / `ip6tables-save`, on hosts without the -legacy/-nft tools
    /// (older distributions); its header says which backend.
    pub iptables_plain: Probed<&'a str>,
    pub ip6tables_plain: Probed<&'a str>,
    /// `ipset save`: the members of the sets rules name.
    pub ipset: Probed<&'a str>,
}

impl Default for MoreInputs<'_> {
    fn default() -> Self {
        let none = |t: &str| Probed::NotInstalled {
            tool: t.to_string(),
        };
        MoreInputs {
            iptables_plain: none("iptables-save"),
            ip6tables_plain: none("ip6tables-save"),
            ipset: none("ipset"),
        }
    }
}

impl Default for Inputs<'_> {
    fn default() -> Self {
        let none = |t: &str| Probed::NotInstalled {
            tool: t.to_string(),
        };
        Inputs {
            ufw_status: none("ufw"),
            ufw_user_rules: None,
            ufw_user6_rules: None,
            iptables_legacy: none("iptables-legacy-save"),
            ip6tables_legacy: none("ip6tables-legacy-save"),
            iptables_nft: none("iptables-nft-save"),
            ip6tables_nft: none("ip6tables-nft-save"),
            nft: none("nft"),
            firewalld_running: None,
        }
    }
}

fn note_state<T>(notes: &mut Vec<String>, what: &str, p: &Probed<T>) {
    match p {
        Probed::PermissionDenied { message, .. } => {
            notes.push(format!("{what}: permission denied ({message})"));
        }
        Probed::Failed { message, .. } => notes.push(format!("{what}: failed ({message})")),
        _ => {}
    }
}

/// The decision a base chain reaches for a packet no specific rule matched: its last
/// unconditional final rule (through unconditional jumps), else its policy.
fn fall_through(fw: &Firewall, chain: &Chain, depth: usize) -> Option<Action> {
    if depth > 16 {
        return None;
    }
    for &i in &chain.rules {
        let Some(r) = fw.rules.get(i) else { continue };
        if !r.is_unconditional() {
            continue;
        }
        match &r.action {
            a if a.is_final() => return Some(a.clone()),
            Action::Return => return None,
            Action::Jump(t) | Action::Goto(t) => {
                if let Some(next) = fw
                    .chains
                    .iter()
                    .find(|c| c.backend == chain.backend && c.table == chain.table && &c.name == t)
                    && let Some(a) = fall_through(fw, next, depth + 1)
                {
                    return Some(a);
                }
            }
            _ => {}
        }
    }
    if depth == 0 {
        chain.policy.clone()
    } else {
        None
    }
}

fn policy_for(fw: &Firewall, hooks: &[Hook]) -> Option<Policy> {
    let mut seen = false;
    let mut result = Policy::Accept;
    for c in fw
        .chains
        .iter()
        .filter(|c| c.hook.is_some_and(|h| hooks.contains(&h)))
    {
        seen = true;
        match fall_through(fw, c, 0) {
            Some(Action::Drop) => result = Policy::Drop,
            Some(Action::Reject) if result != Policy::Drop => result = Policy::Reject,
            _ => {}
        }
    }
    seen.then_some(result)
}

/// Gives the rules of ufw's user chains the text of the tuple that made them.
fn annotate_ufw(fw: &mut Firewall, chain: &str, tuples: &[ufw::Tuple]) {
    let chain_rules: Vec<Vec<usize>> = fw
        .chains
        .iter()
        .filter(|c| c.name == chain)
        .map(|c| c.rules.clone())
        .collect();
    for rules in chain_rules {
        let mut it = rules.into_iter();
        for t in tuples.iter().filter(|t| t.direction.starts_with("in")) {
            let text = t.describe();
            for _ in 0..t.rules {
                if let Some(i) = it.next()
                    && let Some(r) = fw.rules.get_mut(i)
                {
                    r.comment = Some(text.clone());
                }
            }
        }
    }
}

fn append(fw: &mut Firewall, (chains, rules): (Vec<Chain>, Vec<Rule>)) {
    fw.chains.extend(chains);
    fw.rules.extend(rules);
}

/// Replaces `--match-set NAME src|dst` conditions by the members of address sets. A rule
/// that already has an address condition on that side, or names a set that is not a plain
/// address set, keeps the condition unmodelled.
fn resolve_ipsets(fw: &mut Firewall, sets: &BTreeMap<String, ipset::IpSet>) {
    for rule in &mut fw.rules {
        let mut kept = Vec::with_capacity(rule.unmodelled.len());
        for u in std::mem::take(&mut rule.unmodelled) {
            let (negated, rest) = match u.strip_prefix("! ") {
                Some(r) => (true, r),
                None => (false, u.as_str()),
            };
            let mut w = rest.split_whitespace();
            let (Some("--match-set"), Some(name), Some(dir), None) =
                (w.next(), w.next(), w.next(), w.next())
            else {
                kept.push(u);
                continue;
            };
            let members = sets.get(name).and_then(|s| s.members.as_ref());
            let (Some(members), Some(src)) = (
                members,
                matches!(dir, "src")
                    .then_some(true)
                    .or(matches!(dir, "dst").then_some(false)),
            ) else {
                kept.push(u);
                continue;
            };
            let side_free = if src {
                rule.sources.is_empty()
            } else {
                rule.destinations.is_empty()
            };
            if !side_free {
                kept.push(u);
                continue;
            }
            if members.is_empty() {
                if !negated {
                    // Membership of an empty set never holds.
                    rule.ct_states = Some(Negatable::new(Vec::new(), false));
                }
                continue;
            }
            if src {
                rule.sources = members.clone();
                rule.sources_negated = negated;
            } else {
                rule.destinations = members.clone();
                rule.destinations_negated = negated;
            }
            // The evidence names the set the addresses came from.
            let set = format!("{}ipset {name} {dir}", if negated { "not in " } else { "" });
            rule.comment = Some(match rule.comment.take() {
                Some(c) => format!("{c}; {set}"),
                None => set,
            });
        }
        rule.unmodelled = kept;
    }
}

/// Builds the firewall model. Never fails as a whole: a backend that could not be read or
/// parsed is left out and named in `notes`.
pub fn assemble(inputs: &Inputs<'_>) -> Firewall {
    assemble_with(inputs, &MoreInputs::default())
}

/// [`assemble`] with plain `iptables-save` dumps and `ipset save` too.
pub fn assemble_with(inputs: &Inputs<'_>, more: &MoreInputs<'_>) -> Firewall {
    let mut fw = Firewall::default();
    let mut notes = Vec::new();

    let ufw_status = match &inputs.ufw_status {
        Probed::Ok(t) => match ufw::parse_status(t) {
            Ok(s) => Some(s),
            Err(e) => {
                notes.push(format!("ufw status unreadable: {e}"));
                None
            }
        },
        other => {
            note_state(&mut notes, "ufw status", other);
            None
        }
    };
    let ufw_active = ufw_status.as_ref().is_some_and(|s| s.active);

    let installed = [
        (
            Manager::Ufw,
            !matches!(inputs.ufw_status, Probed::NotInstalled { .. }),
        ),
        (
            Manager::Nftables,
            !matches!(inputs.nft, Probed::NotInstalled { .. }),
        ),
        (
            Manager::IptablesLegacy,
            !matches!(inputs.iptables_legacy, Probed::NotInstalled { .. }),
        ),
        (
            Manager::IptablesNft,
            !matches!(inputs.iptables_nft, Probed::NotInstalled { .. }),
        ),
        (Manager::Firewalld, inputs.firewalld_running.is_some()),
    ];
    fw.installed = installed
        .iter()
        .filter(|(_, i)| *i)
        .map(|(m, _)| *m)
        .collect();

    let mut managers: Vec<Manager> = Vec::new();
    if ufw_active {
        managers.push(Manager::Ufw);
    }

    // iptables dumps, both backends and families.
    let mut nft_skip: Vec<(String, String)> = Vec::new();
    let mut saw_iptables_nft = false;
    let dumps = [
        (
            &inputs.iptables_legacy,
            Family::V4,
            Backend::IptablesLegacy,
            "iptables-legacy-save",
        ),
        (
            &inputs.ip6tables_legacy,
            Family::V6,
            Backend::IptablesLegacy,
            "ip6tables-legacy-save",
        ),
        (
            &inputs.iptables_nft,
            Family::V4,
            Backend::IptablesNft,
            "iptables-nft-save",
        ),
        (
            &inputs.ip6tables_nft,
            Family::V6,
            Backend::IptablesNft,
            "ip6tables-nft-save",
        ),
    ];
    // Plain iptables-save: its header names the backend.
    let plain: Vec<(&Probed<&str>, Family, Backend, &str)> = [
        (&more.iptables_plain, Family::V4, "iptables-save"),
        (&more.ip6tables_plain, Family::V6, "ip6tables-save"),
    ]
    .into_iter()
    .filter_map(|(p, f, w)| {
        let Probed::Ok(t) = p else { return None };
        let b = match iptables::parse(t).ok()?.backend {
            Some(iptables::SaveBackend::Nft) => Backend::IptablesNft,
            _ => Backend::IptablesLegacy,
        };
        Some((p, f, b, w))
    })
    .collect();
    for (_, _, b, w) in &plain {
        // Say where the backend came from: the tool's name does not tell.
        let (name, why) = match b {
            Backend::IptablesNft => ("iptables-nft", "its header says (nf_tables)"),
            _ => ("iptables-legacy", "its header does not say (nf_tables)"),
        };
        notes.push(format!(
            "{w} (no -legacy/-nft tool on this host) read as {name}: {why}"
        ));
    }
    for (probe, family, backend, what) in dumps.into_iter().chain(plain) {
        let text = match probe {
            Probed::Ok(t) => *t,
            other => {
                note_state(&mut notes, what, other);
                continue;
            }
        };
        let save = match iptables::parse(text) {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{what} unreadable: {e}"));
                continue;
            }
        };
        if backend == Backend::IptablesNft {
            saw_iptables_nft = true;
            let fam = if family == Family::V4 { "ip" } else { "ip6" };
            for t in &save.tables {
                nft_skip.push((fam.to_string(), t.name.clone()));
            }
        }
        let manager = if backend == Backend::IptablesLegacy {
            Manager::IptablesLegacy
        } else {
            Manager::IptablesNft
        };
        let own_policy = !ufw_active
            && save.table("filter").is_some_and(|t| {
                t.chains
                    .iter()
                    .any(|(_, p)| p.as_deref().is_some_and(|p| p != "ACCEPT"))
            });
        if (iptables::has_non_ufw_filtering(&save) || own_policy) && !managers.contains(&manager) {
            managers.push(manager);
        }
        let base = fw.rules.len();
        append(&mut fw, iptables::normalize(&save, family, backend, base));
    }

    // nftables, leaving out the tables an iptables-nft dump described better.
    match &inputs.nft {
        Probed::Ok(t) => match nft::parse(t) {
            Ok(rs) => {
                if !saw_iptables_nft {
                    for (f, t) in nft::xt_tables(&rs) {
                        notes.push(format!(
                            "nft table {f} {t} holds iptables-nft rules that nft cannot show \
                             in full; iptables-nft-save was not available"
                        ));
                    }
                }
                let base = fw.rules.len();
                let (chains, rules) = nft::normalize(&rs, &nft_skip, base);
                let own = rules.iter().any(|r| r.manager == Manager::Nftables)
                    || chains.iter().any(|c| {
                        !c.table.ends_with(" firewalld") && c.policy == Some(Action::Drop)
                    });
                if own {
                    managers.push(Manager::Nftables);
                }
                if rs.tables.iter().any(|(_, n)| n == "firewalld") {
                    managers.push(Manager::Firewalld);
                }
                append(&mut fw, (chains, rules));
            }
            Err(e) => notes.push(format!("nft ruleset unreadable: {e}")),
        },
        other => note_state(&mut notes, "nft", other),
    }
    if inputs.firewalld_running == Some(true) && !managers.contains(&Manager::Firewalld) {
        managers.push(Manager::Firewalld);
    }

    // ufw's comments and app names on the rules it made.
    let tuples4 = inputs
        .ufw_user_rules
        .and_then(|t| ufw::parse_tuples(t).ok())
        .unwrap_or_default();
    let tuples6 = inputs
        .ufw_user6_rules
        .and_then(|t| ufw::parse_tuples(t).ok())
        .unwrap_or_default();
    let have_ufw_chains = fw.chains.iter().any(|c| iptables::is_ufw_chain(&c.name));
    if ufw_active && !have_ufw_chains {
        // No ruleset was readable: fall back to ufw's own rules files behind its policy.
        let policy = ufw_status.as_ref().and_then(|s| s.policies.incoming);
        for (text, family, chain) in [
            (inputs.ufw_user_rules, Family::V4, "ufw-user-input"),
            (inputs.ufw_user6_rules, Family::V6, "ufw6-user-input"),
        ] {
            let Some(save) = text.and_then(|t| iptables::parse(t).ok()) else {
                continue;
            };
            let base = fw.rules.len();
            let (mut chains, rules) = iptables::normalize(&save, family, Backend::Ufw, base);
            for c in &mut chains {
                if c.name == chain {
                    c.hook = Some(Hook::Input);
                    c.policy = Some(match policy {
                        Some(Policy::Drop | Policy::Reject) => Action::Drop,
                        _ => Action::Accept,
                    });
                }
            }
            append(&mut fw, (chains, rules));
            notes.push(format!(
                "{chain}: read from ufw's rules file, not from the live ruleset (loopback and \
                 established-connection rules of ufw's before.rules are not modelled)"
            ));
        }
    }
    match &more.ipset {
        Probed::Ok(t) => match ipset::parse(t) {
            Ok(sets) => resolve_ipsets(&mut fw, &sets),
            Err(e) => notes.push(format!("ipset save unreadable: {e}")),
        },
        other => note_state(&mut notes, "ipset save", other),
    }
    annotate_ufw(&mut fw, "ufw-user-input", &tuples4);
    annotate_ufw(&mut fw, "ufw6-user-input", &tuples6);

    fw.policies = match (&ufw_status, ufw_active) {
        (Some(s), true) => s.policies,
        _ => Policies {
            incoming: policy_for(&fw, &[Hook::Ingress, Hook::Prerouting, Hook::Input]),
            outgoing: policy_for(&fw, &[Hook::Output, Hook::Postrouting]),
            routed: policy_for(&fw, &[Hook::Forward]),
        },
    };
    managers.sort();
    managers.dedup();
    fw.managers = managers;
    fw.ufw = ufw_status;
    fw.notes = notes;
    fw
}
