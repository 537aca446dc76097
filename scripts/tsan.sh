#!/usr/bin/env bash
# Builds the daemon's multi-threaded parts with ThreadSanitizer (clang, build-tsan/) and runs
# their tests: the mgr layer and its sub-layers (mgr_*), and the integration tests, whose
# clustermgrd processes are instrumented too. Any report fails the run (halt_on_error).
#
#   scripts/tsan.sh [--build-only] [extra ctest args...]
#
# BUILD_DIR overrides build-tsan; JOBS (default 2) the build's parallelism. clang also checks
# the thread-safety annotations (-Wthread-safety) here.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
if [[ ${1:-} == --build-only ]]; then build_only=1; shift; fi
build=${BUILD_DIR:-build-tsan}
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=${CC:-clang-14} CXX=${CXX:-clang++-14} cmake -S . -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERMGR_TSAN=ON -DCLUSTERMGR_WERROR=ON \
    -DCLUSTERMGR_BENCH=OFF -DCLUSTERMGR_MANPAGES=OFF >/dev/null
fi
# The test binaries of mgr and its sub-layers, and the integration tests with the programs they
# start (integration_tests depends on them).
targets=(integration_tests)
for t in mgr_tests mgr_repl_tests mgr_ansible_tests mgr_http_tests mgr_log_tests fencing_tests; do
  if ninja -C "$build" -t query "$t" >/dev/null 2>&1; then targets+=("$t"); fi
done
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"
if ((build_only)); then exit 0; fi

# second_deadlock_stack: a lock-order report names both stacks.
# suppressions: libzmq's own hand-overs (see the file).
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp ${TSAN_OPTIONS:-}"
ctest --test-dir "$build" -j2 --output-on-failure --timeout 900 \
  -L '^(mgr|mgr_.*|fencing|integration)$' "$@"
