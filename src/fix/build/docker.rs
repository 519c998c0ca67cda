//! `docker-user-restrict`: a published container port that Docker's NAT lets in from
//! everywhere is closed to everyone but the allowed segments, in the `DOCKER-USER` chain.
//!
//! Why DOCKER-USER and not the publish binding: Docker evaluates DOCKER-USER before its own
//! FORWARD rules and never rewrites it (it only creates it when missing), so the rules
//! survive container restarts and Docker's reloads; they are two inserted rules that a
//! rollback deletes exactly, without touching the container. Re-binding the publish
//! (`-p 10.0.0.5:5432:5432`) means re-creating the container, with its owner's compose file:
//! not a change to make from a console at 3 a.m.
//!
//! The rules match the connection's original destination port (`-m conntrack
//! --ctorigdstport`), which DNAT does not change. The allowed segments and the containers'
//! own networks (so containers keep reaching each other) RETURN to Docker's rules; every
//! other source is dropped. No interface is named: which one a packet arrives on is not
//! something the model can always know, and a rule it cannot decide would keep the finding.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::{Built, Expect, Input, Step, built};
use crate::fix::FixError;
use crate::fix::catalogue::FixSpec;
use crate::fix::guard::Sim;
use crate::fix::rollback::RollbackKind;
use crate::posture::checks::{ADMIN_SEGMENTS, allowed_segments};
use crate::ssh::MutatingCommand;
use crate::state::{
    Action, Backend, Direction, Family, Manager, Origin, PortRange, PortSet, Probed, Protocol, Rule,
};

/// The comment on every rule this fix adds: how the rollback and a second run find them.
pub const COMMENT: &str = "rampart-docker-user-restrict";

fn iptables(backend: Backend) -> &'static str {
    match backend {
        Backend::IptablesLegacy => "iptables-legacy",
        _ => "iptables-nft",
    }
}

fn rule(backend: Backend, src: Option<IpNet>, proto: &Protocol, port: u16, action: Action) -> Rule {
    let mut r = Rule::new(
        Direction::In,
        action,
        match backend {
            Backend::IptablesLegacy => Manager::IptablesLegacy,
            _ => Manager::IptablesNft,
        },
        Origin {
            backend,
            table: "filter".into(),
            chain: "DOCKER-USER".into(),
            line: None,
            handle: None,
        },
    );
    r.family = Family::V4;
    r.protocol = Some(proto.clone());
    r.ct_orig_dports = PortSet::Only(vec![PortRange::single(port)]);
    if let Some(n) = src {
        r.sources = vec![n];
    }
    r.comment = Some(COMMENT.to_string());
    r
}

