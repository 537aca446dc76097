#!/usr/bin/env bash
# clustermgr side by side with etcd: builds in Release, then bench/etcd_compare_bench
# starts a 3-instance clustermgrd cluster and a 3-member etcd cluster (Debian etcd-server) on
# loopback in temp dirs, runs the same workloads against both, stops everything, prints one table
# and writes it as etcd-compare.md and etcd-compare.csv, plus the chart etcd-compare.png.
#
# Usage: scripts/bench-vs-etcd.sh [etcd_compare_bench options, e.g. --runs 5]
# BUILD_DIR: the Release build dir (default build/release); OUT_DIR: where the results go
# (default bench/results). Installs missing packages with apt-get (root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build/release}
out=${OUT_DIR:-bench/results}

./scripts/install-deps.sh
missing=()
for p in etcd-server gnuplot-nox libcurl4-openssl-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "bench-vs-etcd: installing ${missing[*]}"
  # apt-get update only when the package lists do not know the packages yet.
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"
  fi
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target etcd_compare_bench clustermgrd

mkdir -p "$out"
"$build/bin/etcd_compare_bench" --out-dir "$out" "$@"

# The chart: per figure, by how many times clustermgr is better than etcd (log scale).
gnuplot <<GNUPLOT
set terminal pngcairo size 1000,560 font "sans,10"
set output "$out/etcd-compare.png"
set datafile separator ","
set title "clustermgr vs etcd, 3 instances each: how many times better clustermgr is (> 1: clustermgr better)"
set logscale y
set grid ytics
set ylabel "etcd / clustermgr  (throughput: clustermgr / etcd)"
set xtics rotate by -30 left noenhanced
set style fill solid 0.8 border -1
set boxwidth 0.7
set key off
set offsets 0.5, 0.5, graph 0.08, 0
plot "$out/etcd-compare.csv" every ::1 using 0:11:(\$11 >= 1 ? 0x2ca02c : 0xd62728):xtic(1) \
       with boxes lc rgb variable, \
     "" every ::1 using 0:11:(sprintf("%.2g", \$11)) with labels offset 0,0.8, \
     1 with lines dt 2 lc rgb "black"
GNUPLOT
echo "wrote $out/etcd-compare.png"
