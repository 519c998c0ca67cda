#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), when cargo-fuzz and a nightly
# toolchain are installed; otherwise says so and exits 0 (CI runs the stable harness,
# tests/hostile_fuzz.rs, instead). Seeds come from tests/fixtures; crashes land in
# fuzz/artifacts/TARGET/ (copy them to tests/fixtures/hostile/crashes/TARGET-NAME).
#
#   fuzz/run.sh 60            # one minute per target
#   fuzz/run.sh 10 nft ss     # only these targets
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1 || ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz or the nightly toolchain is missing; skipping" \
       "(cargo install cargo-fuzz; rustup toolchain install nightly)" >&2
  exit 0
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
seed_dirs() {
  # The fixture directories that seed a target, as listed in entries.rs.
  grep -E "^\s*\(\"$1\"," entries.rs | grep -oE '&\[[^]]*\]' | tail -1 | grep -oE '"[^"]+"' | tr -d '"'
}
status=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus"
  for d in $(seed_dirs "$t"); do
    find "../tests/fixtures/$d" -type f -exec cp -n {} "$corpus/" \; 2>/dev/null || true
  done
  echo "== $t ($secs s)"
  if ! cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 \
      | grep -E "^(#[0-9]+.*DONE|Done [0-9]+ runs|==[0-9]+== ERROR|SUMMARY)" ; then
    :
  fi
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "!! $t: crash inputs in fuzz/artifacts/$t" >&2
    status=1
  fi
done
exit $status
