#!/usr/bin/env bash
# Quick start, first command: installs what is missing, builds, then runs
# the main job on the default config: trains a model on a shared baseline,
# evaluates it on the labelled test set, scores a few records and prints
# synthetic normal records. State goes to ./state (git-ignored).
#
#   DATASET=cardio scripts/run.sh      # any folder of ../shared/data/adbench
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctl=build/clients/anomalyctl
data_root=${ANOMALYD_DATA:-../shared/data/adbench}
dataset=${DATASET:-thyroid}
if [ ! -f "$data_root/$dataset/train.csv" ]; then
  echo "run.sh: no data set at $data_root/$dataset (set ANOMALYD_DATA)" >&2
  exit 1
fi
mkdir -p state
echo "== train on $data_root/$dataset/train.csv"
"$ctl" train --config config/anomalyd.toml --data "$data_root/$dataset/train.csv" \
  --out "state/bundles/$dataset"
echo "== eval on $data_root/$dataset/test.csv"
"$ctl" eval --model "state/bundles/$dataset" --data "$data_root/$dataset/test.csv"
echo "== score the first 5 test records"
head -6 "$data_root/$dataset/test.csv" > state/sample-records.csv
"$ctl" score --model "state/bundles/$dataset" --data state/sample-records.csv
echo "== 3 synthetic normal records"
"$ctl" sample --model "state/bundles/$dataset" -n 3 --seed 42
