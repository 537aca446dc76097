#!/usr/bin/env bash
# The demo cluster: Serf agents standing in for machines, clustermgrd beside its own Serf agent,
# and a sample playbook run with a local connection. It commissions a node end to end, then
# leaves everything running for you to try the CLI; Ctrl-C stops it all.
#
# Usage: scripts/demo.sh [--no-build] [--no-wait]
#   --no-wait: stop everything after the walk-through instead of waiting for Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build}
wait_for_ctrl_c=1
do_build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) do_build=0 ;;
    --no-wait) wait_for_ctrl_c=0 ;;
    *) echo "usage: scripts/demo.sh [--no-build] [--no-wait]" >&2; exit 2 ;;
  esac
done

if ((do_build)); then
  ./scripts/install-deps.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target clustermgrd clustermgr state-inspect
fi
case "$build" in /*) bin="$build/bin" ;; *) bin="$root/$build/bin" ;; esac

work=$(mktemp -d /tmp/clustermgr-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping everything"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Ports from a range unlikely to be taken; override with DEMO_PORT_BASE.
base=${DEMO_PORT_BASE:-17900}
mgr_serf_bind=127.0.0.1:$((base + 1))
mgr_serf_rpc=127.0.0.1:$((base + 2))
export CLUSTERMGR_URL=tcp://127.0.0.1:$((base + 3))
gossip=tcp://127.0.0.1:$((base + 4))

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting the manager's Serf agent ($mgr_serf_bind)"
serf agent -profile=local -node=manager-1 -bind="$mgr_serf_bind" -rpc-addr="$mgr_serf_rpc" \
  -tag role=clustermgr >"$work/serf-manager.log" 2>&1 &
pids+=($!)

say "starting two Serf agents standing in for machines (127.0.0.2, 127.0.0.3)"
for i in 1 2; do
  serf agent -profile=local -node="machine-$i" -bind="127.0.0.$((i + 1)):$((base + 10 + i))" \
    -rpc-addr="127.0.0.1:$((base + 20 + i))" -join="$mgr_serf_bind" \
    -tag NodeLabel=demo-node -tag NodeSerial="$i" -tag NodeAddr="127.0.0.$((i + 1))" \
    >"$work/serf-machine-$i.log" 2>&1 &
  pids+=($!)
done

say "starting clustermgrd (data in $work/data, playbooks in demo/playbooks)"
mkdir -p "$work/markers"
"$bin/clustermgrd" --name manager-1 --data-dir "$work/data" --rpc-bind "$CLUSTERMGR_URL" \
  --gossip-bind "$gossip" --serf-rpc "$mgr_serf_rpc" --playbook-dir "$root/demo/playbooks" \
  --extra-vars "{\"ansible_connection\":\"local\",\"marker_dir\":\"$work/markers\"}" \
  >"$work/clustermgrd.log" 2>&1 &
pids+=($!)

cm() { echo "\$ clustermgr $*"; "$bin/clustermgr" "$@"; }

for _ in $(seq 1 100); do
  if "$bin/clustermgr" node get demo-node-2 >/dev/null 2>&1 &&
     "$bin/clustermgr" node get demo-node-1 >/dev/null 2>&1; then break; fi
  sleep 0.2
done

say "the machines were discovered through Serf"
cm nodes get

say "commissioning demo-node-1 as a master with the sample playbook"
cm global set -e '{"demo_greeting":"hello from clustermgr"}'
cm node commission demo-node-1 -g service-master -e '{"site":"demo"}'
cm job get active -f || true

say "the result"
cm node get demo-node-1
echo "playbook markers:"; cat "$work/markers"/*.log 2>/dev/null || true

say "the state survives a restart of clustermgrd"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
"$bin/clustermgrd" --name manager-1 --data-dir "$work/data" --rpc-bind "$CLUSTERMGR_URL" \
  --gossip-bind "$gossip" --serf-rpc "$mgr_serf_rpc" --playbook-dir "$root/demo/playbooks" \
  --extra-vars "{\"ansible_connection\":\"local\",\"marker_dir\":\"$work/markers\"}" \
  >>"$work/clustermgrd.log" 2>&1 &
pids[-1]=$!
for _ in $(seq 1 50); do "$bin/clustermgr" status >/dev/null 2>&1 && break; sleep 0.2; done
cm global get
cm jobs list

if ((wait_for_ctrl_c)); then
  say "the cluster keeps running; try, in another shell:"
  cat <<HINT
  export CLUSTERMGR_URL=$CLUSTERMGR_URL
  $bin/clustermgr nodes get
  $bin/clustermgr node commission demo-node-2 -g service-worker
  $bin/clustermgr job get last
  $bin/state-inspect dump $work/data
Logs are in $work. Press Ctrl-C to stop everything.
HINT
  while true; do sleep 3600; done
fi
