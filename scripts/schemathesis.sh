#!/usr/bin/env bash
# Fuzzes the controller's REST API with schemathesis against the committed
# OpenAPI document (docs/openapi.json): starts `solyx api serve --demo`,
# with the orchestrator over a small fabric of two GPU nodes, on a free
# loopback port with an admin token, runs a bounded number of
# generated requests, and fails on any 5xx, any answer that breaks the
# document (status, content type, schema), or any malformed request
# accepted.
#
# Left out, on purpose: the `positive_data_acceptance` check: a schema-valid intent that names
# a host or device the network does not have is rightly refused (422), and
# so is 1.0 where the API takes an integer.
#
# Usage: scripts/schemathesis.sh [--max-examples N]  (default 25; at most 40 s of requests)
set -euo pipefail
cd "$(dirname "$0")/.."

examples=25
if [ "${1:-}" = "--max-examples" ]; then examples="$2"; fi

st=.venv-schemathesis/bin/schemathesis
if [ ! -x "$st" ]; then
    echo "schemathesis is missing: run scripts/setup.sh first" >&2
    exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"
SOLYX_EBPF_BUILD=skip cargo build -q -p solyx

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A small fabric with declared nodes, so the orchestrator's routes (nodes,
# jobs, placements) have an inventory to work on.
cat > "$work/cluster.yaml" <<'YAML'
name: schemathesis
devices:
  - { name: leaf1, role: fabric, device_id: 1 }
  - { name: leaf2, role: fabric, device_id: 2 }
  - { name: spine1, role: fabric, device_id: 3 }
  - name: gpu1
    role: host
    device_id: 101
    ip: 10.0.1.1/24
    site: site-a
    node: { cpus: 32, memory: 256GiB, gpus: [{ model: A100, count: 4, memory: 80GiB }] }
  - name: gpu2
    role: host
    device_id: 102
    ip: 10.0.2.1/24
    site: site-b
    node: { cpus: 32, memory: 256GiB, gpus: [{ model: A100, count: 4, memory: 80GiB }] }
links:
  - [gpu1:1, leaf1:1]
  - [gpu2:1, leaf2:1]
  - [leaf1:2, spine1:1]
  - [leaf2:2, spine1:2]
YAML

token="schemathesis-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf 'admin schemathesis %s\n' "$token" > "$work/tokens"
./target/debug/solyx api serve --demo --listen 127.0.0.1:0 --tokens "$work/tokens" \
    --db "$work/state.db" --topology "$work/cluster.yaml" --orchestrator-db "$work/orch.db" > "$work/addr" 2> "$work/server.log" &
pid=$!
for _ in $(seq 50); do
    [ -s "$work/addr" ] && break
    sleep 0.1
done
addr=$(head -1 "$work/addr")
if [ -z "$addr" ]; then
    echo "the API did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "fuzzing $addr with $examples examples per operation"

"$st" run docs/openapi.json --url "$addr" \
    -H "Authorization: Bearer $token" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$examples" --seed 7 --max-time 40 \
    --warnings off
