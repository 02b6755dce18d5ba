#!/usr/bin/python3
"""The Python client against the real daemon.

Starts the built anomalyd (ANOMALYD_BINARY) with a temporary config
(ipc:// endpoints, state in a temporary folder, a small fast model and a
synthetic baseline for stream "demo"), then scores, queries, follows alerts,
checks a typed error and stops the daemon with SIGTERM (exit code 0).
Exits 77 (ctest's SKIP_RETURN_CODE) when pyzmq, protobuf or numpy is
missing. Needs the generated anomalyd_pb2 and the anomalyd_client package
on PYTHONPATH (tests/python/CMakeLists.txt sets both).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import numpy as np
    import zmq  # noqa: F401
    from anomalyd_client import AnomalydError, Client
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

DIM = 4
NAMES = ["cpu", "mem", "io", "net"]


def normal_rows(rng, n):
    """4 correlated features driven by 2 latent factors."""
    z = rng.normal(size=(n, 2))
    noise = 0.05 * rng.normal(size=(n, DIM))
    x = np.stack([z[:, 0], 0.8 * z[:, 0] + 0.3 * z[:, 1], z[:, 1],
                  z[:, 0] - z[:, 1]], axis=1) + noise
    return (10.0 + 2.0 * x).astype(np.float32)  # raw units, not normalised


def anomalous_rows(rng, n):
    """Rows that break the correlations by many standard deviations."""
    x = normal_rows(rng, n)
    x[:, 1] = 10.0 - (x[:, 0] - 10.0) + 12.0  # mem no longer follows cpu
    x[:, 3] += 15.0
    return x


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anomalyd-py-")
        rng = np.random.default_rng(7)
        cls.rng = rng
        base = os.path.join(cls.tmp, "base.csv")
        np.savetxt(base, normal_rows(rng, 600), delimiter=",",
                   header=",".join(NAMES), comments="", fmt="%.6f")
        ep = {k: f"ipc://{cls.tmp}/{k}.sock" for k in ("score", "control", "alerts")}
        config = os.path.join(cls.tmp, "anomalyd.toml")
        with open(config, "w") as f:
            f.write(f"""
[daemon]
state_dir = "{cls.tmp}/state"
threads = 1

[endpoints]
score = "{ep['score']}"
ingest = ""
control = "{ep['control']}"
alerts = "{ep['alerts']}"
metrics = ""

[model]
hidden = [16, 8]
latent = 2

[training]
max_epochs = 30

