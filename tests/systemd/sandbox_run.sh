#!/usr/bin/env bash
# Runs anomalyd under the restrictions of systemd/anomalyd.service without
# systemd (containers and CI have no systemd as PID 1), in a private mount
# namespace:
#   User=/DynamicUser=   an unprivileged uid/gid with no supplementary groups
#   CapabilityBoundingSet= AmbientCapabilities= NoNewPrivileges=yes
#   ProtectSystem=strict every mount read-only but the state directory
#   StateDirectory=      /var/lib/anomalyd, owned by the service user, 0750
#   PrivateTmp= PrivateDevices= ProtectHome=  private /tmp, minimal /dev,
#                        /home and /root inaccessible
#   ProtectProc=invisible  /proc with hidepid=invisible
#   UMask=0077  MemoryDenyWriteExecute=yes (the kernel's PR_SET_MDWE)
#   LoadCredential=      the CURVE server secret key in a read-only
#                        $CREDENTIALS_DIRECTORY, root's 0400 with an ACL
#                        entry for the service user (stat: 0440), as systemd
#                        writes it on tmpfs
# It trains a stream through control (CURVE on), scores, queries, reloads,
# reads the metrics, stops with SIGTERM, and checks that the daemon ran as
# that user, exited 0, and (with strace) opened files for writing only in
# its state directory. Not reproduced here: the seccomp filter
# (SystemCallFilter=), RestrictAddressFamilies=, the Protect{Kernel*,Clock,
# Hostname,ControlGroups}= and Private{Users,IPC}= settings.
#
#   sandbox_run.sh ANOMALYD ANOMALYCTL CONFIG
#
# Needs root to build the namespace; exits 77 (ctest SKIP_RETURN_CODE)
# where that is not possible.
set -euo pipefail
SKIP=77
SVC_ID=61234  # in systemd's DynamicUser= range (61184-65519)
CREDS=/run/credentials/anomalyd.service

# Inside the namespace: mount the sandbox, then become the service and exec
# the daemon. Arguments: WORK, then the daemon's command line.
inside() {
  local work=$1
  shift
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/out /run/bin "$CREDS" /run/clients
  mount --bind "$work/out" /run/out
  mount --bind "$work/bin" /run/bin
  mount -t tmpfs -o mode=0755 tmpfs /var/lib
  mkdir /var/lib/anomalyd
  mount --bind "$work/state" /var/lib/anomalyd
  cp "$work/keys/server.key_secret" "$CREDS/server.key_secret"
  cp "$work/keys/admin.key" /run/clients/
  chmod 0400 "$CREDS/server.key_secret"
  chmod 0500 "$CREDS"
  /usr/bin/python3 - "$CREDS" "$SVC_ID" <<'EOF'
import os, struct, sys
# A POSIX access ACL (version 2): owner, the service user, group, mask, other.
def acl(uid, perm):
    undef = 0xFFFFFFFF
    entries = [(0x01, perm, undef), (0x02, perm, uid), (0x04, 0, undef),
               (0x10, perm, undef), (0x20, 0, undef)]
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *e) for e in entries)
creds, uid = sys.argv[1], int(sys.argv[2])
os.setxattr(creds, 'system.posix_acl_access', acl(uid, 5))
os.setxattr(creds + '/server.key_secret', 'system.posix_acl_access', acl(uid, 4))
EOF
  # ProtectSystem=strict: everything read-only but the state directory (and
  # the test's own output folder, 0700 root).
  local m
  while read -r m; do
    case $m in
      /proc*|/sys*|/dev*|/var/lib/anomalyd|/run/out) continue ;;
    esac
    mount -o remount,bind,ro "$m" 2>/dev/null || true
  done < <(awk '{print $2}' /proc/self/mounts | sort -u)
  # ProtectProc=invisible. (Not ProcSubset=pid: LibTorch's cpuinfo aborts
  # the daemon without /proc/cpuinfo, checked with subset=pid here.)
  mount -t proc -o hidepid=invisible proc /proc
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=1777 tmpfs /var/tmp
  for m in /home /root; do [ -d $m ] && mount -t tmpfs -o ro,mode=0000 tmpfs $m; done
  mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs /dev
  mknod -m 0666 /dev/null c 1 3
  mknod -m 0666 /dev/zero c 1 5
  mknod -m 0666 /dev/full c 1 7
  mknod -m 0666 /dev/random c 1 8
  mknod -m 0666 /dev/urandom c 1 9
  mkdir /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  cd /
  umask 0077
  local trace=()
  if command -v strace >/dev/null; then
    trace=(strace -f -qq -o /run/out/trace -e trace=%file,truncate,ftruncate)
  fi
  exec env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$CREDS" "${trace[@]}" \
    setpriv --reuid="$SVC_ID" --regid="$SVC_ID" --clear-groups \
    --inh-caps=-all --bounding-set=-all --no-new-privs \
    /usr/bin/python3 -B -c '
