"""The Python client with plain lists, run by test_client.py as a child.

    lists_only.py SCORE_ENDPOINT [--hide-numpy]

Scores, queries and reads the status of stream "demo" with lists only and
prints the scores as JSON. Plain: checks that NumPy and pandas never get
imported. --hide-numpy: makes them unimportable (sys.modules[...] = None, as
when they are not installed) and checks that the calls needing them raise
an ImportError that says what to install. Exits 1 on a failed check.
"""
import json
import sys

hide = "--hide-numpy" in sys.argv
if hide:
    sys.modules["numpy"] = None
    sys.modules["pandas"] = None

from anomalyd_client import AnomalydError, Client  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def main():
    rows = [[10.0, 10.0, 10.0, 10.0], [11.0, 10.8, 10.2, 10.8], [10, 30, 10, 25]]
    with Client(sys.argv[1], control=None, alerts=None, timeout_ms=5000, retries=0) as c:
        st = c.status()
        check(st["streams"]["demo"]["dim"] == 4, f"status: {st}")
        scored = c.score(rows, stream="demo", ids=["a", "b", "c"], contributions=True)
        check([r["id"] for r in scored] == ["a", "b", "c"], f"ids: {scored}")
        check(all(len(r["contributions"]) == 4 for r in scored), "contributions")
        one = c.score(rows[0], stream="demo")  # one row: one record
        check(len(one) == 1 and abs(one[0]["score"] - scored[0]["score"]) < 1e-4,
              f"one row: {one}")
        as_tuple = c.score(tuple(tuple(r) for r in rows), stream="demo")
        check([r["score"] for r in as_tuple] == [r["score"] for r in scored], "tuples")
        try:
            c.score([[1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 3.0, 4.0]], stream="demo")
            check(False, "a NaN in a list was scored")
        except AnomalydError as e:
            check(e.code_name == "NON_FINITE" and e.record_index == 1, f"NaN: {e}")
        try:
            c.score([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], stream="demo")
            check(False, "ragged rows were sent")
        except ValueError as e:
            check("row 1 has 2 values" in str(e), f"ragged: {e}")
        anomalies, _ = c.query(stream="demo", limit=5)
        check(isinstance(anomalies, list), "query")
        check(all(isinstance(a["features"], list) for a in anomalies), "features")
        if hide:
            for what, call in (("score_columns", lambda: c.score_columns(rows, stream="demo")),
                               ("to_dataframe", anomalies.to_dataframe)):
                try:
                    call()
                    check(False, f"{what} ran without NumPy/pandas")
                except ImportError as e:
                    check(what in str(e) and "apt-get install python3-" in str(e),
                          f"{what}: unhelpful ImportError: {e}")
        else:
            for module in ("numpy", "pandas"):
                check(module not in sys.modules, f"{module} was imported")
    print(json.dumps([r["score"] for r in scored]))
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
