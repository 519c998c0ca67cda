//! Builds each fix's commands from the host's typed state and the fix's typed parameters:
//! the difference between what is and what should be, so a fix that is already in place
//! builds no command at all (idempotence). Firewall fixes also edit a simulated copy of the
//! normalized firewall ([`super::guard::Sim`]) exactly as their commands will edit the real
//! one, for the lockout guard. Pure: no I/O.
//!
//! Every command is a [`MutatingCommand`]: a static program, static arguments and typed
//! values (IP, CIDR, port, number, checked name); file contents travel on stdin.

use std::net::IpAddr;

mod docker;
mod firewalld;
mod legacy;
mod stack;

use ipnet::IpNet;

use super::FixError;
use super::catalogue::FixSpec;
use super::guard::{GuardSource, Sim};
use super::params::{Params, Proto};
use super::rollback::RollbackKind;
use crate::inventory::{Host, Inventory};
use crate::posture::Finding;
use crate::posture::checks::{ADMIN_SEGMENTS, CheckOptions, check_host, describe_rule};
use crate::ssh::{MutatingCommand, SafeName};
use crate::state::{
    Action, Backend, Chain, Direction, Family, Firewall, Hook, HostState, Manager, Origin, Policy,
    PortRange, PortSet, Probed, Rule,
};

/// One command of a fix, with what it does in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub command: MutatingCommand,
}

/// What verification must see after re-collecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No finding of these checks on the host (with `port` when given and the finding
    /// names one).
    FindingsGone {
        checks: &'static [&'static str],
        port: Option<u16>,
    },
    /// The address is (or is not) in the jail's banned list.
    Banned {
        jail: String,
        ip: IpAddr,
        banned: bool,
    },
    /// SSH from the guarded sources is admitted by the host's real, new firewall.
    SshAdmitted { port: u16 },
}

/// A fix's commands for one host, before the plan wraps them with the rollback timer.
#[derive(Debug, Clone)]
pub struct Built {
    pub steps: Vec<Step>,
    pub rollback: Option<RollbackKind>,
    pub notes: Vec<String>,
    pub expect: Vec<Expect>,
    /// The firewall the steps leave behind, for the lockout guard.
    pub simulated: Option<Firewall>,
    pub ssh_port: u16,
    /// Run only after a fresh connection re-verified the change, before the rollback timer
    /// is cancelled: what makes a runtime change permanent (firewalld's `--permanent`).
    pub persist: Vec<Step>,
}

/// What the host looks like to a builder.
pub struct Input<'a> {
    pub inv: &'a Inventory,
    pub host: &'a Host,
    pub state: &'a HostState,
    pub params: &'a Params,
    pub sources: &'a [GuardSource],
    pub now: i64,
}

impl<'a> Input<'a> {
    fn ssh_port(&self) -> u16 {
        match &self.state.sshd {
            Probed::Ok(s) => s.ports.first().copied().unwrap_or(self.host.port),
            _ => self.host.port,
        }
    }

    fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        check_host(
            self.inv,
            self.host,
            self.state,
            &CheckOptions::new(self.now),
            &mut out,
        );
        out
    }

    fn precondition(&self, spec: &FixSpec, reason: impl Into<String>) -> FixError {
        FixError::Precondition {
            host: self.host.name.clone(),
            fix: spec.id.to_string(),
            reason: reason.into(),
        }
    }

    fn firewall(&self, spec: &FixSpec) -> Result<&'a Firewall, FixError> {
        match &self.state.firewall {
            Probed::Ok(fw) => Ok(fw),
            other => Err(self.precondition(
                spec,
                format!("the firewall could not be read ({})", other.status_label()),
            )),
        }
    }
}

fn built(expect: Vec<Expect>, ssh_port: u16) -> Built {
    Built {
        steps: Vec::new(),
        rollback: None,
        notes: Vec::new(),
        expect,
        simulated: None,
        ssh_port,
        persist: Vec::new(),
    }
}

/// Builds the commands of `spec` for the host.
pub fn build(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    match spec.id {
        "fw-enable-default-deny" => enable_default_deny(spec, i),
        "fw-close-port" => close_port(spec, i),
        "fw-restrict-to-segment" => restrict_to_segment(spec, i),
        "f2b-start" => f2b_start(spec, i),
        "f2b-enable-sshd-jail" => f2b_enable_sshd_jail(spec, i),
        "f2b-ban-ip" => f2b_ban(spec, i, true),
        "f2b-unban-ip" => f2b_ban(spec, i, false),
        "ssh-disable-password-auth" => sshd_dropin(spec, i, SshdFix::Password),
        "ssh-disable-root-login" => sshd_dropin(spec, i, SshdFix::RootLogin),
        "nginx-add-rate-limit" => nginx_rate_limit(spec, i),
        "nginx-add-hsts" => nginx_hsts(spec, i),
        "vpn-restart-interface" => vpn_restart(spec, i),
        "pg-enable-tls" => stack::pg_enable_tls(spec, i),
        "redis-bind-private" => stack::redis_bind_private(spec, i),
        "docker-user-restrict" => docker::docker_user_restrict(spec, i),
        other => Err(FixError::UnknownFix(other.to_string())),
    }
}

// ---------------------------------------------------------------------------------------
// Firewall

/// The networks SSH is opened to before a default deny: the inventory's administrator
/// segments, then every guarded source not already inside one.
fn ssh_allow_nets(i: &Input<'_>) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = ADMIN_SEGMENTS
        .iter()
        .filter_map(|s| i.inv.segments.get(*s))
        .flatten()
        .copied()
        .collect();
    for s in i.sources {
        if !nets.iter().any(|n| n.contains(&s.addr)) {
            nets.push(IpNet::from(s.addr));
        }
    }
    nets.dedup();
    nets
}

