#!/usr/bin/env bash
# End-to-end and memory benchmarks of anomalyd against the targets of the
# "Performance" issue, on the reference model (38 features, hidden [128],
# latent 8), ending with one table: figure, measured, target, met or not.
#
#   bench/suite.sh [--build-dir DIR] [--no-build] [--full] [--duration S]
#                  [--memory-seconds S] [--transport tcp|ipc]
#                  [--durability commit|async] [--threads N] [--keep DIR]
#                  [--peer] [--peer-rounds N]
#
#   --build-dir DIR     build directory (default: build); configured there
#                       if it has no CMakeCache.txt
#   --no-build          use the binaries already in the build directory
#   --full              the long memory run (600 s instead of 60 s) and the
#                       model benchmark with its defaults (training time and
#                       both architectures; else --arch reference --no-train)
#   --duration S        measured seconds of each load run (default 10; each
#                       also has a 2 s warm-up)
#   --memory-seconds S  length of the memory run under load (default 60)
#   --transport T       tcp (127.0.0.1, default) or ipc (sockets in the
#                       work directory)
#   --durability D      the daemon's storage.durability (default commit, as
#                       shipped: a reply waits for its anomalies' commit)
#   --threads N         the daemon's daemon.threads (default 1; the shipped
#                       0 = all cores lets LibTorch's OpenMP workers spin on
#                       the cores the I/O thread and the load generator
#                       need: 10x less throughput on a busy 2-core VM)
#   --keep DIR          work in DIR and keep it (data, state, logs, samples);
#                       default: a temp dir removed at exit. A second run in
#                       the same DIR reuses its data and trained model.
#   --peer              after the daemon's figures, compare it with the plain
#                       Python peer (bench/peer/: pyzmq + PyTorch, the same
#                       model shape, raw float32 in and out; needs Debian's
#                       python3-torch and python3-zmq) on the same load and
#                       print a second table: anomalyd, peer, ratio, target
#   --peer-rounds N     rounds of the comparison (default 2); each round runs
#                       every workload on the daemon and on the peer, one
#                       after the other, the side that goes first swapped
#                       each round, so a busy machine's drift falls on both
#
# Steps: build anomalyd and anomalyd_loadgen (and
# anomalyd_bench_model when the build knows it); write a 100,000 x 38
# synthetic baseline and a 20,000-row test set with 1% anomalies
# (bench/synthetic.awk); start the daemon with the baseline as a
# configured stream, so it trains the reference model itself (it serves
# only models in its own registry: a bundle from `anomalyctl train` cannot
# be handed to it); restart it so it serves the model as after any restart;
# run the model benchmark if built, then the loadgen (bench/loadgen.cc):
# dense batches of 1, 16, 256, 1024, 4096 records at full speed,
# single-record requests with 2 connections x 256 in flight, single records
# at a fixed 10,000 requests/s; then on a fresh restart: idle RSS, and RSS sampled
# (bench/memory.sh) under about half the measured capacity (dense 1024-record
# batches at a quarter of their best request rate plus single records at a
# quarter of theirs). Load data are the rows of the test set.
#
# With --peer, then, the daemon still up: the peer is started with its
# tuned environment (bench/peer/run_peer.sh) and each round runs dense
# batches of 1024 (16 in flight) and 4096 (4 in flight) and single records
# (2 connections x 256 in flight, the daemon's single-record run) on both,
# anomalyd_loadgen --protocol raw for the peer. Server CPU is each server
# process's user+system time over the measured window (/proc/PID/stat).
# Table: mean (min-max) over the rounds per side; ratio = anomalyd / peer
# of the means (and the range of the per-round ratios); targets 1.5x
# records/s and 2x records per server CPU-second at 1024 and 4096, 8x
# single-record requests/s.
#
# Exit status: 0 when every run finished without an error reply (met or not
# met targets do not change it), 1 otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
do_build=1
duration=10
warmup=2
memory_seconds=60
full=0
transport=tcp
durability=commit
threads=1
keep=""
peer=0
peer_rounds=2
die() { echo "suite.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build=$(realpath -m "$2"); shift 2 ;;
    --no-build) do_build=0; shift ;;
    --full) memory_seconds=600; full=1; shift ;;
    --duration) duration=$2; shift 2 ;;
    --memory-seconds) memory_seconds=$2; shift 2 ;;
    --transport) transport=$2; shift 2 ;;
    --durability) durability=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --keep) keep=$(realpath -m "$2"); shift 2 ;;
    --peer) peer=1; shift ;;
    --peer-rounds) peer_rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$transport" == tcp || "$transport" == ipc ]] || die "--transport is tcp or ipc"
