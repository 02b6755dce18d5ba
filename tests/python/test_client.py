#!/usr/bin/python3
"""The Python client against the real daemon.

Starts the built anomalyd (ANOMALYD_BINARY, see daemon_fixture.py), then
scores, queries, follows alerts, checks typed errors, uses plain lists with
NumPy absent (lists_only.py in a child), asks status and query of the score
endpoint alone, drives the control requests and stops the daemon with
SIGTERM (exit code 0). Exits 77 (ctest's SKIP_RETURN_CODE) when pyzmq,
protobuf or NumPy is missing. Needs the generated anomalyd_pb2 and the
anomalyd_client package on PYTHONPATH (tests/python/CMakeLists.txt sets
both).
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

from daemon_fixture import (DIM, NAMES, Daemon, anomalous_rows, normal_rows, skip,
                            stop_and_clean, wait_for_demo, write_csv)

try:
    import numpy as np
    import zmq  # noqa: F401
    from anomalyd_client import AnomalydError, Client, to_dataframe
except ImportError as e:
    skip(e)

HERE = os.path.dirname(os.path.abspath(__file__))


def normal_array(rng, n):
    return np.array(normal_rows(rng, n), dtype=np.float32)


def anomalous_array(rng, n):
    return np.array(anomalous_rows(rng, n), dtype=np.float32)


class DaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anomalyd-py-")
        cls.rng = random.Random(7)
        cls.daemon = Daemon(cls.tmp, cls.rng)
        cls.ep = cls.daemon.endpoints
        cls.client = Client(cls.ep["score"], cls.ep["control"], cls.ep["alerts"],
                            timeout_ms=2000, retries=0)
        wait_for_demo(cls, cls.client)

    @classmethod
    def tearDownClass(cls):
        stop_and_clean(cls.tmp, cls.daemon, cls.client)

    def daemon_log(self):
        return self.daemon.log()

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

        normal = normal_array(self.rng, 300)
        bad = anomalous_array(self.rng, 10)
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

        # tail(since_us=...): the stored ones first, oldest first, then live.
        caught = self.client.tail("demo", since_us=start_us - 1, count=len(flagged) + 1,
                                  timeout_ms=5000)
        first = [next(caught) for _ in flagged]
        self.assertEqual({a["record_id"] for a in first}, flagged)
        times = [a["scored_time_us"] for a in first]
        self.assertEqual(times, sorted(times))
        live = anomalous_array(self.rng, 1)
        self.client.score(live, stream="demo", ids=["live"])
        self.assertEqual(next(caught)["record_id"], "live")

    def test_2b_score_columns(self):
        x = np.vstack([normal_array(self.rng, 50), anomalous_array(self.rng, 3)])
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
        row = normal_array(self.rng, 1)[0]
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

    def lists_only(self, *flags):
        """Runs lists_only.py against the daemon; its scores."""
        r = subprocess.run([sys.executable, os.path.join(HERE, "lists_only.py"),
                            self.ep["score"], *flags],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def test_5_lists_without_numpy(self):
        rows = [[10.0, 10.0, 10.0, 10.0], [11.0, 10.8, 10.2, 10.8], [10, 30, 10, 25]]
        expected = [r["score"] for r in self.client.score(np.array(rows), stream="demo")]
        for flags in ((), ("--hide-numpy",)):
            with self.subTest(flags=flags):
                np.testing.assert_allclose(self.lists_only(*flags), expected, rtol=1e-6)
        # Lists in score_columns too (which returns arrays, so needs NumPy).
        cols = self.client.score_columns(rows, stream="demo")
        np.testing.assert_allclose(cols["score"], expected, rtol=1e-6)

    def test_6_score_endpoint_only(self):
        # Regression: query() and status() went to control, so a client
        # whose key the daemon allows on score only timed out. Here control
        # leads nowhere (and none at all for the second client).
        dead = f"ipc://{self.tmp}/no-control.sock"
        for control in (dead, None):
            with self.subTest(control=control), \
                    Client(self.ep["score"], control, None, timeout_ms=3000, retries=0) as c:
                self.assertIn("demo", c.status()["streams"])
                self.assertEqual(c.wait_for_model("demo", 1, timeout_s=5)["dim"], DIM)
                anomalies, _ = c.query(stream="demo", order="score", limit=2)
                self.assertEqual(len(anomalies), 2)
                (r,) = c.score([dict(zip(NAMES, [10.0] * DIM))], stream="demo")
                self.assertEqual(r["index"], 0)
                if control is None:
                    with self.assertRaisesRegex(ValueError, "no control endpoint"):
                        c.models()
                else:
                    c._control.timeout_ms = 300
                    with self.assertRaises(AnomalydError) as cm:
                        c.models()
                    self.assertEqual(cm.exception.code_name, "IO_ERROR")

    def test_7_dataframe(self):
        anomalies, _ = self.client.query(stream="demo", limit=5)
        try:
            import pandas  # noqa: F401
        except ImportError:
            self.skipTest("pandas not installed (Debian: python3-pandas)")
        df = anomalies.to_dataframe()
        self.assertEqual(len(df), len(anomalies))
        self.assertEqual(df["record_id"].tolist(), [a["record_id"] for a in anomalies])
        empty, _ = self.client.query(stream="no-such-stream")
        self.assertEqual(list(empty.to_dataframe().columns), list(df.columns))
        scored = to_dataframe(self.client.score([[10.0] * DIM] * 3, stream="demo"))
        self.assertEqual(scored["index"].tolist(), [0, 1, 2])

    def test_8_control(self):
        models = self.client.models("demo")
        self.assertEqual([(m["version"], m["active"]) for m in models], [(1, True)])
        with self.assertRaises(AnomalydError) as cm:
            self.client.cancel_retrain("demo")
        self.assertEqual(cm.exception.code_name, "NOT_FOUND")

        # The 0.8 quantile of the holdout scores, then (rollback) the
        # model's own threshold, its 0.99 quantile (the config's default).
        st = self.client.calibrate("demo", "quantile", contamination=0.2)
        self.assertEqual(st["threshold_method"], "QUANTILE")
        self.assertEqual(self.client.status()["streams"]["demo"]["threshold"], st["threshold"])
        with self.assertRaises(AnomalydError) as cm:
            self.client.calibrate("demo", "fixed", value=-1e9)
        self.assertEqual(cm.exception.code_name, "INVALID_ARGUMENT")
        with self.assertRaises(ValueError):
            self.client.calibrate("demo", "median")
        self.client.rollback("demo", 1)
        self.assertGreater(self.client.status()["streams"]["demo"]["threshold"], st["threshold"])
        with self.assertRaises(AnomalydError) as cm:
            self.client.rollback("demo", 99)
        self.assertEqual(cm.exception.code_name, "NOT_FOUND")
        self.client.reload()

        # A training long enough to be cancelled on the way.
        big = os.path.join(self.tmp, "big.csv")
        write_csv(big, normal_rows(self.rng, 20000))
        version = self.client.retrain("demo", csv_path=big)
        self.client.cancel_retrain("demo")
        deadline = time.monotonic() + 60
        while True:
            t = self.client.status()["streams"]["demo"]["training"]
            if t["state"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual((t["state"], t["target_version"]), ("CANCELLED_TRAINING", version))
        self.assertEqual(self.client.status()["streams"]["demo"]["model_version"], 1)

    def test_9_sigterm(self):
        rc = self.daemon.terminate(timeout_s=15)
        self.assertIsNotNone(rc, "anomalyd did not stop within 15 s of SIGTERM")
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
