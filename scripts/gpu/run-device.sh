#!/usr/bin/env bash
# Runs ON the GPU host, from the repository root, with .device/ (from scripts/gpu/build-device.sh) carried.
# One call runs a list of steps, each in its own process under its own `timeout`, prints one line per step while
# running, writes every log (step logs, gtest XML, bench JSON, bench/table.md) into ONE archive
# $OUT/logs.tar.gz plus $OUT/summary.txt, and ends with the compact summary (≤ 3,000 characters; the step
# machinery is scripts/gpu/steps.bash). Exit code 0 when every chosen step passed.
#
# Usage: scripts/gpu/run-device.sh [STEP or GLOB ...] [--failed-from summary.txt] [--list]
#   no arguments: $RWKV_DEVICE_STEPS, else the default steps (marked * by --list)
#   scripts/gpu/run-device.sh 'tests:*' 'lab:*'           only the test suites and the labs
#   scripts/gpu/run-device.sh --failed-from summary.txt    what failed last time (the summary's FAIL lines)
#   RWKV_DEVICE_BUDGET (s, default 540) bounds the whole call; RWKV_STEP_TIMEOUT overrides each step's timeout;
#   RWKV_DEVICE_DIR is the binaries' folder (default .device).
#
# Steps (default *; timeouts in brackets; GPU times: unknown, never run on a GPU yet):
# * gpu                     nvidia-smi: GPU name, driver, memory, clock [30 s]
# * tests:<Suite>           one process per Cuda* gtest suite (and SharedLibrary.*ResolvesWithoutAGpu), each
#                           with its own timeout [180 s; CudaTrainer, CudaMixedPrecision, CudaReference 300 s]
# * lab:<name>              each kernel lab, .device/labs/lab_<name> [120 s]
# * bench:wkv-fp32, bench:wkv-bf16   rwkv bench wkv [120 s]
# * bench:169m-b16-bf16     rwkv bench train 169M B16 ctx 1024 bf16 [180 s]
#   bench:169m-b16-{fp32,tf32}, bench:430m-b16-{fp32,tf32,bf16}, bench:1b5-b8-bf16   the rest of the README's
#                           H100 table [240 s each; 1b5 400 s]: `'bench:*'` in a call of its own
#   bench:official          rwkv bench train --official: RWKV-LM's five workloads, one table [540 s]
#   bench:profile-169m      rwkv bench train --profile: the 169M bf16 step's time per op family [240 s]
#   data_parallel           scripts/gpu/data-parallel-check.sh: plain vs --gpus 1 vs mpirun -np 1 [300 s]
# The default set's time on an H100 is unknown (never run); the budget keeps the call under 10 minutes whatever
# happens, reporting the steps it could not start as failed so that --failed-from runs them next.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=device-env.bash
source "$(dirname "$0")/device-env.bash"
# shellcheck source-path=SCRIPTDIR source=steps.bash
source scripts/gpu/steps.bash
q() { printf '%q' "$1"; }

add_step gpu yes 30 gpu "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv"

# One step per gtest suite, listed by the binary itself (the CPU-only build lists them too; they skip there).
tests="$dev/rwkv_tests"
if suites=$("$tests" --gtest_list_tests --gtest_filter='Cuda*:SharedLibrary.*ResolvesWithoutAGpu' 2> /dev/null |
  sed -n 's/^\([A-Za-z0-9_]*\)\.$/\1/p') && [ -n "$suites" ]; then
  for suite in $suites; do
    filter="$suite.*"
    [ "$suite" = SharedLibrary ] && filter='SharedLibrary.*ResolvesWithoutAGpu'
    case $suite in CudaTrainer|CudaMixedPrecision|CudaReference) limit=300;; *) limit=180;; esac
    add_step "tests:$suite" yes "$limit" gtest \
      "mkdir -p \"\$work/tests\" && $(q "$tests") --gtest_filter=$(q "$filter") --gtest_output=xml:\"\$work/tests/$suite.xml\""
  done
else
  add_step tests yes 10 plain "echo 'cannot list the test suites of $tests (run scripts/gpu/build-device.sh)'; exit 1"
fi

labs=("$dev"/labs/lab_*)
if [ -e "${labs[0]}" ]; then
  for lab in "${labs[@]}"; do
    name=$(basename "$lab")
    add_step "lab:${name#lab_}" yes 120 lab "$(q "$lab")"
  done
else
  add_step labs yes 10 plain "echo 'no kernel labs in $dev/labs (run scripts/gpu/build-device.sh)'; exit 1"
fi

rwkv=$(q "$dev/rwkv")
add_step bench:wkv-fp32 yes 120 bench-wkv "$rwkv bench wkv --dtype fp32"
add_step bench:wkv-bf16 yes 120 bench-wkv "$rwkv bench wkv --dtype bf16"
# The H100 training table: real steps on random tokens (no data is read), the configs' model shapes; the JSON
# object into bench/<name>.json, diagnostics into the step's log.
bench() {  # bench <name> <default> <timeout> <rwkv bench train arguments...>
  local name=$1 default=$2 limit=$3
  shift 3
  add_step "bench:$name" "$default" "$limit" bench-train \
    "mkdir -p \"\$work/bench\" && $rwkv bench train $* --json > \"\$work/bench/$name.json\"; code=\$?; cat \"\$work/bench/$name.json\"; [ -s \"\$work/bench/$name.json\" ] || rm -f \"\$work/bench/$name.json\"; exit \$code"
}
for precision in fp32 tf32 bf16; do
  default=no
  [ "$precision" = bf16 ] && default=yes
  bench "169m-b16-$precision" "$default" 180 --config configs/pile-169m.ini --micro_bsz 16 --ctx_len 1024 --precision "$precision"
done
for precision in fp32 tf32 bf16; do
  bench "430m-b16-$precision" no 240 --config configs/pile-430m.ini --micro_bsz 16 --ctx_len 1024 --precision "$precision"
done
bench 1b5-b8-bf16 no 400 --config configs/pile-1b5.ini --micro_bsz 8 --ctx_len 1024 --precision bf16
# Where the 169M step's time goes: each op family's device time (CUDA events), the largest in the summary.
add_step bench:profile-169m no 240 bench-profile \
  "$rwkv bench train --config configs/pile-169m.ini --micro_bsz 16 --ctx_len 1024 --precision bf16 --steps 3 --profile 2"
# RWKV-LM's five workloads in one process, one table with the ratios and goals (train/official_figures.cpp).
add_step bench:official no 540 bench-official \
  "$rwkv bench train --official --steps 10 --warmup 2 > \"\$work/official-table.md\"; code=\$?; cat \"\$work/official-table.md\"; exit \$code"

# The data-parallel path on this one GPU: plain vs --gpus 1 (NCCL, TCP bootstrap) vs mpirun -np 1 (NCCL over MPI).
add_step data_parallel no 300 data-parallel "scripts/gpu/data-parallel-check.sh $rwkv"

run_steps "$@"
