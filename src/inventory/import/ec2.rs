//! `rampart init --from-aws-ec2`: the JSON of `aws ec2 describe-instances`.
//!
//! Each instance that is not terminated becomes a host: named by its `Name` tag (else its
//! instance ID), addressed by its private IP (its public one when it has no private one). Roles
//! come from a `Role`/`role`/`Roles`/`roles` tag (comma-separated values, through
//! `--role-map`), else from the name. Subnets become segments named by subnet ID; their CIDRs
//! come from `aws ec2 describe-subnets` JSON when given, else are guessed as the /24 around
//! the instances (said in a note). A single instance with the bastion role becomes every
//! other host's bastion and is addressed by its public IP. Every tag is kept. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use super::{ImportError, Imported, ImportedHost, RoleMap, guess_role};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Describe {
    #[serde(default)]
    reservations: Vec<Reservation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reservation {
    #[serde(default)]
    instances: Vec<Instance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Instance {
    instance_id: Option<String>,
    private_ip_address: Option<String>,
    public_ip_address: Option<String>,
    subnet_id: Option<String>,
    state: Option<InstanceState>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceState {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Subnets {
    #[serde(default)]
    subnets: Vec<Subnet>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Subnet {
    subnet_id: String,
    cidr_block: Option<String>,
    #[serde(default)]
    ipv6_cidr_block_association_set: Vec<Ipv6Assoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipv6Assoc {
    ipv6_cidr_block: Option<String>,
}

fn json<T: for<'de> Deserialize<'de>>(
    text: &str,
    file: &Path,
    what: &str,
) -> Result<T, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::Parse {
        file: file.to_path_buf(),
        line: e.line(),
        message: format!("not `{what}` JSON: {e}"),
    })
}

/// A segment name from a subnet ID (`subnet-0abc` stays `subnet-0abc`).
fn segment_name(subnet: &str) -> Option<String> {
    let s: String = subnet
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(63)
        .collect();
    super::is_valid_host_name(&s).then_some(s)
}

/// Imports `describe-instances` JSON, with `describe-subnets` JSON for the CIDRs when given.
pub fn import(
    text: &str,
    file: &Path,
    subnets: Option<(&str, &Path)>,
    roles: &RoleMap,
) -> Result<Imported, ImportError> {
    let d: Describe = json(text, file, "aws ec2 describe-instances")?;
    let mut cidrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some((t, f)) = subnets {
        let s: Subnets = json(t, f, "aws ec2 describe-subnets")?;
        for sn in s.subnets {
            let mut v: Vec<String> = sn.cidr_block.into_iter().collect();
            v.extend(
                sn.ipv6_cidr_block_association_set
                    .into_iter()
                    .filter_map(|a| a.ipv6_cidr_block),
            );
            v.retain(|c| c.parse::<ipnet::IpNet>().is_ok_and(|n| n.trunc() == n));
            cidrs.insert(sn.subnet_id, v);
        }
    }
    let mut imp = Imported::default();
    let mut role_notes = BTreeSet::new();
    let mut public: BTreeMap<String, String> = BTreeMap::new();
    let mut used_subnets: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for inst in d.reservations.into_iter().flat_map(|r| r.instances) {
        let state = inst.state.and_then(|s| s.name).unwrap_or_default();
        let id = inst.instance_id.clone().unwrap_or_default();
        if matches!(state.as_str(), "terminated" | "shutting-down") {
            imp.needs_human(format!("skipped {id}: {state}"));
            continue;
        }
        let tags: BTreeMap<String, String> =
            inst.tags.into_iter().map(|t| (t.key, t.value)).collect();
        let name = tags
            .get("Name")
            .filter(|n| !n.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| id.clone());
        if name.is_empty() {
            imp.needs_human("skipped an instance with neither a Name tag nor an InstanceId");
            continue;
        }
        let private = inst
            .private_ip_address
            .filter(|a| a.parse::<IpAddr>().is_ok());
        let public_ip = inst
            .public_ip_address
            .filter(|a| a.parse::<IpAddr>().is_ok());
        let Some(address) = private.clone().or_else(|| public_ip.clone()) else {
            imp.needs_human(format!("skipped {name}: no IP address ({state})"));
            continue;
        };
        let mut host = ImportedHost {
            name: name.clone(),
            address: Some(address.clone()),
            tags: tags.clone(),
            ..ImportedHost::default()
        };
        host.tags.insert("instance_id".into(), id.clone());
        let role_tag = ["Role", "role", "Roles", "roles"]
            .iter()
            .find_map(|k| tags.get(*k));
        match role_tag {
            Some(values) => {
                for v in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    match roles.get(v) {
                        Some(Some(r)) => host.roles.push(r.to_string()),
                        Some(None) => {}
                        None => {
                            let r = if super::super::builtin_roles().contains_key(v) {
                                v.to_string()
                            } else if let Some(g) = guess_role(v) {
                                role_notes.insert(format!("role tag {v:?} is role {g}"));
                                g.to_string()
                            } else {
                                role_notes.insert(format!(
                                    "role tag {v:?} is a role of its own; say what it may expose in [roles.{v}]"
                                ));
                                v.to_string()
                            };
                            host.roles.push(r);
                        }
                    }
                }
            }
            None => {
                if let Some(r) = guess_role(&name) {
                    host.roles.push(r.to_string());
                    role_notes.insert(format!("{name} has role {r} (from its Name; no Role tag)"));
                }
            }
        }
        if let (Some(sn), Ok(ip)) = (&inst.subnet_id, address.parse::<IpAddr>())
            && private.is_some()
        {
            used_subnets.entry(sn.clone()).or_default().insert(ip);
        }
        let before = imp.hosts.len();
        imp.push_host(host);
        if let (Some(h), Some(p)) = (imp.hosts.get(before), public_ip) {
            public.insert(h.name.clone(), p);
        }
    }
    for n in role_notes {
        imp.guessed(n);
    }
    // Subnets → segments.
    for (subnet, ips) in used_subnets {
        let Some(seg) = segment_name(&subnet) else {
            continue;
        };
        let nets = match cidrs.get(&subnet).filter(|c| !c.is_empty()) {
            Some(c) => c.clone(),
            None => {
                let nets: BTreeSet<String> = ips
                    .iter()
                    .filter_map(|ip| {
                        let prefix = if ip.is_ipv4() { 24 } else { 64 };
                        ipnet::IpNet::new(*ip, prefix)
                            .ok()
                            .map(|n| n.trunc().to_string())
                    })
                    .collect();
                imp.guessed(format!(
                    "segment {seg} is {} (the /24 around its instances); pass --aws-subnets with `aws ec2 describe-subnets` JSON for the real CIDR",
                    nets.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
                nets.into_iter().collect()
            }
        };
        imp.segments.insert(seg, nets);
    }
    // One bastion: everyone else jumps through it, and it is reached on its public address.
    let bastions: Vec<String> = imp
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| r == "bastion"))
        .map(|h| h.name.clone())
        .collect();
    match bastions.as_slice() {
        [b] => {
            let b = b.clone();
            if let Some(p) = public.get(&b).cloned()
                && let Some(h) = imp.host_mut(&b)
            {
                h.address = Some(p);
            }
            for h in imp.hosts.iter_mut().filter(|h| h.name != b) {
                h.bastion = Some(b.clone());
            }
            imp.guessed(format!(
                "every host but {b} is reached through the bastion {b}, on its public address"
            ));
        }
        [] if !imp.hosts.is_empty() => imp.needs_human(
            "no instance has the bastion role: every host is reached directly on its private address",
        ),
        [] => {}
        many => imp.needs_human(format!(
            "several bastions ({}): set each host's bastion",
            many.join(", ")
        )),
    }
    imp.report_roleless();
    if !imp.hosts.is_empty() {
        imp.needs_human(
            "[defaults] user: EC2 does not say which login the image uses (admin, ubuntu, ec2-user); set it",
        );
    } else {
        imp.needs_human("no running or stopped instance to import");
    }
    Ok(imp)
}
