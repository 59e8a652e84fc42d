#!/usr/bin/env bash
# Runs ON the GPU host, from the repository root, with .device/ (from scripts/gpu/build-device.sh) carried:
# the CUDA test suites (Cuda*), the WKV benchmark in fp32 and bf16, and the data-parallel check
# (scripts/gpu/data-parallel-check.sh). Logs go to $OUT when set (the device tool's output folder), else to
# .device/logs. Exits non-zero when any step failed.
# Usage: scripts/gpu/run-device.sh [extra gtest arguments, e.g. --gtest_filter='CudaWkv*']
set -uo pipefail
source "$(dirname "$0")/device-env.bash"

status=0
run() {  # run <log name> <command...>: tee the output, remember a failure, go on
  local name=$1
  shift
  echo "==== $*" | tee "$logs/$name.log"
  "$@" 2>&1 | tee -a "$logs/$name.log"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || { echo "==== exit code $code: $*"; status=1; }
}

run gpu nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
test_args=("--gtest_filter=Cuda*")
for arg in "$@"; do [[ $arg == --gtest_filter=* ]] && test_args=(); done
run cuda_tests .device/rwkv_tests "${test_args[@]}" --gtest_output="xml:$logs/cuda_tests.xml" "$@"
run bench_wkv_fp32 .device/rwkv bench wkv --dtype fp32
run bench_wkv_bf16 .device/rwkv bench wkv --dtype bf16
# The data-parallel path on this one GPU: plain vs --gpus 1 (NCCL, TCP bootstrap) vs mpirun -np 1 (NCCL over MPI).
run data_parallel scripts/gpu/data-parallel-check.sh .device/rwkv
exit $status
