#!/usr/bin/env bash
# Builds the binaries for the GPU host on this Debian 12 machine (see /work/shared/GPU.md): HDF5 and
# Boost.Program_options linked statically (the host has neither), the CUDA runtime static, cuBLAS/NCCL/MPI and
# OpenBLAS dynamic (the host has them), device code for Hopper (sm_90). Builds into build-device/ and copies the
# `rwkv` binary, the one test executable and the kernel labs (.device/labs/lab_*) to .device/ (ignored by git,
# carried to the device with the tree).
# Usage: scripts/gpu/build-device.sh        (JOBS=N to change the parallelism, default 2)
set -euo pipefail
cd "$(dirname "$0")/../.."

cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DRWKV_WERROR=ON -DRWKV_CUDA=ON \
  -DRWKV_STATIC_DEPS=ON -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build build-device -j "${JOBS:-2}" --target rwkv rwkv_tests rwkv_labs

mkdir -p .device/labs
cp build-device/train/rwkv build-device/tests/rwkv_tests .device/
strip --strip-unneeded .device/rwkv .device/rwkv_tests
# Labs removed from labs/ must not linger from an earlier build.
rm -f .device/labs/lab_*
labs=(build-device/labs/lab_*)
if [ ! -e "${labs[0]}" ]; then
  echo "build-device: no kernel labs in build-device/labs/" >&2
  exit 1
fi
cp "${labs[@]}" .device/labs/
strip --strip-unneeded .device/labs/lab_*

# The host has no HDF5 or Boost: neither may be a dynamic dependency.
for binary in .device/rwkv .device/rwkv_tests .device/labs/lab_*; do
  if ldd "$binary" | grep -E 'libhdf5|libboost'; then
    echo "build-device: $binary links HDF5 or Boost dynamically" >&2
    exit 1
  fi
done
# What travels to the device is limited to 64 MiB in all.
size_kib=$(du -sk .device | cut -f1)
if [ "$size_kib" -gt $((60 * 1024)) ]; then
  echo "build-device: .device/ is ${size_kib} KiB, too close to the 64 MiB transfer limit" >&2
  exit 1
fi
echo "build-device: .device/ ready (${size_kib} KiB):"
ls -l .device/rwkv .device/rwkv_tests .device/labs/
echo "dynamic dependencies of rwkv_tests:"
ldd .device/rwkv_tests | awk '{print "  " $1}'
