#!/usr/bin/env bash
# Installs everything Solyx needs on Debian 12, as root: system packages,
# the eBPF toolchain (nightly rust-src + bpf-linker), and the Python
# environments the tests and benchmarks compare against. Safe to re-run:
# each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh must run as root (it installs packages and, later, creates network namespaces)" >&2
    exit 2
fi

APT_PACKAGES=(
    build-essential pkg-config clang llvm libelf-dev
    iproute2 iputils-ping ethtool tcpdump iperf3
    python3 python3-venv python3-pip
    mininet python3-yaml socat
    cmake libclang-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2
    exit 2
fi
# The toolchain pinned in rust-toolchain.toml, and nightly with rust-src for
# the eBPF programs (they build with -Z build-std=core for bpfel).
rustup show active-toolchain >/dev/null
if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain for eBPF builds"
    rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
    log "adding rust-src to nightly"
    rustup component add rust-src --toolchain nightly
fi
if ! command -v bpf-linker >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/bpf-linker" ]; then
    # 0.10.0 is the last release that builds against its bundled LLVM on
    # Debian 12; newer ones need a system LLVM this release lacks.
    log "building bpf-linker 0.10.0 (a few minutes, once)"
    cargo install bpf-linker@0.10.0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    # The bounded fuzz run of scripts/test.sh (scripts/fuzz.sh).
    log "installing cargo-fuzz (about a minute, once)"
    cargo install --locked cargo-fuzz
fi

# Python environments, kept apart because p4runtime-shell pins an old
# protobuf while the official P4Runtime bindings want a current one.
if [ ! -x .venv-p4rt/bin/python ] || ! .venv-p4rt/bin/python -c 'import p4' 2>/dev/null; then
    log "creating .venv-p4rt (official P4Runtime Python bindings)"
    python3 -m venv .venv-p4rt
    .venv-p4rt/bin/pip install -q --disable-pip-version-check p4runtime==1.6.0 protobuf grpcio
fi
if [ ! -x .venv-shell/bin/python ] || ! .venv-shell/bin/python -c 'import p4runtime_sh' 2>/dev/null; then
    log "creating .venv-shell (p4runtime-shell, for comparisons)"
    python3 -m venv .venv-shell
    .venv-shell/bin/pip install -q --disable-pip-version-check p4runtime-shell
fi
if [ ! -x .venv-ray/bin/ray ]; then
    # A real Ray head for the orchestrator's job-submission test (about
    # 30 s to install, a few seconds to start).
    log "creating .venv-ray (Ray, for the Ray Jobs API test)"
    python3 -m venv .venv-ray
    .venv-ray/bin/pip install -q --disable-pip-version-check 'ray[default]==2.60.0'
fi
if [ ! -x .venv-schemathesis/bin/schemathesis ]; then
    log "creating .venv-schemathesis (REST API fuzzing against docs/openapi.json)"
    python3 -m venv .venv-schemathesis
    .venv-schemathesis/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
log "done"
