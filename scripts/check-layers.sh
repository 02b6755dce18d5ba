#!/usr/bin/env bash
# Checks that anomalyd's libraries depend on each other one way only (the
# layer table of docs/architecture.md): every `#include "..."` in a
# library's folder and every anomalyd target in its target_link_libraries
# must belong to the same layer or to one it may use. Run by ctest as
# check_layers; prints each forbidden include or link and exits 1.
#   scripts/check-layers.sh [ROOT]   (ROOT: the repository, by default)
# tests/, bench/ and the executables' tools may use any layer.
set -euo pipefail
root=${1:-"$(dirname "$0")/.."}
cd "$root"

# The layers each layer may use besides itself, lowest first. `config` is
# common/config.*: the TOML configuration, which needs model and engine
# while the rest of common/ sits below them.
declare -A may_use=(
  [proto]=""
  [common]="proto"
  [model]="proto common"
  [storage]="proto common"
  [engine]="proto common model storage"
  [config]="proto common model engine"
  [daemon]="proto common config model storage engine"
  [clients]="proto common config model"
)
# The layer of each CMake target of ours (a new library goes here too).
declare -A target_layer=(
  [anomalyd_proto]=proto
  [anomalyd_common]=common
  [anomalyd_model_core]=model
  [anomalyd_model]=model
  [anomalyd_storage]=storage
  [anomalyd_engine]=engine
  [anomalyd_config]=config
  [anomalyd_daemon_core]=daemon
  [anomalyd_service]=daemon
  [anomalyd]=daemon
  [anomalyd_client]=clients
  [anomalyctl]=clients
)
folders="proto common model storage engine daemon clients"

# Sets `layer` to the layer of a repository path ("" outside any folder).
layer_of() {
  case "$1" in
    common/config.*) layer=config ;;
    */*) layer=${1%%/*} ;;
    *) layer="" ;;
  esac
}

# True when layer $1 may use layer $2.
allowed() {
  [[ $1 == "$2" ]] && return 0
  local l
  for l in ${may_use[$1]}; do [[ $l == "$2" ]] && return 0; done
  return 1
}

errors=0
fail() {
  echo "$1" >&2
  errors=$((errors + 1))
}

# Includes. Paths are written from the repository root ("daemon/auth.h");
# one relative to the including file is resolved first; anything else
# (a system or generated header in quotes) is not ours.
includes() {
  grep -rnE --include='*.h' --include='*.hpp' --include='*.cc' \
    --include='*.cpp' --include='*.c' --include='*.inc' \
    '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$@" || true
}
for folder in $folders; do
  [[ -d $folder ]] || continue
  while IFS=: read -r file line text; do
    inc=${text#*\"}
    inc=${inc%%\"*}
    path=$inc
    case $inc in
      */*) [[ $inc != .* && -d ${inc%%/*} ]] || path="" ;;
      *) path="" ;;
    esac
    if [[ -z $path ]]; then
      [[ -e $(dirname "$file")/$inc ]] || continue
      path=$(realpath -m --relative-to=. "$(dirname "$file")/$inc")
    fi
    layer_of "$file"; from=$layer
    layer_of "$path"; to=$layer
    if [[ -z $to ]] || ! allowed "$from" "$to"; then
      fail "$file:$line: includes \"$inc\" (${to:-no layer}): $from may use only itself and: ${may_use[$from]:-nothing}"
    fi
  done < <(includes "$folder")
done

# Links: "CMAKEFILE TARGET DEP..." for each target_link_libraries call in
# the CMakeLists.txt files under $1.
links() {
  local cmake
  find "$1" -name CMakeLists.txt | while IFS= read -r cmake; do
    sed 's/#.*//' "$cmake" | tr '\n' ' ' |
      grep -oE 'target_link_libraries[[:space:]]*\([^)]*\)' |
      sed -E "s|^target_link_libraries[[:space:]]*\(|$cmake |; s/\)\$//" || true
  done
}
for folder in $folders; do
  [[ -d $folder ]] || continue
  while read -r cmake target deps; do
    from=${target_layer[$target]:-}
    if [[ -z $from ]]; then layer_of "$cmake"; from=$layer; fi
    for dep in $deps; do
      [[ $dep == anomaly* ]] || continue
      to=${target_layer[$dep]:-}
      if [[ -z $to ]]; then
        fail "$cmake: $target links $dep, which has no layer in scripts/check-layers.sh"
      elif ! allowed "$from" "$to"; then
        fail "$cmake: $target ($from) links $dep ($to): $from may use only itself and: ${may_use[$from]:-nothing}"
      fi
    done
  done < <(links "$folder")
done

if ((errors > 0)); then
  echo "check-layers: forbidden dependencies: $errors (table: docs/architecture.md)" >&2
  exit 1
fi
echo "check-layers: OK"
