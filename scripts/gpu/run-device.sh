#!/usr/bin/env bash
# Runs ON the GPU host, from the repository root, with .device/ (from scripts/gpu/build-device.sh) carried:
# the CUDA test suites (Cuda*), the WKV benchmark in fp32 and bf16, the data-parallel check
# (scripts/gpu/data-parallel-check.sh), every kernel lab (.device/labs/lab_*, logs in labs/<name>.log) and the
# training benchmark table (`rwkv bench train --json` into bench/<name>.json: 169M and 430M at B16 ctx 1024 in
# fp32, tf32 and bf16, 1.5B at B8 in bf16). Logs go to $OUT when set (the device tool's output folder), else to
# .device/logs. Every step runs even after a failure; a summary ends the output and the exit code is non-zero
# when any step failed.
# Usage: scripts/gpu/run-device.sh [extra gtest arguments, e.g. --gtest_filter='CudaWkv*']
# RWKV_DEVICE_STEPS picks the parts (default "tests labs bench data_parallel"), so that a session can split the
# suite across commands that each fit the device tool's 10-minute limit, e.g. RWKV_DEVICE_STEPS=bench.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=device-env.bash
source "$(dirname "$0")/device-env.bash"
mkdir -p "$logs/labs" "$logs/bench"

status=0
passed=()
failed=()
record() {  # record <step name> <exit code>
  if [ "$2" -eq 0 ]; then
    passed+=("$1")
  else
    failed+=("$1")
    status=1
  fi
}

run() {  # run <log name> <command...>: tee the output, remember a failure, go on
  local name=$1
  shift
  echo "==== $*" | tee "$logs/$name.log"
  "$@" 2>&1 | tee -a "$logs/$name.log"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || echo "==== exit code $code: $*"
  record "$name" "$code"
}

# bench <name> <rwkv bench train arguments...>: the one JSON object into bench/<name>.json (stdout only), the
# command and any diagnostics into bench/<name>.log.
bench() {
  local name=$1
  shift
  local json="$logs/bench/$name.json" log="$logs/bench/$name.log"
  echo "==== .device/rwkv bench train $* --json" | tee "$log"
  .device/rwkv bench train "$@" --json >"$json" 2>>"$log"
  local code=$?
  cat "$json"
  if [ "$code" -ne 0 ]; then
    tail -n +2 "$log" | tail -n 20  # the diagnostics (the command line is already shown)
    echo "==== exit code $code: rwkv bench train $*" | tee -a "$log"
    [ -s "$json" ] || rm -f "$json"  # no empty .json for the table's readers
  fi
  record "bench/$name" "$code"
}

steps=" ${RWKV_DEVICE_STEPS:-tests labs bench data_parallel} "
wanted() { [[ $steps == *" $1 "* ]]; }

run gpu nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
if wanted tests; then
  test_args=("--gtest_filter=Cuda*:SharedLibrary.CublasResolvesWithoutAGpu:SharedLibrary.NcclResolvesWithoutAGpu")
  for arg in "$@"; do [[ $arg == --gtest_filter=* ]] && test_args=(); done
  run cuda_tests .device/rwkv_tests "${test_args[@]}" --gtest_output="xml:$logs/cuda_tests.xml" "$@"
fi
if wanted bench; then
  run bench_wkv_fp32 .device/rwkv bench wkv --dtype fp32
  run bench_wkv_bf16 .device/rwkv bench wkv --dtype bf16
fi
# The data-parallel path on this one GPU: plain vs --gpus 1 (NCCL, TCP bootstrap) vs mpirun -np 1 (NCCL over MPI).
wanted data_parallel && run data_parallel scripts/gpu/data-parallel-check.sh .device/rwkv

# Kernel labs: each checks its versions against a CPU reference (non-zero exit on a mismatch) and prints a table.
if wanted labs; then
  labs=(.device/labs/lab_*)
  if [ -e "${labs[0]}" ]; then
    for lab in "${labs[@]}"; do
      name=$(basename "$lab")
      run "labs/${name#lab_}" "$lab"
    done
  else
    echo "==== no kernel labs in .device/labs (run scripts/gpu/build-device.sh)"
    record labs 1
  fi
fi

if wanted bench; then
  # The H100 training table: real steps on random tokens (no data is read), the configs' model shapes.
  for precision in fp32 tf32 bf16; do
    bench "169m-b16-$precision" --config configs/pile-169m.ini --micro_bsz 16 --ctx_len 1024 --precision "$precision"
    bench "430m-b16-$precision" --config configs/pile-430m.ini --micro_bsz 16 --ctx_len 1024 --precision "$precision"
  done
  bench 1b5-b8-bf16 --config configs/pile-1b5.ini --micro_bsz 8 --ctx_len 1024 --precision bf16
  # The README's table, with the ratios to the official figures.
  python3 scripts/gpu/bench_table.py "$logs/bench" >"$logs/bench/table.md"
  record bench_table $?
  cat "$logs/bench/table.md"
fi

echo "==== summary: ${#passed[@]} steps passed, ${#failed[@]} failed"
for name in "${failed[@]}"; do echo "  FAILED: $name"; done
exit $status
