#!/usr/bin/env bash
# Installs dependencies, builds (warnings are errors) and runs every test except the soak label,
# then builds the libFuzzer targets with clang and runs each briefly (ctest label fuzz).
# Usage: scripts/test.sh [extra ctest args...]; BUILD_DIR overrides the build directory,
# FUZZ_BUILD_DIR the fuzz build's (default build-fuzz), SKIP_FUZZ=1 skips the fuzz step.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
./scripts/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERMGR_WERROR=ON
cmake --build "$build" -j2
ctest --test-dir "$build" -j2 --output-on-failure --timeout 600 -LE soak "$@"
if [[ ${SKIP_FUZZ:-0} != 1 ]]; then
  # Only the fuzz targets and the layers they link are built (not tools/, tests or benchmarks).
  BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz} ./scripts/fuzz.sh --build-only
  ctest --test-dir "${FUZZ_BUILD_DIR:-build-fuzz}" -j2 --output-on-failure -L fuzz
fi
