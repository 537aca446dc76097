#!/usr/bin/env bash
# The demo cluster: three clustermgrd instances, each beside its own Serf agent, Serf agents
# standing in for machines, and a sample playbook run with a local connection. It shows the
# replicated state and the side-effect token, commissions a node, kills the token holder's host,
# shows the takeover and that the state survived, then leaves the cluster running for you to try
# the CLI; Ctrl-C stops it all.
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
names=(mgr-1 mgr-2 mgr-3)
serf_bind() { echo "127.0.0.1:$((base + 1 + $1))"; }
serf_rpc() { echo "127.0.0.1:$((base + 11 + $1))"; }
rpc_url() { echo "tcp://127.0.0.1:$((base + 21 + $1))"; }
gossip_url() { echo "tcp://127.0.0.1:$((base + 31 + 2 * $1))"; }  # and the next port
http_addr() { echo "127.0.0.1:$((base + 41 + $1))"; }  # the HTTP gateway (loopback: plain HTTP)
export CLUSTERMGR_URL=$(rpc_url 0)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cm() { echo "\$ clustermgr $*"; "$bin/clustermgr" "$@"; }
wait_for() {  # wait_for SECONDS COMMAND...: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "demo: gave up waiting for: $*" >&2; return 1; }
    sleep 0.2
  done
}

declare -A serf_pid daemon_pid
start_daemon() {  # start_daemon INDEX
  local i=$1 peers=()
  for j in 0 1 2; do ((j == i)) || peers+=(--peer "$(gossip_url "$j")"); done
  "$bin/clustermgrd" --name "${names[$i]}" --data-dir "$work/${names[$i]}" \
    --rpc-bind "$(rpc_url "$i")" --gossip-bind "$(gossip_url "$i")" "${peers[@]}" \
    --serf-rpc "$(serf_rpc "$i")" --expect 3 --token-settle-ms 1000 --http-bind "$(http_addr "$i")" \
    --curve-key "$work/keys/cluster.key" --curve-clients "$work/keys/clients.list" \
    --playbook-dir "$root/demo/playbooks" --node-fencing require \
    --extra-vars "{\"ansible_connection\":\"local\",\"marker_dir\":\"$work/markers\"}" \
    >>"$work/${names[$i]}.log" 2>&1 &
  daemon_pid[$i]=$!
  pids+=($!)
}
holder() { "$bin/clustermgr" --json token 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("holder",""))'; }
has_holder() { [[ -n "$(holder)" ]]; }

say "CURVE keys: one key pair shared by the instances, one for the CLI (clustermgr keygen)"
mkdir -p "$work/keys"
"$bin/clustermgr" keygen --out "$work/keys/cluster.key"
"$bin/clustermgr" keygen --out "$work/keys/operator.key"
cp "$work/keys/operator.key.pub" "$work/keys/clients.list"
# The CLI (and state-inspect) talk CURVE with these; a client without them is refused.
export CLUSTERMGR_SERVER_KEY="$work/keys/cluster.key.pub" CLUSTERMGR_KEY="$work/keys/operator.key"

say "starting three manager hosts: a Serf agent and clustermgrd each (--expect 3)"
for i in 0 1 2; do
  join=(); ((i == 0)) || join=(-join="$(serf_bind 0)")
  serf agent -profile=local -node="${names[$i]}" -bind="$(serf_bind "$i")" \
    -rpc-addr="$(serf_rpc "$i")" "${join[@]}" >"$work/serf-${names[$i]}.log" 2>&1 &
  serf_pid[$i]=$!
  pids+=($!)
  ((i == 0)) && sleep 0.5  # the first agent must listen before the others join it
done
mkdir -p "$work/markers"
for i in 0 1 2; do start_daemon "$i"; done

say "two Serf agents stand in for machines (127.0.0.2, 127.0.0.3)"
for m in 1 2; do
  serf agent -profile=local -node="machine-$m" -bind="127.0.0.$((m + 1)):$((base + 60 + m))" \
    -rpc-addr="127.0.0.1:$((base + 70 + m))" -join="$(serf_bind 0)" \
    -tag NodeLabel=demo-node -tag NodeSerial="$m" -tag NodeAddr="127.0.0.$((m + 1))" \
    >"$work/serf-machine-$m.log" 2>&1 &
  pids+=($!)
done

wait_for 60 has_holder
wait_for 60 "$bin/clustermgr" node get demo-node-1
wait_for 60 "$bin/clustermgr" node get demo-node-2
say "one instance holds the side-effect token; every instance holds the whole state"
cm token
cm members
cm nodes get

say "the HTTP gateway: the predecessor's REST API, Prometheus metrics, health (loopback only)"
for i in 0 1 2; do echo "${names[$i]}: metrics at http://$(http_addr "$i")/metrics"; done
echo "\$ curl -s http://$(http_addr 0)/info/node/demo-node-1"
curl -s "http://$(http_addr 0)/info/node/demo-node-1" | python3 -m json.tool
echo "\$ curl -s http://$(http_addr 0)/readyz"
curl -s "http://$(http_addr 0)/readyz" || true
echo "\$ curl -s http://$(http_addr 0)/metrics | grep -E '^clustermgr_(token_self_holds|jobs)'"
curl -s "http://$(http_addr 0)/metrics" | grep -E '^clustermgr_(token_self_holds|jobs)' || true

