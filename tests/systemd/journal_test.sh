#!/usr/bin/env bash
# anomalyd started by systemd logs to the journal natively (daemon/log.h):
# records carry their priority, so `journalctl -p err` finds a rejected
# reload, and no timestamp of the daemon's own. Runs it as a transient
# user service (systemd-run --user); skipped (77), saying why, where there
# is no user manager or its journal keeps nothing.
#   journal_test.sh ANOMALYD
set -euo pipefail
daemon=$1
skip() {
  echo "SKIP: $*"
  exit 77
}
command -v systemd-run >/dev/null && command -v journalctl >/dev/null ||
  skip "systemd-run or journalctl is not installed"
if ! why=$(systemd-run --user --quiet --wait --collect true 2>&1); then
  skip "no systemd user manager to run a service (systemd-run --user: ${why%%$'\n'*})"
fi

work=$(mktemp -d)
unit=anomalyd-journal-test-$$
cleanup() {
  systemctl --user stop "$unit" 2>/dev/null || true
  systemctl --user reset-failed "$unit" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/anomalyd.toml" <<TOML
[daemon]
state_dir = "$work/state"
threads = 1
[endpoints]
score = "ipc://$work/score.sock"
control = "ipc://$work/control.sock"
ingest = ""
alerts = ""
metrics = ""
TOML

# Type=notify: systemd-run returns once the daemon sent READY=1.
systemd-run --user --quiet --collect --unit="$unit" -p Type=notify -p NotifyAccess=main \
  "$daemon" --config "$work/anomalyd.toml"
echo "[limits" >>"$work/anomalyd.toml"  # a file the reload must reject
systemctl --user kill -s HUP "$unit"
sleep 2
systemctl --user stop "$unit"

all=$(journalctl --user -u "$unit" -o cat 2>/dev/null || true)
[[ -n $all ]] || skip "the user journal keeps no records of $unit (journald storage)"
status=0
errors=$(journalctl --user -u "$unit" -p err -o cat)
grep -q "reload: keeping the running config" <<<"$errors" ||
  { echo "FAIL: journalctl -p err lacks the rejected reload: $errors" >&2; status=1; }
grep -q "anomalyd ready" <<<"$errors" &&
  { echo "FAIL: an info record came out as an error" >&2; status=1; }
ready=$(grep "anomalyd ready" <<<"$all" || true)
[[ $ready == "anomalyd ready"* ]] ||
  { echo "FAIL: want the bare message 'anomalyd ready...', got '$ready'" >&2; status=1; }
[[ $status == 0 ]] && echo "journal: OK"
exit "$status"
