//! Firewall fixes on a firewalld host go through `firewall-cmd`: the runtime first, the
//! same change with `--permanent` only after a fresh connection re-verified it (the plan's
//! `persist` steps), all under a rollback timer that restores /etc/firewalld and reloads.
//!
//! `fw-restrict-to-segment`: the zone whose rules admit the port from too far is bound to
//! sources; its sources outside the segment are replaced by the segment's networks. The
//! simulated firewall gets the same edit in firewalld's zone dispatch chains (`ip saddr NET
//! goto filter_IN_ZONE` in every `*_ZONES` chain), so the lockout guard judges the new
//! dispatch: a change that sends the admin segment to another zone is refused.

use ipnet::IpNet;

use super::{Built, Input, Step, outside_samples};
use crate::firewall::firewalld::{Firewalld, Zone};
use crate::fix::FixError;
use crate::fix::catalogue::FixSpec;
use crate::fix::guard::Sim;
use crate::fix::rollback::RollbackKind;
use crate::posture::checks::describe_rule;
use crate::ssh::{MutatingCommand, SafeName};
use crate::state::{Action, Family, Firewall};

/// `firewall-cmd [--permanent] --zone ZONE VERB NET`.
fn zone_source(
    zone: &SafeName,
    verb: &'static str,
    net: IpNet,
    permanent: bool,
) -> MutatingCommand {
    let c = MutatingCommand::new("fix-firewalld", "firewall-cmd");
    let c = if permanent { c.arg("--permanent") } else { c };
    c.arg("--zone").name_arg(zone).arg(verb).net(net)
}

/// The zone a firewalld rule belongs to, from its chain's name.
fn zone_of<'f>(fwd: &'f Firewalld, fw: &Firewall, k: usize) -> Option<&'f Zone> {
    fw.rules
        .get(k)
        .and_then(|r| fwd.zone_of_chain(&r.origin.chain))
}