say "a client without a listed key is refused (its CURVE handshake fails)"
echo "\$ CLUSTERMGR_KEY= CLUSTERMGR_SERVER_KEY= clustermgr --timeout 2 global set -e '{\"x\":1}'"
env -u CLUSTERMGR_KEY -u CLUSTERMGR_SERVER_KEY "$bin/clustermgr" --timeout 2 \
  global set -e '{"x":1}' || true

say "a write at mgr-2 is visible at mgr-3"
cm -u "$(rpc_url 1)" global set -e '{"demo_greeting":"hello from clustermgr"}'
wait_for 10 bash -c "\"$bin/clustermgr\" -u $(rpc_url 2) global get | grep -q demo_greeting"
cm -u "$(rpc_url 2)" global get

say "commissioning demo-node-1 through mgr-1: it runs once, on the token holder"
cm node commission demo-node-1 -g service-master -e '{"site":"demo"}'
cm job get active -f || true
cm node get demo-node-1
echo "playbook runs:"; cat "$work/markers"/*.log 2>/dev/null || true

old=$(holder)
old_epoch=$("$bin/clustermgr" --json token | python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])')
idx=0; for i in 0 1 2; do [[ ${names[$i]} == "$old" ]] && idx=$i; done
say "the token holder's host dies ($old: clustermgrd and its Serf agent, SIGKILL)"
kill -9 "${daemon_pid[$idx]}" "${serf_pid[$idx]}" 2>/dev/null || true
survivor=$(( (idx + 1) % 3 ))
export CLUSTERMGR_URL=$(rpc_url "$survivor")
started=$SECONDS
new_holder() { local h; h=$(holder); [[ -n "$h" && "$h" != "$old" ]]; }
wait_for 60 new_holder
echo "a new holder took over after about $((SECONDS - started)) s (Serf failure detection + settle)"
cm token

say "the state survived, and side effects work again (through $(basename "$CLUSTERMGR_URL"))"
cm global get
cm node commission demo-node-2 -g service-worker
cm job get active -f || true
cm nodes get
cm jobs list

say "fencing at the node: a late run of the deposed holder ($old, epoch $old_epoch) on demo-node-2"
echo "(the playbook run as the old holder would have run it, had it been cut off instead of killed;"
echo " the clustermgr_fence role checks the run's epoch against the highest the host has seen)"
(cd "$root/demo/playbooks" && ANSIBLE_NOCOLOR=1 ansible-playbook -i "demo-node-2," site.yml \
  -e "{\"ansible_connection\":\"local\",\"marker_dir\":\"$work/markers\",\"node_name\":\"demo-node-2\",\"node_addr\":\"127.0.0.3\",\"clustermgr_epoch\":$old_epoch,\"clustermgr_job_id\":\"late\"}" |
  grep -E "fatal|PLAY RECAP|demo-node-2 +:" || true)
echo "demo-node-2's fencing history ($work/markers/fence/demo-node-2/history):"
cat "$work/markers/fence/demo-node-2/history"

say "the dead host comes back: its clustermgrd catches up from its peers"
serf agent -profile=local -node="${names[$idx]}" -bind="$(serf_bind "$idx")" \
  -rpc-addr="$(serf_rpc "$idx")" -join="$(serf_bind "$survivor")" \
  >>"$work/serf-${names[$idx]}.log" 2>&1 &
serf_pid[$idx]=$!
pids+=($!)
start_daemon "$idx"
digest() { "$bin/clustermgr" -u "$1" --json status 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["state_digest"])'; }
same_state() { [[ "$(digest "$(rpc_url "$idx")")" == "$(digest "$CLUSTERMGR_URL")" ]]; }
wait_for 60 same_state
echo "${names[$idx]} state digest: $(digest "$(rpc_url "$idx")"), ${names[$survivor]}: $(digest "$CLUSTERMGR_URL")"
cm -u "$(rpc_url "$idx")" nodes get
all_visible() { "$bin/clustermgr" --json token 2>/dev/null |
  python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["visible_managers"] != 3)'; }
wait_for 30 all_visible || true
cm token

if ((wait_for_ctrl_c)); then
  say "the cluster keeps running; try, in another shell:"
  cat <<HINT
  export CLUSTERMGR_URL=$CLUSTERMGR_URL
  export CLUSTERMGR_SERVER_KEY=$CLUSTERMGR_SERVER_KEY CLUSTERMGR_KEY=$CLUSTERMGR_KEY
  $bin/clustermgr members
  $bin/clustermgr node decommission demo-node-2
  $bin/clustermgr job get last
  curl -s http://$(http_addr 0)/info/nodes        # the predecessor's REST API (clusterctl -u $(http_addr 0))
  curl -s http://$(http_addr 0)/metrics           # Prometheus; docs/grafana-dashboard.json
  $bin/state-inspect diff --url $(rpc_url $(( (idx + 1) % 3 ))) --url $(rpc_url $(( (idx + 2) % 3 )))
Logs are in $work. Press Ctrl-C to stop everything.
HINT
  while true; do sleep 3600; done
fi