[[ "$peer_rounds" =~ ^[1-9][0-9]*$ ]] || die "--peer-rounds is a positive integer"
# Debian's interpreter: it sees python3-torch (a pyenv python3 may not).
peer_python=/usr/bin/python3
if ((peer)); then
  "$peer_python" -c 'import numpy, torch, zmq' 2> /dev/null ||
    die "--peer needs $peer_python with python3-torch, python3-zmq and python3-numpy (scripts/install-deps.sh --test)"
fi

log() { echo "== $*" >&2; }

# --- build -------------------------------------------------------------------
build_targets() {
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    log "configuring $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
  fi
  local targets=(anomalyd anomalyd_loadgen)
  if cmake --build "$build" --target help | grep -q anomalyd_bench_model; then
    targets+=(anomalyd_bench_model)
  fi
  log "building ${targets[*]} in $build"
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" > "$work/build.log" 2>&1 ||
    { tail -30 "$work/build.log" >&2; die "build failed (log: $work/build.log)"; }
}

# Copies of the binaries, so that a rebuild in the build directory during
# the run cannot swap them under us.
copy_binaries() {
  mkdir -p "$work/bin"
  for b in daemon/anomalyd bench/anomalyd_loadgen; do
    [[ -x "$build/$b" ]] || die "$build/$b is missing (build it, or drop --no-build)"
    cp "$build/$b" "$work/bin/"
  done
  if [[ -x "$build/bench/anomalyd_bench_model" ]]; then
    cp "$build/bench/anomalyd_bench_model" "$work/bin/"
  fi
  if ((peer)); then
    mkdir -p "$work/bin/peer"
    cp "$root/bench/peer/run_peer.sh" "$root/bench/peer/peer_service.py" "$work/bin/peer/"
  fi
}

# --- data and daemon ---------------------------------------------------------
make_data() {
  # A kept work dir has them already (the generator is deterministic).
  [[ -s "$work/base.csv" && -s "$work/test.csv" ]] && return
  log "writing the 100,000 x 38 baseline and a 20,000-row test set"
  awk -v n=100000 -v dim=38 -v seed=1 -f "$root/bench/synthetic.awk" > "$work/base.csv"
  awk -v n=20000 -v dim=38 -v seed=2 -v anomalies=0.01 \
    -f "$root/bench/synthetic.awk" > "$work/test.csv"
}

# A free TCP port base with the four ports after it free too.
free_port_base() {
  local base p busy
  for _ in $(seq 50); do
    base=$((20000 + RANDOM % 40000))
    busy=0
    for p in $(seq "$base" $((base + 4))); do
      ss -Htln "sport = :$p" | grep -q . && busy=1
    done
    ((busy)) || { echo "$base"; return; }
  done
  die "no free ports"
}

write_config() {
  if [[ "$transport" == tcp ]]; then
    local b; b=$(free_port_base)
    score="tcp://127.0.0.1:$b"; control="tcp://127.0.0.1:$((b + 2))"
    alerts="tcp://127.0.0.1:$((b + 3))"; peer_endpoint="tcp://127.0.0.1:$((b + 4))"
  else
    score="ipc://$work/score.sock"; control="ipc://$work/control.sock"
    alerts="ipc://$work/alerts.sock"; peer_endpoint="ipc://$work/peer.sock"
  fi
  cat > "$work/anomalyd.toml" <<EOF
# Written by bench/suite.sh: the reference model; shipped defaults except
# where the suite's flags say otherwise (threads, durability).
[daemon]
state_dir = "$work/state"
log_level = "info"
threads = $threads
[endpoints]
score = "$score"
ingest = ""
control = "$control"
alerts = "$alerts"
metrics = ""
[model]
hidden = [128]
latent = 8
[training]
device = "cpu"
[storage]
durability = "$durability"
[streams.bench]
baseline = "$work/base.csv"
EOF
}

daemon_pid=""
# Starts the daemon and waits for "anomalyd ready" in its log.
start_daemon() {
  local logf="$work/daemon.$1.log" waited=0
  "$work/bin/anomalyd" --config "$work/anomalyd.toml" > "$logf" 2>&1 &
  daemon_pid=$!
  until grep -q "anomalyd ready" "$logf"; do
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$logf" >&2; die "anomalyd exited"; }
    ((waited++ < 1800)) || die "anomalyd not ready after 15 minutes"
    sleep 0.5
  done
}