/// Edits firewalld's dispatch chains in the simulation: sources `removes` no longer go to
/// `zone`, `adds` do (next to the zone's other sources, which keeps firewalld's order).
fn simulate(sim: &mut Sim, zone: &str, removes: &[IpNet], adds: &[IpNet]) {
    let targets: Vec<String> = crate::firewall::firewalld::ZONE_CHAIN_PREFIXES
        .iter()
        .map(|p| format!("{p}{zone}"))
        .collect();
    let chains: Vec<usize> = sim
        .fw
        .chains
        .iter()
        .enumerate()
        .filter(|(_, c)| c.table.ends_with(" firewalld") && c.name.ends_with("_ZONES"))
        .map(|(i, _)| i)
        .collect();
    for ci in chains {
        let ours: Vec<usize> = sim.fw.chains[ci]
            .rules
            .iter()
            .copied()
            .filter(|k| {
                sim.fw.rules.get(*k).is_some_and(|r| {
                    matches!(&r.action, Action::Goto(t) | Action::Jump(t) if targets.contains(t))
                        && r.sources.len() == 1
                        && !r.sources_negated
                })
            })
            .collect();
        let Some(&template) = ours.first() else {
            continue;
        };
        let pos = sim.fw.chains[ci]
            .rules
            .iter()
            .position(|k| *k == template)
            .unwrap_or(0);
        for n in adds {
            let mut r = sim.fw.rules[template].clone();
            r.sources = vec![*n];
            r.family = if n.addr().is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            sim.insert(ci, pos, r);
        }
        for k in ours {
            if sim.fw.rules[k]
                .sources
                .first()
                .is_some_and(|s| removes.contains(s))
                && let Some(c) = sim.fw.chains.get_mut(ci)
            {
                c.rules.retain(|x| *x != k);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn restrict_to_segment(
    spec: &'static FixSpec,
    i: &Input<'_>,
    fw: &Firewall,
    culprits: &[usize],
    seg: &[IpNet],
    seg_name: &str,
    mut b: Built,
) -> Result<Built, FixError> {
    let port = i.params.port.unwrap_or(0);
    let proto = i.params.proto();
    let Some(fwd) = &fw.firewalld else {
        return Err(i.precondition(
            spec,
            "the rules are firewalld's, but its zones could not be read (firewall-cmd; see the \
             firewall's notes): change them with firewall-cmd by hand",
        ));
    };
    let mut zones: Vec<&Zone> = Vec::new();
    for &k in culprits {
        let Some(z) = zone_of(fwd, fw, k) else {
            return Err(i.precondition(
                spec,
                format!(
                    "rule {} is firewalld's but belongs to no zone rampart read; change it with \
                     firewall-cmd by hand",
                    describe_rule(&fw.rules[k])
                ),
            ));
        };
        if !zones.iter().any(|x| x.name == z.name) {
            zones.push(z);
        }
    }
    let mut sim = Sim::new(fw);
    let mut kept_others = Vec::new();
    for z in zones {
        if z.sources.is_empty() {
            return Err(i.precondition(
                spec,
                format!(
                    "{port}/{} is let in by zone {} ({}), which is bound to interfaces, not \
                     sources: narrowing it needs a zone of its own for {seg_name}; do it with \
                     firewall-cmd by hand",
                    proto.as_str(),
                    z.name,
                    if z.interfaces.is_empty() {
                        "the default zone".to_string()
                    } else {
                        z.interfaces.join(" ")
                    }
                ),
            ));
        }
        let name = SafeName::new(&z.name)
            .map_err(|e| i.precondition(spec, format!("zone name {:?}: {e}", z.name)))?;
        let mut current: Vec<IpNet> = Vec::new();
        for s in &z.sources {
            let n: IpNet = s.parse().map_err(|_| {
                i.precondition(
                    spec,
                    format!(
                        "zone {} has the source {s:?}, which is not an address or network \
                         (an ipset or a MAC): change it with firewall-cmd by hand",
                        z.name
                    ),
                )
            })?;
            current.push(n);
        }
        let removes: Vec<IpNet> = current
            .iter()
            .copied()
            .filter(|n| !seg.iter().any(|s| s.contains(n)))
            .collect();
        // What the zone keeps must cover the segment (a wide source going away may have
        // been what covered it).
        let adds: Vec<IpNet> = seg
            .iter()
            .copied()
            .filter(|s| {
                !current
                    .iter()
                    .any(|n| !removes.contains(n) && n.contains(s))
            })
            .collect();
        // A source bound to another zone cannot be added (firewalld: ZONE_CONFLICT).
        for a in &adds {
            if let Some(other) = fwd
                .zones
                .iter()
                .find(|o| o.name != z.name && o.sources.iter().any(|s| s == &a.to_string()))
            {
                return Err(
                    i.precondition(spec, format!("{a} is already bound to zone {}", other.name))
                );
            }
        }
        if removes.is_empty() && adds.is_empty() {
            continue;
        }
        let others: Vec<&String> = z
            .services
            .iter()
            .filter(|s| {
                fwd.service_ports(s)
                    .iter()
                    .all(|(_, p)| p.as_deref() != Some(&format!("{port}/{}", proto.as_str())))
            })
            .collect();
        if !others.is_empty() {
            kept_others.push(format!(
                "zone {} also admits {}: those become reachable only from {seg_name} too",
                z.name,
                others
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // The segment first, then the wide sources go: never a moment without the segment.
        for permanent in [false, true] {
            let steps = if permanent {
                &mut b.persist
            } else {
                &mut b.steps
            };
            let how = if permanent { "permanent" } else { "runtime" };
            for n in &adds {
                steps.push(Step {
                    what: format!("{how}: bind {n} ({seg_name}) to zone {}", z.name),
                    command: zone_source(&name, "--add-source", *n, permanent),
                });
            }
            for n in &removes {
                steps.push(Step {
                    what: format!("{how}: unbind {n} from zone {}", z.name),
                    command: zone_source(&name, "--remove-source", *n, permanent),
                });
            }
        }
        simulate(&mut sim, &z.name, &removes, &adds);
    }
    if b.steps.is_empty() {
        b.notes.push(format!(
            "{}: the firewalld zones that admit {port}/{} are bound to {seg_name} only already: \
             nothing to do",
            i.host.name,
            proto.as_str()
        ));
        return Ok(b);
    }
    b.notes.extend(kept_others);
    b.notes.push(
        "firewalld: runtime first; the same change with --permanent only after a fresh \
         connection re-verified it, before the rollback timer is cancelled"
            .into(),
    );
    b.rollback = Some(RollbackKind::Firewalld);
    for src in outside_samples(i.inv, seg) {
        let v = sim.fw.admits(src, proto.protocol(), port);
        if v.admitted() {
            return Err(i.precondition(
                spec,
                format!(
                    "{port}/{} would stay open to {src} ({}): change it with firewall-cmd by hand",
                    proto.as_str(),
                    v.path_label()
                ),
            ));
        }
    }
    b.simulated = Some(sim.fw);
    Ok(b)
}