fn tcp_rule(origin: Origin, manager: Manager, net: Option<IpNet>, proto: Proto, port: u16) -> Rule {
    let mut r = Rule::new(Direction::In, Action::Accept, manager, origin);
    r.protocol = Some(proto.protocol());
    r.dports = PortSet::Only(vec![PortRange::single(port)]);
    if let Some(n) = net {
        r.family = if n.addr().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        r.sources = vec![n];
    }
    r
}

fn ufw_allow_from(net: IpNet, proto: Proto, port: u16, prepend: bool) -> MutatingCommand {
    let c = MutatingCommand::new("fix-ufw", "ufw");
    let c = if prepend { c.arg("prepend") } else { c };
    let c = c.arg("allow").arg("proto");
    let c = match proto {
        Proto::Tcp => c.arg("tcp"),
        Proto::Udp => c.arg("udp"),
    };
    c.arg("from")
        .net(net)
        .arg("to")
        .arg("any")
        .arg("port")
        .port(port)
}

/// The ufw user chains (v4, v6) that hold the user's rules, when ufw is active.
fn ufw_user_chains(fw: &Firewall) -> Vec<usize> {
    fw.chains
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name == "ufw-user-input" || c.name == "ufw6-user-input")
        .map(|(i, _)| i)
        .collect()
}

fn chain_family(c: &Chain) -> Family {
    if c.name.starts_with("ufw6") {
        Family::V6
    } else {
        c.family
    }
}

fn fits(family: Family, net: &IpNet) -> bool {
    family.covers(net.addr())
}

fn enable_default_deny(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let fw = i.firewall(spec)?;
    let port = i.ssh_port();
    let mut b = built(
        vec![
            Expect::FindingsGone {
                checks: spec.resolves,
                port: None,
            },
            Expect::SshAdmitted { port },
        ],
        port,
    );
    let fires = i
        .findings()
        .iter()
        .any(|f| spec.resolves.contains(&f.check.as_str()));
    if !fires {
        b.notes.push(format!(
            "{}: the firewall already filters incoming traffic by default: nothing to do",
            i.host.name
        ));
        return Ok(b);
    }
    let nets = ssh_allow_nets(i);
    let mut sim = Sim::new(fw);
    let ufw_installed = fw.installed.contains(&Manager::Ufw) || fw.ufw.is_some();
    if ufw_installed {
        let active = fw.ufw.as_ref().is_some_and(|u| u.active);
        let user_chains = if active {
            ufw_user_chains(fw)
        } else {
            Vec::new()
        };
        let synthetic = if user_chains.is_empty() {
            // ufw will build its chains on enable; the model sees them as one chain with a
            // drop policy holding the user rules rampart adds first.
            Some(sim.add_chain(Chain {
                backend: Backend::IptablesNft,
                family: Family::Any,
                table: "filter".into(),
                name: "ufw (after enable, simulated)".into(),
                hook: Some(Hook::Input),
                priority: 0,
                policy: Some(Action::Drop),
                rules: Vec::new(),
            }))
        } else {
            None
        };
        for (k, net) in nets.iter().enumerate() {
            b.steps.push(Step {
                what: format!("allow SSH {port}/tcp from {net} (first in ufw's rules)"),
                command: ufw_allow_from(*net, Proto::Tcp, port, true),
            });
            let origin = Origin {
                backend: Backend::IptablesNft,
                table: "filter".into(),
                chain: "ufw-user-input".into(),
                line: None,
                handle: None,
            };
            let rule = tcp_rule(origin, Manager::Ufw, Some(*net), Proto::Tcp, port);
            match synthetic {
                Some(c) => {
                    sim.insert(c, k, rule);
                }
                None => {
                    for &c in &user_chains {
                        if fits(chain_family(&sim.fw.chains[c]), net) {
                            sim.insert(c, k, rule.clone());
                        }
                    }
                }
            }
        }
        b.steps.push(Step {
            what: "deny incoming by default".into(),
            command: MutatingCommand::new("fix-ufw", "ufw")
                .arg("default")
                .arg("deny")
                .arg("incoming"),
        });
        if synthetic.is_none() {
            // Active ufw: its INPUT base chains get the drop policy.
            let bases: Vec<usize> = sim
                .fw
                .chains
                .iter()
                .enumerate()
                .filter(|(_, c)| c.hook == Some(Hook::Input) && c.table == "filter")
                .map(|(k, _)| k)
                .collect();
            for c in bases {
                sim.set_policy(c, Action::Drop);
            }
        }
        if !active {
            b.steps.push(Step {
                what: "enable ufw (and at boot)".into(),
                command: MutatingCommand::new("fix-ufw", "ufw")
                    .arg("--force")
                    .arg("enable"),
            });
        }
        b.notes.push(
            "ufw's own before.rules (loopback, established, ICMP) are not simulated; the \
             rollback timer covers what the model cannot see"
                .into(),
        );
        b.rollback = Some(RollbackKind::Ufw);
    } else if fw.installed.contains(&Manager::Nftables) {
        nft_default_deny(fw, &nets, port, &mut sim, &mut b);
        b.rollback = Some(RollbackKind::Nft);
    } else {
        return Err(i.precondition(spec, "neither ufw nor nft is installed"));
    }
    b.simulated = Some(sim.fw);
    Ok(b)
}

/// nft table family and name from the model's "inet filter".
fn nft_table(table: &str) -> Option<(SafeName, SafeName)> {
    let (fam, name) = table.split_once(' ')?;
    if !matches!(fam, "inet" | "ip" | "ip6") {
        return None;
    }
    Some((SafeName::new(fam).ok()?, SafeName::new(name).ok()?))
}

fn nft(fam: &SafeName, table: &SafeName, chain: &SafeName, verb: &'static str) -> MutatingCommand {
    MutatingCommand::new("fix-nft", "nft")
        .arg(verb)
        .arg("rule")
        .name_arg(fam)
        .name_arg(table)
        .name_arg(chain)
}

