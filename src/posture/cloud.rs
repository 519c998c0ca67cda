//! Cloud firewalls: the JSON printed by `aws ec2 describe-security-groups`, parsed into
//! security groups and mapped to inventory hosts by the host tag `security_groups`
//! (comma-separated group IDs or names). Pure: reading the file is the caller's job.

use serde::Deserialize;

use crate::inventory::Host;

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    /// The file it came from, for evidence.
    pub source: String,
    pub inbound: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    /// "tcp", "udp", "icmp" or "-1" (all).
    pub protocol: String,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidrs: Vec<String>,
}

/// A world-open permission, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    pub ports: String,
    pub cidr: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct CloudError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Doc {
    security_groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawGroup {
    group_id: String,
    #[serde(default)]
    group_name: String,
    #[serde(default)]
    ip_permissions: Vec<RawPerm>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawPerm {
    ip_protocol: String,
    from_port: Option<i64>,
    to_port: Option<i64>,
    #[serde(default)]
    ip_ranges: Vec<RawV4>,
    #[serde(default)]
    ipv6_ranges: Vec<RawV6>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawV4 {
    cidr_ip: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawV6 {
    cidr_ipv6: String,
}

/// Parses `aws ec2 describe-security-groups` output. `path` names the file in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<SecurityGroup>, CloudError> {
    let doc: Doc = serde_json::from_str(text).map_err(|e| CloudError {
        path: path.to_string(),
        line: e.line(),
        message: e.to_string(),
    })?;
    Ok(doc
        .security_groups
        .into_iter()
        .map(|g| SecurityGroup {
            id: crate::sanitize::clean_line(&g.group_id),
            name: crate::sanitize::clean_line(&g.group_name),
            source: path.to_string(),
            inbound: g
                .ip_permissions
                .into_iter()
                .map(|p| Permission {
                    protocol: p.ip_protocol,
                    from_port: p.from_port,
                    to_port: p.to_port,
                    cidrs: p
                        .ip_ranges
                        .into_iter()
                        .map(|r| r.cidr_ip)
                        .chain(p.ipv6_ranges.into_iter().map(|r| r.cidr_ipv6))
                        .collect(),
                })
                .collect(),
        })
        .collect())
}

impl SecurityGroup {
    /// True when the host's `security_groups` tag names this group.
    pub fn applies_to(&self, host: &Host) -> bool {
        host.tags.get("security_groups").is_some_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|g| g == self.id || (!self.name.is_empty() && g == self.name))
        })
    }

    /// Inbound permissions that open something other than 80/443 to the whole Internet.
    pub fn world_open(&self) -> Vec<Open> {
        let mut v = Vec::new();
        for p in &self.inbound {
            for c in &p.cidrs {
                if c != "0.0.0.0/0" && c != "::/0" {
                    continue;
                }
                let all = p.protocol == "-1";
                let (from, to) = (p.from_port.unwrap_or(0), p.to_port.unwrap_or(65535));
                let web_only = !all
                    && p.protocol == "tcp"
                    && (from..=to).all(|port| port == 80 || port == 443);
                if web_only || p.protocol == "icmp" || p.protocol == "icmpv6" {
                    continue;
                }
                let ports = if all {
                    "all traffic".to_string()
                } else if from == to {
                    format!("{from}/{}", p.protocol)
                } else {
                    format!("{from}-{to}/{}", p.protocol)
                };
                v.push(Open {
                    ports,
                    cidr: c.clone(),
                });
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SG: &str = r#"{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"web","IpPermissions":[
      {"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"0.0.0.0/0"}],"Ipv6Ranges":[{"CidrIpv6":"::/0"}]},
      {"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0"}]},
      {"IpProtocol":"tcp","FromPort":5432,"ToPort":5432,"IpRanges":[{"CidrIp":"10.0.1.0/24"}]},
      {"IpProtocol":"-1","Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]}]}"#;

    #[test]
    fn world_open_permissions() {
        let g = parse(SG, "sg.json").expect("parses");
        let open = g[0].world_open();
        let s: Vec<String> = open
            .iter()
            .map(|o| format!("{} {}", o.ports, o.cidr))
            .collect();
        assert_eq!(s, ["22/tcp 0.0.0.0/0", "all traffic ::/0"]);
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let e = parse("{\n\"SecurityGroups\": [}", "sg.json").expect_err("bad");
        assert!(e.to_string().starts_with("sg.json:2:"), "{e}");
    }
}
