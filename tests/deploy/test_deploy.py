#!/usr/bin/python3
"""deploy/ against promtool and a live daemon.

- `promtool check rules` and `promtool test rules` on the alerting rules
  (the unit tests drive every alert into its condition);
- a live daemon (the built anomalyd, a stream trained at start, records
  scored by the built anomalyctl) serves /metrics that `promtool check
  metrics` accepts;
- every metric and label that the Grafana dashboard and the rules query is
  one the live daemon exports.
Exits 77 (skipped) when promtool is missing (scripts/install-deps.sh --test
installs Debian's prometheus package, which has it).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(REPO, "deploy")
DAEMON = os.environ.get("ANOMALYD_BINARY", "")
CTL = os.environ.get("ANOMALYCTL_BINARY", "")
PROMTOOL = shutil.which("promtool")
if PROMTOOL is None:
    print("SKIP: no promtool (Debian package prometheus)")
    sys.exit(77)

# PromQL words that look like metric names but are not.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "time",
                "le", "without", "on", "ignoring", "group_left", "label_values"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_names(expr):
    """The metric names an expression reads (anomalyd_*, process_*, up)."""
    return set(re.findall(r"\b((?:anomalyd|process)_[a-z0-9_]+|up)\b", expr))


def label_names(expr):
    """Label names in selectors ({a="x"}) and in by (...) clauses."""
    names = set()
    for sel in re.findall(r"\{([^}]*)\}", expr):
        names.update(re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", sel))
    for grp in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        names.update(n.strip() for n in grp.split(",") if n.strip())
    return names


def dashboard_exprs():
    with open(os.path.join(DEPLOY, "grafana", "anomalyd-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    for v in dash["templating"]["list"]:
        if v.get("definition"):
            exprs.append(v["definition"])
    return exprs


def rule_exprs():
    # The rules file is YAML; its expressions are the `expr:` values (one
    # line or a block), enough to read without a YAML parser.
    exprs, block = [], None
    with open(os.path.join(DEPLOY, "prometheus", "anomalyd-rules.yml")) as f:
        for line in f:
            m = re.match(r"\s*expr:\s*(\|)?\s*(.*)$", line)
            if m:
                if block is not None:
                    exprs.append(" ".join(block))
                block = None
                if m.group(1):
                    block = []
                else:
                    exprs.append(m.group(2))
                continue
            if block is not None:
                if re.match(r"\s*[a-z_]+:", line) and not line.startswith("            "):
                    exprs.append(" ".join(block))
                    block = None
                else:
                    block.append(line.strip())
    if block:
        exprs.append(" ".join(block))
    return exprs


class RulesTest(unittest.TestCase):
    def test_rules_are_valid_and_their_unit_tests_pass(self):
        d = os.path.join(DEPLOY, "prometheus")
        for args in (["check", "rules", "anomalyd-rules.yml"],
                     ["test", "rules", "anomalyd-rules.test.yml"],
                     ["check", "config", "prometheus.yml"]):
            r = subprocess.run([PROMTOOL] + args, cwd=d, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"promtool {' '.join(args)}:\n{r.stdout}{r.stderr}")

    def test_the_rule_reader_finds_every_rule(self):
        exprs = rule_exprs()
        self.assertEqual(len(exprs), 8, exprs)
        self.assertTrue(any("anomalyd_records_scored_total" in e for e in exprs), exprs)


class LiveMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (DAEMON and CTL):
            raise unittest.SkipTest("ANOMALYD_BINARY and ANOMALYCTL_BINARY are not set")
        cls.tmp = tempfile.mkdtemp(prefix="anomalyd-deploy-")
        awk = os.path.join(REPO, "scripts", "synthetic.awk")
        base = os.path.join(cls.tmp, "base.csv")
        cls.records = os.path.join(cls.tmp, "records.csv")
        with open(base, "w") as f:
            subprocess.run(["awk", "-v", "n=600", "-v", "seed=1", "-v", "bad=0", "-f", awk],
                           stdout=f, check=True)
        with open(cls.records, "w") as f:
            subprocess.run(["awk", "-v", "n=200", "-v", "seed=2", "-v", "bad=10", "-f", awk],
                           stdout=f, check=True)
        cls.port = free_port()
        ep = {k: f"ipc://{cls.tmp}/{k}.sock" for k in ("score", "ingest", "control", "alerts")}
        cls.ep = ep
        config = os.path.join(cls.tmp, "anomalyd.toml")
        with open(config, "w") as f:
            f.write(f"""[daemon]
state_dir = "{cls.tmp}/state"
[endpoints]
score = "{ep['score']}"
ingest = "{ep['ingest']}"
control = "{ep['control']}"
alerts = "{ep['alerts']}"
metrics = "tcp://127.0.0.1:{cls.port}"
[training]
max_epochs = 20
[alerts]
# A receiver nobody listens on: the anomalyd_alert_* series are exported.
webhooks = ["http://127.0.0.1:{free_port()}/hook"]
max_attempts = 1
[streams.demo]
baseline = "{base}"
""")
        cls.log = open(os.path.join(cls.tmp, "daemon.log"), "w")
        cls.proc = subprocess.Popen([DAEMON, "--config", config], stderr=cls.log)
        deadline = time.time() + 90
        while time.time() < deadline:
            r = cls.ctl("status")
            if r.returncode == 0 and "demo" in r.stdout:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("the daemon did not serve stream demo in 90 s")
        r = cls.ctl("score", "--stream", "demo", "--data", cls.records)
        if r.returncode != 0:
            raise RuntimeError(f"anomalyctl score: {r.stdout}{r.stderr}")
        with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/metrics", timeout=10) as resp:
            cls.metrics = resp.read().decode()

    @classmethod
    def ctl(cls, *args):
        return subprocess.run([CTL, "--endpoint", cls.ep["score"], "--control", cls.ep["control"],
                               "--timeout-ms", "5000"] + list(args),
                              capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "proc", None):
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=60)
        if getattr(cls, "log", None):
            cls.log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def series(self):
        """{metric family: set of label names} of the live exposition."""
        out = {}
        for line in self.metrics.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?", line)
            labels = set(re.findall(r'([a-zA-Z_]+)="', m.group(2) or ""))
            out.setdefault(m.group(1), set()).update(labels)
        return out

    def test_promtool_accepts_the_live_exposition(self):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=self.metrics,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "", "promtool's lint findings")

    def test_dashboard_and_rules_query_what_the_daemon_exports(self):
        live = self.series()
        live["up"] = {"job", "instance"}  # Prometheus adds it, not the daemon
        # Prometheus adds job and instance to every scraped series.
        extra = {"job", "instance"}
        exprs = dashboard_exprs() + rule_exprs()
        self.assertGreater(len(exprs), 10)
        for expr in exprs:
            names = metric_names(expr) - PROMQL_WORDS
            self.assertTrue(names, f"no metric in {expr!r}")
            labels = set()
            for n in names:
                self.assertIn(n, live, f"{n} (in {expr!r}) is not exported")
                labels |= live[n]
            for label in label_names(expr):
                self.assertIn(label, labels | extra | {"le"},
                              f"label {label} (in {expr!r}) is on none of {sorted(names)}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
