#!/usr/bin/env bash
# Checks systemd/anomalyd.service with systemd-analyze.
#
#   check_unit.sh verify   UNIT ANOMALYD_BINARY
#   check_unit.sh security UNIT MAX_EXPOSURE
#
# verify: `systemd-analyze verify` on a copy of the unit whose ExecStart
# names the built binary (verify insists that the binary exists). Any
# warning (an unknown key, a bad value) fails the test, not only errors.
# security: `systemd-analyze security --offline=yes`; fails when the overall
# exposure level is above MAX_EXPOSURE.
# Exits 77 (ctest SKIP_RETURN_CODE) when systemd-analyze is missing or
# cannot run here.
set -u
mode=$1 unit=$2 arg=$3
SKIP=77

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP: systemd-analyze is not installed"
  exit $SKIP
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(basename "$unit")

case "$mode" in
  verify)
    if [ ! -x "$arg" ]; then
      echo "FAIL: $arg is not an executable (build the anomalyd target)"
      exit 1
    fi
    sed "s#/usr/sbin/anomalyd#$arg#g" "$unit" >"$work/$name"
    out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$work/$name" 2>&1)
    rc=$?
    if [ -n "$out" ]; then printf '%s\n' "$out"; fi
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
      echo "FAIL: systemd-analyze verify (rc $rc, output above)"
      exit 1
    fi
    echo "PASS: systemd-analyze verify $name"
    ;;
  security)
    cp "$unit" "$work/$name"
    out=$(systemd-analyze security --offline=yes --no-pager "$work/$name" 2>&1)
    rc=$?
    level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)
    if [ -z "$level" ]; then
      printf '%s\n' "$out" | tail -5
      echo "SKIP: systemd-analyze security --offline=yes gave no exposure level (rc $rc)"
      exit $SKIP
    fi
    printf '%s\n' "$out" | grep '✗' || true
    if awk -v l="$level" -v m="$arg" 'BEGIN { exit !(l > m) }'; then
      echo "FAIL: exposure level $level is above $arg"
      exit 1
    fi
    echo "PASS: exposure level $level (at most $arg)"
    ;;
  *)
    echo "usage: $0 verify|security UNIT ARG" >&2
    exit 2
    ;;
esac
