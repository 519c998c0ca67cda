//! The fuzz entry points, one function per target: what arbitrary bytes are fed to. Shared
//! by the cargo-fuzz targets in `fuzz_targets/` (nightly, libFuzzer) and by the stable
//! harness `tests/hostile_fuzz.rs` (mutation over seed fixtures, runs in CI), so both
//! exercise exactly the same code. An entry returns nothing; a panic is the finding.
//!
//! Use: `#[path = "../entries.rs"] mod entries;` (from a target) or
//! `#[path = "../fuzz/entries.rs"] mod entries;` (from `tests/`).

#![allow(dead_code)]

use std::path::Path;

/// A target's name, its entry, and the fixture directories (under `tests/fixtures/`) that
/// seed it.
pub type Entry = (&'static str, fn(&[u8]), &'static [&'static str]);

/// Every entry.
pub const ENTRIES: &[Entry] = &[
    ("iptables", iptables, &["iptables"]),
    ("ufw", ufw, &["ufw"]),
    ("nft", nft, &["nft", "hostile/nft"]),
    ("firewall", firewall, &["ufw", "iptables", "nft"]),
    ("firewalld", firewalld, &["firewall/firewalld"]),
    ("ss", ss, &["ss"]),
    ("fail2ban", fail2ban, &["fail2ban"]),
    ("vpn", vpn, &["wg"]),
    ("sshd", sshd, &["sshd"]),
    ("nginx", nginx, &["nginx"]),
    ("tls", tls, &["tls"]),
    ("services", services, &["services"]),
    ("counters_facts", counters_facts, &["counters", "facts"]),
    ("frames", frames, &["frames"]),
    ("pcap_stream", pcap_stream, &["pcap"]),
    ("decode_frame", decode_frame, &["pcap"]),
    ("inventory", inventory, &["hostile/inventory"]),
    ("known_hosts", known_hosts, &["hostile/known_hosts"]),
    ("ssh_config", ssh_config, &["hostile/ssh_config"]),
    ("waivers", waivers, &["hostile/waivers"]),
    ("framing", framing, &["frames"]),
    ("sanitize", sanitize, &["hostile/inventory"]),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

pub fn iptables(data: &[u8]) {
    let s = text(data);
    if let Ok(save) = rampart::collect::iptables::parse(&s) {
        let _ = rampart::collect::iptables::normalize(
            &save,
            rampart::state::Family::V4,
            rampart::state::Backend::IptablesLegacy,
            0,
        );
    }
}

pub fn firewalld(data: &[u8]) {
    let s = text(data);
    if let Ok(Some(f)) = rampart::firewall::firewalld::parse(&s) {
        for z in &f.zones {
            let _ = f.explain(z, 6379, "tcp");
            let _ = f.zone_of_chain(&format!("filter_IN_{}_allow", z.name));
        }
    }
    let _ = rampart::firewall::firewalld::parse_zones(&s);
    let _ = rampart::firewall::firewalld::parse_service("x", "f", &s);
}

pub fn ufw(data: &[u8]) {
    let s = text(data);
    let _ = rampart::collect::ufw::parse_status(&s);
    let _ = rampart::collect::ufw::parse_tuples(&s);
}

pub fn nft(data: &[u8]) {
    let s = text(data);
    if let Ok(rs) = rampart::collect::nft::parse(&s) {
        let _ = rampart::collect::nft::normalize(&rs, &[], 0);
    }
}

pub fn firewall(data: &[u8]) {
    let s = text(data);
    let fw = rampart::collect::firewall::assemble(&rampart::collect::firewall::Inputs {
        ufw_status: rampart::state::Probed::Ok(&s),
        ufw_user_rules: Some(&s),
        iptables_nft: rampart::state::Probed::Ok(&s),
        nft: rampart::state::Probed::Ok(&s),
        ..Default::default()
    });
    let port = data.first().copied().unwrap_or(22).into();
    let _ = fw.admits(
        std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
        rampart::state::Protocol::Tcp,
        port,
    );
}

pub fn ss(data: &[u8]) {
    let _ = rampart::collect::listeners::parse(&text(data));
}

pub fn fail2ban(data: &[u8]) {
    let s = text(data);
    let _ = rampart::collect::fail2ban::parse_overview(&s);
    let _ = rampart::collect::fail2ban::parse_jail("j", &s);
}

pub fn vpn(data: &[u8]) {
    let s = text(data);
    let _ = rampart::collect::vpn::parse_wg_dump(&s, Some("wg0"));
    let _ = rampart::collect::vpn::parse_openvpn("p", &s);
}

pub fn sshd(data: &[u8]) {
    let _ = rampart::collect::sshd::parse(&text(data));
}

pub fn nginx(data: &[u8]) {
    let _ = rampart::collect::nginx::parse(&text(data));
}

pub fn tls(data: &[u8]) {
    let s = text(data);
    let _ = rampart::collect::tls::parse_pem("p", &s);
    let _ = rampart::collect::tls::parse_files(&s);
}

pub fn services(data: &[u8]) {
    if let Ok((own, p)) = rampart::collect::services::parse_ps(&text(data)) {
        let _ = rampart::collect::services::from_processes(own, &p);
    }
}

pub fn counters_facts(data: &[u8]) {
    let s = text(data);
    let _ = rampart::collect::counters::parse_net_dev(&s);
    let _ = rampart::collect::counters::parse_snmp(&s);
    let _ = rampart::collect::facts::parse_os_release(&s);
    let _ = rampart::collect::facts::parse_ip_addr(&s);
    let _ = rampart::collect::facts::parse_ip_route(&s);
}

/// Frames → state: the bytes cut into frames of every probe. (Each frame carries the whole
/// input as stderr, so the work is quadratic in the input: inputs are capped at 16 KiB.)
pub fn frames(data: &[u8]) {
    let data = &data[..data.len().min(16 * 1024)];
    let s = text(data);
    let names: Vec<&str> = rampart::collect::probes::PROBES
        .iter()
        .map(|p| p.name())
        .collect();
    let frames: Vec<rampart::ssh::Frame> = data
        .chunks(64)
        .enumerate()
        .map(|(i, c)| rampart::ssh::Frame {
            name: names[i % names.len()].to_string(),
            exit_status: c.first().map(|b| i32::from(*b) - 1),
            stdout: c.to_vec(),
            stderr: s.as_bytes().to_vec(),
        })
        .collect();
    let _ = rampart::collect::probes::state_from_frames("h", &frames);
}

/// A byte stream through the pcap reader in input-chosen chunks, into a bounded flow table.
pub fn pcap_stream(data: &[u8]) {
    use rampart::traffic::{FlowTable, PcapReader, drain};
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let mut reader = PcapReader::new();
    let mut table = FlowTable::new(16);
    for c in rest.chunks(usize::from(chunk).max(1)) {
        reader.push(c);
        if drain(&mut reader, &mut table, None).is_err() {
            break;
        }
    }
    assert!(table.len() <= 16, "the flow table outgrew its bound");
    let _ = table.snapshot(0);
}

/// One frame of any link type (the first byte picks it).
pub fn decode_frame(data: &[u8]) {
    use rampart::traffic::decode::{decode, linktype};
    const TYPES: [u32; 6] = [
        linktype::ETHERNET,
        linktype::RAW,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        linktype::IPV4,
        linktype::IPV6,
    ];
    let Some((&t, frame)) = data.split_first() else {
        return;
    };
    let _ = decode(TYPES[usize::from(t) % TYPES.len()], frame);
}

/// The inventory loader: TOML through validation; an accepted inventory's hosts must carry
/// only validated values.
pub fn inventory(data: &[u8]) {
    let s = text(data);
    if let Ok(inv) = rampart::inventory::Inventory::parse(&s, Path::new("fuzz.toml")) {
        for h in &inv.hosts {
            for (what, v) in [("name", &h.name), ("user", &h.user)] {
                assert!(plain_word(v), "accepted {what} {v:?}");
            }
            if let rampart::inventory::Address::Dns(d) = &h.address {
                assert!(plain_word(d), "accepted address {d:?}");
            }
            let _ = inv.hop_chain(&h.name);
        }
    }
}

/// A value that is safe anywhere near a command line: not empty, not an option, letters,
/// digits and `-_.` only.
fn plain_word(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('-')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The known_hosts matcher: the first line is the host to look up (`name` or
/// `name:port`), the rest a known_hosts file; the decision for a fixed key must not panic.
pub fn known_hosts(data: &[u8]) {
    use rampart::ssh::known_hosts::{HostQuery, KnownHostsFile, Presented, check, parse};
    let s = text(data);
    let (first, rest) = s.split_once('\n').unwrap_or((&s, ""));
    let (name, port) = match first.rsplit_once(':') {
        Some((n, p)) => (n, p.parse().unwrap_or(22)),
        None => (first, 22),
    };
    let _ = parse(rest);
    let file = KnownHostsFile::from_text("fuzz_known_hosts", rest);
    let query = HostQuery::new([name.to_string()], port);
    let _ = rampart::ssh::known_hosts::matching_lines(std::slice::from_ref(&file), &query);
    let _ = rampart::ssh::known_hosts::wildcard_match(first.as_bytes(), rest.as_bytes());
    // A fixed ed25519 key, read through the matcher's own parser (the fuzz crate does not
    // depend on russh directly).
    let key =
        parse("k ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
            .entries
            .into_iter()
            .next()
            .map(|e| e.key);
    if let Some(key) = key {
        let _ = check(
            std::slice::from_ref(&file),
            &query,
            &Presented::Key(key),
            1_700_000_000,
        );
    }
}

/// `~/.ssh/config`: parse, look a host up, expand its tokens, split its jumps.
pub fn ssh_config(data: &[u8]) {
    let s = text(data);
    if let Ok(cfg) = rampart::ssh::config::parse(&s, Path::new("fuzz_config")) {
        let _ = cfg.lookup("db1");
        let _ = cfg.lookup("web1.example.org");
    }
    let _ = rampart::ssh::config::parse_jumps(&s);
    let _ = rampart::ssh::config::expand_tokens(&s, "h", "o", "u", 22);
}

/// Waiver files and `--since` values.
pub fn waivers(data: &[u8]) {
    let s = text(data);
    let _ = rampart::posture::waivers::parse("fuzz.toml", &s);
    let _ = rampart::store::parse_since(&s);
    let _ = rampart::posture::waivers::glob_match(&s, "db1");
}

/// Frame splitting of a framed script's output (stdout and stderr halves of the input).
pub fn framing(data: &[u8]) {
    let Ok(script) = rampart::collect::probes::host_script() else {
        return;
    };
    let nonce = script.nonce().unwrap_or_default().to_string();
    // Give the input a chance to carry real markers: `@N` in it becomes this nonce.
    let s = text(data).replace("@N", &nonce);
    let (out, err) = s.as_bytes().split_at(s.len() / 2);
    let _ = script.parse_frames(out, err);
}

/// Terminal sanitizing: the output never holds ESC, C0/C1 controls (but \n and \t) or
/// bidi overrides.
pub fn sanitize(data: &[u8]) {
    let s = text(data);
    let c = rampart::sanitize::clean(&s);
    for ch in c.chars() {
        let bad = (ch.is_control() && ch != '\n' && ch != '\t')
            || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "{ch:?} survived sanitizing");
    }
}
