#!/usr/bin/env bash
# Resident memory of a running process (the daemon), sampled from
# /proc/PID/status once per --every seconds for --seconds seconds.
#
#   bench/memory.sh --pid PID [--seconds S] [--every S] [--samples FILE]
#
#   --pid PID      process to watch (required)
#   --seconds S    how long to sample (default 10)
#   --every S      sampling interval in seconds (default 1)
#   --samples FILE also keep the samples there ("seconds rss_kib hwm_kib")
#
# Prints the first, last and largest VmRSS, the VmHWM (peak RSS since the
# process started) at the end, and the least-squares slope of VmRSS over the
# second half of the samples in MB per minute (the first half is the
# warm-up: allocator arenas and caches filling). MB = 10^6 bytes. The last
# line is machine-readable: RESULT rss_first_mb=... rss_last_mb=...
# rss_max_mb=... hwm_mb=... slope_mb_per_min=... samples=N
# Exit status 1 when the process is gone before the first sample.
set -euo pipefail

pid=""
seconds=10
every=1
samples=""
die() { echo "memory.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pid) pid=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n "$pid" ]] || die "--pid is required"

# "VmRSS VmHWM" in KiB, or nothing when the process is gone.
read_status() {
  awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { if (r != "") print r, h }' \
    "/proc/$pid/status" 2>/dev/null || true
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
start=$(date +%s.%N)
end=$(awk -v s="$start" -v d="$seconds" 'BEGIN { printf "%.3f", s + d }')
while :; do
  now=$(date +%s.%N)
  line=$(read_status)
  [[ -n "$line" ]] || break
  echo "$(awk -v n="$now" -v s="$start" 'BEGIN { printf "%.2f", n - s }') $line" >> "$tmp"
  awk -v n="$now" -v e="$end" 'BEGIN { exit !(n + 0 >= e + 0) }' && break
  sleep "$every"
done
[[ -s "$tmp" ]] || { echo "memory.sh: process $pid is gone" >&2; exit 1; }
[[ -z "$samples" ]] || cp "$tmp" "$samples"

awk '
  { t[NR] = $1; r[NR] = $2 * 1024 / 1e6; h = $3 * 1024 / 1e6; if (r[NR] > max) max = r[NR] }
  END {
    # Least squares over the second half (at least two points).
    from = int(NR / 2) + 1; if (NR - from < 1) from = 1
    n = 0; st = 0; sr = 0; stt = 0; str = 0
    for (i = from; i <= NR; i++) { n++; st += t[i]; sr += r[i]; stt += t[i] * t[i]; str += t[i] * r[i] }
    d = n * stt - st * st
    slope = (n > 1 && d > 0) ? (n * str - st * sr) / d * 60 : 0
    printf "rss first %.1f MB, last %.1f MB, max %.1f MB; peak (VmHWM) %.1f MB; ", r[1], r[NR], max, h
    printf "slope over the last %.0f s %+.2f MB/min (%d samples)\n", t[NR] - t[from], slope, NR
    printf "RESULT rss_first_mb=%.1f rss_last_mb=%.1f rss_max_mb=%.1f hwm_mb=%.1f slope_mb_per_min=%.3f samples=%d\n",
           r[1], r[NR], max, h, slope, NR
  }' "$tmp"
