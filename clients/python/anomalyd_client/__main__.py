"""A small command line over the score endpoint, printing JSON:

    python3 -m anomalyd_client status [--endpoint tcp://127.0.0.1:PORT]
    python3 -m anomalyd_client query --stream demo --order score --limit 10

Both ask the score endpoint, so a key allowed there only (auth's
clients_dir) is enough. Exit status 0 on success, 1 on an error from the
daemon or no reply (printed as CODE: message), 2 on bad arguments or key
files. anomalyctl is the full command line.
"""

import argparse
import json
import sys

from .client import DEFAULT_SCORE, AnomalydError, Client


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", default=DEFAULT_SCORE,
                        help=f"the daemon's score endpoint (default {DEFAULT_SCORE})")
    common.add_argument("--timeout-ms", type=int, default=10000,
                        help="wait for each reply (default 10000)")
    common.add_argument("--retries", type=int, default=2,
                        help="more tries after a timeout (default 2)")
    common.add_argument("--server-key", help="the daemon's public key file (NAME.key)")
    common.add_argument("--client-key",
                        help="this client's secret key file (NAME.key_secret, mode 0600)")

    ap = argparse.ArgumentParser(prog="python3 -m anomalyd_client",
                                 description="Asks a running anomalyd; prints JSON.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("status", parents=[common], help="the daemon's and each stream's state")
    q = sub.add_parser("query", parents=[common], help="stored anomalies, as JSON")
    q.add_argument("--stream", help="one stream (default: all)")
    q.add_argument("--since-us", type=int, help="lower time bound, µs since the epoch")
    q.add_argument("--until-us", type=int, help="upper time bound, µs since the epoch")
    q.add_argument("--event-time", action="store_true",
                   help="bounds apply to the records' event times, not scored times")
    q.add_argument("--min-score", type=float)
    q.add_argument("--model-version", type=int)
    q.add_argument("--order", choices=["time", "score"], default="time")
    q.add_argument("--limit", type=int, help="rows a page (default: the daemon's page size)")
    q.add_argument("--cursor", help="next_cursor of an earlier page")
    q.add_argument("--all", action="store_true", help="follow the cursor to the last page")
    return ap


def _run(args, client):
    if args.command == "status":
        return client.status()
    rows, cursor = [], args.cursor
    while True:
        page, cursor = client.query(
            since_us=args.since_us, until_us=args.until_us, stream=args.stream,
            min_score=args.min_score, limit=args.limit, order=args.order,
            cursor=cursor, by_event_time=args.event_time,
            model_version=args.model_version)
        rows.extend(page)
        if not (args.all and cursor):
            return {"anomalies": rows, "next_cursor": cursor}


def main(argv=None):
    args = _parser().parse_args(argv)
    prog = "anomalyd_client"
    try:
        client = Client(score=args.endpoint, control=None, alerts=None,
                        timeout_ms=args.timeout_ms, retries=args.retries,
                        server_key=args.server_key, client_key=args.client_key)
    except (OSError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    try:
        result = _run(args, client)
    except AnomalydError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
