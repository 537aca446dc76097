#!/usr/bin/env bash
# clustermgr with a fleet: builds in Release, then bench/fleet_bench runs the fleet scenarios on
# this machine (test/support/fleet.h): 200 real `serf agent -profile=local` processes as
# machines watched by 3 clustermgrd instances, a mass departure; a Serf RPC stand-in serving a
# storm of 10,000 member joins to 3 instances (replication, reads, memory, restart); a commission
# of 500 hosts in one job with a trivial playbook on a local connection, and a cancel mid-job.
# It writes fleet.md and fleet.csv (key,value,unit) and the chart fleet.png.
#
# Usage: scripts/bench-fleet.sh [fleet_bench options, e.g. --agents 300 --members 20000]
#        scripts/bench-fleet.sh --chart-only   (redraws fleet.png from $OUT_DIR/fleet.csv)
# BUILD_DIR: the build dir (default build/release); BUILD_TYPE: its CMake build type (default
# Release; fleet.md names the one used); OUT_DIR: where the results go (default bench/results).
# Installs missing packages with apt-get (root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/release}
build_type=${BUILD_TYPE:-Release}
out=${OUT_DIR:-bench/results}

chart_only=0
if [[ ${1:-} == --chart-only ]]; then chart_only=1; shift; fi
if ((!chart_only)); then ./scripts/install-deps.sh; fi
if ! command -v gnuplot >/dev/null; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "bench-fleet: installing gnuplot-nox"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      gnuplot-nox; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox
  fi
fi
# Hundreds of agents and ansible forks need file descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if ((!chart_only)); then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
  cmake --build "$build" -j"${JOBS:-2}" --target fleet_bench clustermgrd
  mkdir -p "$out"
  "$build/bin/fleet_bench" --out-dir "$out" "$@"
fi

# The chart: every figure on a log scale, labelled with its value and unit.
gnuplot <<GNUPLOT
set terminal pngcairo size 1100,560 font "sans,10"
set output "$out/fleet.png"
set datafile separator ","
set title "clustermgr with a fleet (fleet.md has the set-up and what limits each figure)"
set logscale y
set grid ytics
set ylabel "value (unit in the label)"
set xtics rotate by -30 left noenhanced
set style fill solid 0.8 border -1
set boxwidth 0.7
set key off
set offsets 0.5, 0.5, graph 0.1, 0
plot "$out/fleet.csv" every ::1 using 0:(\$2 > 0 ? \$2 : 1e-3):xtic(1) with boxes lc rgb "#1f77b4", \
     "" every ::1 using 0:(\$2 > 0 ? \$2 : 1e-3):(sprintf("%.3g %s", \$2, stringcolumn(3))) \
       with labels offset 0,0.8 noenhanced
GNUPLOT
echo "wrote $out/fleet.png"
