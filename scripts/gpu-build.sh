#!/usr/bin/env bash
# Builds anomalyd on the lent GPU machine (see ../shared/GPU.md) against its
# CUDA LibTorch (the Python torch's CMake files), with our other libraries
# from Debian packages unpacked into a private prefix, never into /.
#
#   scripts/gpu-build.sh [BUILD_DIR] [TARGET...]
#
# Needs the folder gpu-debs/ (git-ignored) made here, on the development
# machine, with scripts/gpu-debs.sh, and carried to the device with the
# working tree. Same CMakeLists.txt as everywhere; the device is picked at
# run time (device = "auto" uses CUDA when there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(anomalyd anomalyctl anomalyd_bench_model anomalyd_loadgen)
prefix=/tmp/deps

[[ -d gpu-debs ]] || { echo "gpu-debs/ missing: run scripts/gpu-debs.sh first" >&2; exit 1; }
mkdir -p "$prefix"
for f in gpu-debs/*.deb; do dpkg -x "$f" "$prefix"; done

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
[[ -d /usr/local/cuda/bin ]] && export PATH=/usr/local/cuda/bin:$PATH
export PATH=$prefix/usr/bin:$PATH
export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The packages' .pc files say prefix=/usr; the sysroot maps them to ours.
export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$prefix

# The Python torch ships its own (other) protobuf headers in its include
# dir, not as a system dir: ours must come first, hence -I in the flags,
# which precede
# every target's include directories.
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$torch_prefix" \
  -DProtobuf_PROTOC_EXECUTABLE="$prefix/usr/bin/protoc" \
  -DCMAKE_CXX_FLAGS="-I$prefix/usr/include" \
  -DANOMALYD_BUILD_TESTS=OFF
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
echo "built ${targets[*]} in $build; run them with LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
