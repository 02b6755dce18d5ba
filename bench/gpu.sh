#!/usr/bin/env bash
# The GPU figures of the "Performance" issue, on the lent GPU machine (see
# ../shared/GPU.md), in one run: build with scripts/gpu-build.sh, then
#  1. the model benchmark on CUDA (reference and default architectures,
#     batches up to 256k, training time of the reference model), and the
#     fused CPU path on that machine's cores for comparison;
#  2. end to end: a daemon serving the reference model on CUDA (it trains it
#     at start from a synthetic baseline), anomalyd_loadgen sending dense
#     batches over loopback TCP with several connections.
#
#   bench/gpu.sh --prepare      (here: writes gpu-data/ to carry along)
#   bench/gpu.sh [OUT_DIR]      (there: outputs and logs go to OUT_DIR)
#
# The device call carries gpu-debs and gpu-data (see scripts/gpu-build.sh).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ "${1:-}" == --prepare ]]; then  # here, before carrying gpu-data/
  mkdir -p "$root/gpu-data"
  awk -v n=100000 -v dim=38 -v seed=1 -f "$root/bench/synthetic.awk" > "$root/gpu-data/base.csv"
  awk -v n=20000 -v dim=38 -v seed=2 -v anomalies=0.01 -f "$root/bench/synthetic.awk" > "$root/gpu-data/test.csv"
  exit 0
fi
out=$(realpath -m "${1:-${OUT:-/tmp/gpu-out}}")
mkdir -p "$out"
cd "$root"
build=build-gpu

step() { echo "== $* ($(date +%T))"; }

step build
bash scripts/gpu-build.sh "$build" > "$out/build.log" 2>&1 || {
  tail -60 "$out/build.log"; exit 1; }
tail -1 "$out/build.log"
export LD_LIBRARY_PATH=/tmp/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nproc

step "model benchmark, cuda"
train=(--epochs 20)
[[ "${GPU_TRAIN:-1}" == 0 ]] && train=(--no-train)
"$build/bench/anomalyd_bench_model" --device cuda --arch "${GPU_ARCH:-both}" "${train[@]}" \
  --batches 1,256,1024,4096,16384,65536,262144 --seconds 2 2>&1 | tee "$out/model_cuda.txt" | grep -v "^score"
[[ "${GPU_CPU:-1}" == 1 ]] && step "model benchmark, fused CPU on $(nproc) cores" &&
"$build/bench/anomalyd_bench_model" --device cpu --arch reference --no-train \
  --engine fused --batches 1,1024,4096,65536 --seconds 1 2>&1 | tee "$out/model_cpu.txt" | grep "^score"

step "end to end, daemon on cuda"
work=/tmp/gpu-e2e
rm -rf "$work"; mkdir -p "$work"
# The rows come from the development machine (gpu-data/, git-ignored, made
# there by `bench/gpu.sh --prepare` and carried): the GPU image's mawk
# (1.3.4 20240123) gives other random numbers after a second srand, so rows
# generated there do not follow the baseline's distribution.
cp gpu-data/base.csv gpu-data/test.csv "$work/"
cat > "$work/anomalyd.toml" <<CONF
[daemon]
state_dir = "$work/state"
threads = 8
[endpoints]
score = "tcp://127.0.0.1:27601"
ingest = ""
control = "tcp://127.0.0.1:27603"
alerts = "tcp://127.0.0.1:27604"
metrics = ""
[model]
hidden = [128]
latent = 8
[training]
device = "cuda"
max_epochs = 20
[batcher]
max_batch = 65536
queue_records = 1048576
[limits]
max_message_bytes = 67108864
[storage]
durability = "async"
[streams.bench]
baseline = "$work/base.csv"
CONF
"$build/daemon/anomalyd" --config "$work/anomalyd.toml" > "$out/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 240); do grep -q "anomalyd ready" "$out/daemon.log" && break; sleep 0.5; done
grep -q "anomalyd ready" "$out/daemon.log" || { tail -30 "$out/daemon.log"; kill $pid; exit 1; }
# Each spec: batch, connections, requests in flight per connection, ids
# (a string id on every record, or none), reply form.
specs=${GPU_E2E:-"1024 4 8 true columnar|4096 4 8 true columnar|4096 4 8 false columnar|16384 4 4 false columnar|65536 2 2 false columnar|4096 4 8 true records"}
IFS='|' read -ra spec_list <<< "$specs"
for spec in "${spec_list[@]}"; do
  read -r b conns inflight ids form <<< "$spec"
  columnar=(); [[ "$form" == columnar ]] && columnar=(--columnar)
  step "dense $b x $conns connections x $inflight in flight, ids $ids, $form replies"
  "$build/bench/anomalyd_loadgen" --endpoint tcp://127.0.0.1:27601 --stream bench \
    --dim 38 --csv "$work/test.csv" --form dense --batch "$b" --connections "$conns" \
    --inflight "$inflight" --ids "$ids" "${columnar[@]}" --duration 5 --warmup 1 \
    --daemon-pid "$pid" --label "gpu_dense${b}_ids_${ids}_$form" 2>&1 | tee -a "$out/e2e.txt" | tail -3
done
kill -TERM $pid; wait $pid
grep -iE "cuda|device" "$out/daemon.log" | head -5