stop_daemon() {
  [[ -n "$daemon_pid" ]] || return 0
  kill -TERM "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}

peer_pid=""
# Starts the peer (bench/peer/run_peer.sh) and waits for "peer ready".
start_peer() {
  local logf="$work/peer.log" waited=0
  peer_pid=$("$work/bin/peer/run_peer.sh" --python "$peer_python" --log "$logf" -- \
    --endpoint "$peer_endpoint" --dim 38)
  until grep -q "peer ready" "$logf" 2>/dev/null; do
    kill -0 "$peer_pid" 2>/dev/null || { cat "$logf" >&2; die "the peer exited"; }
    ((waited++ < 240)) || die "the peer not ready after 2 minutes"
    sleep 0.5
  done
  grep "peer ready" "$logf" >&2
}

stop_peer() {
  [[ -n "$peer_pid" ]] || return 0
  kill -TERM "$peer_pid" 2>/dev/null || true
  # Not our child (run_peer.sh started it): wait by polling.
  local waited=0
  while kill -0 "$peer_pid" 2>/dev/null; do
    ((waited++ < 100)) || { kill -KILL "$peer_pid" 2>/dev/null || true; break; }
    sleep 0.1
  done
  peer_pid=""
}

cleanup() {
  [[ -z "$daemon_pid" ]] || kill -KILL "$daemon_pid" 2>/dev/null || true
  [[ -z "$peer_pid" ]] || kill -KILL "$peer_pid" 2>/dev/null || true
  [[ -n "$keep" ]] || rm -rf "$work"
}

# --- runs --------------------------------------------------------------------
declare -A R   # results: R[name.key] from RESULT lines

# Keeps key=value pairs of a RESULT line as R[name.key].
keep_result() {
  local name=$1 line=$2 kv
  for kv in ${line#RESULT}; do [[ "$kv" != *=* ]] || R[$name.${kv%%=*}]=${kv#*=}; done
}

# loadgen NAME ARGS...: one run on the daemon, its output to the log and
# NAME.out. A failed run leaves $work/FAILED (runs may be in subshells).
loadgen() {
  local name=$1; shift
  loadgen_on "$score" "$daemon_pid" "$name" "$@"
}

# loadgen_on ENDPOINT SERVER_PID NAME ARGS...: the same on any server.
loadgen_on() {
  local endpoint=$1 pid=$2 name=$3; shift 3
  log "loadgen $name: $*"
  local out="$work/$name.out" rc=0
  "$work/bin/anomalyd_loadgen" --endpoint "$endpoint" --stream bench --dim 38 \
    --csv "$work/test.csv" --duration "$duration" --warmup "$warmup" \
    --server-pid "$pid" --label "$name" "$@" > "$out" 2>&1 || rc=$?
  cat "$out" >&2
  if ((rc != 0)); then touch "$work/FAILED"; R[$name.errors]=1; fi
  local line; line=$(grep '^RESULT ' "$out" || true)
  [[ -z "$line" ]] || keep_result "$name" "$line"
}

# Closed-loop dense runs; enough records in flight to fill max_batch (4096)
# a few times over. No connection has more than 256 requests in flight (at
# a fixed rate a send then waits; its latency still counts from its
# scheduled time): beyond about 500 queued replies per client the daemon's
# score socket (a ROUTER at the default send high-water mark of 1000) drops
# replies without a word.
throughput_runs() {
  local b inflight
  for b in 1 16 256 1024 4096; do
    inflight=$(( 16384 / b )); ((inflight >= 4)) || inflight=4
    ((inflight <= 256)) || inflight=256
    loadgen "dense$b" --form dense --batch "$b" --inflight "$inflight"
  done
  loadgen single --form record --batch 1 --connections 2 --inflight 256
  loadgen rate10k --form record --batch 1 --rate 10000 --max-inflight 256
}

# Fresh daemon: idle RSS, then RSS under about half the measured capacity.
memory_runs() {
  stop_daemon
  start_daemon memory
  log "idle memory (10 s)"
  keep_result idle "$("$root/bench/memory.sh" --pid "$daemon_pid" --seconds 10 | grep '^RESULT')"
  local dense_rate single_rate
  dense_rate=$(awk -v r="${R[dense1024.requests_per_s]:-0}" 'BEGIN { printf "%d", r / 4 }')
  single_rate=$(awk -v r="${R[single.requests_per_s]:-0}" 'BEGIN { printf "%d", r / 4 }')
  ((dense_rate > 0 && single_rate > 0)) || { log "no capacity measured: no load run"; return; }
  log "memory under load for $memory_seconds s: dense 1024 at $dense_rate req/s + single at $single_rate req/s"
  "$root/bench/memory.sh" --pid "$daemon_pid" --seconds "$memory_seconds" \
    --samples "$work/memory.samples" > "$work/memory.out" &
  local sampler=$!
  local saved=$duration; duration=$memory_seconds warmup=0
  loadgen mem_dense --form dense --batch 1024 --rate "$dense_rate" --max-inflight 64 &
  local p1=$!
  loadgen mem_single --form record --batch 1 --rate "$single_rate" --max-inflight 256
  wait "$p1"
  duration=$saved warmup=2
  wait "$sampler" || true
  cat "$work/memory.out" >&2
  keep_result load "$(grep '^RESULT' "$work/memory.out" || true)"
  # mem_dense ran in a subshell: its results come from its output file.
  keep_result mem_dense "$(grep '^RESULT' "$work/mem_dense.out" || true)"
  sleep 5
  keep_result after "$("$root/bench/memory.sh" --pid "$daemon_pid" --seconds 0 | grep '^RESULT')"
}

# The comparison's workloads: NAME, then the loadgen arguments shared by
# both sides (the daemon's single records are Record messages, the peer's
# one-row raw frames).
peer_workloads=(dense1024 dense4096 single)
declare -A PEER_ARGS=(
  [dense1024]="--batch 1024 --inflight 16"
  [dense4096]="--batch 4096 --inflight 4"
  [single]="--batch 1 --connections 2 --inflight 256"
)

# Runs d_W_R (the daemon) and p_W_R (the peer) for every workload W and
# round R; the side that goes first alternates by round.
peer_runs() {
  peer_load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  log "comparison with the Python peer: $peer_rounds round(s) of ${peer_workloads[*]}"
  start_peer
  local r w side sides
  for r in $(seq "$peer_rounds"); do
    sides="d p"; ((r % 2)) || sides="p d"
    for w in "${peer_workloads[@]}"; do
      for side in $sides; do
        # PEER_ARGS entries are flag lists: split on purpose.
        # shellcheck disable=SC2086
        if [[ $side == d ]]; then
          local form=dense; [[ $w == single ]] && form=record
          loadgen "d_${w}_$r" --form "$form" ${PEER_ARGS[$w]}
        else
          loadgen_on "$peer_endpoint" "$peer_pid" "p_${w}_$r" --protocol raw ${PEER_ARGS[$w]}
        fi
      done
    done
  done
  stop_peer
  peer_load_after=$(cut -d' ' -f1-3 /proc/loadavg)
}

# --- the tables --------------------------------------------------------------
# row FIGURE MEASURED TARGET VERDICT NOTE
row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }

# verdict VALUE OP LIMIT [ERRORS]: met / not met / "errors".
verdict() {
  local v=$1 op=$2 lim=$3 errs=${4:-0}
  [[ -n "$v" ]] || { echo "not run"; return; }
  [[ "$errs" == 0 ]] || { echo "**errors ($errs)**"; return; }
  awk -v v="$v" -v l="$lim" -v op="$op" 'BEGIN {
    ok = (op == ">=") ? v >= l : v <= l; print ok ? "met" : "**not met**" }'
}

