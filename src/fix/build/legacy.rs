//! `fw-close-port` on a host whose filter is iptables-legacy's own (rules loaded with
//! `iptables-legacy-restore`, no manager; leg1 in the lab): one rule inserted first in the
//! INPUT chain of each family that lets the port in,
//! `! -i lo -p PROTO --dport PORT -m conntrack --ctstate NEW -m comment --comment
//! rampart:fw-close-port -j DROP`, under a rollback timer that restores the saved tables
//! with `iptables-legacy-restore`.
//!
//! Why a drop first rather than deleting the allow rules: a port can be let in by a rule
//! that does not name it (`--ctstate DNAT -j ACCEPT` after a nat REDIRECT of another port
//! to it), and deleting a rule means rebuilding its text (ipset and multiport matches) from
//! the model. INPUT sees the port after prerouting's translation, so `--dport PORT` also
//! catches connections redirected to it. Loopback and established connections are left
//! alone; the drop is first, so nothing in the chain can let a new connection past it.
//!
//! The simulated firewall gets the same rule, and the port must be admitted from no sample
//! source afterwards (checked with the model's `admits`), or the fix refuses.

use std::net::IpAddr;

use super::{Built, Input, Step, outside_samples};
use crate::fix::FixError;
use crate::fix::catalogue::FixSpec;
use crate::fix::guard::Sim;
use crate::fix::params::Proto;
use crate::fix::rollback::RollbackKind;
use crate::ssh::MutatingCommand;
use crate::state::{
    Action, Backend, CtState, Direction, Family, Firewall, InterfaceMatch, Manager, Negatable,
    Origin, PortRange, PortSet, Rule,
};

/// The comment on every rule this fix adds: how a second run (and a person) finds them.
pub const COMMENT: &str = "rampart:fw-close-port";

/// The legacy filter table's INPUT chain of one family.
fn input_chain(fw: &Firewall, family: Family) -> Option<usize> {
    fw.chains.iter().position(|c| {
        c.backend == Backend::IptablesLegacy
            && c.table == "filter"
            && c.name == "INPUT"
            && c.family == family
    })
}

