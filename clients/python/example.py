#!/usr/bin/env python3
"""Scores a few records against a running anomalyd and shows what it stored.

    ~/anomalyd-venv/bin/python -P clients/python/example.py --stream demo
    PYTHONPATH=build/clients/python:clients/python \
        /usr/bin/python3 clients/python/example.py --stream demo

The first uses the installed package: -P (Python 3.11) keeps this script's
folder, which holds the source package without its generated anomalyd_pb2,
off the path. The second uses the source tree and the CMake build's module.

The stream must already have a model (a [streams.NAME] baseline in the
config, or `anomalyctl retrain`). Plain lists, no NumPy needed.
"""
import argparse
import random

from anomalyd_client import (DEFAULT_ALERTS, DEFAULT_CONTROL, DEFAULT_SCORE,
                             AnomalydError, Client)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--score", default=DEFAULT_SCORE)
    ap.add_argument("--control", default=DEFAULT_CONTROL)
    ap.add_argument("--alerts", default=DEFAULT_ALERTS)
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
        rng = random.Random(0)
        x = [[rng.gauss(0, 1) for _ in names] for _ in range(5)]
        for r in c.score(x, stream=args.stream, contributions=True,
                         ids=[f"example-{i}" for i in range(len(x))]):
            contributions = r["contributions"]
            worst = names[contributions.index(max(contributions))]
            print(f"{r['id']}: score {r['score']:.4g} "
                  f"{'ANOMALY' if r['flagged'] else 'normal'} (worst: {worst})")
        one = dict(zip(names, x[0]), id="example-dict")
        print("as a dict:", c.score([one], stream=args.stream)[0]["score"])

        try:
            c.score([[0.0] * (len(names) + 1)], stream=args.stream)
        except AnomalydError as e:
            print(f"typed error: {e.code_name}: {e.message}")

        anomalies, cursor = c.query(stream=args.stream, limit=5, order="score")
        for a in anomalies:
            print(f"stored #{a['id']} {a['record_id']}: score {a['score']:.4g}")
        if cursor:
            print("more rows: pass cursor=", cursor)


if __name__ == "__main__":
    main()
