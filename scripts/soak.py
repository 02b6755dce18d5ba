#!/usr/bin/python3
"""Soak test: runs the real anomalyd for --minutes under mixed load and
fails (exit 1, with the reasons) when it misbehaves. Not run in CI.

  scripts/soak.py [--daemon build/daemon/anomalyd] [--minutes 30]
                  [--state-dir DIR] [--seed 1] [--rss-tolerance 0.25] ...

The script writes a config (ipc:// endpoints and the state in --state-dir,
metrics on a free loopback TCP port, a small fast model, a synthetic
baseline for stream "main"), starts the daemon, waits for READY=1 on a
NOTIFY_SOCKET of its own, and runs these loads in threads, each with a
bounded rate and count:

  score     single records, small batches and large columnar batches of
            stream "main", about 2% clearly anomalous (b = 2a broken);
            every record answered flagged and stored is remembered
  query     paging through the anomalies with cursors, newest first and
            highest score first
  retrain   failing ones (one-row CSV, bad header, missing file), each
            under a new stream name, and succeeding ones on "main"; each
            outcome is awaited through status
  metrics   GET /metrics over TCP: read the reply, or close (FIN or RST)
            without reading it
  control   rollbacks of "main" to an earlier version, SIGHUP

and samples VmRSS, VmSize and Threads of the daemon every --sample-seconds.

It fails on:
  - a request without a reply within --reply-timeout (an error reply such
    as BUSY is a reply), or a retrain whose outcome status never shows;
  - RSS growth: the median RSS of the last 20% of the run after warm-up
    (max(2 min, 10% of the run)) above (1 + --rss-tolerance) times that of
    the first 20% after warm-up;
  - thread growth: the same comparison of the thread count, above
    --thread-growth threads (default 0: any sustained growth);
  - virtual size growth, the same comparison, above --vm-growth-mib (a
    thread that ended without being joined leaves Threads but keeps its
    8 MiB stack mapped);
  - a lost anomaly: a record answered flagged = true and stored = true
    that the anomalies table does not hold after a clean SIGTERM;
  - the daemon exiting by itself, or not exiting 0 within 60 s of SIGTERM.

Exit status: 0 passed, 1 failed, 2 could not run (daemon did not start,
missing Python modules). Needs Debian's python3 with python3-zmq,
python3-protobuf and python3-numpy; anomalyd_pb2 is taken from
PYTHONPATH, from <build>/clients/python beside --daemon, or generated with
protoc into the state dir.
"""

import argparse
import collections
import ctypes
import importlib.util
import math
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBC = ctypes.CDLL(None)
MAIN = "main"          # the stream under load
FEATURES = 4           # b = 2a, d = c - a (scripts/synthetic.awk)
ANOMALY_SHARE = 0.02   # of scored records; each is answered flagged
STATUS_POLL_S = 0.5    # between status requests while awaiting a retrain
RETRAIN_OUTCOME_S = 120.0  # a retrain's outcome must show within this
STOP_GRACE_S = 60.0    # SIGTERM to exit, scoring what is queued included


# One reading of /proc/<pid>/status: seconds into the run, VmRSS and VmSize
# in kB, Threads, and whether a retrain was awaiting its outcome then.
Sample = collections.namedtuple("Sample", "t rss_kb vm_kb threads busy")


_LOG_MU = threading.Lock()


