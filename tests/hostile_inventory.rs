//! Inventory injection: names, addresses, users, ports, bastions, roles, segment names and
//! CIDRs carrying `-o` options, `;`, `$( )`, backticks, newlines, NUL and other controls
//! are rejected when the inventory loads, with an error naming file, line and key, and no
//! control character in the message. (That nothing reaches a host is checked with the
//! host-side recorder in `hostile_readonly.rs`.)

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
mod hostile_support;

use std::path::Path;

use hostile_support as hs;
use rampart::inventory::Inventory;

#[test]
fn the_base_inventory_loads() {
    // Otherwise every rejection below could be for some other reason.
    let base = hs::injection_cases()
        .into_iter()
        .find(|(f, v, _)| f == "host name" && v == "-p2222")
        .unwrap()
        .2
        .replace("name = \"-p2222\"", "name = \"web1\"");
    Inventory::parse(&base, Path::new("base.toml")).unwrap();
}

#[test]
fn every_hostile_value_is_rejected_at_load() {
    let cases = hs::injection_cases();
    assert!(cases.len() > 150, "{}", cases.len());
    let mut accepted = Vec::new();
    let mut leaks = Vec::new();
    for (field, value, text) in &cases {
        match Inventory::parse(text, Path::new("hostile.toml")) {
            Ok(inv) => accepted.push(format!(
                "{field} = {value:?} accepted: hosts {:?}",
                inv.hosts
                    .iter()
                    .map(|h| (&h.name, h.address.to_string(), &h.user, h.port))
                    .collect::<Vec<_>>()
            )),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("hostile.toml"), "{field} {value:?}: {msg}");
                if msg
                    .chars()
                    .any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))
                {
                    leaks.push(format!("{field} {value:?}: {msg:?}"));
                }
            }
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
    assert!(
        leaks.is_empty(),
        "errors carrying control characters to the terminal: {leaks:#?}"
    );
    eprintln!("figure: inventory injection cases rejected {}", cases.len());
}
