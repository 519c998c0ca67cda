#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let fw = rampart::collect::firewall::assemble(&rampart::collect::firewall::Inputs {
        ufw_status: rampart::state::Probed::Ok(&s),
        ufw_user_rules: Some(&s),
        iptables_nft: rampart::state::Probed::Ok(&s),
        nft: rampart::state::Probed::Ok(&s),
        ..Default::default()
    });
    let port = data.first().copied().unwrap_or(22).into();
    let _ = fw.admits(
        "192.0.2.1"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        rampart::state::Protocol::Tcp,
        port,
    );
});
