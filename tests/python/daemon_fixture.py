"""A real anomalyd for the Python client's tests, and their data.

Standard library only (the tests that run without NumPy use it too). The
daemon is the built binary (ANOMALYD_BINARY) on a temporary config: ipc://
endpoints and state in the test's temporary folder, a small fast model and
a synthetic baseline for stream "demo".
"""
import os
import shutil
import signal
import subprocess
import sys

DIM = 4
NAMES = ["cpu", "mem", "io", "net"]


def skip(why):
    """Ends the test program as skipped (ctest's SKIP_RETURN_CODE 77)."""
    print(f"SKIP: {why}")
    sys.exit(77)


def normal_rows(rng, n):
    """n rows of 4 correlated features driven by 2 latent factors, in raw
    units (not normalised); rng is a random.Random."""
    rows = []
    for _ in range(n):
        z0, z1 = rng.gauss(0, 1), rng.gauss(0, 1)
        x = [z0, 0.8 * z0 + 0.3 * z1, z1, z0 - z1]
        rows.append([10.0 + 2.0 * (v + 0.05 * rng.gauss(0, 1)) for v in x])
    return rows


def anomalous_rows(rng, n):
    """Rows that break the correlations by many standard deviations."""
    rows = normal_rows(rng, n)
    for r in rows:
        r[1] = 10.0 - (r[0] - 10.0) + 12.0  # mem no longer follows cpu
        r[3] += 15.0
    return rows


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write(",".join(NAMES) + "\n")
        for r in rows:
            f.write(",".join(f"{v:.6f}" for v in r) + "\n")


class Daemon:
    """anomalyd on a config in `tmp` (which the caller owns and removes).

    endpoints: score, control and alerts addresses. extra_config is
    appended to the config (e.g. an [auth] table). The baseline of "demo"
    is 600 normal rows from `rng`, at tmp/base.csv."""

    def __init__(self, tmp, rng, extra_config=""):
        binary = os.environ.get("ANOMALYD_BINARY")
        if not binary:
            skip("ANOMALYD_BINARY is not set (ctest sets it to the built daemon)")
        self.tmp = tmp
        self.baseline = os.path.join(tmp, "base.csv")
        write_csv(self.baseline, normal_rows(rng, 600))
        self.endpoints = {k: f"ipc://{tmp}/{k}.sock" for k in ("score", "control", "alerts")}
        self.config = os.path.join(tmp, "anomalyd.toml")
        with open(self.config, "w") as f:
            f.write(f"""
[daemon]
state_dir = "{tmp}/state"
threads = 1

[endpoints]
score = "{self.endpoints['score']}"
ingest = ""
control = "{self.endpoints['control']}"
alerts = "{self.endpoints['alerts']}"
metrics = ""

[model]
hidden = [16, 8]
latent = 2

[training]
max_epochs = 30

[streams.demo]
baseline = "{self.baseline}"
{extra_config}""")
        self.log_path = os.path.join(tmp, "anomalyd.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--config", self.config],
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def terminate(self, timeout_s=15):
        """SIGTERM; the exit status, or None when it did not stop in time."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """Kills the daemon if it still runs (this one process only)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def child_env():
    """The environment for a Python that must not see the source tree's
    client: PYTHONPATH removed."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def wait_for_demo(cls, client):
    """Waits for stream "demo" to serve version 1 through `client`; on
    failure runs cls.tearDownClass() (setUpClass's failures skip it) and
    raises."""
    try:
        client.wait_for_model("demo", 1, timeout_s=60, poll_s=0.2)
    except Exception:
        cls.tearDownClass()
        raise


def stop_and_clean(tmp, daemon, *clients):
    """Closes the clients, stops the daemon and removes `tmp` (kept when
    ANOMALYD_KEEP_TMP is set, for a person to look at)."""
    for c in clients:
        c.close()
    daemon.stop()
    if os.environ.get("ANOMALYD_KEEP_TMP"):
        print(f"kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
