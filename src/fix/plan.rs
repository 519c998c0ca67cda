//! A fix plan in words, for the person about to confirm it: numbered steps, what is saved,
//! the firewall's rules and policies before → after, what the firewall admits before → after
//! for the ports that change, the lockout guard's verdict and the rollback timer.
//!
//! Read-only and pure: built from the plan's own typed steps and from the normalized firewall
//! model before the fix and as the fix would leave it (the same simulation the lockout guard
//! checks). It never builds or changes a command; the exact commands stay in the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use super::guard::{GuardSource, decided};
use super::rollback::Rollback;
use crate::posture::checks::describe_rule;
use crate::state::{Action, Firewall, HostState, Probed, Protocol};

/// An address outside every private range, standing for "anywhere on the Internet" when the
/// model is asked what it admits (documentation range, RFC 5737: never a real peer).
pub const ANYWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

/// The plan in words. Every list may be empty; the dialog leaves out what is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    /// What the fix does, one step per line, in the order it is done.
    pub steps: Vec<String>,
    /// What is saved on the host before anything changes (for the rollback).
    pub saved: Option<String>,
    /// Firewall rules the fix removes / adds (from the model).
    pub rules_removed: Vec<String>,
    pub rules_added: Vec<String>,
    /// Default policies that change: "chain: accept → drop".
    pub policies: Vec<String>,
    /// What is let in before → after, only for the ports whose answer changes.
    pub admitted: Vec<String>,
    /// The lockout guard's verdict: the source it checked and the rule that admits SSH after.
    pub guard: Vec<String>,
    /// When the rollback fires, and what cancels it.
    pub rollback: Option<String>,
}