# The result cell of a figure without a target.
no_target() {
  case "$1" in "") echo "not run" ;; 0) echo "-" ;; *) echo "**errors ($1)**" ;; esac
}

fmt() { awk -v v="${1:-}" -v d="${2:-0}" 'BEGIN { if (v == "") print "-"; else printf "%\047.*f", d, v }'; }
cpu() { echo "loadgen $(fmt "${R[$1.loadgen_cpu]:-}" 2) / daemon $(fmt "${R[$1.daemon_cpu]:-}" 2) cores"; }
# Rate KEY of run NAME per daemon CPU-second: what the daemon's code costs,
# whatever else shares the cores.
per_cpu() {
  awk -v v="${R[$1.$2]:-}" -v c="${R[$1.daemon_cpu]:-}" \
    'BEGIN { if (v == "" || c <= 0) print "-"; else printf "%\047d", v / c }'
}

print_table() {
  echo
  echo "anomalyd end-to-end and memory ($(date -u +%FT%TZ), $(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
  echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "transport $transport, durability $durability, daemon threads $threads, runs of ${duration} s (+2 s warm-up), memory run ${memory_seconds} s"
  echo
  row "figure" "measured" "target" "result" "CPU (loadgen / daemon) and notes"
  row "---" "---" "---" "---" "---"
  local b n
  for b in 1 16 256 1024 4096; do
    n=dense$b
    local target="-" v="-"
    [[ $b == 1024 ]] && target="≥ 3,000,000"
    v=${R[$n.records_per_s]:-}
    row "dense batches of $b: records/s" "$(fmt "$v")" "$target" \
      "$([[ $b == 1024 ]] && verdict "$v" ">=" 3000000 "${R[$n.errors]:-}" || no_target "${R[$n.errors]:-}")" \
      "$(cpu "$n") ($(per_cpu "$n" records_per_s) per daemon CPU-s); p99 $(fmt "${R[$n.p99_us]:-}") µs"
  done
  row "single-record requests/s (2 × 256 in flight)" "$(fmt "${R[single.requests_per_s]:-}")" "≥ 100,000" \
    "$(verdict "${R[single.requests_per_s]:-}" ">=" 100000 "${R[single.errors]:-}")" \
    "$(cpu single) ($(per_cpu single requests_per_s) per daemon CPU-s); p99 $(fmt "${R[single.p99_us]:-}") µs"
  row "fixed 10,000 req/s single-record p99 (µs)" "$(fmt "${R[rate10k.p99_us]:-}" 1)" "≤ 250" \
    "$(verdict "${R[rate10k.p99_us]:-}" "<=" 250 "${R[rate10k.errors]:-}")" \
    "p50 $(fmt "${R[rate10k.p50_us]:-}" 1), p99.9 $(fmt "${R[rate10k.p999_us]:-}" 1) µs; send lag p99 $(fmt "${R[rate10k.send_lag_p99_us]:-}" 1) µs; $(cpu rate10k)"
  row "idle RSS, one stream loaded (MB)" "$(fmt "${R[idle.rss_last_mb]:-}" 1)" "≤ 200" \
    "$(verdict "${R[idle.rss_last_mb]:-}" "<=" 200)" "VmHWM $(fmt "${R[idle.hwm_mb]:-}" 1) MB"
  row "RSS slope under load, 2nd half (MB/min)" "$(fmt "${R[load.slope_mb_per_min]:-}" 2)" "no growth (≤ 1)" \
    "$(verdict "${R[load.slope_mb_per_min]:-}" "<=" 1 "$(( ${R[mem_dense.errors]:-0} + ${R[mem_single.errors]:-0} ))")" \
    "${memory_seconds} s at $(fmt "${R[mem_dense.records_per_s]:-}") dense + $(fmt "${R[mem_single.requests_per_s]:-}") single records/s"
  row "RSS at the end of the load / max (MB)" "$(fmt "${R[load.rss_last_mb]:-}" 1) / $(fmt "${R[load.rss_max_mb]:-}" 1)" "-" "-" \
    "VmHWM $(fmt "${R[load.hwm_mb]:-}" 1) MB; 5 s after the load $(fmt "${R[after.rss_last_mb]:-}" 1) MB"
}

