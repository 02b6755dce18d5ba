#!/usr/bin/python3
"""Writes seed inputs for the fuzz targets: OUT/request/ (one valid Request
of each kind, serialised with protobuf, plus score requests that hit each
typed error) and OUT/csv/ (small CSV files covering the format's features).
Seeds only start a fuzzing run; scripts/fuzz.sh merges what they reach into
tests/fuzz/corpus/. Usage: make_seeds.py OUT (needs protoc, python3-protobuf).
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_pb(tmp):
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out", tmp,
                    "anomalyd.proto"], check=True)
    sys.path.insert(0, tmp)
    import anomalyd_pb2
    return anomalyd_pb2


def records(pb, rows, **kw):
    """A ScoreRequest of (stream, features[, id]) rows."""
    req = pb.ScoreRequest(**kw)
    for i, row in enumerate(rows):
        stream, features = row[0], row[1]
        rid = row[2] if len(row) > 2 else "r%d" % i
        rec = req.records.add(id=rid, stream=stream, event_time_us=1700000000000000 + i)
        rec.features.extend(features)
    return req


def request_seeds(pb):
    nan, inf = float("nan"), float("inf")
    score = {
        "records": records(pb, [("", [1, 2, 3]), ("wide", [1, 2, 3, 4, 5]),
                                ("default", [4, 5, 6]), ("one", [0.5])],
                           contributions=True),
        "labels": records(pb, [("default", [1, 2, 3])]),
        "dense": pb.ScoreRequest(dense=pb.DenseBatch(
            stream="wide", dim=5, values=[float(i) for i in range(10)],
            ids=["a", "b"], event_times_us=[1, 2])),
        "dense_default": pb.ScoreRequest(dense=pb.DenseBatch(dim=3, values=[1, 2, 3])),
        "empty": pb.ScoreRequest(),
        "unknown_stream": records(pb, [("nope", [1, 2, 3])]),
        "wrong_dim": records(pb, [("default", [1, 2])]),
        "nan": records(pb, [("default", [1, nan, 3])]),
        "inf": pb.ScoreRequest(dense=pb.DenseBatch(dim=1, stream="one", values=[inf])),
        "duplicate_id": records(pb, [("", [1, 2, 3], "x"), ("", [1, 2, 3], "x")]),
        "too_many": records(pb, [("one", [1.0])] * 65),
        "both_forms": pb.ScoreRequest(records=[pb.Record(features=[1, 2, 3])],
                                      dense=pb.DenseBatch(dim=3, values=[1, 2, 3])),
        "dense_ragged": pb.ScoreRequest(dense=pb.DenseBatch(dim=3, values=[1, 2])),
        "dense_ids": pb.ScoreRequest(dense=pb.DenseBatch(dim=1, stream="one",
                                                         values=[1, 2], ids=["a"])),
        "long_stream": records(pb, [("s" * 129, [1.0])]),
    }
    score["labels"].records[0].labels["host"] = "db1"
    seeds = {"score_" + k: pb.Request(request_id=i + 1, score=v)
             for i, (k, v) in enumerate(score.items())}
    seeds.update({
        "query": pb.Request(request_id=100, query=pb.QueryRequest(
            since_us=1, until_us=2, stream="default", min_score=1.5, has_min_score=True,
            order=pb.HIGHEST_SCORE_FIRST, limit=10, cursor="abc")),
        "status": pb.Request(request_id=101, status=pb.StatusRequest()),
        "retrain_csv": pb.Request(request_id=102, retrain=pb.RetrainRequest(
            stream="default", csv_path="/tmp/train.csv")),
        "retrain_inline": pb.Request(request_id=103, retrain=pb.RetrainRequest(
            stream="one", inline_rows=pb.DenseBatch(dim=1, values=[1, 2, 3]),
            feature_names=["f0"])),
        "retrain_reservoir": pb.Request(request_id=104, retrain=pb.RetrainRequest(
            stream="default", from_reservoir=True)),
        "rollback": pb.Request(request_id=105, rollback=pb.RollbackRequest(
            stream="default", to_version=2)),
        "calibrate": pb.Request(request_id=106, calibrate=pb.CalibrateRequest(
            stream="default", method=pb.QUANTILE, contamination=0.01)),
        "models": pb.Request(request_id=107, models=pb.ModelsRequest(stream="default")),
        "reload": pb.Request(request_id=108, reload=pb.ReloadRequest()),
        "cancel": pb.Request(request_id=109, cancel_retrain=pb.CancelRetrainRequest(
            stream="default")),
        "no_body": pb.Request(request_id=110),
    })
    return {k: v.SerializeToString() for k, v in seeds.items()}


CSV_SEEDS = {
    "plain": "a,b,c\n1,2,3\n4.5,-6e3,+7\n",
    "special": "id,timestamp,f1,label,f2\nx,1700000000,0.1,0,2\n\"y,z\",-5,1e-3,1.0,3\n",
    "quoted": '"name ""q""",b\r\n" 1 ",2\r\n\r\n"3\n",4\r\n',
    "bom_blank": "\xef\xbb\xbfA, B\n\n 1 ,\t2\n\n",
    "tiny_huge": "f\n1e-50\n3.4e38\n-0\n",
    "utf8": "température,débit\n1,2\n",
    "errors": "f,g\n1,abc\n",
    "dup": "id,ID,f\n1,2,3\n",
    "numbers_only": "1,2\n3,4\n",
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_pb(tmp)
        seeds = {"request": request_seeds(pb),
                 "csv": {k: v.encode() for k, v in CSV_SEEDS.items()}}
    for target, files in seeds.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out, target, "seed-" + name), "wb") as f:
                f.write(data)
    print("make_seeds: %d request, %d csv seeds in %s" %
          (len(seeds["request"]), len(seeds["csv"]), out))


if __name__ == "__main__":
    main()
