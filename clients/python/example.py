#!/usr/bin/env python3
"""Scores a few records against a running anomalyd and shows what it stored.

    PYTHONPATH=build/clients/python:clients/python \
        /usr/bin/python3 clients/python/example.py --stream demo

The stream must already have a model (a [streams.NAME] baseline in the
config, or `anomalyctl retrain`).
"""
import argparse

import numpy as np

from anomalyd_client import AnomalydError, Client


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--score", default="tcp://127.0.0.1:7601")
    ap.add_argument("--control", default="tcp://127.0.0.1:7603")
    ap.add_argument("--alerts", default="tcp://127.0.0.1:7604")
    ap.add_argument("--stream", default="default")
    args = ap.parse_args()

    with Client(args.score, args.control, args.alerts, timeout_ms=10000) as c:
        st = c.status()
        print(f"anomalyd {st['version']} on {st['device']}")
        stream = st["streams"].get(args.stream)
        if stream is None:
            raise SystemExit(f"stream {args.stream!r} has no model; streams: "
                             f"{', '.join(st['streams']) or 'none'}")
        names = stream["feature_names"]
        print(f"stream {args.stream!r}: model {stream['model_version']}, "
              f"features {names}, threshold {stream['threshold']:.4g}")

        # Random rows in raw units are usually anomalous for a real model;
        # a dict per record names the features instead of relying on order.
        rng = np.random.default_rng(0)
        x = rng.normal(size=(5, len(names))).astype(np.float32)
        for r in c.score(x, stream=args.stream, contributions=True,
                         ids=[f"example-{i}" for i in range(len(x))]):
            worst = names[int(np.argmax(r["contributions"]))]
            print(f"{r['id']}: score {r['score']:.4g} "
                  f"{'ANOMALY' if r['flagged'] else 'normal'} (worst: {worst})")
        one = dict(zip(names, x[0].tolist()), id="example-dict")
        print("as a dict:", c.score([one], stream=args.stream)[0]["score"])

        try:
            c.score(np.zeros((1, len(names) + 1)), stream=args.stream)
        except AnomalydError as e:
            print(f"typed error: {e.code_name}: {e.message}")

        anomalies, cursor = c.query(stream=args.stream, limit=5, order="score")
        for a in anomalies:
            print(f"stored #{a['id']} {a['record_id']}: score {a['score']:.4g}")
        if cursor:
            print("more rows: pass cursor=", cursor)


if __name__ == "__main__":
    main()
