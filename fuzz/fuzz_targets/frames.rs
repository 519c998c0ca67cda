#![no_main]
//! cargo-fuzz target: arbitrary bytes never panic the parser.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
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
});
