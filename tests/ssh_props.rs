//! Property tests for the SSH module's pure parsers: no panic on arbitrary input, and the
//! wildcard matcher agrees with a simple reference on random patterns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use proptest::prelude::*;
use rampart::ssh::command::parse_frames;
use rampart::ssh::config;
use rampart::ssh::known_hosts::{self, HostQuery, KnownHostsFile, Presented, wildcard_match};
use russh::keys::PublicKey;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDGI8kov72hsN4KaTHXUk9vnqu6Zq1zu3RMjM2a/Uish";

/// Reference: the obvious recursive definition.
fn reference(p: &[u8], t: &[u8]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
        (Some(b'?'), Some(_)) => reference(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wildcard_agrees_with_reference(p in "[ab*?]{0,8}", t in "[ab]{0,10}") {
        prop_assert_eq!(wildcard_match(p.as_bytes(), t.as_bytes()), reference(p.as_bytes(), t.as_bytes()));
    }

    #[test]
    fn known_hosts_never_panics(text in "\\PC{0,400}", host in "[a-z0-9.\\[\\]:*?!|]{0,20}", port in 1u16..) {
        let files = vec![KnownHostsFile::from_text("kh", &text)];
        let key = Presented::Key(PublicKey::from_openssh(KEY).unwrap());
        let _ = known_hosts::check(&files, &HostQuery::new([host], port), &key, 0);
    }

    #[test]
    fn known_hosts_lines_with_valid_keys_never_panic(
        hosts in "[a-z0-9.,!*?\\[\\]:|=+/]{1,40}",
        marker in prop::sample::select(vec!["", "@revoked ", "@cert-authority ", "@bogus "]),
        query in "[a-z0-9.]{1,12}",
    ) {
        let text = format!("{marker}{hosts} {KEY}\n");
        let files = vec![KnownHostsFile::from_text("kh", &text)];
        let key = Presented::Key(PublicKey::from_openssh(KEY).unwrap());
        let _ = known_hosts::check(&files, &HostQuery::new([query], 22), &key, 0);
    }

    #[test]
    fn ssh_config_never_panics(text in "\\PC{0,400}", host in "[a-z0-9.]{0,12}") {
        if let Ok(c) = config::parse(&text, Path::new("config")) {
            let _ = c.lookup(&host);
        }
    }

    #[test]
    fn frames_never_panic(out in prop::collection::vec(any::<u8>(), 0..400), err in prop::collection::vec(any::<u8>(), 0..100)) {
        let _ = parse_frames("n", &out, &err);
        let mut framed = b"@@rampart:n:begin:x\n".to_vec();
        framed.extend_from_slice(&out);
        let _ = parse_frames("n", &framed, &err);
    }

    #[test]
    fn frames_round_trip(body in prop::collection::vec(any::<u8>(), 0..200), status in 0i32..256) {
        // Whatever a probe prints (without the nonce), its frame gives it back exactly.
        let mut out = b"@@rampart:n0:begin:p\n".to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(format!("\n@@rampart:n0:end:p:{status}\n").as_bytes());
        let frames = parse_frames("n0", &out, b"");
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(&frames[0].stdout, &body);
        prop_assert_eq!(frames[0].exit_status, Some(status));
    }
}