import ctypes, os, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print("sandbox: PR_SET_MDWE failed, MemoryDenyWriteExecute not enforced", file=sys.stderr)
os.execv(sys.argv[1], sys.argv[1:])' "$@"
}

if [ "${1:-}" = --inside ]; then
  shift
  inside "$@"
fi

bin=$1 ctl=$2 config=$3
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! command -v unshare >/dev/null ||
   ! unshare -m --propagation private true 2>/dev/null; then
  echo "SKIP: needs root, setpriv and unshare -m"
  exit $SKIP
fi
work=$(mktemp -d)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill -KILL "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
chmod 0711 "$work"
mkdir -m 0700 "$work/out" "$work/keys"
mkdir -m 0755 "$work/bin"
mkdir -m 0750 "$work/state"
chown "$SVC_ID:$SVC_ID" "$work/state"
cp "$bin" "$work/bin/anomalyd"
"$ctl" keygen --out "$work/keys" --name server >/dev/null
"$ctl" keygen --out "$work/keys" --name admin >/dev/null
awk -v n=1500 -v seed=1 -v bad=0 -f "$(dirname "$0")/../../scripts/synthetic.awk" \
  >"$work/state/base.csv"
chmod 0644 "$work/state/base.csv"

ports=($(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
ep() { echo "tcp://127.0.0.1:${ports[$1]}"; }
cp "$config" "$work/bin/anomalyd.toml"
unshare -m --propagation private "$0" --inside "$work" /run/bin/anomalyd \
  --config /run/bin/anomalyd.toml --state-dir /var/lib/anomalyd \
  --set "endpoints.score=$(ep 0)" --set "endpoints.ingest=$(ep 1)" \
  --set "endpoints.control=$(ep 2)" --set "endpoints.alerts=$(ep 3)" \
  --set "endpoints.metrics=$(ep 4)" --set training.max_epochs=40 --set training.device=cpu \
  --set auth.enabled=true --set "auth.server_secret_key=$CREDS/server.key_secret" \
  --set auth.clients_dir=/run/clients >"$work/out/daemon.log" 2>&1 &
ns_pid=$!

fail() {
  echo "FAIL: $*"
  echo "--- daemon log"
  cat "$work/out/daemon.log"
  exit 1
}
# The daemon is the descendant of unshare whose command is anomalyd.
find_daemon() {
  local p=$1 c
  if [ "$(cat /proc/$p/comm 2>/dev/null)" = anomalyd ]; then echo "$p"; return; fi
  for c in $(pgrep -P "$p"); do find_daemon "$c"; done
}
for _ in $(seq 600); do
  grep -q "anomalyd ready" "$work/out/daemon.log" 2>/dev/null && break
  kill -0 $ns_pid 2>/dev/null || fail "anomalyd exited before it was ready"
  sleep 0.2
done
grep -q "anomalyd ready" "$work/out/daemon.log" || fail "not ready within 120 s"
daemon_pid=$(find_daemon $ns_pid | head -1)
[ -n "$daemon_pid" ] || fail "no anomalyd process under $ns_pid"

st=/proc/$daemon_pid/status
grep -q "^Uid:[[:space:]]*$SVC_ID[[:space:]]*$SVC_ID[[:space:]]*$SVC_ID[[:space:]]*$SVC_ID" $st ||
  fail "not running as uid $SVC_ID: $(grep Uid $st)"
grep -q "^Groups:[[:space:]]*$" $st || fail "has supplementary groups: $(grep Groups $st)"
for f in CapInh CapPrm CapEff CapBnd CapAmb; do
  grep -q "^$f:[[:space:]]*0000000000000000" $st || fail "$f: $(grep $f $st)"
done
grep -q "^NoNewPrivs:[[:space:]]*1" $st || fail "no_new_privs is not set"
echo "daemon pid $daemon_pid: uid/gid $SVC_ID, no capabilities, no_new_privs, $(grep Umask $st)"

actl() {
  "$ctl" --endpoint "$(ep 0)" --control "$(ep 2)" --alerts "$(ep 3)" --timeout-ms 60000 \
    --server-key "$work/keys/server.key" --client-key "$work/keys/admin.key_secret" "$@"
}
actl retrain --stream sbx --csv /var/lib/anomalyd/base.csv --wait || fail "retrain"
awk -v n=200 -v seed=2 -v bad=10 -f "$(dirname "$0")/../../scripts/synthetic.awk" >"$work/records.csv"
flagged=$(actl score --stream sbx --data "$work/records.csv" |
  awk -F, 'NR > 1 && $7 == 1 { n++ } END { print n + 0 }')
[ "$flagged" -ge 10 ] || fail "only $flagged of the 10 anomalies flagged"
stored=$(actl query --stream sbx --limit 1000 --format csv | tail -n +2 | wc -l)
[ "$stored" -eq "$flagged" ] || fail "$flagged flagged but $stored stored"
actl reload || fail "reload"
# Read whole before grep: under pipefail, `curl | grep -q` fails whenever
# grep exits at its match before curl has written the rest (EPIPE, rc 23).
metrics=$(curl -sf "http://127.0.0.1:${ports[4]}/metrics") || fail "GET /metrics"
grep -q 'anomalyd_records_scored_total{stream="sbx"} 200' <<<"$metrics" || fail "metrics"
actl status
kill -TERM "$daemon_pid"
rc=0
wait $ns_pid || rc=$?
daemon_pid=""
[ $rc -eq 0 ] || fail "exit status $rc after SIGTERM"
grep -Eqi '\[(error|critical)\]|permission denied|read-only' "$work/out/daemon.log" &&
  fail "errors in the log"

# Every file it created is the service user's and private (UMask=0077).
loose=$(find "$work/state" -mindepth 1 \( ! -user $SVC_ID -o -perm /077 \) ! -name base.csv)
[ -z "$loose" ] || fail "files not private to the service: $loose"
echo "state directory: $(find "$work/state" -type f | wc -l) files, all owned by $SVC_ID, mode 0600/0700"
if [ -f "$work/out/trace" ]; then
  # Opens for writing (O_WRONLY, O_RDWR, O_CREAT), creations, renames,
  # removals and truncations by path, successful or not, after the exec of
  # the daemon, outside the state directory and /dev/null. (Writes through
  # a descriptor go to a file whose open is among these.)
  writes=$(awk '/execve\("\/run\/bin\/anomalyd"/ { on = 1 } on' "$work/out/trace" |
    grep -E 'O_WRONLY|O_RDWR|O_CREAT|mkdir|rename|unlink|truncate' | grep '"' || true)
  [ -n "$writes" ] || fail "strace saw no writes at all"
  outside=$(printf '%s\n' "$writes" | grep -v '"/var/lib/anomalyd' | grep -v '"/dev/null"' |
    grep -vE '"/proc/self/task/[0-9]+/comm"' || true)
  [ -z "$outside" ] || fail "writes outside the state directory:
$outside"
  echo "strace: all $(printf '%s\n' "$writes" | wc -l) write-mode opens, mkdirs, renames and" \
    "unlinks by path were under /var/lib/anomalyd:"
  printf '%s\n' "$writes" | grep -o '"/[^"]*"' | sort -u | sed 's/^/  /'
fi
echo "PASS: anomalyd ran sandboxed as uid $SVC_ID and wrote only its state directory"
