"""Build steps of anomalyd-client that pyproject.toml cannot state.

anomalyd_client/anomalyd_pb2.py is not kept in the repository: build_py
runs protoc on anomalyd.proto and writes it into the built package, so the
wheel (and so every install) carries it. The .proto is the repository's
proto/anomalyd.proto, the one wire contract; an sdist has no repository
around it, so sdist copies the file into the sdist's own proto/ folder,
which build_py looks at first. Needs protoc (Debian: protobuf-compiler;
another one: set PROTOC=/path/to/protoc); nothing is downloaded.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO = "anomalyd.proto"
# Where the .proto is: in an sdist, then in the repository (clients/python
# is two levels below its root).
PROTO_DIRS = [HERE / "proto", HERE.parent.parent / "proto"]


def find_proto():
    for d in PROTO_DIRS:
        if (d / PROTO).is_file():
            return d / PROTO
    raise SystemExit(f"anomalyd-client: {PROTO} not found in "
                     f"{' or '.join(str(d) for d in PROTO_DIRS)}")


def protoc():
    path = os.environ.get("PROTOC") or shutil.which("protoc")
    if not path:
        raise SystemExit("anomalyd-client: protoc not found (Debian: apt-get "
                         "install protobuf-compiler; or set PROTOC)")
    return path


class BuildPyWithProto(build_py):
    """build_py, plus anomalyd_pb2.py generated into the built package (into
    the source package for an editable install)."""

    def run(self):
        super().run()
        proto = find_proto()
        if getattr(self, "editable_mode", False):
            out = HERE / "anomalyd_client"
        else:
            out = Path(self.build_lib) / "anomalyd_client"
        out.mkdir(parents=True, exist_ok=True)
        cmd = [protoc(), f"--python_out={out}", f"-I{proto.parent}", str(proto)]
        self.announce(" ".join(cmd), level=2)
        subprocess.run(cmd, check=True)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, "anomalyd_client", "anomalyd_pb2.py"))
        return outputs


class SdistWithProto(sdist):
    """sdist, plus proto/anomalyd.proto from the repository."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        target = Path(base_dir) / "proto"
        target.mkdir(exist_ok=True)
        shutil.copyfile(find_proto(), target / PROTO)


# packages here, not in pyproject.toml: setuptools 66 (Debian 12) calls
# [tool.setuptools] beta and warns.
setup(packages=["anomalyd_client"],
      cmdclass={"build_py": BuildPyWithProto, "sdist": SdistWithProto})
