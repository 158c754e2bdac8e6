#!/usr/bin/env bash
# A bounded run of the `parse_report` fuzz target of solyx-int (see
# int/fuzz/README.md): seeds the corpus with well-formed reports, fuzzes
# for SOLYX_FUZZ_SECONDS (default 20) and fails if the fuzzer finds an
# input that panics or that does not rebuild to the same bytes. Needs
# nightly Rust and cargo-fuzz (scripts/setup.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds="${SOLYX_FUZZ_SECONDS:-20}"
# Outside the clone, so that the next run (CI starts from a fresh clone)
# reuses the instrumented build instead of spending a minute on it.
target="${SOLYX_FUZZ_TARGET_DIR:-$HOME/.cache/solyx/fuzz-target}"
corpus=int/fuzz/corpus/parse_report
artifacts=int/fuzz/artifacts/parse_report
mkdir -p "$corpus" "$artifacts"
cargo run -q -p solyx-int --example fuzz_seeds -- "$corpus"

before=$(find "$artifacts" -type f | wc -l)
status=0
(cd int && cargo +nightly fuzz run --target-dir "$target" parse_report -- \
    -max_total_time="$seconds" -print_final_stats=1) || status=$?
after=$(find "$artifacts" -type f | wc -l)

if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
    echo "fuzz: parse_report failed (exit $status); inputs saved under $artifacts:" >&2
    find "$artifacts" -type f >&2 || true
    echo "replay one with: (cd int && cargo +nightly fuzz run parse_report fuzz/artifacts/parse_report/<file>)" >&2
    exit 1
fi
echo "fuzz: parse_report ran ${seconds}s, no crash"