fn action_word(a: &Action) -> String {
    match a {
        Action::Accept => "accept".into(),
        Action::Drop => "drop".into(),
        Action::Reject => "reject".into(),
        Action::Limit => "limit".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Rules reachable from some chain, as text, with how many times each appears.
fn rule_texts(fw: &Firewall) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in &fw.chains {
        for i in &c.rules {
            if let Some(r) = fw.rules.get(*i) {
                *out.entry(describe_rule(r)).or_insert(0) += 1;
            }
        }
    }
    out
}

fn chain_label(c: &crate::state::Chain) -> String {
    format!("{} {}", c.table, c.name)
}

/// Policies of base chains, by chain.
fn policies(fw: &Firewall) -> BTreeMap<String, String> {
    fw.chains
        .iter()
        .filter(|c| c.hook.is_some())
        .map(|c| {
            (
                chain_label(c),
                c.policy.as_ref().map_or_else(|| "none".into(), action_word),
            )
        })
        .collect()
}

fn verdict_word(fw: &Firewall, src: IpAddr, port: u16, proto: &Protocol) -> (bool, String) {
    let v = fw.admits(src, proto.clone(), port);
    let word = if v.admitted() { "admitted" } else { "refused" };
    (
        v.admitted(),
        format!("{word} by {}", decided(fw, &v.decided_by)),
    )
}

/// The ports worth asking about: every non-loopback listener, the SSH port, and the single
/// ports named by rules that change.
fn ports(
    state: &HostState,
    ssh_port: u16,
    before: &Firewall,
    after: &Firewall,
) -> Vec<(u16, Protocol)> {
    let mut set: BTreeSet<(u16, String)> = BTreeSet::new();
    let mut protos: BTreeMap<String, Protocol> = BTreeMap::new();
    let mut add = |port: u16, p: &Protocol| {
        set.insert((port, p.label().to_string()));
        protos.insert(p.label().to_string(), p.clone());
    };
    add(ssh_port, &Protocol::Tcp);
    if let Probed::Ok(ls) = &state.listeners {
        for l in ls.iter().filter(|l| !l.is_loopback()) {
            if matches!(l.protocol, Protocol::Tcp | Protocol::Udp) {
                add(l.port, &l.protocol);
            }
        }
    }
    for fw in [before, after] {
        for r in &fw.rules {
            if let crate::state::PortSet::Only(ranges) = &r.dports {
                for pr in ranges.iter().filter(|pr| pr.first == pr.last) {
                    let p = r.protocol.clone().unwrap_or(Protocol::Tcp);
                    if matches!(p, Protocol::Tcp | Protocol::Udp) {
                        add(pr.first, &p);
                    }
                }
            }
        }
    }
    set.into_iter()
        .filter_map(|(port, p)| protos.get(&p).map(|pr| (port, pr.clone())))
        .collect()
}

/// The plan in words (pure). `before` is the firewall as collected, `after` the firewall the
/// steps leave behind (the lockout guard's simulation); both are `None` for fixes that do
/// not touch the firewall.
#[allow(clippy::too_many_arguments)]
pub fn describe(
    steps: &[super::Step],
    rollback: Option<&Rollback>,
    state: &HostState,
    before: Option<&Firewall>,
    after: Option<&Firewall>,
    sources: &[GuardSource],
    ssh_port: u16,
) -> Description {
    let mut d = Description::default();
    if steps.is_empty() {
        d.steps
            .push("nothing to change: the fix is already in place".into());
        return d;
    }
    let mut n = 0;
    let mut step = |d: &mut Description, s: String| {
        n += 1;
        d.steps.push(format!("{n}. {s}"));
    };
    if let Some(r) = rollback {
        d.saved = Some(format!(
            "the current {} are saved on the host before anything changes",
            r.kind.label()
        ));
        step(&mut d, format!("save the current {}", r.kind.label()));
        step(
            &mut d,
            format!("arm the rollback timer ({} s) on the host", r.secs),
        );
    }
    for s in steps {
        step(&mut d, s.what.clone());
    }
    if let Some(r) = rollback {
        step(
            &mut d,
            "reconnect over a fresh connection, re-verify, then cancel the rollback timer".into(),
        );
        d.rollback = Some(format!(
            "the host restores the saved {} {} s after the timer is armed, unless rampart \
             re-verifies over a fresh connection and cancels it first",
            r.kind.label(),
            r.secs
        ));
    }
    if let (Some(b), Some(a)) = (before, after) {
        let (rb, ra) = (rule_texts(b), rule_texts(a));
        for (text, count) in &rb {
            let left = ra.get(text).copied().unwrap_or(0);
            for _ in left..*count {
                d.rules_removed.push(text.clone());
            }
        }
        for (text, count) in &ra {
            let had = rb.get(text).copied().unwrap_or(0);
            for _ in had..*count {
                d.rules_added.push(text.clone());
            }
        }
        let (pb, pa) = (policies(b), policies(a));
        for (chain, after_policy) in &pa {
            match pb.get(chain) {
                Some(before_policy) if before_policy != after_policy => d
                    .policies
                    .push(format!("{chain}: {before_policy} → {after_policy}")),
                None => d
                    .policies
                    .push(format!("{chain}: (no such chain) → {after_policy}")),
                _ => {}
            }
        }
        if pb.is_empty() && !pa.is_empty() {
            d.policies.insert(
                0,
                "before: no chain filters incoming traffic (all admitted)".into(),
            );
        }
        for (port, proto) in ports(state, ssh_port, b, a) {
            let mut probes: Vec<(IpAddr, String)> = vec![(ANYWHERE, "anywhere".into())];
            probes.extend(sources.iter().map(|s| (s.addr, s.addr.to_string())));
            for (src, label) in probes {
                let (was, _) = verdict_word(b, src, port, &proto);
                let (now, ntext) = verdict_word(a, src, port, &proto);
                let wtext = if was { "admitted" } else { "refused" };
                if was != now {
                    d.admitted.push(format!(
                        "{port}/{} from {label}: {wtext} → {ntext}",
                        proto.label()
                    ));
                }
            }
        }
        if d.admitted.is_empty() {
            d.admitted
                .push("no listening port changes between admitted and refused".into());
        }
        for s in sources {
            let v = a.admits(s.addr, Protocol::Tcp, ssh_port);
            let mut line = if v.admitted() {
                format!(
                    "checked SSH {ssh_port}/tcp from {} ({}): still admitted afterwards by {}",
                    s.addr,
                    s.why,
                    decided(a, &v.decided_by)
                )
            } else {
                format!(
                    "checked SSH {ssh_port}/tcp from {} ({}): REFUSED afterwards by {}",
                    s.addr,
                    s.why,
                    decided(a, &v.decided_by)
                )
            };
            if !v.assumptions.is_empty() {
                line.push_str(&format!(" (assuming {})", v.assumptions.join("; ")));
            }
            d.guard.push(line);
        }
        if sources.is_empty() {
            d.guard
                .push("no source to check: the address rampart connects from is unknown".into());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_steps_says_nothing_changes() {
        let st = HostState::unreachable("h1", "connect", "refused");
        let d = describe(&[], None, &st, None, None, &[], 22);
        assert_eq!(d.steps.len(), 1);
        assert!(d.steps[0].contains("already in place"));
        assert!(d.rules_added.is_empty() && d.guard.is_empty());
    }
}
