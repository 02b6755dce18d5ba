#!/usr/bin/env bash
# Quick start, first command: installs what is missing, builds, then runs
# the main job on the default config (config/anomalyd.toml, embedded SQLite
# under ./state): starts anomalyd, trains a baseline through the control
# endpoint, streams records with anomalies in them, shows what
# `anomalyctl query` finds, and stops the daemon cleanly (SIGTERM).
#
# By default the stream is synthetic, made by scripts/synthetic.awk (four
# features with b = 2a and d = c - a; the last 20 of 500 streamed records
# break b = 2a). A folder of labelled sets <name>/{train,test}.csv can be
# used instead:
#   ANOMALYD_DATA=DIR DATASET=NAME scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bin=build/daemon/anomalyd
ctl=build/clients/anomalyctl
state=state/run
mkdir -p "$state"

data_root=${ANOMALYD_DATA:-}
stream=${DATASET:-}
if [ -n "$data_root" ] && [ -f "$data_root/$stream/train.csv" ]; then
  baseline="$data_root/$stream/train.csv"
  records="$data_root/$stream/test.csv"
else
  stream=synthetic
  baseline="$state/baseline.csv"
  records="$state/records.csv"
  awk -v n=2000 -v seed=1 -v bad=0 -f scripts/synthetic.awk > "$baseline"
  awk -v n=500 -v seed=2 -v bad=20 -f scripts/synthetic.awk > "$records"
fi

echo "== starting anomalyd (state in $state)"
"$bin" --config config/anomalyd.toml --state-dir "$state" 2> "$state/anomalyd.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  "$ctl" status > /dev/null 2>&1 && break
  sleep 0.1
done

echo "== training stream '$stream' on $baseline"
"$ctl" retrain --stream "$stream" --csv "$baseline" --wait 2>/dev/null

echo "== streaming $(($(wc -l < "$records") - 1)) records from $records"
"$ctl" score --stream "$stream" --data "$records" > "$state/verdicts.csv"
awk -F, 'NR > 1 { n++; f += $7; s += $8 } END { printf "scored %d, flagged %d, stored %d\n", n, f, s }' \
  "$state/verdicts.csv"

echo "== anomalyctl query --stream $stream --order score --limit 10"
"$ctl" query --stream "$stream" --order score --limit 10 2>/dev/null

echo "== anomalyctl status"
"$ctl" status

echo "== stopping anomalyd"
kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "anomalyd exited cleanly; its log is in $state/anomalyd.log"
