#!/usr/bin/env bash
# Runs ON the GPU host, from the repository root, with .device/ carried: CUDA test suites under compute-sanitizer,
# one tool at a time, each (tool, suite group) its own step and process with its own `timeout` (the step
# machinery of run-device.sh, scripts/gpu/steps.bash: one line per step, $OUT/logs.tar.gz, $OUT/summary.txt, the
# compact summary last; any sanitizer report fails the step, exit code 99).
# Usage: scripts/gpu/sanitize-device.sh [STEP or GLOB ...] [--failed-from summary.txt] [--list]
#   e.g. 'memcheck:*' (one tool), '*:wkv' (one group), --failed-from summary.txt (what failed last time)
# Steps gpu (nvidia-smi) and <tool>:<group>, tool memcheck, racecheck, initcheck; group wkv (CudaWkv), fused (CudaRwkvFused),
# optimizer (CudaOps Adam), cross_entropy (CudaOps cross-entropy and L2Wrap, CudaBf16's padded head), allocator
# (CudaAllocator, less its out-of-memory test, whose failed cudaMalloc the sanitizer reports); every step is
# default [timeout 240 s each; times on an H100 unknown, never run]. The NCCL (CudaDataParallel) and PyTorch
# reference (CudaReference) suites are left out. RWKV_DEVICE_BUDGET (default 540 s) bounds the call.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=device-env.bash
source "$(dirname "$0")/device-env.bash"
# shellcheck source-path=SCRIPTDIR source=steps.bash
source scripts/gpu/steps.bash
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

declare -A groups=(
  [wkv]='CudaWkv.*'
  [fused]='CudaRwkvFused.*'
  [optimizer]='CudaOps.*Adam*'
  [cross_entropy]='CudaOps.CrossEntropy*:CudaOps.L2Wrap*:CudaBf16.PaddedHeadLoss*'
  [allocator]='CudaAllocator.*-CudaAllocator.OutOfMemoryIsAClearError'
)
add_step gpu yes 30 gpu "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv"
for tool in memcheck racecheck initcheck; do
  for group in wkv fused optimizer cross_entropy allocator; do
    add_step "$tool:$group" yes 240 sanitizer \
      "$(printf '%q' "$sanitizer") --tool $tool --error-exitcode 99 $(printf '%q' "$dev/rwkv_tests") --gtest_filter=$(printf '%q' "${groups[$group]}")"
  done
done
run_steps "$@"
