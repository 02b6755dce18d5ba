#!/usr/bin/env bash
# Fuzzes one target of tests/fuzz for SECONDS with libFuzzer, ASan and UBSan
# (clang build in ./build-fuzz), then minimises the checked-in corpus plus
# what the run found back into tests/fuzz/corpus/TARGET. Commit that folder
# when it changed; ctest replays it on every build (docs/testing.md).
#   scripts/fuzz.sh request|csv SECONDS [libFuzzer flags...]
# Crashes are left in build-fuzz/artifacts/TARGET/, the log in
# build-fuzz/logs/. Exits 1 when the run found a crash: fix it, add a unit
# test, and keep the input as tests/fuzz/regressions/TARGET/WHAT-IT-BROKE.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/fuzz.sh request|csv SECONDS [libFuzzer flags...]"
target=${1:?$usage}
seconds=${2:?$usage}
shift 2
case "$target" in
  request|csv) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh --test --fuzz
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DANOMALYD_FUZZ=ON -DANOMALYD_BUILD_BENCH=OFF >/dev/null
# Two jobs at most: the machines we fuzz on are small and shared.
cmake --build "$build" -j 2 --target "${target}_fuzz"
fuzzer="$build/tests/fuzz/${target}_fuzz"

corpus="tests/fuzz/corpus/$target"
seeds="$build/seeds"
work="$build/work/$target"          # new inputs of this run land here
artifacts="$build/artifacts/$target"
mkdir -p "$corpus" "$work" "$artifacts" "$build/logs"
/usr/bin/python3 tests/fuzz/make_seeds.py "$seeds"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14)}"
dict=()
if [ -f "tests/fuzz/$target.dict" ]; then dict=("-dict=tests/fuzz/$target.dict"); fi
# Past findings seed the run too, but stay out of the merged corpus: they
# are kept by name in tests/fuzz/regressions/.
regressions=()
if [ -d "tests/fuzz/regressions/$target" ]; then
  regressions=("tests/fuzz/regressions/$target")
fi
log="$build/logs/$target-$(date +%Y%m%d-%H%M%S).log"

# One process on one core; -timeout catches hangs, -rss_limit_mb runaway
# allocations (both are findings).
status=0
"$fuzzer" "$work" "$corpus" "$seeds/$target" "${regressions[@]}" "${dict[@]}" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" 2>&1 | tee "$log" \
  || status=$?

# Minimise: keep only inputs that add coverage, into a fresh folder, then
# swap it in. -merge=1 runs inputs in a child, so a crasher is skipped.
merged="$build/merged/$target"
rm -rf "$merged"
mkdir -p "$merged"
"$fuzzer" -merge=1 "$merged" "$corpus" "$work" "$seeds/$target" "${dict[@]}" \
  >>"$log" 2>&1
find "$corpus" -maxdepth 1 -type f -delete
cp "$merged"/* "$corpus"/

echo "fuzz.sh: $target for ${seconds}s:" \
  "$(grep -h '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')" \
  "executions; corpus $(find "$corpus" -type f | wc -l) files," \
  "$(cat "$corpus"/* | wc -c) bytes; log $log"
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$artifacts")" ]; then
  echo "fuzz.sh: findings in $artifacts/ (reproduce: $fuzzer FILE)" >&2
  exit 1
fi