/// The sources the port is tried from: the world, the first address of every segment, the
/// guarded sources, and the first address of every source an allow rule for the port names.
fn samples(i: &Input<'_>, fw: &Firewall, culprits: &[usize]) -> Vec<IpAddr> {
    let mut v = outside_samples(i.inv, &[]);
    v.extend(i.sources.iter().map(|s| s.addr));
    for k in culprits {
        if let Some(r) = fw.rules.get(*k)
            && !r.sources_negated
        {
            v.extend(r.sources.iter().filter_map(|n| n.hosts().next()));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Whether the port is iptables-legacy's to close: a legacy INPUT chain was read, every
/// allow rule naming the port is a plain legacy rule (not ufw's in the legacy tables), and a
/// legacy rule names the port or lets it in from a sample source.
pub(super) fn owns(
    i: &Input<'_>,
    fw: &Firewall,
    culprits: &[usize],
    proto: Proto,
    port: u16,
) -> bool {
    if input_chain(fw, Family::V4).is_none() && input_chain(fw, Family::V6).is_none() {
        return false;
    }
    let legacy = |r: &Rule| r.manager == Manager::IptablesLegacy;
    if !culprits
        .iter()
        .all(|k| fw.rules.get(*k).is_some_and(legacy))
    {
        return false;
    }
    !culprits.is_empty()
        || samples(i, fw, culprits).iter().any(|a| {
            let v = fw.admits(*a, proto.protocol(), port);
            v.admitted() && fw.rule_of(&v).is_some_and(legacy)
        })
}

/// The drop rule as the model reads it back from `iptables-legacy-save`.
fn drop_rule(family: Family, proto: Proto, port: u16) -> Rule {
    let mut r = Rule::new(
        Direction::In,
        Action::Drop,
        Manager::IptablesLegacy,
        Origin {
            backend: Backend::IptablesLegacy,
            table: "filter".into(),
            chain: "INPUT".into(),
            line: None,
            handle: None,
        },
    );
    r.family = family;
    r.interface = Some(InterfaceMatch {
        name: "lo".into(),
        negated: true,
    });
    r.protocol = Some(proto.protocol());
    r.dports = PortSet::Only(vec![PortRange::single(port)]);
    r.ct_states = Some(Negatable::new(vec![CtState::New], false));
    r.comment = Some(COMMENT.to_string());
    r
}

/// `iptables-legacy -w -I INPUT 1 ! -i lo -p PROTO --dport PORT -m conntrack --ctstate NEW
/// -m comment --comment rampart:fw-close-port -j DROP` (ip6tables-legacy for IPv6).
fn drop_command(family: Family, proto: Proto, port: u16) -> MutatingCommand {
    let program = if family == Family::V6 {
        "ip6tables-legacy"
    } else {
        "iptables-legacy"
    };
    MutatingCommand::new("fix-iptables-legacy", program)
        .arg("-w")
        .arg("-I")
        .arg("INPUT")
        .arg("1")
        .arg("!")
        .arg("-i")
        .arg("lo")
        .arg("-p")
        .arg(proto.as_str())
        .arg("--dport")
        .port(port)
        .arg("-m")
        .arg("conntrack")
        .arg("--ctstate")
        .arg("NEW")
        .arg("-m")
        .arg("comment")
        .arg("--comment")
        .arg(COMMENT)
        .arg("-j")
        .arg("DROP")
}

pub(super) fn close_port(
    spec: &'static FixSpec,
    i: &Input<'_>,
    fw: &Firewall,
    culprits: &[usize],
    mut b: Built,
) -> Result<Built, FixError> {
    let port = i.params.port.unwrap_or(0);
    let proto = i.params.proto();
    let protocol = proto.protocol();
    let samples = samples(i, fw, culprits);
    let open: Vec<IpAddr> = samples
        .iter()
        .copied()
        .filter(|a| fw.admits(*a, protocol.clone(), port).admitted())
        .collect();
    if open.is_empty() {
        b.notes.push(format!(
            "{}: iptables-legacy lets {port}/{} in from none of {} sample sources: nothing to do",
            i.host.name,
            proto.as_str(),
            samples.len()
        ));
        return Ok(b);
    }
    let mut sim = Sim::new(fw);
    for (family, label) in [(Family::V4, "IPv4"), (Family::V6, "IPv6")] {
        let Some(first) = open.iter().find(|a| family.covers(**a)) else {
            continue;
        };
        let Some(chain) = input_chain(fw, family) else {
            let v = fw.admits(*first, protocol.clone(), port);
            return Err(i.precondition(
                spec,
                format!(
                    "{port}/{} is let in over {label} from {first} ({}), and no iptables-legacy \
                     {label} filter table was read: close it there by hand",
                    proto.as_str(),
                    v.path_label()
                ),
            ));
        };
        b.steps.push(Step {
            what: format!(
                "{}: drop new {label} connections to {port}/{} first in INPUT (not loopback; \
                 comment {COMMENT})",
                if family == Family::V6 {
                    "ip6tables-legacy"
                } else {
                    "iptables-legacy"
                },
                proto.as_str()
            ),
            command: drop_command(family, proto, port),
        });
        sim.insert(chain, 0, drop_rule(family, proto, port));
    }
    // What the model still lets in after the drop is something the drop cannot reach: a
    // prerouting translation to another port, most likely.
    for a in &samples {
        let v = sim.fw.admits(*a, protocol.clone(), port);
        if v.admitted() {
            let hint = match v.local_port {
                Some(p) if p != port => format!("it is delivered to port {p}: close {p} instead"),
                _ => "close it by hand".to_string(),
            };
            return Err(i.precondition(
                spec,
                format!(
                    "{port}/{} would stay open to {a} ({}): {hint}",
                    proto.as_str(),
                    v.path_label()
                ),
            ));
        }
    }
    b.notes.push(
        "iptables-legacy: the change is live; save it to /etc/iptables/rules.v4 (rules.v6) to \
         keep it over a reboot (rampart does not rewrite those files)"
            .into(),
    );
    b.notes.push(
        "the rollback restores the whole saved tables: a rule another tool (fail2ban) added \
         meanwhile goes too"
            .into(),
    );
    b.rollback = Some(RollbackKind::IptablesLegacy);
    b.simulated = Some(sim.fw);
    Ok(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::firewall::assemble::{Inputs, assemble};
    use crate::state::Probed;

    /// The rule the guard simulates is the rule the collector reads back after the command:
    /// the line as `iptables-legacy-save` prints the inserted rule, through the same parser.
    #[test]
    fn the_simulated_drop_is_what_iptables_legacy_save_reads_back() {
        let save = "*filter\n:INPUT ACCEPT [0:0]\n\
                    -A INPUT ! -i lo -p tcp -m tcp --dport 9100 -m conntrack --ctstate NEW \
                    -m comment --comment rampart:fw-close-port -j DROP\nCOMMIT\n";
        let fw = assemble(&Inputs {
            iptables_legacy: Probed::Ok(save),
            ..Inputs::default()
        });
        let read = fw
            .rules
            .iter()
            .find(|r| r.comment.as_deref() == Some(COMMENT))
            .unwrap();
        let ours = drop_rule(Family::V4, Proto::Tcp, 9100);
        assert_eq!(read.action, ours.action);
        assert_eq!(read.protocol, ours.protocol);
        assert_eq!(read.dports, ours.dports);
        assert_eq!(read.interface, ours.interface);
        assert_eq!(read.ct_states, ours.ct_states);
        assert_eq!(read.manager, ours.manager);
        assert!(read.unmodelled.is_empty(), "{read:?}");
        // And the command says the same words.
        let c = drop_command(Family::V4, Proto::Tcp, 9100).render(false);
        assert!(
            c.contains(
                "'!' '-i' 'lo' '-p' 'tcp' '--dport' '9100' '-m' 'conntrack' '--ctstate' 'NEW'"
            ),
            "{c}"
        );
        // Bad input never panics: port 0 and UDP build too.
        let c = drop_command(Family::V6, Proto::Udp, 0).render(false);
        assert!(c.starts_with("'ip6tables-legacy'"), "{c}");
    }
}
