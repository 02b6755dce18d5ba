#!/usr/bin/env bash
# The manual pages (docs/man): each renders without a warning, and each
# says what the code does: anomalyctl(1) has every command of `anomalyctl
# --help` and no other, and every option of each; anomalyd(8) every option
# of `anomalyd --help`; anomalyd.toml(5) every key of config/anomalyd.toml,
# in its table, with the same default.
#   man_test.sh SOURCE_DIR ANOMALYCTL ANOMALYD
# Exit 77 (skipped) without groff.
set -euo pipefail
src=$1
ctl=$2
daemon=$3
man_dir=$src/docs/man
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
if ! command -v groff >/dev/null; then
  echo "SKIP: groff is not installed (Debian: groff-base)"
  exit 77
fi

for page in "$man_dir"/anomalyctl.1 "$man_dir"/anomalyd.toml.5 "$man_dir"/anomalyd.8; do
  warnings=$(groff -ww -z -man "$page" 2>&1) || fail "groff failed on $page"
  [[ -z $warnings ]] || fail "groff -ww on $page: $warnings"
  if command -v man >/dev/null; then
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) ||
      fail "man -l failed on $page"
    [[ -z $warnings ]] || fail "man --warnings -l $page: $warnings"
  fi
done

# The text of a page's section (.SH) or subsection (.SS) named $2, roff
# minus signs as plain hyphens.
section() {
  awk -v macro="$2" -v name="$3" '
    /^\.S[HS] / {
      title = substr($0, 5)
      gsub(/"/, "", title)
      if (on && ($1 == ".SH" || $1 == macro)) on = 0
      if ($1 == macro && title == name) on = 1
      next
    }
    on' "$1" | sed 's/\\-/-/g'
}
# Names CLI11's --help lists under a heading ("Subcommands:", "Options:").
help_names() {
  awk -v head="$2:" '
    $0 == head { on = 1; next }
    on && /^[^ ]/ { on = 0 }
    on && /^  [^ ]/ { split($1, names, ","); for (k in names) print names[k] }' <<<"$1"
}

# anomalyctl(1).
page=$man_dir/anomalyctl.1
commands=$(help_names "$("$ctl" --help)" Subcommands | sort)
documented=$(grep '^\.SS ' "$page" | sed 's/^\.SS //; s/"//g' | grep -v ' ' | sort)
[[ $commands == "$documented" ]] ||
  fail "anomalyctl.1 documents the commands [$(echo $documented)]; anomalyctl has [$(echo $commands)]"
for opt in $(help_names "$("$ctl" --help)" Options); do
  section "$page" .SH "GLOBAL OPTIONS" | grep -q -- "$opt" ||
    fail "anomalyctl.1: global option $opt is not in GLOBAL OPTIONS"
done
for cmd in $commands "models rollback"; do
  text=$(section "$page" .SS "$cmd")
  [[ -n $text ]] || { fail "anomalyctl.1: no section for '$cmd'"; continue; }
  # shellcheck disable=SC2086
  for opt in $(help_names "$("$ctl" $cmd --help)" Options); do
    [[ $opt == -h || $opt == --help ]] && continue
    grep -qE -- "(^|[^-a-z])$opt([^-a-z]|\$)" <<<"$text" ||
      fail "anomalyctl.1: '$cmd' option $opt is not in its section"
  done
done

# anomalyd(8).
page=$man_dir/anomalyd.8
for opt in $(help_names "$("$daemon" --help)" Options); do
  section "$page" .SH OPTIONS | grep -qE -- "(^|[^-a-z])$opt([^-a-z]|\$)" ||
    fail "anomalyd.8: option $opt is not in OPTIONS"
done

# anomalyd.toml(5): "\fBkey\fR = default" in the section [table].
page=$man_dir/anomalyd.toml.5
table=""
keys=0
while IFS= read -r line; do
  if [[ $line =~ ^\[([a-z_.]+)\]$ ]]; then
    table=${BASH_REMATCH[1]}
  elif [[ $line =~ ^([a-z_]+)\ =\ (.*)$ ]]; then
    key=${BASH_REMATCH[1]}
    value=$(sed -E 's/[[:space:]]+#.*$//; s/[[:space:]]+$//' <<<"${BASH_REMATCH[2]}")
    keys=$((keys + 1))
    section "$page" .SH "[$table]" | grep -qxF -- "\\fB$key\\fR = $value" ||
      fail "anomalyd.toml.5: no '$key = $value' in [$table]"
  fi
done <"$src/config/anomalyd.toml"
((keys > 50)) || fail "read only $keys keys from config/anomalyd.toml"
section "$page" .SH "[streams.NAME]" | grep -q 'fBbaseline' ||
  fail "anomalyd.toml.5: no [streams.NAME] baseline"

if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "man pages: OK"
