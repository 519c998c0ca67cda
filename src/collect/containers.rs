//! Containers from the `containers` probe: for each engine on the host (Docker, Podman), a
//! `### engine NAME` line (`### engine NAME not running` when its daemon does not answer),
//! then one JSON object per running container, made on the host by `inspect --format` with
//! only the fields the network needs: never the environment, which holds secrets.
//!
//! ```text
//! ### engine docker
//! {"id":"0f3c…","name":"/lab-pg","image":"rampart-lab/base:1","running":true,"mode":"default",
//!  "ports":{"5432/tcp":[{"HostIp":"0.0.0.0","HostPort":"5432"}]},
//!  "networks":{"bridge":{"IPAddress":"172.17.0.2"}}}
//! ```
//!
//! Pure: no I/O.

use std::net::IpAddr;

use serde_json::Value;

use super::{ParseError, check_size, clean};
use crate::state::{Container, ContainerNetwork, Protocol, PublishedPort};

const WHAT: &str = "containers";

/// At most this many containers are read (more are a host to look at by hand).
const MAX_CONTAINERS: usize = 2048;

/// Reads the probe's output. A line that is not JSON is an error naming its line.
pub fn parse_probe(text: &str) -> Result<Vec<Container>, ParseError> {
    check_size(WHAT, text)?;
    let mut out = Vec::new();
    let mut engine: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("### engine ") {
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap_or("");
            // "not running": the engine is installed, its daemon does not answer: none run.
            engine = (words.next().is_none()).then(|| clean(name));
            continue;
        }
        let Some(engine) = &engine else {
            return Err(ParseError::new(
                WHAT,
                n,
                "container line before any `### engine` line",
            ));
        };
        let v: Value = serde_json::from_str(line)
            .map_err(|e| ParseError::new(WHAT, n, format!("not JSON: {e}")))?;
        out.push(container(engine, &v).map_err(|m| ParseError::new(WHAT, n, m))?);
        if out.len() >= MAX_CONTAINERS {
            break;
        }
    }
    Ok(out)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(clean)
        .unwrap_or_default()
}

fn container(engine: &str, v: &Value) -> Result<Container, String> {
    let id = text(v, "id");
    if id.is_empty() {
        return Err("a container without an id".into());
    }
    let mut networks = Vec::new();
    if let Some(map) = v.get("networks").and_then(Value::as_object) {
        for (name, n) in map {
            let address = n
                .get("IPAddress")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .and_then(|s| s.parse::<IpAddr>().ok());
            let prefix_len = n
                .get("IPPrefixLen")
                .and_then(Value::as_u64)
                .and_then(|p| u8::try_from(p).ok())
                .filter(|p| *p > 0);
            networks.push(ContainerNetwork {
                name: clean(name),
                address,
                prefix_len,
            });
        }
    }
    let mut published = Vec::new();
    if let Some(map) = v.get("ports").and_then(Value::as_object) {
        for (key, bindings) in map {
            // "5432/tcp" (Podman also "5432/tcp" ; a bare number means tcp).
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let container_port: u16 = port
                .parse()
                .map_err(|_| format!("port key {:?} is not PORT/PROTO", clean(key)))?;
            let Some(list) = bindings.as_array() else {
                continue; // exposed, not published
            };
            for b in list {
                let host_port = b
                    .get("HostPort")
                    .and_then(|p| match p {
                        Value::String(s) => s.parse::<u16>().ok(),
                        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                        _ => None,
                    })
                    .ok_or_else(|| format!("{key}: a binding without a host port"))?;
                let host_ip = b
                    .get("HostIp")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<IpAddr>()
                            .map_err(|_| format!("{key}: host address {:?}", clean(s)))
                    })
                    .transpose()?
                    .filter(|a| !a.is_unspecified());
                published.push(PublishedPort {
                    protocol: Protocol::from_name(proto),
                    host_ip,
                    host_port,
                    container_port,
                });
            }
        }
    }
    published.sort_by(|a, b| {
        (a.host_port, a.protocol.label(), a.host_ip).cmp(&(
            b.host_port,
            b.protocol.label(),
            b.host_ip,
        ))
    });
    published.dedup();
    Ok(Container {
        engine: engine.to_string(),
        id: id.chars().take(12).collect(),
        name: text(v, "name").trim_start_matches('/').to_string(),
        image: text(v, "image"),
        running: v.get("running").and_then(Value::as_bool).unwrap_or(true),
        network_mode: text(v, "mode"),
        networks,
        published,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DOCKER: &str = r#"### engine docker
{"id":"791b71fbc25c13c0f612a172","name":"/lab-pg","image":"rampart-lab/base:1","running":true,"mode":"default","ports":{"5432/tcp":[{"HostIp":"0.0.0.0","HostPort":"5432"},{"HostIp":"::","HostPort":"5432"}],"6379/tcp":null},"networks":{"bridge":{"IPAddress":"172.17.0.2","IPPrefixLen":16,"Gateway":"172.17.0.1"}}}
{"id":"aaaaaaaaaaaaaaaa","name":"/local-only","image":"redis:7","running":true,"mode":"bridge","ports":{"6379/tcp":[{"HostIp":"127.0.0.1","HostPort":"16379"}],"53/udp":[{"HostIp":"10.0.0.5","HostPort":"5353"}]},"networks":{"backend":{"IPAddress":"172.20.0.3"}}}
### engine podman not running
"#;

    #[test]
    fn docker_inspect_lines_become_containers_with_published_ports() {
        let c = parse_probe(DOCKER).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "lab-pg");
        assert_eq!(c[0].id, "791b71fbc25c");
        assert_eq!(c[0].engine, "docker");
        assert_eq!(
            c[0].address(),
            Some("172.17.0.2".parse::<IpAddr>().unwrap())
        );
        // 0.0.0.0 and :: are "every address", deduplicated; 6379 is only exposed.
        assert_eq!(
            c[0].published,
            vec![PublishedPort {
                protocol: Protocol::Tcp,
                host_ip: None,
                host_port: 5432,
                container_port: 5432,
            }]
        );
        assert_eq!(c[0].published[0].label(), "*:5432->5432/tcp");
        assert_eq!(
            c[0].networks[0].subnet().unwrap().to_string(),
            "172.17.0.0/16"
        );
        assert_eq!(c[1].networks[0].subnet(), None);
        let labels: Vec<String> = c[1].published.iter().map(|p| p.label()).collect();
        assert_eq!(
            labels,
            vec!["10.0.0.5:5353->53/udp", "127.0.0.1:16379->6379/tcp"]
        );
    }

    #[test]
    fn an_engine_whose_daemon_does_not_answer_has_no_containers() {
        assert!(
            parse_probe("### engine docker not running\n### engine podman\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let e = parse_probe("### engine docker\n{\"id\":\"x\"}\nnot json\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_probe("{\"id\":\"x\"}\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_probe("### engine docker\n{\"id\":\"x\",\"ports\":{\"abc/tcp\":[]}}\n")
            .unwrap_err();
        assert!(e.message.contains("PORT/PROTO"), "{e}");
        let e = parse_probe(
            "### engine docker\n{\"id\":\"x\",\"ports\":{\"80/tcp\":[{\"HostIp\":\"nope\",\"HostPort\":\"80\"}]}}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("host address"), "{e}");
    }
}