[streams.demo]
baseline = "{base}"
""")
        cls.log_path = os.path.join(cls.tmp, "anomalyd.log")
        cls.log = open(cls.log_path, "w")
        cls.proc = subprocess.Popen([os.environ["ANOMALYD_BINARY"], "--config", config],
                                    stdout=cls.log, stderr=subprocess.STDOUT)
        cls.client = Client(ep["score"], ep["control"], ep["alerts"], timeout_ms=2000,
                            retries=0)
        try:
            cls.client.wait_for_model("demo", 1, timeout_s=60, poll_s=0.2)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()
        if os.environ.get("ANOMALYD_KEEP_TMP"):
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def daemon_log(self):
        with open(self.log_path) as f:
            return f.read()

    def test_1_status(self):
        st = self.client.status()
        demo = st["streams"]["demo"]
        self.assertEqual(demo["dim"], DIM)
        self.assertEqual(demo["feature_names"], NAMES)
        self.assertGreaterEqual(demo["model_version"], 1)
        self.assertTrue(st["storage_ok"], st["storage_error"])

    def test_2_score_query_tail(self):
        # Subscribe first; ZeroMQ needs a moment to connect a SUB socket.
        alerts = self.client.tail("demo", timeout_ms=3000)
        time.sleep(0.3)

        normal = normal_rows(self.rng, 300)
        bad = anomalous_rows(self.rng, 10)
        x = np.vstack([normal, bad])
        ids = [f"n{i}" for i in range(len(normal))] + [f"a{i}" for i in range(len(bad))]
        start_us = int(time.time() * 1e6)
        results = self.client.score(x, stream="demo", ids=ids, contributions=True)

        self.assertEqual(len(results), len(x))
        self.assertEqual([r["id"] for r in results], ids)
        self.assertEqual([r["index"] for r in results], list(range(len(x))))
        flagged = {r["id"] for r in results if r["flagged"]}
        self.assertTrue({f"a{i}" for i in range(len(bad))} <= flagged,
                        f"anomalies not flagged: {sorted(set(ids[-10:]) - flagged)}")
        false_alarms = len([i for i in flagged if i.startswith("n")])
        self.assertLessEqual(false_alarms, 0.05 * len(normal), sorted(flagged))
        for r in results:
            self.assertEqual(len(r["contributions"]), DIM)
            self.assertEqual(r["stored"], r["flagged"])
            if r["flagged"]:
                self.assertGreater(r["score"], r["threshold"])

        # Flagged records are committed before the reply: query finds them.
        anomalies, cursor = self.client.query(stream="demo", since_us=start_us - 1,
                                              limit=1000)
        self.assertIsNone(cursor)
        self.assertEqual({a["record_id"] for a in anomalies}, flagged)
        by_id = {a["record_id"]: a for a in anomalies}
        np.testing.assert_allclose(by_id["a0"]["features"], bad[0], rtol=1e-6)
        # Highest score first, paged.
        page, cursor = self.client.query(stream="demo", order="score", limit=3)
        self.assertEqual(len(page), 3)
        self.assertEqual([a["score"] for a in page],
                         sorted((a["score"] for a in page), reverse=True))
        self.assertIsNotNone(cursor)
        more, _ = self.client.query(stream="demo", order="score", limit=3, cursor=cursor)
        self.assertTrue(more)
        self.assertLessEqual(more[0]["score"], page[-1]["score"])
        high, _ = self.client.query(stream="demo", min_score=page[0]["score"])
        self.assertEqual([a["id"] for a in high], [page[0]["id"]])

        # Every flagged record was published once.
        seen = [a["record_id"] for a in alerts]
        self.assertEqual(sorted(seen), sorted(flagged))

    def test_2b_score_columns(self):
        x = np.vstack([normal_rows(self.rng, 50), anomalous_rows(self.rng, 3)])
        per_record = self.client.score(x, stream="demo", contributions=True)
        cols = self.client.score_columns(x, stream="demo", contributions=True)
        self.assertEqual(cols["score"].shape, (len(x),))
        self.assertEqual(cols["contributions"].shape, x.shape)
        for key in ("score", "reconstruction", "kl", "p_value", "threshold"):
            np.testing.assert_allclose(cols[key], [r[key] for r in per_record],
                                       rtol=1e-5, err_msg=key)
        np.testing.assert_allclose(cols["contributions"],
                                   [r["contributions"] for r in per_record], rtol=1e-5)
        self.assertEqual(cols["flagged"].tolist(),
                         (cols["score"] > cols["threshold"]).tolist())
        self.assertEqual(cols["model_version"].tolist(),
                         [r["model_version"] for r in per_record])
        self.assertTrue(cols["flagged"][-3:].all())
        self.assertEqual(cols["stored"].tolist(), cols["flagged"].tolist())

    def test_3_per_record_form(self):
        row = normal_rows(self.rng, 1)[0]
        rec = dict(zip(NAMES, row.tolist()), id="dict-0", labels={"host": "h1"})
        (r,) = self.client.score([rec], stream="demo")
        self.assertEqual(r["id"], "dict-0")
        dense = self.client.score(row.reshape(1, -1), stream="demo")[0]
        self.assertAlmostEqual(r["score"], dense["score"], places=4)
        with self.assertRaises(AnomalydError) as cm:
            self.client.score([{"cpu": 1.0}], stream="demo")
        self.assertEqual(cm.exception.code_name, "INVALID_ARGUMENT")

    def test_4_typed_errors(self):
        with self.assertRaises(AnomalydError) as cm:
            self.client.score(np.zeros((2, DIM + 1)), stream="demo")
        self.assertEqual(cm.exception.code_name, "WRONG_DIMENSION")
        with self.assertRaises(AnomalydError) as cm:
            self.client.score(np.zeros((1, DIM)), stream="no-such-stream")
        self.assertEqual(cm.exception.code_name, "UNKNOWN_STREAM")
        x = np.zeros((3, DIM), dtype=np.float32)
        x[2, 1] = np.nan
        with self.assertRaises(AnomalydError) as cm:
            self.client.score(x, stream="demo")
        self.assertEqual(cm.exception.code_name, "NON_FINITE")
        self.assertEqual(cm.exception.record_index, 2)
        # The daemon still serves after bad requests.
        self.assertIn("demo", self.client.status()["streams"])

    def test_9_sigterm(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("anomalyd did not stop within 15 s of SIGTERM")
        self.assertEqual(rc, 0, self.daemon_log()[-4000:])


class ColumnsWireTest(unittest.TestCase):
    """The columnar reply reader against protobuf's own, no daemon."""

    def test_columns_match_protobuf(self):
        from anomalyd_client import client as cl
        resp = cl.pb.Response(request_id=7)
        c = resp.score.columns
        n, dim = 5, 3
        c.score.extend([0.5, 1.5, -2.0, 3.25, 1e30])
        c.reconstruction.extend([0.25] * n)
        c.kl.extend([0.125] * n)
        c.p_value.extend([0.1, 0.2, 0.3, 0.4, 1.0 / 3.0])
        c.threshold.extend([2.0] * n)
        c.flagged.extend([False, False, False, True, True])
        c.stored.extend([False, False, False, True, False])
        c.model_version.extend([1, 127, 128, 300, 70000])  # multi-byte varints
        c.contributions.extend(float(i) for i in range(n * dim))
        out = cl._columns(resp.SerializeToString(), n)
        for key in ("score", "reconstruction", "kl", "p_value", "threshold",
                    "flagged", "stored", "model_version", "contributions"):
            np.testing.assert_array_equal(out[key], np.array(getattr(c, key)), err_msg=key)
        self.assertEqual(out["p_value"].dtype, np.float64)
        self.assertEqual(out["flagged"].dtype, bool)
        self.assertEqual(out["model_version"].dtype, np.uint32)


if __name__ == "__main__":
    unittest.main(verbosity=2)
