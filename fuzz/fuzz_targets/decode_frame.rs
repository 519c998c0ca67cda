#![no_main]
//! cargo-fuzz target: one frame of any link type rampart decodes (the first byte picks it)
//! gives a value or an error, never a panic.

use libfuzzer_sys::fuzz_target;
use rampart::traffic::decode::{decode, linktype};

const TYPES: [u32; 6] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::IPV4,
    linktype::IPV6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&t, frame)) = data.split_first() else {
        return;
    };
    let _ = decode(TYPES[usize::from(t) % TYPES.len()], frame);
});
