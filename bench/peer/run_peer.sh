#!/usr/bin/env bash
# Starts the benchmark suite's Python peer (bench/peer/peer_service.py) in
# the background with its best settings on a small box, and prints its PID
# (the Python process itself, so /proc/PID/stat is the peer's CPU).
#
#   bench/peer/run_peer.sh [--log FILE] [--python PY] -- PEER_ARGS...
#   e.g. bench/peer/run_peer.sh --log /tmp/peer.log -- --endpoint tcp://127.0.0.1:7700
#
#   --log FILE   the peer's stderr and stdout (default /dev/null); it
#                writes "peer ready ENDPOINT ..." there once it serves
#   --python PY  interpreter (default /usr/bin/python3: Debian's, which sees
#                python3-torch and python3-zmq; a pyenv python3 may not)
#
# The settings (the peer's best, as measured for the performance issue):
#   - one torch thread (peer_service.py --threads 1, its default) and
#     OpenBLAS, OpenMP and MKL sized to one thread: on two cores shared with
#     the load generator, extra BLAS/OpenMP workers only spin;
#   - glibc's malloc thresholds raised: its tensors (up to 4096 x 128 floats,
#     2 MiB) are then reused from the heap instead of mmap/munmap per call,
#     and the heap top is not trimmed back after every request.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=/dev/null
python=/usr/bin/python3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --log) log=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_peer.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# 32 MiB: glibc's largest mmap threshold on 64-bit; trim at 512 MiB.
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONDONTWRITEBYTECODE=1
# exec in the background subshell: $! is then the interpreter's PID.
(exec "$python" "$here/peer_service.py" "$@") > "$log" 2>&1 < /dev/null &
echo $!