# values SIDE WORKLOAD KEY: KEY of every round's run, one a line; KEY
# per_cpu is records/s per server CPU-second.
values() {
  local side=$1 w=$2 key=$3 r n
  for r in $(seq "$peer_rounds"); do
    n=${side}_${w}_$r
    if [[ $key == per_cpu ]]; then
      awk -v v="${R[$n.records_per_s]:-}" -v c="${R[$n.daemon_cpu]:-}" \
        'BEGIN { if (v != "" && c > 0) printf "%.6f\n", v / c }'
    else
      [[ -z "${R[$n.$key]:-}" ]] || echo "${R[$n.$key]}"
    fi
  done
}

# summary DIGITS: "mean (min–max)" of the values on stdin; "-" if none.
summary() {
  awk -v d="$1" '{ s += $1; n++; if (n == 1 || $1 < lo) lo = $1; if (n == 1 || $1 > hi) hi = $1 }
    END { if (!n) { print "-"; exit }
          if (n == 1) printf "%\047.*f", d, s
          else printf "%\047.*f (%\047.*f–%\047.*f)", d, s / n, d, lo, d, hi }'
}

# peer_row FIGURE WORKLOAD KEY TARGET_RATIO: one row of the comparison.
peer_row() {
  local figure=$1 w=$2 key=$3 target=$4 digits=0 d p errs=0 r mean lo hi
  [[ $key != daemon_cpu ]] || digits=2
  for r in $(seq "$peer_rounds"); do
    errs=$((errs + ${R[d_${w}_$r.errors]:-0} + ${R[p_${w}_$r.errors]:-0}))
  done
  d=$(values d "$w" "$key"); p=$(values p "$w" "$key")
  # Ratio of the means, and the range of the per-round ratios.
  local ratio
  ratio=$(paste <(echo "$d") <(echo "$p") | awk '$1 != "" && $2 > 0 {
      sd += $1; sp += $2; r = $1 / $2; n++
      if (n == 1 || r < lo) lo = r; if (n == 1 || r > hi) hi = r }
    END { if (!n || sp <= 0) exit; printf "%.2f", sd / sp
          if (n > 1) printf " %.2f %.2f", lo, hi }')
  local cell="-" result="not run"
  if [[ -n "$ratio" ]]; then
    read -r mean lo hi <<< "$ratio"
    cell="${mean}×"; [[ -z "${lo:-}" ]] || cell+=" (${lo}–${hi}×)"
    if [[ "$target" == "-" ]]; then result=$(no_target "$errs")
    else result=$(verdict "$mean" ">=" "$target" "$errs"); fi
  fi
  [[ "$target" == "-" ]] || target="≥ ${target}×"
  row6 "$figure" "$(echo "$d" | summary "$digits")" "$(echo "$p" | summary "$digits")" \
    "$cell" "$target" "$result"
}

