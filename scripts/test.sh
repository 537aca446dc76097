#!/usr/bin/env bash
# Installs dependencies, builds (warnings are errors) and runs every test except the soak label.
# Usage: scripts/test.sh [extra ctest args...]; BUILD_DIR overrides the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
./scripts/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLUSTERMGR_WERROR=ON
cmake --build "$build" -j2
ctest --test-dir "$build" -j2 --output-on-failure --timeout 600 -LE soak "$@"
