#!/usr/bin/env bash
# Fails when a test double ends up in a program. Run by the test_double_check target
# (tools/CMakeLists.txt):
#   test_double_check.sh NM STAMP --programs P... --archives A... --headers H...
#
# A test double counts as linked in when a program defines
# * a strong symbol (code or data) that one of the <layer>_testing archives defines, or
# * any symbol (inline and template code included) of a class or struct that a testing/ header
#   declares at namespace scope, named with its namespace (clustermgr::net::FakeManager::).
# On success it touches STAMP.
set -euo pipefail
nm=$1 stamp=$2
shift 2
programs=() archives=() headers=()
list=
for arg in "$@"; do
  case $arg in
    --programs | --archives | --headers) list=${arg#--} ;;
    *) eval "$list+=(\"\$arg\")" ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Defined external symbols, demangled: "T clustermgr::net::FakeManager::Run(...)".
symbols() { "$nm" --defined-only --extern-only -C "$@" | sed -n 's/^[0-9a-f]* \([A-Za-z]\) /\1 /p'; }

symbols "${archives[@]}" | sed -n 's/^[TDBR] //p' | sort -u >"$work/strong"
for h in "${headers[@]}"; do
  awk '/^namespace [A-Za-z_:]+ \{/ { ns = $2 "::" }
       /^(class|struct) [A-Za-z_]+/ && !/;[[:space:]]*$/ {
         name = $2; sub(/[^A-Za-z_].*/, "", name); print ns name "::" }' "$h"
done | sort -u >"$work/types"

found=0
for p in "${programs[@]}"; do
  symbols "$p" >"$work/prog"
  {
    sed -n 's/^[TDBR] //p' "$work/prog" | sort -u | comm -12 - "$work/strong"
    if [[ -s $work/types ]]; then cut -c3- "$work/prog" | grep -F -f "$work/types" || true; fi
  } | sort -u | sed "s|^|$(basename "$p"): |" >"$work/hits"
  if [[ -s $work/hits ]]; then
    found=1
    head -n 10 "$work/hits" >&2
  fi
done
if ((found)); then
  echo "test-double symbols are linked into a program above; testing/ code is for tests," \
       "benchmarks and fuzz targets only" >&2
  exit 1
fi
touch "$stamp"
