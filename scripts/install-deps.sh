#!/usr/bin/env bash
# Installs the Debian 12 packages clustermgr builds, tests and demos with.
# Idempotent: packages already present are left alone, and apt-get runs only when one is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build
  libzmq3-dev cppzmq-dev
  capnproto libcapnp-dev
  libleveldb-dev libsnappy-dev
  libboost-program-options-dev
  libsystemd-dev  # sd_notify: readiness and watchdog under systemd (mgr/systemd)
  help2man dpkg-dev  # man pages from --help; cpack's dpkg-shlibdeps (cmake/install.cmake)
  nlohmann-json3-dev
  libyaml-cpp-dev  # mgr/fencing: reads playbooks to check that they apply the fencing role
  libmsgpack-cxx-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev
  libcpp-httplib-dev libssl-dev  # the HTTP gateway (mgr/http), TLS with client certificates
  curl openssl python3-prometheus-client  # HTTP conformance and /metrics tests
  clang-14 libclang-rt-14-dev
  serf ansible-core
  iproute2 procps
  nftables  # fault-suite: packet loss where tc netem is missing (test/faults)
  faketime  # libfaketime: skews one instance's wall clock (test/faults, replication tests)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
