#!/usr/bin/env bash
# Downloads (here, on the development machine with the Debian registry) the
# Debian packages that scripts/gpu-build.sh unpacks on the GPU machine, which
# has no package registry: our -dev packages and the shared libraries they
# need beyond that machine's own.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p gpu-debs
cd gpu-debs
apt-get download \
  libzmq3-dev libzmq5 cppzmq-dev libsodium23 libpgm-5.3-0 libnorm1 libbsd0 libmd0 \
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 \
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 \
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 protobuf-compiler libprotoc32 \
  libsqlite3-dev libsqlite3-0 libgtest-dev libgmock-dev \
  libtomlplusplus-dev libtomlplusplus3 libcli11-dev libsystemd-dev libsystemd0
