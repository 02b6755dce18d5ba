#!/usr/bin/env bash
# Quick start, second command: installs what is missing, builds, and runs
# the whole test suite through ctest. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --test
jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure -j "$jobs"