row6() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }

print_peer_table() {
  echo
  echo "anomalyd against the Python peer (bench/peer/), $peer_rounds round(s), runs of ${duration} s (+${warmup} s warm-up)"
  echo "load average before the comparison: $peer_load_before; after: $peer_load_after"
  echo "anomalyd: daemon threads $threads, durability $durability, protobuf with record ids and per-record results;" \
    "peer: raw float32, $(grep -o 'threads [0-9]*' "$work/peer.log" | head -1) (torch)"
  echo "in flight: dense 1024 16 requests, dense 4096 4, single records 2 connections × 256, on both"
  echo "cells: mean (min–max) over the rounds; ratio: anomalyd / peer of the means (range of the per-round ratios)"
  echo
  row6 figure anomalyd peer "ratio (anomalyd / peer)" target result
  row6 --- --- --- --- --- ---
  local w b
  for b in 1024 4096; do
    w=dense$b
    peer_row "dense $b: records/s" "$w" records_per_s 1.5
    peer_row "dense $b: records per server CPU-s" "$w" per_cpu 2
    peer_row "dense $b: server CPU (cores)" "$w" daemon_cpu -
  done
  peer_row "single records: requests/s" single requests_per_s 8
  peer_row "single records: requests per server CPU-s" single per_cpu -
  peer_row "single records: server CPU (cores)" single daemon_cpu -
}

# --- main --------------------------------------------------------------------
if [[ -n "$keep" ]]; then work=$keep; mkdir -p "$work"; else work=$(mktemp -d /tmp/anomalyd-suite.XXXXXX); fi
trap cleanup EXIT
rm -f "$work/FAILED"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
((do_build)) && build_targets
copy_binaries
make_data
write_config
log "starting anomalyd: it trains the reference model on the baseline"
start_daemon train
grep -E "training stream|trained|ready" "$work/daemon.train.log" >&2 || true
stop_daemon
log "restarting anomalyd: it restores the model from its registry"
start_daemon serve
if [[ -x "$work/bin/anomalyd_bench_model" ]]; then
  # Its defaults include a training run of minutes: only with --full.
  model_args=(--arch reference --no-train)
  ((full)) && model_args=()
  log "model benchmark: anomalyd_bench_model ${model_args[*]}"
  (cd "$work" && timeout 900 ./bin/anomalyd_bench_model "${model_args[@]}") >&2 ||
    log "anomalyd_bench_model failed"
else
  log "no anomalyd_bench_model in $build/bench: model benchmark skipped"
fi
throughput_runs
memory_runs
((peer)) && peer_runs
stop_daemon
print_table
((peer)) && print_peer_table
[[ ! -e "$work/FAILED" ]]