pub(super) fn docker_user_restrict(
    spec: &'static FixSpec,
    i: &Input<'_>,
) -> Result<Built, FixError> {
    let fw = i.firewall(spec)?;
    let port = i.params.port.unwrap_or(0);
    let proto = i.params.proto();
    let protocol = proto.protocol();
    let ssh = i.ssh_port();
    let mut b = built(
        vec![
            Expect::FindingsGone {
                checks: &["FW-CONTAINER-BYPASS", "SEG-DB-EXPOSED", "FW-EXPOSED-PORT"],
                port: Some(port),
            },
            Expect::SshAdmitted { port: ssh },
        ],
        ssh,
    );
    let Probed::Ok(containers) = &i.state.containers else {
        return Err(i.precondition(spec, "the host's containers could not be read"));
    };
    let publishers: Vec<String> = containers
        .iter()
        .filter(|c| c.running)
        .filter(|c| {
            c.published
                .iter()
                .any(|p| p.host_port == port && p.protocol == protocol)
        })
        .map(|c| c.label())
        .collect();
    if publishers.is_empty() {
        return Err(i.precondition(
            spec,
            format!("no running container publishes {port}/{}", proto.as_str()),
        ));
    }
    let Some(chain) = fw.chains.iter().position(|c| {
        c.name == "DOCKER-USER"
            && c.table == "filter"
            && matches!(c.family, Family::V4 | Family::Any)
            && matches!(c.backend, Backend::IptablesNft | Backend::IptablesLegacy)
    }) else {
        return Err(i.precondition(
            spec,
            "no DOCKER-USER chain in the IPv4 filter table (Docker runs without its iptables \
             rules, or another engine publishes the port): bind the publish to a private \
             address instead",
        ));
    };
    let backend = fw.chains[chain].backend;

    // Who may still connect: the segment asked for, else what the roles allow for the port,
    // else the administrator segments.
    let segs: BTreeSet<String> = match &i.params.segment {
        Some(s) => [s.clone()].into(),
        None => match allowed_segments(i.inv, i.host, port) {
            Some(Some(s)) => s,
            Some(None) => {
                return Err(i.precondition(
                    spec,
                    format!("the host's roles allow {port} from anywhere: nothing to restrict"),
                ));
            }
            None => ADMIN_SEGMENTS.iter().map(|s| s.to_string()).collect(),
        },
    };
    let mut nets: Vec<IpNet> = Vec::new();
    for s in &segs {
        let Some(n) = i.inv.segments.get(s) else {
            return Err(FixError::Param {
                fix: spec.id.into(),
                key: "segment".into(),
                message: format!("no segment {s:?} in the inventory"),
            });
        };
        nets.extend(n.iter().filter(|n| matches!(n, IpNet::V4(_))).copied());
    }

    // Containers keep reaching each other: their own networks go on to Docker's rules.
    let mut inner: Vec<IpNet> = containers
        .iter()
        .flat_map(|c| c.networks.iter().filter_map(|n| n.subnet()))
        .filter(|n| matches!(n, IpNet::V4(_)))
        .collect();
    inner.sort();
    inner.dedup();
    let allowed: Vec<(IpNet, String)> = nets
        .iter()
        .map(|n| (*n, segs.iter().cloned().collect::<Vec<_>>().join(", ")))
        .chain(
            inner
                .iter()
                .map(|n| (*n, "the containers' own network".to_string())),
        )
        .collect();

    // Already in place: our drop for this port.
    let done = fw.chains[chain]
        .rules
        .iter()
        .filter_map(|k| fw.rules.get(*k))
        .any(|r| {
            r.comment.as_deref() == Some(COMMENT)
                && r.ct_orig_dports.contains(port)
                && r.action == Action::Drop
        });
    if done {
        b.notes.push(format!(
            "{}: DOCKER-USER already restricts {port}/{}: nothing to do",
            i.host.name,
            proto.as_str()
        ));
        return Ok(b);
    }

    let program = iptables(backend);
    let mut sim = Sim::new(fw);
    // One inserted rule: `-I DOCKER-USER POS [-s NET] MATCH -j RETURN|DROP`, in the plan and
    // in the simulated ruleset alike.
    let mut insert = |what: String, src: Option<IpNet>, action: Action| {
        let pos = b.steps.len() + 1;
        let mut c = MutatingCommand::new("docker-user-restrict", program)
            .arg("-w")
            .arg("-I")
            .arg("DOCKER-USER")
            .number(pos as u64);
        if let Some(n) = src {
            c = c.arg("-s").net(n);
        }
        let c = c
            .arg("-p")
            .arg(proto.as_str())
            .arg("-m")
            .arg("conntrack")
            .arg("--ctorigdstport")
            .port(port)
            .arg("--ctdir")
            .arg("ORIGINAL")
            .arg("-m")
            .arg("comment")
            .arg("--comment")
            .arg(COMMENT)
            .arg("-j")
            .arg(if action == Action::Drop {
                "DROP"
            } else {
                "RETURN"
            });
        b.steps.push(Step { what, command: c });
        sim.insert(chain, pos - 1, rule(backend, src, &protocol, port, action));
    };
    // The allowed sources first, then the drop after them: never a moment when the app
    // segment is cut off.
    for (n, why) in &allowed {
        insert(
            format!(
                "DOCKER-USER: let {n} ({why}) reach published {port}/{} (on to Docker's rules)",
                proto.as_str()
            ),
            Some(*n),
            Action::Return,
        );
    }
    insert(
        format!(
            "DOCKER-USER: drop everyone else's connections to published {port}/{}",
            proto.as_str()
        ),
        None,
        Action::Drop,
    );
    b.notes.push(format!(
        "published by {}; allowed: {} ({})",
        publishers.join(", "),
        segs.iter().cloned().collect::<Vec<_>>().join(", "),
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    b.rollback = Some(RollbackKind::DockerUser);
    b.simulated = Some(sim.fw);
    Ok(b)
}