fn nft_saddr(c: MutatingCommand, net: IpNet) -> MutatingCommand {
    let c = if net.addr().is_ipv4() {
        c.arg("ip")
    } else {
        c.arg("ip6")
    };
    c.arg("saddr").net(net)
}

fn nft_proto(c: MutatingCommand, proto: Proto, port: u16) -> MutatingCommand {
    let c = match proto {
        Proto::Tcp => c.arg("tcp"),
        Proto::Udp => c.arg("udp"),
    };
    c.arg("dport").port(port).arg("accept")
}

fn nft_default_deny(fw: &Firewall, nets: &[IpNet], port: u16, sim: &mut Sim, b: &mut Built) {
    let existing = fw.chains.iter().enumerate().find(|(_, c)| {
        c.backend == Backend::Nftables
            && c.hook == Some(Hook::Input)
            && nft_table(&c.table).is_some()
            && SafeName::new(&c.name).is_ok()
    });
    let (fam, table, chain, sim_chain) = match existing {
        Some((k, c)) => {
            let Some((fam, table)) = nft_table(&c.table) else {
                return;
            };
            let Ok(chain) = SafeName::new(&c.name) else {
                return;
            };
            (fam, table, chain, k)
        }
        None => {
            let (Ok(fam), Ok(table), Ok(chain)) = (
                SafeName::new("inet"),
                SafeName::new("rampart"),
                SafeName::new("input"),
            ) else {
                return;
            };
            b.steps.push(Step {
                what: "add table inet rampart".into(),
                command: MutatingCommand::new("fix-nft", "nft")
                    .arg("add")
                    .arg("table")
                    .arg("inet")
                    .arg("rampart"),
            });
            b.steps.push(Step {
                what: "add its input chain (accepting until the rules are in)".into(),
                command: MutatingCommand::new("fix-nft", "nft")
                    .arg("add")
                    .arg("chain")
                    .arg("inet")
                    .arg("rampart")
                    .arg("input")
                    .arg("{")
                    .arg("type")
                    .arg("filter")
                    .arg("hook")
                    .arg("input")
                    .arg("priority")
                    .arg("0")
                    .arg(";")
                    .arg("policy")
                    .arg("accept")
                    .arg(";")
                    .arg("}"),
            });
            let k = sim.add_chain(Chain {
                backend: Backend::Nftables,
                family: Family::Any,
                table: "inet rampart".into(),
                name: "input".into(),
                hook: Some(Hook::Input),
                priority: 0,
                policy: Some(Action::Accept),
                rules: Vec::new(),
            });
            (fam, table, chain, k)
        }
    };
    // `insert` puts a rule first: insert in reverse so the chain starts with established,
    // loopback, then the SSH allows in order.
    for net in nets.iter().rev() {
        b.steps.push(Step {
            what: format!("allow SSH {port}/tcp from {net} (first in the chain)"),
            command: nft_proto(
                nft_saddr(nft(&fam, &table, &chain, "insert"), *net),
                Proto::Tcp,
                port,
            ),
        });
        let origin = Origin {
            backend: Backend::Nftables,
            table: format!("{} {}", fam.as_str(), table.as_str()),
            chain: chain.as_str().to_string(),
            line: None,
            handle: None,
        };
        sim.insert(
            sim_chain,
            0,
            tcp_rule(origin, Manager::Nftables, Some(*net), Proto::Tcp, port),
        );
    }
    b.steps.push(Step {
        what: "accept loopback".into(),
        command: nft(&fam, &table, &chain, "insert")
            .arg("iif")
            .arg("lo")
            .arg("accept"),
    });
    b.steps.push(Step {
        what: "accept established and related traffic".into(),
        command: nft(&fam, &table, &chain, "insert")
            .arg("ct")
            .arg("state")
            .arg("established,related")
            .arg("accept"),
    });
    b.steps.push(Step {
        what: "drop incoming by default".into(),
        command: MutatingCommand::new("fix-nft", "nft")
            .arg("chain")
            .name_arg(&fam)
            .name_arg(&table)
            .name_arg(&chain)
            .arg("{")
            .arg("policy")
            .arg("drop")
            .arg(";")
            .arg("}"),
    });
    sim.set_policy(sim_chain, Action::Drop);
    b.notes.push(
        "nftables: the change is live; persist it in /etc/nftables.conf (rampart does not \
         rewrite that file)"
            .into(),
    );
}

/// The allow rules that let `proto`/`port` in, port-specific ones only (not `iif lo
/// accept` or `ct state established accept`).
fn port_rules(fw: &Firewall, proto: Proto, port: u16) -> Vec<usize> {
    fw.allow_rules()
        .filter(|(_, r)| {
            r.protocol.as_ref() == Some(&proto.protocol())
                && !r.dports.is_any()
                && r.dports.contains(port)
        })
        .filter(|(k, _)| fw.chains.iter().any(|c| c.rules.contains(k)))
        .map(|(k, _)| k)
        .collect()
}

/// How rampart can rewrite one rule.
enum Editable {
    /// A ufw user rule: `ufw delete ACTION proto P [from NET] to any port N`.
    Ufw { source: Option<IpNet>, limit: bool },
    /// An nftables rule with a handle.
    Nft {
        fam: SafeName,
        table: SafeName,
        chain: SafeName,
        handle: u64,
    },
}

