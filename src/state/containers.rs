//! Containers a host runs (Docker or Podman), as far as the network is concerned: where
//! each publishes its ports and on which networks it sits. Read-only facts; the firewall
//! model judges the published ports through the NAT and FORWARD path.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Protocol;

/// One running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// "docker" or "podman".
    pub engine: String,
    /// The first 12 characters of the container id.
    pub id: String,
    /// The name without Docker's leading '/'.
    pub name: String,
    pub image: String,
    pub running: bool,
    /// "bridge", "host", "none", a network name or "container:ID".
    pub network_mode: String,
    /// The networks it is attached to and its address on each.
    pub networks: Vec<ContainerNetwork>,
    /// Ports published on the host.
    pub published: Vec<PublishedPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    pub name: String,
    pub address: Option<IpAddr>,
    /// The network's prefix length (Docker's `IPPrefixLen`), when it has an address.
    #[serde(default)]
    pub prefix_len: Option<u8>,
}

impl ContainerNetwork {
    /// The network the address sits in (`172.17.0.0/16`).
    pub fn subnet(&self) -> Option<ipnet::IpNet> {
        ipnet::IpNet::new(self.address?, self.prefix_len?)
            .ok()
            .map(|n| n.trunc())
    }
}

/// A container port published on the host (`-p HOST_IP:HOST_PORT:PORT/PROTO`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub protocol: Protocol,
    /// The host address it is published on; `None` for every address (`0.0.0.0`, `::`, "").
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

impl Container {
    /// "lab-pg (rampart-lab/base:1, docker)", for evidence.
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.image, self.engine)
    }

    /// The container's address on its first network that has one.
    pub fn address(&self) -> Option<IpAddr> {
        self.networks.iter().find_map(|n| n.address)
    }
}

impl PublishedPort {
    /// "0.0.0.0:5432->5432/tcp" as `docker ps` prints it ("*" for every address).
    pub fn label(&self) -> String {
        let ip = match self.host_ip {
            Some(IpAddr::V6(a)) => format!("[{a}]"),
            Some(a) => a.to_string(),
            None => "*".to_string(),
        };
        format!(
            "{ip}:{}->{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.label()
        )
    }
}
