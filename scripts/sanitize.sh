#!/usr/bin/env bash
# Builds anomalyd with sanitizers (gcc, ANOMALYD_SANITIZE) and runs tests
# under them (docs/testing.md). Exits non-zero on any finding.
#   scripts/sanitize.sh asan [ctest args...]  ASan + UBSan, build-asan/, all tests
#   scripts/sanitize.sh tsan [ctest args...]  TSan, build-tsan/, the threaded
#                                             tests: daemon and storage
# JOBS (default 2) sets build and test parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/sanitize.sh asan|tsan [ctest args...]"
kind=${1:?$usage}
shift
jobs=${JOBS:-2}
# Left out under both: DaemonOverloadTest bounds the daemon's RSS, which
# shadow memory and ASan's quarantine inflate several times over;
# systemd_sandbox_run runs the daemon under strace, where LeakSanitizer
# cannot work; and deb_package would package and install the instrumented
# binaries (it checks the packaging, not the code).
exclude='^(DaemonOverloadTest\.|systemd_sandbox_run$|deb_package$)'
case "$kind" in
  asan)
    sanitize=address,undefined
    test_dirs=(.)
    ;;
  tsan)
    sanitize=thread
    # The threaded tests: the daemon's (against the real process) and the
    # store's.
    test_dirs=(tests/daemon tests/storage)
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
build="build-$kind"

bash scripts/install-deps.sh --test
# -O1 as the sanitizers advise; -g1 gives line numbers in reports at a
# fraction of the cost of full debug info; assert() stays on (no NDEBUG).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DANOMALYD_SANITIZE="$sanitize" -DANOMALYD_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs"

# A finding fails its test; reports go to the test's output. A peer may
# announce a 2^40-byte frame (tests/daemon/bad_input_test): glibc's malloc
# then returns NULL, which libzmq handles, where the sanitizers' allocator
# would abort; allocator_may_return_null keeps glibc's behaviour.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1:suppressions=$PWD/tests/tsan.supp}"
status=0
for dir in "${test_dirs[@]}"; do
  ctest --test-dir "$build/$dir" --output-on-failure -j "$jobs" -E "$exclude" "$@" \
    || status=1
done
exit "$status"
