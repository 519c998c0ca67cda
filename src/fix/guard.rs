//! The lockout guard: before anything is sent, the firewall a fix would leave behind is
//! simulated on the normalized model ([`Sim`]) and asked whether SSH from every guarded
//! source (the bastion's address as the host sees it, rampart's own source) still gets in.
//! Pure: no I/O.
//!
//! The model errs towards "admitted" where a packet's description leaves a rule open (see
//! `Firewall::evaluate`); such guesses are reported as notes, and the rollback timer covers
//! what the model cannot see.

use std::net::IpAddr;

use crate::posture::checks::describe_rule;
use crate::state::{Action, Chain, DecidedBy, Firewall, Protocol, Rule};

/// An address SSH must stay open to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSource {
    pub addr: IpAddr,
    pub why: String,
}

/// SSH from a guarded source would not get in after the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub source: GuardSource,
    pub port: u16,
    /// What would decide the packet, in words.
    pub decided_by: String,
}

impl std::fmt::Display for Lockout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SSH ({}/tcp) from {} ({}) would be refused by {}",
            self.port, self.source.addr, self.source.why, self.decided_by
        )
    }
}

/// A firewall model being edited the way a fix would edit the real one.
#[derive(Debug, Clone)]
pub struct Sim {
    pub fw: Firewall,
}

impl Sim {
    pub fn new(fw: &Firewall) -> Sim {
        Sim { fw: fw.clone() }
    }

    /// Removes a rule from every chain that holds it.
    pub fn remove(&mut self, idx: usize) {
        for c in &mut self.fw.chains {
            c.rules.retain(|r| *r != idx);
        }
    }

    /// Adds a rule to a chain at `pos` (clamped to the chain's length); returns its index.
    pub fn insert(&mut self, chain: usize, pos: usize, rule: Rule) -> usize {
        self.fw.rules.push(rule);
        let idx = self.fw.rules.len() - 1;
        if let Some(c) = self.fw.chains.get_mut(chain) {
            let pos = pos.min(c.rules.len());
            c.rules.insert(pos, idx);
        }
        idx
    }

    /// Inserts `rule` just before the rule `before` in every chain that holds it.
    pub fn insert_before(&mut self, before: usize, rule: Rule) {
        let chains: Vec<(usize, usize)> = self
            .fw
            .chains
            .iter()
            .enumerate()
            .filter_map(|(ci, c)| c.rules.iter().position(|r| *r == before).map(|p| (ci, p)))
            .collect();
        for (ci, pos) in chains {
            self.insert(ci, pos, rule.clone());
        }
    }

    /// The chain holding rule `idx`.
    pub fn chain_of(&self, idx: usize) -> Option<usize> {
        self.fw.chains.iter().position(|c| c.rules.contains(&idx))
    }

    pub fn set_policy(&mut self, chain: usize, policy: Action) {
        if let Some(c) = self.fw.chains.get_mut(chain) {
            c.policy = Some(policy);
        }
    }

    pub fn add_chain(&mut self, chain: Chain) -> usize {
        self.fw.chains.push(chain);
        self.fw.chains.len() - 1
    }
}

/// Describes what decided a verdict.
pub(crate) fn decided(fw: &Firewall, by: &DecidedBy) -> String {
    match by {
        DecidedBy::Rule { index } => fw
            .rules
            .get(*index)
            .map_or_else(|| format!("rule #{index}"), describe_rule),
        DecidedBy::Policy {
            backend,
            table,
            chain,
        } => {
            let b = match backend {
                crate::state::Backend::Ufw => "ufw",
                crate::state::Backend::Nftables => "nft",
                crate::state::Backend::IptablesLegacy => "iptables-legacy",
                crate::state::Backend::IptablesNft => "iptables-nft",
            };
            format!("the policy of {b} {table}/{chain}")
        }
        DecidedBy::NoFilter => "no filter".to_string(),
    }
}

/// Asks the (simulated) firewall whether SSH from every guarded source gets in. Returns
/// notes (one per source, with what admits it and any guess the model made), or the first
/// source that would be locked out.
pub fn check(fw: &Firewall, sources: &[GuardSource], port: u16) -> Result<Vec<String>, Lockout> {
    let mut notes = Vec::new();
    for s in sources {
        let v = fw.admits(s.addr, Protocol::Tcp, port);
        if !v.admitted() {
            return Err(Lockout {
                source: s.clone(),
                port,
                decided_by: decided(fw, &v.decided_by),
            });
        }
        let mut note = format!(
            "lockout guard: SSH {port}/tcp from {} ({}) still admitted by {}",
            s.addr,
            s.why,
            decided(fw, &v.decided_by)
        );
        if !v.assumptions.is_empty() {
            note.push_str(&format!(" (assuming: {})", v.assumptions.join("; ")));
        }
        notes.push(note);
    }
    Ok(notes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::state::{Backend, Direction, Family, Hook, Manager, Origin, PortRange, PortSet};

    pub(crate) fn base_chain(policy: Action) -> Firewall {
        let origin = Origin {
            backend: Backend::Nftables,
            table: "inet filter".into(),
            chain: "input".into(),
            line: None,
            handle: Some(1),
        };
        let mut ssh = Rule::new(Direction::In, Action::Accept, Manager::Nftables, origin);
        ssh.protocol = Some(Protocol::Tcp);
        ssh.dports = PortSet::Only(vec![PortRange::single(22)]);
        ssh.sources = vec!["10.77.9.0/24".parse().unwrap()];
        Firewall {
            managers: vec![Manager::Nftables],
            installed: vec![Manager::Nftables],
            policies: Default::default(),
            rules: vec![ssh],
            chains: vec![Chain {
                backend: Backend::Nftables,
                family: Family::Any,
                table: "inet filter".into(),
                name: "input".into(),
                hook: Some(Hook::Input),
                priority: 0,
                policy: Some(policy),
                rules: vec![0],
            }],
            ufw: None,
            firewalld: None,
            notes: vec![],
        }
    }

    fn src(a: &str) -> GuardSource {
        GuardSource {
            addr: a.parse().unwrap(),
            why: "test".into(),
        }
    }

    #[test]
    fn removing_the_ssh_rule_under_drop_locks_out() {
        let fw = base_chain(Action::Drop);
        assert!(check(&fw, &[src("10.77.9.10")], 22).is_ok());
        let mut sim = Sim::new(&fw);
        sim.remove(0);
        let e = check(&sim.fw, &[src("10.77.9.10")], 22).unwrap_err();
        assert_eq!(e.source.addr, "10.77.9.10".parse::<IpAddr>().unwrap());
        assert!(e.to_string().contains("policy"), "{e}");
        // An outside source was never admitted: refused even before any edit.
        assert!(check(&fw, &[src("203.0.113.5")], 22).is_err());
    }

    #[test]
    fn inserted_rule_is_evaluated_first() {
        let fw = base_chain(Action::Drop);
        let mut sim = Sim::new(&fw);
        let mut deny = fw.rules[0].clone();
        deny.action = Action::Drop;
        sim.insert(0, 0, deny);
        assert!(check(&sim.fw, &[src("10.77.9.10")], 22).is_err());
        let mut sim = Sim::new(&fw);
        let mut allow = fw.rules[0].clone();
        allow.sources = vec!["10.77.0.1/32".parse().unwrap()];
        sim.insert_before(0, allow);
        assert!(check(&sim.fw, &[src("10.77.0.1"), src("10.77.9.10")], 22).is_ok());
    }
}
