#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang in build-fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [--seconds N] [--build-only] [target...]
#
# No target: all of them, one after the other. N defaults to 30 (a long run is
# `scripts/fuzz.sh --seconds 600`). BUILD_DIR overrides build-fuzz; JOBS (default 2) the build's
# parallelism.
#
# Each target reads its committed corpus fuzz/corpus/<target>/ and never writes to it: new inputs
# go to <build>/fuzz-work/<target>/ (kept between runs, so runs build on each other), the log to
# <build>/fuzz-logs/<target>.log, a crash input to <build>/fuzz-artifacts/<target>/. A line per
# target says how many inputs ran; the script exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
build_only=0
targets=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(rpc_request_fuzz serf_codec_fuzz extra_vars_fuzz store_record_fuzz delta_join_fuzz
     gossip_message_fuzz allow_list_fuzz)
if ((${#targets[@]} == 0)); then targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
  if [[ ! -d fuzz/corpus/$t ]]; then echo "fuzz.sh: unknown target $t (one of: ${all[*]})" >&2; exit 2; fi
done

build=${BUILD_DIR:-build-fuzz}
cc=${CC:-clang-14}
cxx=${CXX:-clang++-14}
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=$cc CXX=$cxx cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCLUSTERMGR_FUZZ=ON -DCLUSTERMGR_BENCH=OFF -DCLUSTERMGR_WERROR=ON >/dev/null
fi
cmake --build "$build" -j"${JOBS:-2}" --target "${targets[@]}"
if ((build_only)); then exit 0; fi

failed=0
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  artifacts=$build/fuzz-artifacts/$t
  log=$build/fuzz-logs/$t.log
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if [[ -f fuzz/dict/$t.dict ]]; then args+=(-dict="fuzz/dict/$t.dict"); fi
  echo "fuzz.sh: $t for ${seconds}s (log $log)"
  if "$build/bin/$t" "${args[@]}" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then status=ok; else
    status="CRASHED (input in $artifacts/)"
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(ls "$work" | wc -l)
  echo "fuzz.sh: $t: ${runs:-?} executions, $corpus new inputs in $work, $status"
done
exit $failed
