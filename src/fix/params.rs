//! Fix parameters: `key=value` text (from `--param`, or a finding's `fix_params`) turned into
//! typed values, or refused. Pure. Only these typed values ever reach a command.

use std::net::IpAddr;

use super::FixError;
use super::catalogue::FixSpec;
use crate::ssh::SafeName;

/// A layer-4 protocol a firewall fix works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    pub fn protocol(self) -> crate::state::Protocol {
        match self {
            Proto::Tcp => crate::state::Protocol::Tcp,
            Proto::Udp => crate::state::Protocol::Udp,
        }
    }
}

/// The typed parameters of one fix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub port: Option<u16>,
    pub proto: Option<Proto>,
    pub segment: Option<String>,
    pub ip: Option<IpAddr>,
    pub jail: Option<SafeName>,
    pub iface: Option<SafeName>,
    pub rate: Option<u32>,
    pub burst: Option<u32>,
    pub rollback_secs: Option<u64>,
}

impl Params {
    pub fn proto(&self) -> Proto {
        self.proto.unwrap_or(Proto::Tcp)
    }
}

/// Splits `key=value`.
pub fn split_param(raw: &str) -> Result<(String, String), FixError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(FixError::Param {
            fix: String::new(),
            key: raw.to_string(),
            message: "expected KEY=VALUE, e.g. port=5432".into(),
        }),
    }
}

/// Parses and validates the parameters of `spec`: unknown keys, repeated keys, bad values and
/// missing required keys are refused.
pub fn parse(spec: &FixSpec, raw: &[(String, String)]) -> Result<Params, FixError> {
    let err = |key: &str, message: String| FixError::Param {
        fix: spec.id.to_string(),
        key: key.to_string(),
        message,
    };
    let mut out = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in raw {
        let k = k.as_str();
        if spec.param(k).is_none() {
            let known: Vec<&str> = spec
                .params
                .iter()
                .map(|p| p.key)
                .chain(spec.rollback_timer.then_some("rollback"))
                .collect();
            return Err(err(
                k,
                format!(
                    "{} takes {}",
                    spec.id,
                    if known.is_empty() {
                        "no parameters".to_string()
                    } else {
                        format!("only {}", known.join(", "))
                    }
                ),
            ));
        }
        if seen.contains(&k) {
            return Err(err(k, "given twice".into()));
        }
        seen.push(k);
        let num = |lo: u64, hi: u64| -> Result<u64, FixError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| err(k, format!("{v:?} is not a number from {lo} to {hi}")))
        };
        match k {
            "port" => out.port = Some(num(1, 65535)? as u16),
            "proto" => {
                out.proto = Some(match v.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return Err(err(k, format!("{v:?} is not tcp or udp"))),
                })
            }
            "segment" => {
                let ok = !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(err(k, format!("{v:?} is not a segment name")));
                }
                out.segment = Some(v.clone());
            }
            "ip" => {
                out.ip = Some(
                    v.parse::<IpAddr>()
                        .map_err(|_| err(k, format!("{v:?} is not an IP address")))?,
                )
            }
            "jail" => out.jail = Some(SafeName::new(v).map_err(|e| err(k, e.to_string()))?),
            "iface" => {
                // Interface names: at most 15 bytes (IFNAMSIZ - 1).
                let n = SafeName::new(v).map_err(|e| err(k, e.to_string()))?;
                if v.len() > 15 || v.contains(':') || v.contains('@') {
                    return Err(err(k, format!("{v:?} is not an interface name")));
                }
                out.iface = Some(n);
            }
            "rate" => out.rate = Some(num(1, 100_000)? as u32),
            "burst" => out.burst = Some(num(0, 100_000)? as u32),
            "rollback" => out.rollback_secs = Some(num(5, 600)?),
            _ => return Err(err(k, "not handled".into())),
        }
    }
    for p in spec.params.iter().filter(|p| p.required) {
        if !seen.contains(&p.key) {
            return Err(err(p.key, format!("required: {}", p.help)));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fix::catalogue::fix_spec;

    fn kv(s: &[&str]) -> Vec<(String, String)> {
        s.iter().map(|x| split_param(x).unwrap()).collect()
    }

    #[test]
    fn typed_values_only() {
        let spec = fix_spec("fw-restrict-to-segment").unwrap();
        let p = parse(spec, &kv(&["port=5432", "segment=app", "rollback=5"])).unwrap();
        assert_eq!(p.port, Some(5432));
        assert_eq!(p.segment.as_deref(), Some("app"));
        assert_eq!(p.rollback_secs, Some(5));
        assert_eq!(p.proto(), Proto::Tcp);
        for bad in [
            &["port=5432;id", "segment=app"][..],
            &["port=0", "segment=app"],
            &["port=5432", "segment=a;b"],
            &["port=5432", "segment=app", "rollback=1"],
            &["port=5432", "segment=app", "color=red"],
            &["port=5432", "port=22", "segment=app"],
            &["segment=app"],
        ] {
            assert!(parse(spec, &kv(bad)).is_err(), "{bad:?}");
        }
        let ban = fix_spec("f2b-ban-ip").unwrap();
        assert!(parse(ban, &kv(&["ip=10.0.0.1", "jail=sshd"])).is_ok());
        assert!(parse(ban, &kv(&["ip=10.0.0.1 -oX"])).is_err());
        assert!(parse(ban, &kv(&["ip=10.0.0.1", "jail=$(reboot)"])).is_err());
        assert!(parse(ban, &kv(&["ip=10.0.0.1", "rollback=10"])).is_err());
        assert!(split_param("port").is_err());
    }
}
