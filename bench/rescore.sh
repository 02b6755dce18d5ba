#!/usr/bin/env bash
# Other score formulas on the bundles `bench/quality.sh --keep DIR` trained:
# runs anomalyd_model_rescore (model/experiments/rescore.cc, which lists the terms and
# formulas) on every data set kept in DIR and prints, per formula,
# ROC-AUC / PR-AUC / F1-over-best-F1 for each set and their means.
#
#   bench/rescore.sh --keep DIR [--build DIR] [--data DIR]
#
#   --keep DIR    bundles kept by bench/quality.sh --keep (required)
#   --build DIR   build directory holding model/anomalyd_model_rescore
#                 (default: build)
#   --data DIR    folder of data sets (default: ../shared/data/adbench from
#                 the repository root)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
data="$root/../shared/data/adbench"
keep=""
die() { echo "rescore.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
tool="$build/model/anomalyd_model_rescore"
[[ -n "$keep" && -d "$keep" ]] || die "--keep DIR of kept bundles is required"
[[ -x "$tool" ]] || die "no $tool (build the anomalyd_model_rescore target)"

for dir in "$data"/*/; do
  name=$(basename "$dir")
  [[ -d "$keep/$name" ]] || continue
  # One LibTorch thread: the tool's matrix products are small, and more
  # threads mostly spin on a shared machine.
  OMP_NUM_THREADS=1 "$tool" "$keep/$name" "$dir/train.csv" "$dir/test.csv" "$name"
done | awk -F'\t' '
  !($2 in seen) { seen[$2] = 1; order[++nf] = $2 }
  !($1 in known) { known[$1] = 1; sets[++ns] = $1 }
  { cell[$2, $1] = sprintf("%.3f / %.3f / %.2f", $3, $4, $5)
    roc[$2] += $3; pr[$2] += $4; ratio[$2] += $5 }
  END {
    printf "| formula |"; for (s = 1; s <= ns; ++s) printf " %s |", sets[s]; print " mean |"
    printf "| --- |"; for (s = 1; s <= ns; ++s) printf " --- |"; print " --- |"
    for (f = 1; f <= nf; ++f) {
      printf "| %s |", order[f]
      for (s = 1; s <= ns; ++s) printf " %s |", cell[order[f], sets[s]]
      printf " %.4f / %.4f / %.3f |\n", roc[order[f]] / ns, pr[order[f]] / ns, ratio[order[f]] / ns
    }
  }'
