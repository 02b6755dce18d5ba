#!/usr/bin/env bash
# A/B of alert delivery's cost: records/s and daemon CPU per record with and
# without a webhook receiver ([alerts] webhooks, a local HTTP server that
# answers 200), alternated twice, on the 4-feature synthetic stream
# (scripts/synthetic.awk; 1,000 of the 20,000 load rows break b = 2a, about
# 1.6% of records come back flagged), dense batches of 1024, 8 s each.
# Uses the default endpoints (127.0.0.1:7601-7605) and 127.0.0.1:18080.
#   bench/alerts_ab.sh            (BUILD_DIR=... for another build folder)
set -euo pipefail
B=${BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
SRC=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d); cd "$work"
awk -v n=2000 -v seed=1 -v bad=0 -f "$SRC"/scripts/synthetic.awk > train.csv
awk -v n=20000 -v seed=3 -v bad=1000 -f "$SRC"/scripts/synthetic.awk > load.csv
# a receiver that answers 200 to everything
python3 - <<'PY' &
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 18080), H).serve_forever()
PY
RPID=$!
trap 'kill $RPID 2>/dev/null || true; rm -rf "$work"' EXIT
run() {  # $1 = label, $2.. = --set overrides
  local label=$1; shift
  rm -rf state; mkdir -p state
  $B/daemon/anomalyd --config "$SRC"/config/anomalyd.toml --state-dir state \
     --set daemon.threads=1 --set alerts.suppress_after_retrain_s=0 "$@" 2> d.log &
  local pid=$!
  for _ in $(seq 100); do $B/clients/anomalyctl status >/dev/null 2>&1 && break; sleep 0.1; done
  $B/clients/anomalyctl retrain --stream s --csv train.csv --wait >/dev/null 2>&1
  $B/bench/anomalyd_loadgen --stream s --csv load.csv --batch 1024 --columnar --duration 8 \
     --daemon-pid $pid --label $label 2>/dev/null | grep RESULT
  $B/clients/anomalyctl query --stream s --limit 1 >/dev/null 2>&1 || true
  curl -s 127.0.0.1:7605/metrics | grep -E "^anomalyd_alert_(notifications|deliveries)_total|^anomalyd_records_flagged" || true
  kill -TERM $pid; wait $pid
}
for i in 1 2; do
  run off
  run on "--set" 'alerts.webhooks=["http://127.0.0.1:18080/hook"]'
done
