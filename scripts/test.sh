#!/usr/bin/env bash
# Installs what the tests need, then runs every check and test: formatting,
# lints, shortcoming marks, a bounded fuzz run of the INT report parser,
# and the whole cargo test suite (unit, property,
# gRPC end-to-end, wire compatibility with the official Python bindings,
# and, as root, the kernel tests in network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "shortcoming marks carry a category"
./scripts/check-marks.sh

step "fuzz the INT report parser (bounded)"
./scripts/fuzz.sh

step "cargo test"
# The Python wire-compatibility tests must run here, not skip.
export SOLYX_REQUIRE_PY=1
# The kernel tests (eBPF, namespaces) must run here too: CI is root.
export SOLYX_REQUIRE_ROOT=1
export SOLYX_P4RT_PYTHON="$PWD/.venv-p4rt/bin/python"
export SOLYX_SHELL_PYTHON="$PWD/.venv-shell/bin/python"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt

step "REST API fuzzing (schemathesis against docs/openapi.json)"
# A failure here fails the run (set -e); the closing count lists it.
if ./scripts/schemathesis.sh 2>&1 | tee target/schemathesis-output.txt; then
    echo "test result: ok. 1 passed; 0 failed; 0 ignored (schemathesis)" >> target/test-output.txt
else
    echo "schemathesis found problems in the REST API (target/schemathesis-output.txt)" >&2
    exit 1
fi

step "Mininet testbed"
# Debian's python3 carries Mininet's Python API.
/usr/bin/python3 mininet/tests/test_udpseq.py 2>&1 | tee -a target/test-output.txt
SOLYX_AGENT="$PWD/target/debug/solyx-agent" /usr/bin/python3 mininet/tests/test_solyx_net.py 2>&1 \
    | tee -a target/test-output.txt

step "Main job end to end (leaf-spine testbed, solyx serve, goals)"
# The shortened main scenario: reachability, rebalancing gain, failover
# time, and nothing left behind after a clean stop or a SIGKILL. It runs
# the release binaries, as run-main.sh does: fourteen agents, their
# probes and the controller share two cores, and debug builds leave too
# little of them for the traffic the goals are about.
cargo build --release -p solyx -p solyx-agent
SOLYX_AGENT="$PWD/target/release/solyx-agent" SOLYX="$PWD/target/release/solyx" \
    timeout 600 /usr/bin/python3 mininet/tests/test_main_scenario.py 2>&1 | tee -a target/test-output.txt

# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt
