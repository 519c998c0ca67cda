//! Build script: puts the git commit into `rampart --version`.
//!
//! From a git checkout the version reads `0.1.0 (commit 1a2b3c4d5e6f)`: the commit checked out
//! (uncommitted changes are not marked: they would not trigger a rebuild). Without git (a source tarball, a
//! `cargo install` from a registry, no `git` on PATH) it degrades to the bare package version.
//! Never fails the build.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn main() {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RAMPART_GIT_COMMIT");
    // An override for packagers who build outside the checkout.
    let commit = std::env::var("RAMPART_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let head = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: HEAD itself (branch switches) and the refs it points to.
            for p in ["HEAD", "packed-refs"] {
                if let Some(path) = git(&["rev-parse", "--git-path", p]) {
                    println!("cargo:rerun-if-changed={}", PathBuf::from(path).display());
                }
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
                && let Some(path) = git(&["rev-parse", "--git-path", &r])
            {
                println!("cargo:rerun-if-changed={}", PathBuf::from(path).display());
            }
            Some(head)
        });
    let version = match commit {
        Some(c) => format!("{pkg} (commit {c})"),
        None => pkg,
    };
    println!("cargo:rustc-env=RAMPART_VERSION={version}");
    println!(
        "cargo:rustc-env=RAMPART_COMMIT={}",
        version
            .split_once("(commit ")
            .map(|(_, c)| c.trim_end_matches(')'))
            .unwrap_or("")
    );
}
