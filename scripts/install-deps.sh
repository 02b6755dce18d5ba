#!/usr/bin/env bash
# Installs what anomalyd needs from Debian's packages: by default what
# building and running it needs (scripts/run.sh); `--test` adds what the test
# suite needs (scripts/test.sh); `--fuzz` adds clang and libFuzzer for
# scripts/fuzz.sh. Idempotent: packages already present are skipped, and apt
# is not touched at all when nothing is missing. Runs apt-get as root, sudo
# otherwise.
set -euo pipefail

# Build and run.
PACKAGES=(
  build-essential cmake pkg-config
  libtorch-dev
  libzmq3-dev cppzmq-dev
  libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler
  libsqlite3-dev sqlite3
  libtomlplusplus-dev libcli11-dev
  libsystemd-dev systemd
  # Alert delivery: HTTP(S) client, HMAC (libssl-dev comes with it).
  libcpp-httplib-dev
  libopenblas0-pthread
)
# The tests: GoogleTest, the Python client's and scripts' Python modules,
# groff and man to render the manual pages (tests/docs/man_test.sh).
TEST_PACKAGES=(
  libgtest-dev libgmock-dev
  python3 python3-zmq python3-protobuf python3-numpy
  # The Python client's pip install into a venv (built by Debian's
  # setuptools and wheel, --no-build-isolation) and its to_dataframe().
  python3-venv python3-setuptools python3-wheel python3-pandas
  # promtool (deploy/: the alerting rules and the metrics exposition).
  prometheus
  # A real Alertmanager for the alert delivery tests.
  prometheus-alertmanager
  # The manual pages (groff -ww, man --warnings).
  groff-base man-db
  # The Debian package (tests/deploy/deb_test.sh): lintian checks it, and
  # dpkg-shlibdeps (dpkg-dev, which build-essential brings) finds its
  # dependencies.
  lintian
  # The Python peer of the benchmark suite (bench/peer/, bench/suite.sh
  # --peer) and its --self-test: Debian's PyTorch, the same 1.13 as LibTorch.
  python3-torch
)
for arg in "$@"; do
  case "$arg" in
    --test) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
    --fuzz) PACKAGES+=(clang-14 libclang-rt-14-dev llvm-14) ;;
    *) echo "install-deps: unknown argument '$arg' (--test, --fuzz)" >&2; exit 2 ;;
  esac
done

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
