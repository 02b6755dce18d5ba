#!/usr/bin/env bash
# Installs what is missing, then configures and builds anomalyd (Release)
# into ./build. `--test` first: the test suite too (and what it needs);
# without it the tests are not built. Other arguments go to CMake's
# configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=OFF
deps=()
if [ "${1:-}" = "--test" ]; then
  tests=ON
  deps=(--test)
  shift
fi
bash scripts/install-deps.sh "${deps[@]}"
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DANOMALYD_BUILD_TESTS=$tests "$@"
cmake --build build -j "$jobs"
