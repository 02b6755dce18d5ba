#!/usr/bin/env bash
# Checks that no C++ source line is longer than .clang-format's ColumnLimit
# (the limit the code keeps; clang-format -i reformats a file to it).
# Usage: scripts/check-line-length.sh [REPO_ROOT]. Exit 1 and the offending
# lines when there are any.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"
limit=$(awk -F': *' '$1 == "ColumnLimit" { print $2 }' .clang-format)
[[ -n "$limit" ]] || { echo "check-line-length: no ColumnLimit in .clang-format" >&2; exit 2; }
long=$(find bench clients common daemon engine model proto storage tests \
         \( -name '*.cc' -o -name '*.h' \) -print0 |
       xargs -0 awk -v limit="$limit" 'length > limit { printf "%s:%d: %d columns\n", FILENAME, FNR, length }')
if [[ -n "$long" ]]; then
  echo "$long"
  echo "check-line-length: lines above the column limit of $limit (clang-format -i FILE)" >&2
  exit 1
fi
echo "check-line-length: OK (limit $limit)"