def log(msg):
    with _LOG_MU:  # one write per line: the load threads log too
        sys.stdout.write(f"[soak {time.strftime('%H:%M:%S')}] {msg}\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------
# Imports: the repository's client and the generated protobuf module.

def import_client(daemon, work_dir):
    """Puts anomalyd_pb2 and anomalyd_client on sys.path, as
    tests/python/CMakeLists.txt does with PYTHONPATH; generates
    anomalyd_pb2 with protoc when no build has it. Returns the modules."""
    if importlib.util.find_spec("anomalyd_pb2") is None:  # not on PYTHONPATH
        built = Path(daemon).resolve().parent.parent / "clients" / "python"
        if (built / "anomalyd_pb2.py").exists():
            sys.path.insert(0, str(built))
        else:
            out = Path(work_dir) / "pb2"
            out.mkdir(parents=True, exist_ok=True)
            subprocess.run(["protoc", f"--python_out={out}", "-I", str(REPO / "proto"),
                            str(REPO / "proto" / "anomalyd.proto")], check=True)
            sys.path.insert(0, str(out))
    sys.path.insert(0, str(REPO / "clients" / "python"))
    import numpy
    import zmq
    import anomalyd_pb2
    from anomalyd_client import AnomalydError, Client
    return numpy, zmq, anomalyd_pb2, AnomalydError, Client


# ---------------------------------------------------------------------------
# Data: rows of scripts/synthetic.awk, the one generator of the b = 2a
# records outside the C++ tests (tests/synthetic.h there).

POOL_ROWS = 100_000    # drawn from with replacement; about 1 s of awk
_POOL = []


def normal_rows(np, rng, n):
    """n normal rows (float32, n x 4), drawn with replacement from a pool
    made once by scripts/synthetic.awk."""
    if not _POOL:
        out = subprocess.run(
            ["awk", "-v", f"n={POOL_ROWS}", "-v", "seed=11", "-v", "bad=0",
             "-f", str(REPO / "scripts" / "synthetic.awk")],
            check=True, capture_output=True, text=True).stdout
        rows = [line.split(",")[1:5] for line in out.splitlines()[1:]]
        _POOL.append(np.asarray(rows, dtype=np.float32))
    pool = _POOL[0]
    return pool[rng.integers(0, len(pool), size=n)]


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(",".join(f"{v:.6f}" for v in r) + "\n")


# ---------------------------------------------------------------------------
# Book-keeping shared by the load threads.

class Stats:
    """Counts per request kind, errors by code, unanswered requests, the
    latency of single-record scoring and the acknowledged anomalies.
    Thread-safe."""

    def __init__(self):
        self.mu = threading.Lock()
        self.sent = collections.Counter()
        self.replies = collections.Counter()  # replies of any kind, errors too
        self.errors = collections.Counter()   # (kind, code) -> count
        self.unanswered = []                  # (seconds into the run, kind, message)
        self.single_latency_s = []
        self.acked = set()                    # record ids flagged and stored
        self.notes = collections.Counter()    # anything else worth a line
        self.fired = set()                    # kinds that expect no reply
        self.failures = []
        self.last_reply = time.monotonic()
        self.sent_since_reply = 0

    def send(self, kind):
        with self.mu:
            self.sent[kind] += 1
            self.sent_since_reply += 1

    def fire(self, kind):
        """A request that expects no reply (a scrape closed unread)."""
        with self.mu:
            self.sent[kind] += 1
            self.fired.add(kind)

    def reply(self, kind, code=None, from_daemon=True):
        """A reply, or with code an error; from_daemon=False for errors
        raised here (a refused connection), which say nothing of whether
        the daemon still answers."""
        with self.mu:
            self.replies[kind] += 1
            if code is not None:
                self.errors[(kind, code)] += 1
            if from_daemon:
                self.last_reply = time.monotonic()
                self.sent_since_reply = 0

    def lost(self, kind, t, message):
        """A request sent `t` seconds into the run that got no reply."""
        with self.mu:
            first = not any(k == kind for _, k, _ in self.unanswered)
            self.unanswered.append((t, kind, message))
        if first:
            log(f"unanswered {kind} request sent {t:.0f} s into the run: {message}")

    def note(self, what, n=1):
        with self.mu:
            self.notes[what] += n

    def fail(self, reason):
        with self.mu:
            if reason not in self.failures:
                self.failures.append(reason)
        log(f"FAILURE: {reason}")


class Soak:
    def __init__(self, args, mods):
        self.args = args
        self.np, self.zmq, self.pb, self.AnomalydError, self.Client = mods
        self.stats = Stats()
        self.stop = threading.Event()
        self.samples = []       # Sample
        self.watchdog = []      # monotonic times of WATCHDOG=1
        self.ready = threading.Event()
        self.retrain_in_flight = threading.Event()
        self.t0 = None          # monotonic start of the load
        self.proc = None
        self.dir = Path(args.state_dir)
        self.ep = {k: f"ipc://{self.dir}/{k}.sock" for k in ("score", "control", "alerts")}
        self.metrics_port = free_port()

    def now(self):
        return time.monotonic() - self.t0 if self.t0 else 0.0

    # -- the daemon ---------------------------------------------------------

    def write_files(self):
        np = self.np
        rng = np.random.default_rng(self.args.seed)
        names = ",".join(f"f{j}" for j in range(FEATURES))
        write_csv(self.dir / "base.csv", names, normal_rows(np, rng, 600))
        write_csv(self.dir / "base2.csv", names, normal_rows(np, rng, 600))
        write_csv(self.dir / "one_row.csv", names, normal_rows(np, rng, 1))
        write_csv(self.dir / "dup_header.csv", "f0,f0,f1,f2", normal_rows(np, rng, 50))
        write_csv(self.dir / "no_header.csv", "1,2,3,4", normal_rows(np, rng, 50))
        config = f"""# written by scripts/soak.py
[daemon]
state_dir = "{self.dir}/state"
log_level = "info"
threads = 1

[endpoints]
score = "{self.ep['score']}"
ingest = ""
control = "{self.ep['control']}"
alerts = "{self.ep['alerts']}"
metrics = "tcp://127.0.0.1:{self.metrics_port}"

[model]
hidden = [16, 8]
latent = 2

[training]
max_epochs = 40
batch_size = 64
device = "cpu"

[streams.{MAIN}]
baseline = "{self.dir}/base.csv"
"""
        (self.dir / "anomalyd.toml").write_text(config)

    def start_daemon(self):
        notify_path = str(self.dir / "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        self.notify.settimeout(0.5)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path,
                   # The daemon then pings WATCHDOG=1 every 2 s while its
                   # scorer turns: the longest gap is in the summary.
                   WATCHDOG_USEC="6000000")
        env.pop("WATCHDOG_PID", None)
        self.log_file = open(self.dir / "daemon.log", "w")
        self.proc = subprocess.Popen(
            [self.args.daemon, "--config", str(self.dir / "anomalyd.toml")],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
            preexec_fn=die_with_parent)
        threading.Thread(target=self.read_notify, daemon=True).start()
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.2):
                return True
            if self.proc.poll() is not None:
                log(f"anomalyd exited with {self.proc.returncode} at start-up")
                return False
        log(f"no READY=1 within {self.args.start_timeout} s")
        return False

    def read_notify(self):
        while self.proc is None or self.proc.poll() is None:
            try:
                data = self.notify.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            except OSError:
                return
            if "READY=1" in data:
                self.ready.set()
            if "WATCHDOG=1" in data:
                self.watchdog.append(time.monotonic())

    def stop_daemon(self):
        """SIGTERM and wait; returns the exit code or None after the grace."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            return None

    def kill_daemon(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- helpers for the load threads ---------------------------------------

    def client(self):
        return self.Client(self.ep["score"], self.ep["control"], self.ep["alerts"],
                           timeout_ms=int(self.args.reply_timeout * 1000), retries=0)

    def call(self, kind, fn):
        """Runs one request: (result, None), (None, code name) for an
        error reply, or (None, "TIMEOUT") when no reply came in time."""
        self.stats.send(kind)
        sent = self.now()
        try:
            result = fn()
        except self.AnomalydError as e:
            # The client's own timeout (Lazy Pirate) says "no reply from".
            if e.code_name == "IO_ERROR" and e.message.startswith("no reply"):
                self.stats.lost(kind, sent, e.message)
                return None, "TIMEOUT"
            self.stats.reply(kind, e.code_name)
            return None, e.code_name
        self.stats.reply(kind)
        return result, None

    def pace(self, rate_per_s):
        """An iterator that yields at most rate_per_s times a second until
        stop, and at most that rate times the run's length in total."""
        limit = int(rate_per_s * self.args.minutes * 60 * 1.1) + 10
        period = 1.0 / rate_per_s
        next_t = time.monotonic()
        for i in range(limit):
            if self.stop.is_set():
                return
            yield i
            next_t = max(next_t + period, time.monotonic() - 1.0)
            if self.stop.wait(max(0.0, next_t - time.monotonic())):
                return

    def rows(self, rng, n, share):
        x = normal_rows(self.np, rng, n)
        bad = rng.random(n) < share
        x[bad, 1] += 25  # b = 2a broken by 250 sd of its noise
        return x, bad

    # -- load: scoring ------------------------------------------------------

    def score_worker(self, name, sizes, rate, columnar, seed):
        np = self.np
        rng = np.random.default_rng(seed)
        c = self.client()
        next_id = 0
        try:
            for _ in self.pace(rate * self.args.rate_scale):
                n = int(rng.choice(sizes))
                x, bad = self.rows(rng, n, ANOMALY_SHARE)
                ids = [f"{name}-{next_id + j}" for j in range(n)]
                next_id += n
                kind = "score_single" if n == 1 else f"score_{name}"
                t = time.perf_counter()
                if columnar:
                    res, err = self.call(kind, lambda: c.score_columns(x, MAIN, ids=ids))
                else:
                    res, err = self.call(kind, lambda: c.score(x, MAIN, ids=ids))
                dt = time.perf_counter() - t
                if err is not None:
                    continue
                if n == 1:
                    with self.stats.mu:
                        self.stats.single_latency_s.append(dt)
                if columnar:
                    flagged, stored = res["flagged"], res["stored"]
                else:
                    flagged = np.array([r["flagged"] for r in res], dtype=bool)
                    stored = np.array([r["stored"] for r in res], dtype=bool)
                acked = [ids[i] for i in np.flatnonzero(flagged & stored)]
                with self.stats.mu:
                    self.stats.acked.update(acked)
                self.stats.note("records scored", n)
                self.stats.note("records flagged", int(flagged.sum()))
                self.stats.note("flagged but not stored", int((flagged & ~stored).sum()))
                self.stats.note("anomalous records not flagged", int((bad & ~flagged).sum()))
        finally:
            c.close()

    # -- load: queries ------------------------------------------------------

    def query_worker(self, order, seed):
        rng = random.Random(seed)
        c = self.client()
        try:
            for _ in self.pace(0.5 * self.args.rate_scale):
                limit = rng.choice([10, 100, 500])
                min_score = rng.choice([None, None, 100.0])
                cursor, seen, prev = None, set(), None
                for _page in range(40):  # a bounded walk per pass
                    res, err = self.call(f"query_{order}", lambda: c.query(
                        stream=MAIN, order=order, limit=limit, cursor=cursor,
                        min_score=min_score))
                    if err is not None or self.stop.is_set():
                        break
                    page, cursor = res
                    for a in page:
                        if a["id"] in seen:
                            self.stats.note("query rows seen twice in one walk")
                        seen.add(a["id"])
                        key = a["scored_time_us"] if order == "time" else a["score"]
                        if prev is not None and key > prev:
                            self.stats.note(f"query rows out of {order} order")
                        prev = key
                    if cursor is None:
                        break
                self.stats.note("query rows read", len(seen))
        finally:
            c.close()

    # -- load: retrains -----------------------------------------------------

    def await_training(self, c, stream, version):
        """Polls status until `stream` finished training `version`; returns
        its state name, or None when no outcome showed in time."""
        deadline = time.monotonic() + RETRAIN_OUTCOME_S
        while time.monotonic() < deadline and not self.stop.is_set():
            st, err = self.call("status", c.status)
            if st is not None:
                s = st["streams"].get(stream)
                if s is not None:
                    t = s["training"]
                    if t["target_version"] == version and t["state"] in (
                            "SUCCEEDED", "FAILED", "CANCELLED_TRAINING"):
                        return t["state"]
                    if t["target_version"] > version:
                        return "SUPERSEDED"
            elif err == "TIMEOUT" and self.proc.poll() is not None:
                return None
            self.stop.wait(STATUS_POLL_S)
        return None

    def retrain_worker(self):
        c = self.client()
        bad = [("one_row", self.dir / "one_row.csv"),
               ("dup_header", self.dir / "dup_header.csv"),
               ("no_header", self.dir / "no_header.csv"),
               ("missing", self.dir / "no-such-file.csv")]
        try:
            for i in self.pace(1.0 / 12 * self.args.rate_scale):
                good = i % 4 == 3
                if good:
                    what, stream, path = "ok", MAIN, self.dir / "base2.csv"
                else:
                    what, path = bad[(i - i // 4) % len(bad)]
                    stream = f"fail-{what}-{i}"  # a new stream each time
                kind = f"retrain_{'ok' if good else 'fail'}"
                self.retrain_in_flight.set()
                try:
                    version, err = self.call(kind, lambda: c.retrain(stream, csv_path=str(path)))
                    if err == "TIMEOUT":
                        continue
                    if err is not None:
                        self.stats.note(f"retrain {what}: rejected {err}")
                        continue
                    state = self.await_training(c, stream, version)
                finally:
                    self.retrain_in_flight.clear()
                if state is None:
                    if not self.stop.is_set():
                        self.stats.fail(f"retrain of {stream} (version {version}, {what}): "
                                        f"no outcome in status within {RETRAIN_OUTCOME_S:.0f} s")
                    continue
                self.stats.note(f"retrain {what}: {state}")
        finally:
            c.close()

    # -- load: rollbacks and SIGHUP -------------------------------------------

    def rollback(self, ctx, to_version):
        req = self.pb.Request()
        req.rollback.stream = MAIN
        req.rollback.to_version = to_version
        return raw_call(self.zmq, self.pb, self.AnomalydError, ctx, self.ep["control"],
                        req, self.args.reply_timeout)

    def control_worker(self, seed):
        rng = random.Random(seed)
        c = self.client()
        ctx = self.zmq.Context()
        try:
            for i in self.pace(1.0 / 20 * self.args.rate_scale):
                if i % 2 == 0:
                    self.proc.send_signal(signal.SIGHUP)
                    self.stats.note("SIGHUP sent")
                    continue
                models, err = self.call("models", lambda: c.models(MAIN))
                if err is not None:
                    continue
                active = [m["version"] for m in models if m["active"]]
                earlier = [m["version"] for m in models
                           if active and m["version"] < active[0]]
                if not earlier:
                    continue
                to = rng.choice(earlier)
                _, err = self.call("rollback", lambda: self.rollback(ctx, to))
                if err is None:
                    self.stats.note("rollbacks done")
        finally:
            c.close()
            ctx.term()

    # -- load: metrics over plain TCP ------------------------------------------

    def metrics_worker(self):
        request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        modes = self.args.metrics_modes
        for i in self.pace(2.0 * self.args.rate_scale):
            mode = modes[i % len(modes)]
            kind = "metrics_" + mode
            if mode == "read":
                self.stats.send(kind)
            else:
                self.stats.fire(kind)
            sent = self.now()
            try:
                with socket.create_connection(("127.0.0.1", self.metrics_port),
                                              timeout=self.args.reply_timeout) as s:
                    s.sendall(request)
                    if mode == "reset":  # linger on, 0 s: close sends RST
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
                    if mode != "read":
                        continue
                    data = read_all(s, time.monotonic() + self.args.reply_timeout)
            except socket.timeout:
                self.stats.lost(kind, sent, "no complete /metrics reply within "
                                f"{self.args.reply_timeout:.0f} s")
                continue
            except OSError as e:
                self.stats.reply(kind, type(e).__name__, from_daemon=False)
                continue
            if data.startswith(b"HTTP/1.1 200") and b"anomalyd_" in data:
                self.stats.reply(kind)
            else:
                self.stats.reply(kind, "BAD_HTTP_REPLY")

    def guard(self, name, fn, args):
        """Runs a load thread; an exception in it fails the soak, whose
        load would otherwise go on without it."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 (any bug, reported)
            self.stats.fail(f"load thread {name} stopped: {type(e).__name__}: {e} "
                            "(a bug in the soak script?)")

    # -- the sampler ------------------------------------------------------------

    def sampler(self):
        while not self.stop.is_set():
            rc = self.proc.poll()
            if rc is not None:
                self.stats.fail(f"anomalyd exited by itself (status {rc}) "
                                f"{self.now():.0f} s into the run")
                self.stop.set()
                return
            st = proc_status(self.proc.pid)
            if st is not None:
                self.samples.append(Sample(self.now(), st["VmRSS"], st["VmSize"],
                                           st["Threads"], self.retrain_in_flight.is_set()))
            with self.stats.mu:
                silent = time.monotonic() - self.stats.last_reply
                waiting = self.stats.sent_since_reply
            # Every request waits reply_timeout at most: silence well past
            # that with requests sent means the daemon hangs. Stop early.
            if waiting and silent > self.args.reply_timeout * 2 + 5:
                self.stats.fail(f"anomalyd answered nothing for {silent:.0f} s "
                                f"({waiting} requests sent meanwhile): it hangs")
                self.stop.set()
                return
            self.stop.wait(self.args.sample_seconds)

    # -- the run ------------------------------------------------------------------

    def run(self):
        a = self.args
        seed = a.seed
        workers = [
            ("score-single-1", self.score_worker, ("s1", [1], 40, False, seed + 1)),
            ("score-single-2", self.score_worker, ("s2", [1], 40, False, seed + 2)),
            ("score-small", self.score_worker, ("small", [8, 16, 32, 64], 10, False, seed + 3)),
            ("score-large", self.score_worker, ("large", [512, 1024, 4096], 0.5, True, seed + 4)),
            ("query-time", self.query_worker, ("time", seed + 5)),
            ("query-score", self.query_worker, ("score", seed + 6)),
            ("retrain", self.retrain_worker, ()),
            ("control", self.control_worker, (seed + 8,)),
            ("metrics", self.metrics_worker, ()),
        ]
        self.t0 = time.monotonic()
        with self.stats.mu:
            self.stats.last_reply = self.t0
        threads = [threading.Thread(target=self.sampler, name="sampler", daemon=True)]
        threads += [threading.Thread(target=self.guard, args=(n, f, args), name=n, daemon=True)
                    for n, f, args in workers]
        for t in threads:
            t.start()
        end = self.t0 + a.minutes * 60
        next_report = self.t0 + 60
        while not self.stop.is_set() and time.monotonic() < end:
            self.stop.wait(min(5.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_report:
                next_report += 60
                s = self.samples[-1] if self.samples else None
                with self.stats.mu:
                    sent = sum(self.stats.sent.values())
                    lost = len(self.stats.unanswered)
                log(f"{self.now() / 60:.1f} min: {sent} requests, {lost} unanswered"
                    + (f", RSS {s.rss_kb / 1024:.0f} MiB, virtual {s.vm_kb / 1024:.0f} MiB, "
                       f"{s.threads} threads" if s else ""))
        self.stop.set()
        self.duration = self.now()
        # Each worker returns within one reply timeout of stop.
        join_deadline = time.monotonic() + a.reply_timeout + 15
        for t in threads:
            t.join(max(0.0, join_deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            self.stats.note(f"load threads still waiting at the end: {', '.join(stuck)}")

    # -- the verdict --------------------------------------------------------------

    def check_growth(self):
        """RSS and thread growth between the first and last 20% after
        warm-up. Returns lines for the summary."""
        a, lines = self.args, []
        warm = max(120.0, 0.1 * self.duration)
        span = self.duration - warm
        post = [s for s in self.samples if s.t >= warm]
        if span < 30 or len(post) < 10:
            lines.append(f"growth checks skipped: {span:.0f} s after a {warm:.0f} s warm-up "
                         f"({len(post)} samples); run longer")
            return lines, None, None
        first = [s for s in post if s.t < warm + 0.2 * span]
        last = [s for s in post if s.t >= self.duration - 0.2 * span]
        rss0 = statistics.median(s.rss_kb for s in first)
        rss1 = statistics.median(s.rss_kb for s in last)
        growth = rss1 / rss0 - 1
        if growth > a.rss_tolerance:
            self.stats.fail(f"RSS grew {100 * growth:+.1f}% after warm-up "
                            f"({rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, median of "
                            f"{len(first)} and {len(last)} samples; tolerance "
                            f"{100 * a.rss_tolerance:.0f}%)")
        # A running retrain has a thread of its own for a while: compare
        # samples taken with none in flight when each window has some.
        q0 = [s for s in first if not s.busy]
        q1 = [s for s in last if not s.busy]
        quiet = len(q0) >= 3 and len(q1) >= 3
        t0 = statistics.median(s.threads for s in (q0 if quiet else first))
        t1 = statistics.median(s.threads for s in (q1 if quiet else last))
        if t1 - t0 > a.thread_growth:
            self.stats.fail(f"threads grew from {t0:g} to {t1:g} after warm-up (median; "
                            f"allowed growth {a.thread_growth})")
        # A thread that ended but was never joined is gone from Threads yet
        # keeps its stack mapped (RLIMIT_STACK, inherited from us): virtual
        # size is where such a leak shows.
        vm0 = statistics.median(s.vm_kb for s in first)
        vm1 = statistics.median(s.vm_kb for s in last)
        if (vm1 - vm0) / 1024 > a.vm_growth_mib:
            stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
            hint = (f"; {(vm1 - vm0) * 1024 / stack:.0f} thread stacks of "
                    f"{stack / 2**20:g} MiB: threads that ended unjoined?"
                    if 0 < stack < 2**40 else "")
            self.stats.fail(f"virtual size grew {(vm1 - vm0) / 1024:.0f} MiB after warm-up "
                            f"({vm0 / 1024:.0f} -> {vm1 / 1024:.0f} MiB, median; allowed "
                            f"{a.vm_growth_mib} MiB{hint})")
        lines.append(f"windows: {warm:.0f}-{warm + 0.2 * span:.0f} s and "
                     f"{self.duration - 0.2 * span:.0f}-{self.duration:.0f} s "
                     f"({len(first)} and {len(last)} samples)")
        return lines, (rss0, t0, vm0), (rss1, t1, vm1)

    def check_anomalies(self, db):
        """Every acknowledged anomaly must be in the anomalies table."""
        acked = self.stats.acked
        if not db.exists():
            if acked:
                self.stats.fail(f"{db} missing; {len(acked)} anomalies were acknowledged")
            return 0
        # The daemon has exited: a plain connection (read-only ones cannot
        # always open a WAL database whose -shm file is gone).
        con = sqlite3.connect(str(db), timeout=30)
        try:
            found = {r[0] for r in con.execute(
                "SELECT record_id FROM anomalies WHERE stream = ?", (MAIN,))}
        finally:
            con.close()
        missing = acked - found
        if missing:
            sample = ", ".join(sorted(missing)[:5])
            self.stats.fail(f"{len(missing)} of {len(acked)} acknowledged anomalies are not "
                            f"in the anomalies table (e.g. {sample})")
        return len(acked & found)

    def summary(self, growth_lines, warm, end, found):
        st, a = self.stats, self.args
        print("\n==== anomalyd soak summary ====")
        print(f"daemon      {a.daemon} (pid {self.proc.pid})")
        print(f"duration    {self.duration / 60:.1f} min of load (asked {a.minutes:g}), "
              f"seed {a.seed}, state {self.dir}")
        print("requests    kind: sent / replies (errors by code) / unanswered")
        lost = collections.Counter(k for _, k, _ in st.unanswered)
        for kind in sorted(st.sent):
            errs = {c: n for (k, c), n in st.errors.items() if k == kind}
            err_s = ", ".join(f"{c} {n}" for c, n in sorted(errs.items()))
            replies = "-" if kind in st.fired else st.replies[kind]
            print(f"  {kind:<16} {st.sent[kind]:>8} / {replies:>8}"
                  f"{' (' + err_s + ')' if err_s else ''} / {lost[kind]}")
        lat = sorted(st.single_latency_s)
        if lat:
            def pct(p):
                return 1000 * lat[min(len(lat) - 1, int(math.ceil(p * len(lat))) - 1)]
            print(f"latency     single-record score, as the client sees it: p50 "
                  f"{pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, max {1000 * lat[-1]:.1f} ms "
                  f"({len(lat)} replies)")
        if self.samples:
            s0, ss = self.samples[0], self.samples
            print(f"memory      RSS {s0.rss_kb / 1024:.1f} MiB at start of load, max "
                  f"{max(s.rss_kb for s in ss) / 1024:.1f}; virtual {s0.vm_kb / 1024:.0f} "
                  f"MiB at start, max {max(s.vm_kb for s in ss) / 1024:.0f}; threads "
                  f"{s0.threads} at start, max {max(s.threads for s in ss)}")
        if warm and end:
            print(f"growth      RSS {warm[0] / 1024:.1f} -> {end[0] / 1024:.1f} MiB "
                  f"({100 * (end[0] / warm[0] - 1):+.1f}%, tolerance "
                  f"{100 * a.rss_tolerance:.0f}%), threads {warm[1]:g} -> {end[1]:g}, "
                  f"virtual {warm[2] / 1024:.0f} -> {end[2] / 1024:.0f} MiB "
                  f"({(end[2] - warm[2]) / 1024:+.0f}, allowed +{a.vm_growth_mib})")
        for line in growth_lines:
            print(f"            {line}")
        print(f"anomalies   acknowledged (flagged and stored) {len(st.acked)}, found in "
              f"SQLite {found}")
        if len(self.watchdog) > 1:
            # Up to the end of the load too: a daemon that froze for good
            # pings no more.
            pings = self.watchdog + [max(self.watchdog[-1], self.t0 + self.duration)]
            gaps = [b - a_ for a_, b in zip(pings, pings[1:])]
            print(f"watchdog    {len(self.watchdog)} WATCHDOG=1 pings, longest gap "
                  f"{max(gaps):.1f} s (expected every 2 s while the scorer turns"
                  f"{'; a systemd watchdog of 6 s would have killed it' if max(gaps) > 6 else ''})")
        for what, n in sorted(st.notes.items()):
            print(f"  {what}: {n}")
        for t, kind, msg in st.unanswered[:10]:
            print(f"unanswered  sent at {t:.0f} s, {kind}: {msg}")
        if len(st.unanswered) > 10:
            print(f"unanswered  ... {len(st.unanswered) - 10} more")
        if st.failures:
            print("\nFAIL")
            for f in st.failures:
                print(f"  - {f}")
        else:
            print("\nPASS")


# ---------------------------------------------------------------------------
# Small helpers.

def die_with_parent():
    """In the child before exec: SIGKILL when the soak dies, however."""
    try:
        LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 (best effort)
        pass


def interrupted(signum, frame):
    """SIGTERM to the soak ends it as Ctrl-C does: the daemon is killed."""
    raise KeyboardInterrupt()


def free_port():
    """A loopback TCP port free now (the daemon binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_all(sock, deadline):
    """Reads until the peer closes; socket.timeout when `deadline` passes."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def proc_status(pid):
    """VmRSS, VmSize (kB) and Threads of `pid`; None once it is gone."""
    want, out = ("VmRSS", "VmSize", "Threads"), {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in want:
                    out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return out if len(out) == len(want) else None


def raw_call(zmq, pb, AnomalydError, ctx, endpoint, request, timeout_s):
    """One request on a fresh DEALER socket (the Python client has no
    rollback); raises AnomalydError as the client does."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        request.request_id = random.getrandbits(62) | 1
        sock.send(request.SerializeToString())
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise AnomalydError("IO_ERROR", f"no reply from {endpoint} within "
                                f"{timeout_s * 1000:.0f} ms")
        resp = pb.Response.FromString(sock.recv())
        if resp.HasField("error") and resp.error.code != pb.OK:
            raise AnomalydError(pb.ErrorCode.Name(resp.error.code), resp.error.message)
        return resp
    finally:
        sock.close(linger=0)


def parse_args():
    p = argparse.ArgumentParser(
        description="Soak test: the real anomalyd under mixed load for a while "
        "(see docs/testing.md).")
    p.add_argument("--daemon", default=str(REPO / "build" / "daemon" / "anomalyd"),
                   help="the anomalyd binary (default: build/daemon/anomalyd)")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="length of the load, warm-up included (default 30)")
    p.add_argument("--state-dir", default=None,
                   help="folder for config, CSVs, sockets, state and daemon.log "
                   "(default: a new temp dir, removed when the soak passes)")
    p.add_argument("--seed", type=int, default=1, help="seed of the load (default 1)")
    p.add_argument("--reply-timeout", type=float, default=30.0,
                   help="seconds a request may wait for its reply (default 30)")
    p.add_argument("--rss-tolerance", type=float, default=0.25,
                   help="allowed RSS growth between the first and the last 20%% "
                   "after warm-up, as a fraction (default 0.25; see docs/testing.md)")
    p.add_argument("--thread-growth", type=int, default=0,
                   help="allowed growth of the median thread count (default 0)")
    p.add_argument("--vm-growth-mib", type=int, default=256,
                   help="allowed growth of the median virtual size (VmSize), in MiB "
                   "(default 256: a late glibc malloc arena reserves 64 MiB; a "
                   "thread stack is 8 MiB)")
    p.add_argument("--sample-seconds", type=float, default=2.0,
                   help="seconds between RSS/thread samples (default 2)")
    p.add_argument("--rate-scale", type=float, default=1.0,
                   help="multiplies every load rate (default 1)")
    p.add_argument("--metrics-modes", default="read,close,reset",
                   help="scrapes to take turns: read (the whole reply), close (FIN "
                   "right after the request), reset (RST); default all three. "
                   "'read' alone isolates the other checks from a daemon that the "
                   "disconnects freeze")
    p.add_argument("--start-timeout", type=float, default=180.0,
                   help="seconds to wait for READY=1 (default 180)")
    a = p.parse_args()
    a.metrics_modes = [m for m in a.metrics_modes.split(",") if m]
    if not a.metrics_modes or set(a.metrics_modes) - {"read", "close", "reset"}:
        p.error("--metrics-modes: a comma-separated list of read, close, reset")
    if a.minutes <= 0 or a.reply_timeout <= 0 or a.rate_scale <= 0 or a.sample_seconds <= 0:
        p.error("--minutes, --reply-timeout, --rate-scale and --sample-seconds must be > 0")
    return a


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    if not os.access(args.daemon, os.X_OK):
        print(f"soak: {args.daemon} is not an executable (build it first)", file=sys.stderr)
        return 2
    temp = args.state_dir is None
    if temp:
        args.state_dir = tempfile.mkdtemp(prefix="anomalyd-soak-")
    else:
        Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    args.state_dir = str(Path(args.state_dir).resolve())
    if len(args.state_dir) > 90:  # ipc:// paths must fit sun_path (108 bytes)
        print(f"soak: --state-dir {args.state_dir} is too long for ipc:// endpoints",
              file=sys.stderr)
        return 2
    try:
        mods = import_client(args.daemon, args.state_dir)
    except (ImportError, subprocess.CalledProcessError, OSError) as e:
        print(f"soak: {e} (use Debian's /usr/bin/python3 with python3-zmq, "
              "python3-protobuf and python3-numpy)", file=sys.stderr)
        return 2
    soak = Soak(args, mods)
    passed = False
    try:
        soak.write_files()
        log(f"starting {args.daemon} in {args.state_dir}")
        if not soak.start_daemon():
            log(f"anomalyd did not start; its log: {soak.dir / 'daemon.log'}")
            return 2
        log(f"ready; load for {args.minutes:g} min (pid {soak.proc.pid}, metrics port "
            f"{soak.metrics_port})")
        soak.run()
        if soak.stats.unanswered:
            kinds = collections.Counter(k for _, k, _ in soak.stats.unanswered)
            soak.stats.fail(f"{len(soak.stats.unanswered)} requests unanswered within "
                            f"{args.reply_timeout:g} s: " +
                            ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        growth_lines, warm, end = soak.check_growth()
        was_running = soak.proc.poll() is None
        rc = soak.stop_daemon()
        if rc is None:
            soak.stats.fail(f"anomalyd did not exit within {STOP_GRACE_S:.0f} s of SIGTERM")
            soak.kill_daemon()
        elif rc != 0 and was_running:
            soak.stats.fail(f"anomalyd exited with status {rc} after SIGTERM")
        found = soak.check_anomalies(soak.dir / "state" / "anomalyd.db")
        soak.summary(growth_lines, warm, end, found)
        passed = not soak.stats.failures
        if not passed:
            print(f"daemon log: {soak.dir / 'daemon.log'}")
        return 0 if passed else 1
    finally:
        soak.kill_daemon()
        if temp and passed:
            shutil.rmtree(args.state_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; main() killed the daemon
        log("interrupted; anomalyd killed")
        sys.exit(130)
