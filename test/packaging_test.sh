#!/usr/bin/env bash
# Installs the build into a temp prefix and checks what lands there (programs, man pages,
# completion, units, examples), verifies the systemd units with systemd-analyze where it runs,
# then builds the Debian package with cpack and checks its declared dependencies.
#   packaging_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/clustermgr-packaging.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "packaging_test: $*" >&2; exit 1; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log" >&2
  fail "cmake --install failed"
}
for f in bin/clustermgrd bin/clustermgr bin/state-inspect bin/serf-events \
  share/man/man1/clustermgr.1 share/man/man8/clustermgrd.8 share/man/man1/state-inspect.1 \
  share/bash-completion/completions/clustermgr share/bash-completion/completions/clustermgrd \
  share/bash-completion/completions/state-inspect \
  lib/systemd/system/clustermgrd.service lib/systemd/system/clustermgr-serf.service \
  lib/sysusers.d/clustermgr.conf \
  share/doc/clustermgr/README.md share/doc/clustermgr/operations.md \
  share/doc/clustermgr/examples/clustermgrd.conf.example; do
  [[ -e $prefix/$f ]] || fail "missing after install: $f"
done
[[ -x $prefix/bin/clustermgr ]] || fail "bin/clustermgr is not executable"
# The man pages carry the help: per-command help pointer and the exit statuses.
grep -q "outcome unknown" "$prefix/share/man/man1/clustermgr.1" ||
  fail "clustermgr.1 lacks the exit statuses"
grep -q "curve\\\\-key" "$prefix/share/man/man8/clustermgrd.8" ||
  fail "clustermgrd.8 lacks the options"
# Every installed program reports the one version.
version=$("$prefix/bin/clustermgrd" --version | awk '{print $2}')
for p in clustermgr state-inspect serf-events; do
  "$prefix/bin/$p" --version | grep -q " $version" || fail "$p --version is not $version"
done
# The completion script loads in bash.
bash -n "$prefix/share/bash-completion/completions/clustermgr" || fail "completion: syntax"

# systemd-analyze verify: the units as installed, with the program path of this prefix.
if command -v systemd-analyze >/dev/null && systemd-analyze --version >/dev/null 2>&1; then
  units=$work/units
  mkdir -p "$units"
  for u in clustermgrd.service clustermgr-serf.service; do
    sed -e "s|/usr/bin/clustermgrd|$prefix/bin/clustermgrd|" \
      -e "s|/usr/bin/serf|$(command -v serf || echo /bin/true)|" \
      "$prefix/lib/systemd/system/$u" >"$units/$u"
  done
  if ! SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
    "$units/clustermgrd.service" "$units/clustermgr-serf.service" >"$work/verify.log" 2>&1; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify failed"
  fi
  # verify exits 0 on settings it ignores: any complaint about our units fails the test.
  if grep -q "$units/" "$work/verify.log"; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify complained about the units"
  fi
  echo "packaging_test: systemd-analyze verify passed"
else
  echo "packaging_test: systemd-analyze does not run here; units not verified"
fi

# The Debian package.
if command -v dpkg-deb >/dev/null && command -v dpkg-shlibdeps >/dev/null; then
  (cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/deb" \
    >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
  deb=$(ls "$work"/deb/clustermgr_*.deb)
  info=$(dpkg-deb -I "$deb")
  echo "$info" | grep -E "^ (Package|Version|Depends):"
  depends=$(echo "$info" | sed -n 's/^ Depends: //p')
  for dep in libzmq5 libleveldb libboost-program-options libsystemd0 serf ansible-core; do
    [[ $depends == *"$dep"* ]] || fail "package does not depend on $dep: $depends"
  done
  contents=$(dpkg-deb -c "$deb")
  for f in ./usr/bin/clustermgrd ./usr/lib/systemd/system/clustermgrd.service \
    ./usr/share/man/man8/clustermgrd.8 ./usr/lib/sysusers.d/clustermgr.conf; do
    [[ $contents == *" $f"* ]] || fail "package lacks $f"
  done
else
  echo "packaging_test: dpkg-dev missing; package not built"
fi
echo "packaging_test: ok"
