#!/usr/bin/env bash
# The main job. Installs what is needed, builds, and runs Solyx end to end
# on a Mininet testbed of topologies/leaf-spine.yaml (2 spines, 4 leaves,
# 2 hosts per leaf; eBPF switches run by solyx-agent, hosts running
# solyx-agent host, links shaped with tbf), with `solyx serve` as the
# controller, then prints what it measured:
#   1. every host pings every other host (the matrix);
#   2. two iperf3 flows start on the same spine; INT sees the queue; the
#      controller moves traffic: aggregate throughput before and after,
#      time from congestion to new weights (goal: after >= 1.5x before);
#   3. a spine link goes down under a numbered UDP stream: time from the
#      failure to restored delivery, from the sequence numbers (goal:
#      <= 100 ms);
#   4. INT reports per second and P4Runtime writes (controller /metrics);
# then leaves the API and /metrics up until Ctrl-C (or --duration N) and
# says where to look.
#
# Options (passed to mininet/scenario.py; see its --help):
#   --duration N        keep running N seconds after the steps (0: stop)
#   --api-listen A:P    the controller's REST API and /metrics (127.0.0.1:8080)
#   --flow-seconds N, --pps N, --stream-seconds N, --probe-interval-ms N
#   --cleanup           remove what a killed run left (by PID and name)
#   --debug             build and run the debug binaries (faster to build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

profile=release
args=()
cleanup_only=0
for a in "$@"; do
    case "$a" in
        --debug) profile=debug ;;
        --cleanup) cleanup_only=1; args+=("$a") ;;
        *) args+=("$a") ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "run-main.sh must run as root (it installs packages and builds a network testbed)" >&2
    exit 2
fi
if [ "$cleanup_only" = 1 ]; then
    exec /usr/bin/python3 mininet/scenario.py "${args[@]}"
fi

./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

printf '\n\033[1m== building (%s)\033[0m\n' "$profile"
if [ "$profile" = release ]; then
    cargo build --release -q -p solyx -p solyx-agent
else
    cargo build -q -p solyx -p solyx-agent
fi
export SOLYX="$ROOT/target/$profile/solyx" SOLYX_AGENT="$ROOT/target/$profile/solyx-agent"

# Debian's python3 carries Mininet's Python API.
exec /usr/bin/python3 mininet/scenario.py topologies/leaf-spine.yaml "${args[@]}"