fn editable(r: &Rule, port: u16) -> Result<Editable, String> {
    let simple = r.dports == PortSet::Only(vec![PortRange::single(port)])
        && r.sports.is_any()
        && r.destinations.is_empty()
        && r.interface.is_none()
        && !r.sources_negated
        && r.sources.len() <= 1
        && r.unmodelled.is_empty()
        && r.ct_states.is_none()
        && r.ct_orig_dports.is_any();
    if !simple {
        return Err(format!(
            "rule {} is not a simple one-port rule rampart rewrites; change it by hand",
            describe_rule(r)
        ));
    }
    let ufw_chain = r.origin.chain == "ufw-user-input" || r.origin.chain == "ufw6-user-input";
    if ufw_chain
        && matches!(
            r.origin.backend,
            Backend::IptablesNft | Backend::IptablesLegacy
        )
    {
        return Ok(Editable::Ufw {
            source: r.sources.first().copied(),
            limit: r.action == Action::Limit,
        });
    }
    if r.origin.backend == Backend::Nftables
        && r.manager == Manager::Nftables
        && let (Some((fam, table)), Ok(chain), Some(handle)) = (
            nft_table(&r.origin.table),
            SafeName::new(&r.origin.chain),
            r.origin.handle,
        )
    {
        return Ok(Editable::Nft {
            fam,
            table,
            chain,
            handle,
        });
    }
    Err(format!(
        "rule {} is managed by {}; rampart rewrites ufw and nftables rules only (and closes \
         ports of a host whose filter is iptables-legacy's own with fw-close-port)",
        describe_rule(r),
        r.manager.label()
    ))
}

fn ufw_delete(source: Option<IpNet>, limit: bool, proto: Proto, port: u16) -> MutatingCommand {
    let c = MutatingCommand::new("fix-ufw", "ufw")
        .arg("delete")
        .arg(if limit { "limit" } else { "allow" })
        .arg("proto")
        .arg(proto.as_str());
    let c = match source {
        Some(n) => c.arg("from").net(n),
        None => c,
    };
    c.arg("to").arg("any").arg("port").port(port)
}

fn rollback_for(
    spec: &FixSpec,
    i: &Input<'_>,
    kinds: &[RollbackKind],
) -> Result<Option<RollbackKind>, FixError> {
    let mut k: Vec<RollbackKind> = kinds.to_vec();
    k.dedup();
    match k.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(i.precondition(
            spec,
            "the rules to change belong to both ufw and nftables; fix them one manager at a time by hand",
        )),
    }
}

fn push_unique(steps: &mut Vec<Step>, step: Step) {
    if !steps.iter().any(|s| s.command == step.command) {
        steps.push(step);
    }
}

/// Sample sources outside every administrator segment: the world (documentation
/// addresses) and the first address of each other segment.
fn outside_samples(inv: &Inventory, keep: &[IpNet]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = vec![
        IpAddr::from([203, 0, 113, 77]),
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77]),
    ];
    for (_, nets) in inv.segments.iter() {
        for n in nets {
            if let Some(h) = n.hosts().next() {
                v.push(h);
            }
        }
    }
    v.retain(|a| !keep.iter().any(|n| n.contains(a)));
    v
}

fn close_port(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let fw = i.firewall(spec)?;
    let port = i.params.port.unwrap_or(0);
    let proto = i.params.proto();
    let ssh = i.ssh_port();
    let mut b = built(
        vec![
            Expect::FindingsGone {
                checks: spec.resolves,
                port: Some(port),
            },
            Expect::SshAdmitted { port: ssh },
        ],
        ssh,
    );
    let culprits = port_rules(fw, proto, port);
    if legacy::owns(i, fw, &culprits, proto, port) {
        return legacy::close_port(spec, i, fw, &culprits, b);
    }
    if culprits.is_empty() {
        b.notes.push(format!(
            "{}: no allow rule for {port}/{}: nothing to do",
            i.host.name,
            proto.as_str()
        ));
        return Ok(b);
    }
    let mut sim = Sim::new(fw);
    let mut kinds = Vec::new();
    for k in culprits {
        let r = &fw.rules[k];
        match editable(r, port).map_err(|e| i.precondition(spec, e))? {
            Editable::Ufw { source, limit } => {
                kinds.push(RollbackKind::Ufw);
                push_unique(
                    &mut b.steps,
                    Step {
                        what: format!("delete ufw rule: {}", describe_rule(r)),
                        command: ufw_delete(source, limit, proto, port),
                    },
                );
            }
            Editable::Nft {
                fam,
                table,
                chain,
                handle,
            } => {
                kinds.push(RollbackKind::Nft);
                b.steps.push(Step {
                    what: format!("delete nft rule: {}", describe_rule(r)),
                    command: nft(&fam, &table, &chain, "delete")
                        .arg("handle")
                        .number(handle),
                });
            }
        }
        sim.remove(k);
    }
    b.rollback = rollback_for(spec, i, &kinds)?;
    let world = IpAddr::from([203, 0, 113, 77]);
    let v = sim.fw.admits(world, proto.protocol(), port);
    if v.admitted() && sim.fw.rule_of(&v).is_none() {
        return Err(i.precondition(
            spec,
            format!(
                "{port}/{} would stay open: incoming traffic is accepted by default; run fw-enable-default-deny first",
                proto.as_str()
            ),
        ));
    }
    b.simulated = Some(sim.fw);
    Ok(b)
}

