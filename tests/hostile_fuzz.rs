//! The stable fuzz harness: every cargo-fuzz entry (`fuzz/entries.rs`, the same functions
//! the nightly targets call) fed its seed fixtures, then mutated inputs (bit flips, byte
//! insertions and deletions, splices, repeats, hostile tokens), on stable Rust, in CI.
//! `RAMPART_FUZZ_ITERS` (default 1500) sets the mutations per target; the seed is printed
//! and can be fixed with `RAMPART_FUZZ_SEED`. Inputs in `tests/fixtures/hostile/crashes/`
//! (named `TARGET-*`) are replayed first: every crash found becomes one.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../fuzz/entries.rs"]
mod entries;

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn seeds(dirs: &[&str]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in dirs {
        let mut stack = vec![fixtures().join(d)];
        while let Some(p) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&p) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
    }
    out.push(Vec::new());
    out
}

const TOKENS: &[&[u8]] = &[
    b"\x1b[31m",
    b"\x1b]52;c;aGVsbG8=\x07",
    b"\xc2\x9b",
    b"\xe2\x80\xae",
    b"\xff\xfe",
    b"\0",
    b"\n",
    b"\r\n",
    b"{",
    b"[",
    b"\"",
    b"'",
    b"$(id)",
    b"`id`",
    b";",
    b" -o ProxyCommand=x",
    b"@@rampart:",
    b"|1|",
    b"@revoked ",
    b"@cert-authority ",
    b"*",
    b"!",
    b"[h]:22",
    b"=",
    b"99999999999999999999",
    b"-1",
    b"::",
    b"0.0.0.0/0",
];

fn mutate(rng: &mut fastrand::Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.usize(1..6) {
        match rng.u8(0..7) {
            0 if !v.is_empty() => {
                let i = rng.usize(0..v.len());
                v[i] ^= 1 << rng.u8(0..8);
            }
            1 => {
                let i = rng.usize(0..=v.len());
                v.insert(i, rng.u8(..));
            }
            2 if !v.is_empty() => {
                let i = rng.usize(0..v.len());
                let n = rng.usize(1..=(v.len() - i).min(64));
                v.drain(i..i + n);
            }
            3 => {
                let i = rng.usize(0..=v.len());
                let t = TOKENS[rng.usize(0..TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            4 if !other.is_empty() => {
                // Splice a piece of another seed.
                let a = rng.usize(0..other.len());
                let b = (a + rng.usize(1..256)).min(other.len());
                let i = rng.usize(0..=v.len());
                v.splice(i..i, other[a..b].iter().copied());
            }
            5 if !v.is_empty() => {
                // Repeat a slice (deep nesting, long lines).
                let a = rng.usize(0..v.len());
                let b = (a + rng.usize(1..32)).min(v.len());
                let piece = v[a..b].to_vec();
                let i = rng.usize(0..=v.len());
                for _ in 0..rng.usize(1..64) {
                    v.splice(i..i, piece.iter().copied());
                }
            }
            _ if !v.is_empty() => {
                let n = rng.usize(0..=v.len());
                v.truncate(n);
            }
            _ => v.push(rng.u8(..)),
        }
    }
    v.truncate(1 << 20);
    v
}

fn run_one(name: &str, f: fn(&[u8]), input: &[u8]) {
    let r = std::panic::catch_unwind(|| f(input));
    if r.is_err() {
        let dir = std::env::temp_dir().join("rampart-fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("{name}-{:016x}", fastrand::u64(..)));
        std::fs::write(&p, input).unwrap();
        panic!(
            "fuzz entry {name} panicked; input saved to {} (copy it to tests/fixtures/hostile/crashes/)",
            p.display()
        );
    }
}

#[test]
fn every_fuzz_entry_survives_seeds_and_mutations() {
    let iters: usize = std::env::var("RAMPART_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("RAMPART_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fuzz seed {seed} (RAMPART_FUZZ_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let crashes = fixtures().join("hostile/crashes");
    let mut total = 0usize;
    let mut per_target = Vec::new();
    for (name, f, dirs) in entries::ENTRIES {
        let started = std::time::Instant::now();
        let mut n = 0usize;
        // Known crashes first.
        if let Ok(rd) = std::fs::read_dir(&crashes) {
            for e in rd.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if file.starts_with(&format!("{name}-")) {
                    run_one(name, *f, &std::fs::read(e.path()).unwrap());
                    n += 1;
                }
            }
        }
        let seeds = seeds(dirs);
        for s in &seeds {
            run_one(name, *f, s);
            n += 1;
        }
        for _ in 0..iters {
            let a = &seeds[rng.usize(0..seeds.len())];
            let b = &seeds[rng.usize(0..seeds.len())];
            let input = mutate(&mut rng, a, b);
            run_one(name, *f, &input);
            n += 1;
        }
        per_target.push(format!("{name} {n} in {:.1?}", started.elapsed()));
        total += n;
    }
    eprintln!(
        "figure: stable fuzz executions {total} over {} targets ({})",
        entries::ENTRIES.len(),
        per_target.join(", ")
    );
}

/// Every cargo-fuzz target has a stable entry here, and every entry a target.
#[test]
fn every_target_has_an_entry_and_every_entry_a_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    targets.sort();
    let mut names: Vec<String> = entries::ENTRIES.iter().map(|e| e.0.to_string()).collect();
    names.sort();
    assert_eq!(targets, names);
    let manifest = std::fs::read_to_string(dir.parent().unwrap().join("Cargo.toml")).unwrap();
    for t in &targets {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{t}.rs\"")),
            "{t} is not a [[bin]] of fuzz/Cargo.toml"
        );
    }
}

/// The deeply nested nft document: refused or parsed, never a stack overflow.
#[test]
fn deeply_nested_nft_json_is_handled() {
    let text = std::fs::read_to_string(fixtures().join("hostile/nft/deeply-nested.json")).unwrap();
    // On a small stack, as a collector task might have.
    let h = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let r = rampart::collect::nft::parse(&text);
            if let Ok(rs) = &r {
                let _ = rampart::collect::nft::normalize(rs, &[], 0);
            }
            r.is_ok()
        })
        .unwrap();
    let parsed = h.join().expect("no panic or overflow");
    eprintln!("deeply nested nft JSON parsed: {parsed}");
}
