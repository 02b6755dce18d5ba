#!/usr/bin/env bash
# Installs everything anomalyd needs to build, test and run, from Debian's
# packages. Idempotent: packages already present are skipped, and apt is not
# touched at all when nothing is missing. Runs apt-get as root, sudo otherwise.
# `install-deps.sh --fuzz` adds clang and libFuzzer for scripts/fuzz.sh.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libtorch-dev
  libzmq3-dev cppzmq-dev
  libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev
  libtomlplusplus-dev libcli11-dev
  libsystemd-dev systemd
  libopenblas0-pthread
  python3 python3-zmq python3-protobuf python3-numpy
)
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev llvm-14)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