fn restrict_to_segment(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let fw = i.firewall(spec)?;
    let port = i.params.port.unwrap_or(0);
    let proto = i.params.proto();
    let seg_name = i.params.segment.clone().unwrap_or_default();
    let Some(seg) = i.inv.segments.get(&seg_name) else {
        let known: Vec<&str> = i.inv.segments.keys().map(String::as_str).collect();
        return Err(FixError::Param {
            fix: spec.id.into(),
            key: "segment".into(),
            message: format!(
                "no segment {seg_name:?} in the inventory (known: {})",
                known.join(", ")
            ),
        });
    };
    let ssh = i.ssh_port();
    let mut b = built(
        vec![
            Expect::FindingsGone {
                checks: spec.resolves,
                port: Some(port),
            },
            Expect::SshAdmitted { port: ssh },
        ],
        ssh,
    );
    let inside = |r: &Rule| {
        !r.sources.is_empty()
            && !r.sources_negated
            && r.sources.iter().all(|s| seg.iter().any(|n| n.contains(s)))
    };
    let culprits: Vec<usize> = port_rules(fw, proto, port)
        .into_iter()
        .filter(|k| !inside(&fw.rules[*k]))
        .collect();
    if culprits.is_empty() {
        b.notes.push(format!(
            "{}: {port}/{} is let in only from {seg_name} already: nothing to do",
            i.host.name,
            proto.as_str()
        ));
        return Ok(b);
    }
    if culprits
        .iter()
        .any(|k| fw.rules[*k].manager == Manager::Firewalld)
    {
        return firewalld::restrict_to_segment(spec, i, fw, &culprits, seg, &seg_name, b);
    }
    let mut sim = Sim::new(fw);
    let mut adds = Vec::new();
    let mut deletes = Vec::new();
    let mut kinds = Vec::new();
    for k in culprits {
        let r = fw.rules[k].clone();
        let family = sim
            .chain_of(k)
            .map(|c| chain_family(&sim.fw.chains[c]))
            .unwrap_or(r.family);
        let nets: Vec<IpNet> = seg.iter().filter(|n| fits(family, n)).copied().collect();
        match editable(&r, port).map_err(|e| i.precondition(spec, e))? {
            Editable::Ufw { source, limit } => {
                kinds.push(RollbackKind::Ufw);
                for n in &nets {
                    push_unique(
                        &mut adds,
                        Step {
                            what: format!("allow {port}/{} from {n} ({seg_name})", proto.as_str()),
                            command: ufw_allow_from(*n, proto, port, false),
                        },
                    );
                }
                push_unique(
                    &mut deletes,
                    Step {
                        what: format!("delete ufw rule: {}", describe_rule(&r)),
                        command: ufw_delete(source, limit, proto, port),
                    },
                );
            }
            Editable::Nft {
                fam,
                table,
                chain,
                handle,
            } => {
                kinds.push(RollbackKind::Nft);
                for n in &nets {
                    adds.push(Step {
                        what: format!(
                            "allow {port}/{} from {n} ({seg_name}) in its place",
                            proto.as_str()
                        ),
                        command: nft_proto(
                            nft_saddr(
                                nft(&fam, &table, &chain, "insert")
                                    .arg("position")
                                    .number(handle),
                                *n,
                            ),
                            proto,
                            port,
                        ),
                    });
                }
                deletes.push(Step {
                    what: format!("delete nft rule: {}", describe_rule(&r)),
                    command: nft(&fam, &table, &chain, "delete")
                        .arg("handle")
                        .number(handle),
                });
            }
        }
        for n in &nets {
            let mut nr = r.clone();
            nr.sources = vec![*n];
            nr.action = Action::Accept;
            sim.insert_before(k, nr);
        }
        sim.remove(k);
    }
    b.rollback = rollback_for(spec, i, &kinds)?;
    // The new allows go in before the old rule goes: never a moment without the segment.
    b.steps = adds;
    b.steps.extend(deletes);
    // Anything from outside the segment still admitted by a rule is a rule rampart missed.
    for src in outside_samples(i.inv, seg) {
        let v = sim.fw.admits(src, proto.protocol(), port);
        if v.admitted() && sim.fw.rule_of(&v).is_none() {
            return Err(i.precondition(
                spec,
                format!(
                    "{port}/{} would stay open to {src}: incoming traffic is accepted by default; run fw-enable-default-deny first",
                    proto.as_str()
                ),
            ));
        }
    }
    b.simulated = Some(sim.fw);
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// fail2ban

/// Starts fail2ban: systemd where it is PID 1, else the client starts the server (`-x`
/// removes a stale socket of a server that died). The server's output goes to its log, not
/// to the SSH channel, which must close once the command ends.
const F2B_START: &str = "PATH=$PATH:/usr/sbin:/sbin; \
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl start fail2ban; \
else fail2ban-client -x start </dev/null >/dev/null 2>&1; fi; fail2ban-client ping";

fn f2b_start(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    match &i.state.fail2ban {
        Probed::Ok(f) if f.running => {
            b.notes.push(format!(
                "{}: fail2ban is running: nothing to do",
                i.host.name
            ));
        }
        Probed::Ok(_) => b.steps.push(Step {
            what: "start fail2ban".into(),
            command: MutatingCommand::new("f2b-start", "sh")
                .arg("-c")
                .arg(F2B_START),
        }),
        other => {
            return Err(i.precondition(spec, format!("fail2ban is {}", other.status_label())));
        }
    }
    Ok(b)
}

const F2B_JAIL_FILE: &str = "/etc/fail2ban/jail.d/zz-rampart-sshd.local";
const F2B_JAIL: &str = "# written by rampart (fix f2b-enable-sshd-jail)\n[sshd]\nenabled = true\n";
const WRITE_STDIN_TO: &str =
    "umask 022; cat > \"$1.rampart-new\" && mv -f \"$1.rampart-new\" \"$1\"";
const F2B_TEST: &str = "PATH=$PATH:/usr/sbin:/sbin; fail2ban-client -t || { rm -f \"$1\"; echo \"configuration test failed: removed $1\" >&2; exit 1; }";

fn write_file(name: &'static str, path: &'static str, content: Vec<u8>) -> MutatingCommand {
    MutatingCommand::new(name, "sh")
        .arg("-c")
        .arg(WRITE_STDIN_TO)
        .arg("rampart-fix")
        .arg(path)
        .stdin(content)
}

/// How a drop-in fix applies: write the file, test the daemon's whole configuration with
/// `test` (a script that removes the file when the test fails), then reload.
struct DropIn {
    fix: &'static str,
    file: &'static str,
    content: Vec<u8>,
    /// What the write step says, after "write FILE".
    why: &'static str,
    /// The test step's label and script (`sh -c SCRIPT rampart-fix FILE`).
    test: (&'static str, &'static str),
    /// The reload step's label and command.
    reload: (&'static str, MutatingCommand),
}

impl Built {
    fn drop_in(&mut self, d: DropIn) {
        self.steps.push(Step {
            what: format!("write {}{}", d.file, d.why),
            command: write_file(d.fix, d.file, d.content),
        });
        self.steps.push(Step {
            what: d.test.0.into(),
            command: MutatingCommand::new(d.fix, "sh")
                .arg("-c")
                .arg(d.test.1)
                .arg("rampart-fix")
                .arg(d.file),
        });
        self.steps.push(Step {
            what: d.reload.0.into(),
            command: d.reload.1,
        });
    }
}

fn f2b_enable_sshd_jail(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    let f = match &i.state.fail2ban {
        Probed::Ok(f) if f.running => f,
        Probed::Ok(_) => {
            return Err(i.precondition(spec, "fail2ban is not running: run f2b-start first"));
        }
        other => {
            return Err(i.precondition(spec, format!("fail2ban is {}", other.status_label())));
        }
    };
    if f.jails.iter().any(|j| j.name.contains("ssh")) {
        b.notes.push(format!(
            "{}: a jail covering sshd runs: nothing to do",
            i.host.name
        ));
        return Ok(b);
    }
    b.drop_in(DropIn {
        fix: spec.id,
        file: F2B_JAIL_FILE,
        content: F2B_JAIL.as_bytes().to_vec(),
        why: "",
        test: (
            "test fail2ban's configuration (the drop-in is removed if it fails)",
            F2B_TEST,
        ),
        reload: (
            "reload fail2ban",
            MutatingCommand::new(spec.id, "fail2ban-client").arg("reload"),
        ),
    });
    Ok(b)
}

fn f2b_ban(spec: &'static FixSpec, i: &Input<'_>, ban: bool) -> Result<Built, FixError> {
    let ip = i.params.ip.ok_or_else(|| i.precondition(spec, "no ip"))?;
    let jail = match &i.params.jail {
        Some(j) => j.clone(),
        None => SafeName::new("sshd").map_err(|e| i.precondition(spec, e.to_string()))?,
    };
    let mut b = built(
        vec![Expect::Banned {
            jail: jail.as_str().to_string(),
            ip,
            banned: ban,
        }],
        i.ssh_port(),
    );
    if ban {
        // Banning the way in is a lockout too.
        if let Some(s) = i.sources.iter().find(|s| s.addr == ip) {
            return Err(FixError::Lockout {
                host: i.host.name.clone(),
                fix: spec.id.into(),
                detail: format!("{ip} is {}: banning it would cut rampart off", s.why),
            });
        }
        for seg in ADMIN_SEGMENTS {
            if i.inv
                .segments
                .get(*seg)
                .is_some_and(|nets| nets.iter().any(|n| n.contains(&ip)))
            {
                return Err(FixError::Lockout {
                    host: i.host.name.clone(),
                    fix: spec.id.into(),
                    detail: format!("{ip} is in the {seg} segment, where administrators come from"),
                });
            }
        }
        let bastions: Vec<IpAddr> = i
            .inv
            .hosts
            .iter()
            .filter(|h| h.roles.iter().any(|r| r == "bastion"))
            .filter_map(|h| h.address.ip())
            .collect();
        if bastions.contains(&ip) {
            return Err(FixError::Lockout {
                host: i.host.name.clone(),
                fix: spec.id.into(),
                detail: format!("{ip} is a bastion's address"),
            });
        }
    }
    let f = match &i.state.fail2ban {
        Probed::Ok(f) if f.running => f,
        other => {
            return Err(i.precondition(
                spec,
                format!(
                    "fail2ban is not running ({}): run f2b-start first",
                    other.status_label()
                ),
            ));
        }
    };
    let Some(j) = f.jails.iter().find(|j| j.name == jail.as_str()) else {
        let names: Vec<&str> = f.jails.iter().map(|j| j.name.as_str()).collect();
        return Err(i.precondition(
            spec,
            format!("no jail {} (jails: {})", jail.as_str(), names.join(", ")),
        ));
    };
    if j.banned.contains(&ip) == ban {
        b.notes.push(format!(
            "{}: {ip} is {} in {}: nothing to do",
            i.host.name,
            if ban { "already banned" } else { "not banned" },
            jail.as_str()
        ));
        return Ok(b);
    }
    let (name, verb) = if ban {
        ("f2b-ban-ip", "banip")
    } else {
        ("f2b-unban-ip", "unbanip")
    };
    b.steps.push(Step {
        what: format!("{verb} {ip} in jail {}", jail.as_str()),
        command: MutatingCommand::new(name, "fail2ban-client")
            .arg("set")
            .name_arg(&jail)
            .arg(verb)
            .ip(ip),
    });
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// sshd

#[derive(Clone, Copy, PartialEq, Eq)]
enum SshdFix {
    Password,
    RootLogin,
}

const SSHD_PASSWORD_FILE: &str = "/etc/ssh/sshd_config.d/00-rampart-password-auth.conf";
const SSHD_PASSWORD: &str = "# written by rampart (fix ssh-disable-password-auth)\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n";
const SSHD_ROOT_FILE: &str = "/etc/ssh/sshd_config.d/00-rampart-root-login.conf";
const SSHD_ROOT_KEYS: &str =
    "# written by rampart (fix ssh-disable-root-login)\nPermitRootLogin prohibit-password\n";
const SSHD_ROOT_NO: &str =
    "# written by rampart (fix ssh-disable-root-login)\nPermitRootLogin no\n";
const SSHD_TEST: &str = "PATH=$PATH:/usr/sbin:/sbin; sshd -t || { rm -f \"$1\"; echo \"sshd -t failed: removed $1\" >&2; exit 1; }";
/// Reload, never restart: SIGHUP makes the listener re-execute with the new configuration;
/// live sessions are other processes and stay.
pub(crate) const SSHD_RELOAD: &str = "PATH=$PATH:/usr/sbin:/sbin; \
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl reload ssh 2>/dev/null || systemctl reload sshd; \
else kill -HUP \"$(cat /run/sshd.pid)\"; fi";

fn sshd_dropin(spec: &'static FixSpec, i: &Input<'_>, which: SshdFix) -> Result<Built, FixError> {
    let s = match &i.state.sshd {
        Probed::Ok(s) => s,
        other => {
            return Err(i.precondition(spec, format!("sshd is {}", other.status_label())));
        }
    };
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    if s.pubkey_authentication == Some(false) {
        return Err(FixError::Lockout {
            host: i.host.name.clone(),
            fix: spec.id.into(),
            detail: "public-key authentication is off: rampart would have no way to log in".into(),
        });
    }
    // A drop-in wins over the global settings only: a Match block that turns the setting
    // back on keeps it on for its sources, so editing that block is a person's job.
    let turned_on_by_match: Vec<String> = s
        .matches
        .iter()
        .filter(|m| {
            let probed = m.probes.iter().any(|p| match which {
                SshdFix::Password => p.effective.passwords_possible(),
                SshdFix::RootLogin => {
                    p.effective.permit_root_login == Some(crate::state::PermitRootLogin::Yes)
                }
            });
            let key = match which {
                SshdFix::Password => "passwordauthentication",
                SshdFix::RootLogin => "permitrootlogin",
            };
            let written = m
                .body
                .iter()
                .any(|(k, v, _)| k == key && v.eq_ignore_ascii_case("yes"));
            probed || (m.probes.is_empty() && written)
        })
        .map(|m| format!("Match {} at {}", m.criteria, m.origin))
        .collect();
    if !turned_on_by_match.is_empty() {
        return Err(i.precondition(
            spec,
            format!(
                "turned on by {}; a drop-in cannot override a Match block: edit that block",
                turned_on_by_match.join(", ")
            ),
        ));
    }
    let (file, content, done) = match which {
        SshdFix::Password => (
            SSHD_PASSWORD_FILE,
            SSHD_PASSWORD,
            s.password_authentication == Some(false)
                && s.kbd_interactive_authentication != Some(true),
        ),
        SshdFix::RootLogin => (
            SSHD_ROOT_FILE,
            // Refusing root outright would lock rampart out when it logs in as root.
            if i.host.user == "root" {
                SSHD_ROOT_KEYS
            } else {
                SSHD_ROOT_NO
            },
            s.permit_root_login != Some(crate::state::PermitRootLogin::Yes),
        ),
    };
    if done {
        b.notes.push(format!(
            "{}: sshd already has the setting: nothing to do",
            i.host.name
        ));
        return Ok(b);
    }
    if which == SshdFix::RootLogin && i.host.user == "root" {
        b.notes.push(
            "rampart logs in as root: PermitRootLogin prohibit-password (keys only), not no".into(),
        );
    }
    b.drop_in(DropIn {
        fix: spec.id,
        file,
        content: content.as_bytes().to_vec(),
        why: " (drop-ins come first in sshd_config, so it wins)",
        test: ("sshd -t (the drop-in is removed if it fails)", SSHD_TEST),
        reload: (
            "reload sshd (SIGHUP, or systemctl reload; live sessions stay)",
            MutatingCommand::new(spec.id, "sh")
                .arg("-c")
                .arg(SSHD_RELOAD),
        ),
    });
    b.rollback = Some(RollbackKind::Sshd);
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// nginx

const NGINX_FILE: &str = "/etc/nginx/conf.d/rampart-rate-limit.conf";
const NGINX_TEST: &str = "PATH=$PATH:/usr/sbin:/sbin; nginx -t || { rm -f \"$1\"; echo \"nginx -t failed: removed $1\" >&2; exit 1; }";
const NGINX_RELOAD: &str = "PATH=$PATH:/usr/sbin:/sbin; \
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl reload nginx; else nginx -s reload; fi";

/// The drop-in: built from two numbers only.
pub fn nginx_rate_limit_conf(rate: u32, burst: u32) -> String {
    format!(
        "# written by rampart (fix nginx-add-rate-limit)\n\
         limit_req_zone $binary_remote_addr zone=rampart_perip:10m rate={rate}r/s;\n\
         limit_req zone=rampart_perip burst={burst} nodelay;\n"
    )
}

fn nginx_rate_limit(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let n = match &i.state.nginx {
        Probed::Ok(n) => n,
        other => {
            return Err(i.precondition(spec, format!("nginx is {}", other.status_label())));
        }
    };
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    let missing = i.findings().iter().any(|f| f.check == "RATE-LIMIT-MISSING");
    let ours = n.limit_req_zones.iter().any(|z| z.name == "rampart_perip");
    if !missing || ours {
        b.notes.push(format!(
            "{}: nginx already rate-limits{}: nothing to do",
            i.host.name,
            if ours {
                " (rampart_perip zone present)"
            } else {
                ""
            }
        ));
        return Ok(b);
    }
    if !n.syntax_ok {
        return Err(i.precondition(spec, "nginx -t fails already: fix the configuration first"));
    }
    let conf = nginx_rate_limit_conf(i.params.rate.unwrap_or(10), i.params.burst.unwrap_or(20));
    b.drop_in(DropIn {
        fix: spec.id,
        file: NGINX_FILE,
        content: conf.into_bytes(),
        why: " (http level: every server inherits it)",
        test: ("nginx -t (the drop-in is removed if it fails)", NGINX_TEST),
        reload: (
            "reload nginx",
            MutatingCommand::new(spec.id, "sh")
                .arg("-c")
                .arg(NGINX_RELOAD),
        ),
    });
    Ok(b)
}

const NGINX_HSTS_FILE: &str = "/etc/nginx/conf.d/rampart-hsts.conf";
/// nginx's reload returns before the new workers answer; the re-verification fetches the
/// host's own HTTPS page, so give them a moment.
const NGINX_RELOAD_SETTLE: &str = "PATH=$PATH:/usr/sbin:/sbin; \
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl reload nginx; else nginx -s reload; fi \
&& sleep 1";

/// The HSTS drop-in: fixed text (one year; no includeSubDomains or preload, which commit
/// other names and cannot be undone quickly).
pub const NGINX_HSTS_CONF: &str = "# written by rampart (fix nginx-add-hsts)\n\
add_header Strict-Transport-Security \"max-age=31536000\" always;\n";

fn nginx_hsts(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let n = match &i.state.nginx {
        Probed::Ok(n) => n,
        other => {
            return Err(i.precondition(spec, format!("nginx is {}", other.status_label())));
        }
    };
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    let missing = i.findings().iter().any(|f| f.check == "TLS-NO-HSTS");
    let ours = n
        .http_hsts
        .as_ref()
        .is_some_and(|h| h.file == NGINX_HSTS_FILE);
    if !missing || ours {
        b.notes.push(format!(
            "{}: nginx already sends Strict-Transport-Security{}: nothing to do",
            i.host.name,
            if ours {
                " (rampart-hsts.conf present)"
            } else {
                ""
            }
        ));
        return Ok(b);
    }
    if !n.syntax_ok {
        return Err(i.precondition(spec, "nginx -t fails already: fix the configuration first"));
    }
    // An http-level header reaches only the levels that set no add_header of their own.
    let unreachable: Vec<String> = n
        .servers
        .iter()
        .filter(|s| s.serves_tls() && s.hsts.is_none())
        .filter_map(|s| s.own_add_header.clone())
        .chain(
            n.servers
                .iter()
                .filter(|s| s.serves_tls())
                .flat_map(|s| s.hsts_dropped_in.iter().cloned()),
        )
        .collect();
    if !unreachable.is_empty() {
        return Err(i.precondition(
            spec,
            format!(
                "an http-level add_header would not reach levels with add_headers of their own ({}): add Strict-Transport-Security there by hand",
                unreachable.join("; ")
            ),
        ));
    }
    b.drop_in(DropIn {
        fix: spec.id,
        file: NGINX_HSTS_FILE,
        content: NGINX_HSTS_CONF.as_bytes().to_vec(),
        why: " (http level: every server without add_headers of its own inherits it)",
        test: ("nginx -t (the drop-in is removed if it fails)", NGINX_TEST),
        reload: (
            "reload nginx",
            MutatingCommand::new(spec.id, "sh")
                .arg("-c")
                .arg(NGINX_RELOAD_SETTLE),
        ),
    });
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// VPN

const VPN_RESTART: &str = "PATH=$PATH:/usr/sbin:/sbin; \
if [ -d /run/systemd/system ] && systemctl is-enabled \"wg-quick@$1\" >/dev/null 2>&1; then systemctl restart \"wg-quick@$1\"; \
elif ip link show dev \"$1\" >/dev/null 2>&1; then ip link set dev \"$1\" down && ip link set dev \"$1\" up; \
else wg-quick up \"$1\"; fi; ip -br link show dev \"$1\"";

fn vpn_restart(spec: &'static FixSpec, i: &Input<'_>) -> Result<Built, FixError> {
    let ifs: Vec<&crate::state::WgInterface> = match &i.state.vpn {
        Probed::Ok(v) => match &v.wireguard {
            Probed::Ok(ifs) => ifs.iter().collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let iface = match &i.params.iface {
        Some(n) => n.clone(),
        None => {
            let name = match ifs.as_slice() {
                [one] => one.name.as_str(),
                _ => "wg0",
            };
            SafeName::new(name).map_err(|e| i.precondition(spec, e.to_string()))?
        }
    };
    let mut b = built(
        vec![Expect::FindingsGone {
            checks: spec.resolves,
            port: None,
        }],
        i.ssh_port(),
    );
    let down = i.findings().iter().any(|f| f.check == "VPN-DOWN");
    let up = ifs
        .iter()
        .any(|w| w.name == iface.as_str() && w.up != Some(false));
    if !down && up {
        b.notes.push(format!(
            "{}: {} is up: nothing to do",
            i.host.name,
            iface.as_str()
        ));
        return Ok(b);
    }
    b.steps.push(Step {
        what: format!("restart {}", iface.as_str()),
        command: MutatingCommand::new("vpn-restart-interface", "sh")
            .arg("-c")
            .arg(VPN_RESTART)
            .arg("rampart-fix")
            .name_arg(&iface),
    });
    Ok(b)
}

/// Whether the findings `expect` names are gone from `findings`.
pub fn remaining<'f>(expect: &Expect, host: &str, findings: &'f [Finding]) -> Vec<&'f Finding> {
    match expect {
        Expect::FindingsGone { checks, port } => findings
            .iter()
            .filter(|f| f.host == host && checks.contains(&f.check.as_str()))
            .filter(|f| match port {
                None => true,
                Some(p) => {
                    let fp = f.fix_params.iter().find(|(k, _)| k == "port");
                    fp.is_none_or(|(_, v)| v == &p.to_string())
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The policy word for notes.
pub fn policy_label(p: Option<Policy>) -> &'static str {
    match p {
        Some(Policy::Accept) => "accept",
        Some(Policy::Drop) => "drop",
        Some(Policy::Reject) => "reject",
        Some(Policy::Disabled) => "disabled",
        None => "unknown",
    }
}
