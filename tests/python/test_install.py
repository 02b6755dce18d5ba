#!/usr/bin/python3
"""The Python client as a package: pip install, sdist, the command line.

Copies clients/python and proto/ (as they are in the working tree, in the
repository's layout) into a temporary folder, installs the copy with pip
into a fresh venv (--system-site-packages --no-build-isolation --no-index:
Debian's setuptools, wheel, protobuf and pyzmq, nothing downloaded), and
runs `python -m anomalyd_client status` and `query` from that venv, without
the source tree on PYTHONPATH, against a live anomalyd (daemon_fixture.py).
Then builds an sdist, checks that it carries the .proto, and installs a
wheel built from it. Exits 77 when a tool it needs is missing: protoc, the
venv module with ensurepip (Debian: python3-venv), setuptools or wheel.
"""
import glob
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile

from daemon_fixture import DIM, Daemon, child_env, skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if not shutil.which("protoc"):
    skip("protoc not found (Debian: protobuf-compiler)")
for module, package in (("ensurepip", "python3-venv"), ("venv", "python3-venv"),
                        ("setuptools", "python3-setuptools"), ("wheel", "python3-wheel")):
    if importlib.util.find_spec(module) is None:
        skip(f"Python module {module} missing (Debian: {package})")
try:
    from anomalyd_client import Client
except ImportError as e:
    skip(e)


def run(cmd, cwd, timeout=300):
    """Runs cmd without the source tree on PYTHONPATH; its stdout, or
    AssertionError with its output when it fails."""
    r = subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anomalyd-py-install-")
        # The daemon trains its baseline while pip works.
        cls.daemon = Daemon(cls.tmp, random.Random(3))
        cls.src = os.path.join(cls.tmp, "src")
        ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__",
                                        "anomalyd_pb2.py")
        shutil.copytree(os.path.join(ROOT, "clients", "python"),
                        os.path.join(cls.src, "clients", "python"), ignore=ignore)
        shutil.copytree(os.path.join(ROOT, "proto"), os.path.join(cls.src, "proto"),
                        ignore=shutil.ignore_patterns("*.h", "*.cc", "*.txt"))
        cls.venv = os.path.join(cls.tmp, "venv")
        cls.python = os.path.join(cls.venv, "bin", "python")
        try:
            run([sys.executable, "-m", "venv", "--system-site-packages", cls.venv], cls.tmp)
            with Client(cls.daemon.endpoints["score"], None, None, timeout_ms=2000,
                        retries=0) as c:
                c.wait_for_model("demo", 1, timeout_s=60, poll_s=0.2)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        if os.environ.get("ANOMALYD_KEEP_TMP"):
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def pip_install(self, *args):
        run([self.python, "-m", "pip", "install", "--disable-pip-version-check",
             "--no-index", "--no-build-isolation", *args], self.tmp)

    def check_installed(self):
        """The venv's package, its generated module inside it, and the
        command line against the daemon."""
        where = run([self.python, "-c", "import anomalyd_client.client as c, importlib.metadata "
                     "as m; print(c.pb.__file__); print(m.version('anomalyd-client'))"],
                    self.tmp).split()
        self.assertEqual(where[0], os.path.join(
            self.venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
            "site-packages", "anomalyd_client", "anomalyd_pb2.py"))
        self.assertEqual(where[1], os.environ.get("ANOMALYD_VERSION", where[1]),
                         "pyproject.toml's version is not CMakeLists.txt's")
        ep = self.daemon.endpoints["score"]
        status = json.loads(run([self.python, "-m", "anomalyd_client", "status",
                                 "--endpoint", ep], self.tmp))
        self.assertEqual(status["streams"]["demo"]["dim"], DIM)
        query = json.loads(run([self.python, "-m", "anomalyd_client", "query", "--endpoint",
                                ep, "--stream", "demo", "--order", "score", "--all"],
                               self.tmp))
        self.assertIsInstance(query["anomalies"], list)
        self.assertIsNone(query["next_cursor"])

    def test_1_pip_install_from_the_repository(self):
        # README's command, plus --no-index: the dependencies must be met by
        # Debian's python3-protobuf and python3-zmq, not fetched.
        self.pip_install(os.path.join(self.src, "clients", "python"))
        self.check_installed()

    def test_2_sdist_carries_the_proto(self):
        dist = os.path.join(self.tmp, "dist")
        run([self.python, "-c", "import sys; from setuptools import build_meta as b; "
             "print(b.build_sdist(sys.argv[1]))", dist],
            os.path.join(self.src, "clients", "python"))
        (sdist,) = glob.glob(os.path.join(dist, "anomalyd-client-*.tar.gz"))
        with tarfile.open(sdist) as t:
            names = t.getnames()
        self.assertIn(f"{os.path.basename(sdist)[:-len('.tar.gz')]}/proto/anomalyd.proto",
                      names)
        # A wheel from the sdist alone (pip unpacks it where no proto/ is
        # two levels up) holds the generated module.
        run([self.python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-index",
             "--no-build-isolation", "--no-deps", "-w", dist, sdist], self.tmp)
        (wheel,) = glob.glob(os.path.join(dist, "anomalyd_client-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            self.assertIn("anomalyd_client/anomalyd_pb2.py", z.namelist())
        self.pip_install("--force-reinstall", "--no-deps", wheel)
        self.check_installed()


if __name__ == "__main__":
    unittest.main(verbosity=2)
