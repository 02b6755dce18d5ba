#!/usr/bin/python3
"""A Python client that holds a score key only, against a CURVE daemon.

Regression: query() and status() used the control endpoint, so a client
whose key is in [auth] clients_dir (score, ingest, alerts) but not in
control_clients_dir timed out. Starts anomalyd (daemon_fixture.py) with
CURVE on and two client keys: "scorer" (clients_dir) and "admin"
(control_clients_dir). Standard library, pyzmq and protobuf only; exits 77
when pyzmq or protobuf is missing or libzmq lacks CURVE.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from daemon_fixture import NAMES, Daemon, anomalous_rows, skip, stop_and_clean, wait_for_demo

try:
    import zmq
    import zmq.auth
    from anomalyd_client import AnomalydError, Client
except ImportError as e:
    skip(e)
if not zmq.has("curve"):
    skip("libzmq was built without CURVE")


def make_keys(folder, name):
    """(public file, secret file) of a fresh pair in ZeroMQ's format."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    public, secret = zmq.auth.create_certificates(folder, name)
    os.chmod(secret, 0o600)
    return public, secret


class ScoreKeyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anomalyd-py-key-")
        keys = os.path.join(cls.tmp, "keys")
        cls.server_key, server_secret = make_keys(keys, "server")
        _, cls.scorer_secret = make_keys(keys, "scorer")
        _, cls.admin_secret = make_keys(keys, "admin")
        clients, control_clients = (os.path.join(cls.tmp, d) for d in ("clients", "control"))
        for folder, name in ((clients, "scorer"), (control_clients, "admin")):
            os.makedirs(folder, mode=0o700)
            shutil.copy(os.path.join(keys, f"{name}.key"), folder)
        cls.rng = random.Random(11)
        cls.daemon = Daemon(cls.tmp, cls.rng, f"""
[auth]
enabled = true
server_secret_key = "{server_secret}"
clients_dir = "{clients}"
control_clients_dir = "{control_clients}"
endpoints = ["score", "control", "alerts"]
""")
        ep = cls.daemon.endpoints
        cls.scorer = Client(ep["score"], ep["control"], ep["alerts"], timeout_ms=2000,
                            retries=0, server_key=cls.server_key,
                            client_key=cls.scorer_secret)
        wait_for_demo(cls, cls.scorer)

    @classmethod
    def tearDownClass(cls):
        stop_and_clean(cls.tmp, cls.daemon, cls.scorer)

    def refusals(self, endpoint):
        return [line for line in self.daemon.log().splitlines()
                if "refused client key" in line and f"the {endpoint} endpoint" in line]

    def test_1_score_and_query_with_a_score_key(self):
        self.assertEqual(self.scorer.status()["streams"]["demo"]["feature_names"], NAMES)
        results = self.scorer.score(anomalous_rows(self.rng, 3), stream="demo",
                                    ids=["x0", "x1", "x2"])
        self.assertTrue(all(r["stored"] for r in results), results)
        anomalies, _ = self.scorer.query(stream="demo", order="score", limit=10)
        self.assertEqual({a["record_id"] for a in anomalies}, {"x0", "x1", "x2"})
        # A score-only client never connected to control.
        self.assertEqual(self.refusals("control"), [])

    def test_2_cli_with_a_score_key(self):
        r = subprocess.run(
            [sys.executable, "-m", "anomalyd_client", "status",
             "--endpoint", self.daemon.endpoints["score"], "--server-key", self.server_key,
             "--client-key", self.scorer_secret, "--timeout-ms", "5000"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["streams"]["demo"]["dim"], len(NAMES))

    def test_3_control_needs_a_control_key(self):
        # The refusal is reported as such (a socket monitor sees it), not
        # as a timeout, and no request hangs: a blocking send() did, forever,
        # when it came after the daemon had refused the key and ZeroMQ had
        # torn the connection down (a score-only key polling status() on
        # control, before status() went to score).
        def hung(*_):
            raise TimeoutError("a refused request hangs instead of timing out")
        ep = self.daemon.endpoints
        signal.signal(signal.SIGALRM, hung)
        signal.alarm(20)
        try:
            with Client(ep["score"], ep["control"], None, timeout_ms=5000, retries=0,
                        server_key=self.server_key, client_key=self.scorer_secret) as c:
                # Whether a connection is up at the send depends on where
                # ZeroMQ is in its reconnect cycle: try several moments.
                for pause_s in (0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0):
                    time.sleep(pause_s)
                    start = time.monotonic()
                    with self.assertRaises(AnomalydError) as cm:
                        c.models("demo")
                    self.assertEqual(cm.exception.code_name, "UNAUTHENTICATED")
                    self.assertLess(time.monotonic() - start, 2.5, "waited for the timeout")
        finally:
            signal.alarm(0)
        with Client(ep["score"], ep["control"], None, timeout_ms=5000, retries=0,
                    server_key=self.server_key, client_key=self.admin_secret) as admin:
            self.assertEqual([m["version"] for m in admin.models("demo")], [1])
            self.assertIn("demo", admin.status()["streams"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
