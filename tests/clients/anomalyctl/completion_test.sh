#!/usr/bin/env bash
# The bash completion of anomalyctl (clients/anomalyctl/completion.bash),
# sourced in a plain bash: it registers itself, completes commands, options
# and values, and offers exactly the commands and options that the built
# anomalyctl's --help lists.
#   completion_test.sh ANOMALYCTL COMPLETION_FILE
set -euo pipefail
ctl=$1
completion=$2
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# shellcheck source=/dev/null
source "$completion"
[[ $(complete -p anomalyctl) == "complete -F _anomalyctl anomalyctl" ]] ||
  fail "complete -p anomalyctl: $(complete -p anomalyctl 2>&1)"

# complete WORD... : the completions of the last word, sorted, one line.
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _anomalyctl
  printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
expect() {
  local want=$1
  shift
  local got
  got=$(complete_words "$@")
  [[ $got == "$want" ]] || fail "[$*]: want '$want', got '$got'"
}

# Names a CLI11 --help lists under its heading $2 ("Subcommands" or
# "Options"): the first word of each entry, aliases split, -h/--help left out.
help_names() {
  "$ctl" $1 --help | awk -v head="$2:" '
    $0 == head { on = 1; next }
    on && /^[^ ]/ { on = 0 }
    on && /^  [^ ]/ {
      split($1, names, ",")
      for (k in names) if (names[k] != "-h" && names[k] != "--help") print names[k]
    }' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

commands=$(help_names "" Subcommands)
[[ -n $commands ]] || fail "no subcommands in anomalyctl --help"
expect "$commands" anomalyctl ""
globals=$(help_names "" Options)
expect "$(printf '%s\n' $globals --help | sort | tr '\n' ' ' | sed 's/ $//')" anomalyctl --
for cmd in $commands "models rollback"; do
  # The command's own options and those of the commands above it, which
  # take what it does not (fallthrough), nothing else.
  own=$(help_names "$cmd" Options)
  [[ $cmd == "models rollback" ]] && own="$own $(help_names models Options)"
  want=$(printf '%s\n' $own $globals --help | sort -u | tr '\n' ' ' | sed 's/ $//')
  # shellcheck disable=SC2086
  got=$(complete_words anomalyctl $cmd -)
  got_long=$(complete_words anomalyctl $cmd --)
  all=$(printf '%s\n' $got $got_long | sort -u | tr '\n' ' ' | sed 's/ $//')
  [[ $all == "$want" ]] || fail "options of '$cmd': want '$want', got '$all'"
done

# Values, subcommands and the forms bash splits.
expect "csv json table" anomalyctl query --format ""
expect "csv" anomalyctl query --format = c
expect "quantile" anomalyctl calibrate --method q
expect "oldest score time" anomalyctl --endpoint tcp://h:1 query --order ""
expect "rollback" anomalyctl models --stream demo ""
expect "status" anomalyctl --endpoint score st
expect "--contributions --control" anomalyctl score --co
expect "" anomalyctl query --limit ""
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bundle"
touch "$tmp/data.csv"
expect "$tmp/bundle" anomalyctl score --model "$tmp/"
expect "$tmp/bundle $tmp/data.csv" anomalyctl score --data "$tmp/"

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "completion: OK"
