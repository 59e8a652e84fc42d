#!/usr/bin/env bash
# Configures and builds into ./build (Release; warnings are errors when CI=true or RWKV_WERROR=ON).
# Extra arguments go to CMake's configure step, e.g. -DCMAKE_CUDA_ARCHITECTURES=90.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PATH:/usr/local/cuda/bin"
werror="${RWKV_WERROR:-OFF}"
if [ "${CI:-}" = "true" ]; then
  werror=ON
fi
jobs="$(nproc)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_WERROR="$werror" "$@"
cmake --build build -j "$jobs"
