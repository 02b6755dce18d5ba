#!/usr/bin/env bash
# Detection quality on the shared labelled data sets.
#
# For each DATA/<name>/{train,test}.csv: `anomalyctl train` on train.csv
# (default settings unless --config), `anomalyctl eval --json` on test.csv,
# then one table: ROC-AUC, PR-AUC (average precision), precision / recall /
# F1 at the threshold anomalyd chose by itself, best F1 over all thresholds,
# the ratio F1 / best F1, training and scoring seconds; and the means.
# Every metric comes from model/metrics.cc through `anomalyctl eval`.
#
#   bench/quality.sh [--build DIR] [--data DIR] [--config FILE] [--seed N]
#                    [--only NAME[,NAME...]] [--json] [--no-times] [--keep DIR]
#
#   --build DIR   build directory holding clients/anomalyctl (the binary)
#                 (default: build, then /tmp/build-quality)
#   --data DIR    folder of data sets (default: ../shared/data/adbench from
#                 the repository root)
#   --config FILE anomalyd.toml passed to `anomalyctl train`
#   --seed N      training seed (default: the config's, i.e. 42)
#   --only LIST   comma-separated data set names
#   --json        one JSON object instead of the table
#   --no-times    leave the time columns out (two runs with the same seed
#                 then print byte-identical output)
#   --keep DIR    keep the trained bundles under DIR (default: a temp dir,
#                 removed on exit)
#
# Exit status: 0 when every data set trained and evaluated, 1 otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=""
data="$root/../shared/data/adbench"
config=""
seed=""
only=""
json=0
times=1
keep=""

die() { echo "quality.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --json) json=1; shift ;;
    --no-times) times=0; shift ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if [[ -z "$build" ]]; then
  for b in "$root/build" /tmp/build-quality; do
    if [[ -x "$b/clients/anomalyctl" ]]; then build=$b; break; fi
  done
fi
ctl="${build:-build}/clients/anomalyctl"
[[ -x "$ctl" ]] || die "no anomalyctl at $ctl (build it, or pass --build DIR)"
[[ -d "$data" ]] || die "no data folder $data"
[[ -z "$config" || -r "$config" ]] || die "cannot read config $config"

if [[ -n "$keep" ]]; then
  work=$keep; mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/anomalyd-quality.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

train_args=(--quiet)
[[ -n "$config" ]] && train_args+=(--config "$config")
[[ -n "$seed" ]] && train_args+=(--seed "$seed")

now() { date +%s.%N; }

# One line per data set: name roc pr prec rec f1 best ratio train_s score_s
results=()
failed=0
for dir in "$data"/*/; do
  name=$(basename "$dir")
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  [[ -r "$dir/train.csv" && -r "$dir/test.csv" ]] || continue
  t0=$(now)
  if ! "$ctl" train --data "$dir/train.csv" --out "$work/$name" "${train_args[@]}" \
      2>"$work/$name.train.err"; then
    echo "quality.sh: training on $name failed: $(cat "$work/$name.train.err")" >&2
    failed=1; continue
  fi
  t1=$(now)
  if ! out=$("$ctl" eval --model "$work/$name" --data "$dir/test.csv" --json \
      2>"$work/$name.eval.err"); then
    echo "quality.sh: evaluating $name failed: $(cat "$work/$name.eval.err")" >&2
    failed=1; continue
  fi
  t2=$(now)
  # Pull the fields out of eval's flat one-line JSON object.
  line=$(awk -v name="$name" -v t0="$t0" -v t1="$t1" -v t2="$t2" '
    {
      s = $0; gsub(/[{}"]/, "", s); n = split(s, kv, ",")
      for (i = 1; i <= n; ++i) {
        split(kv[i], p, ":"); gsub(/ /, "", p[1]); gsub(/ /, "", p[2]); v[p[1]] = p[2]
      }
      ratio = v["best_f1"] > 0 ? v["f1"] / v["best_f1"] : 0
      printf "%s %s %s %s %s %s %s %.6f %.3f %.3f\n", name, v["roc_auc"], v["pr_auc"],
             v["precision"], v["recall"], v["f1"], v["best_f1"], ratio, t1 - t0, t2 - t1
    }' <<<"$out")
  results+=("$line")
done

[[ ${#results[@]} -gt 0 ]] || die "no data sets evaluated"

printf '%s\n' "${results[@]}" | awk -v json="$json" -v times="$times" '
  {
    name[NR] = $1
    for (k = 2; k <= 11; ++k) { val[NR, k] = $k; sum[k] += $k }
  }
  END {
    n = NR
    split("roc_auc pr_auc precision recall f1 best_f1 f1_ratio train_s score_s", key, " ")
    if (json) {
      printf "{\"datasets\": ["
      for (i = 1; i <= n; ++i) {
        printf "%s{\"name\": \"%s\"", (i > 1 ? ", " : ""), name[i]
        for (k = 2; k <= 10; ++k) {
          if (k >= 9 && !times) continue
          printf ", \"%s\": %.4f", key[k - 1], val[i, k]
        }
        printf "}"
      }
      printf "], \"mean\": {"
      for (k = 2; k <= 10; ++k) {
        if (k >= 9 && !times) continue
        printf "%s\"%s\": %.4f", (k > 2 ? ", " : ""), key[k - 1], sum[k] / n
      }
      printf "}}\n"
      exit
    }
    hdr = "| data set | ROC-AUC | PR-AUC | precision | recall | F1 | best F1 | F1/best |"
    sep = "| --- | --- | --- | --- | --- | --- | --- | --- |"
    if (times) { hdr = hdr " train s | score s |"; sep = sep " --- | --- |" }
    print hdr; print sep
    for (i = 1; i <= n; ++i) {
      printf "| %s |", name[i]
      for (k = 2; k <= 8; ++k) printf " %.3f |", val[i, k]
      if (times) printf " %.1f | %.2f |", val[i, 9], val[i, 10]
      printf "\n"
    }
    printf "| **mean** |"
    for (k = 2; k <= 8; ++k) printf " **%.3f** |", sum[k] / n
    if (times) printf " %.1f | %.2f |", sum[9] / n, sum[10] / n
    printf "\n"
  }'
exit $failed
