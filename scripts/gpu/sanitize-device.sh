#!/usr/bin/env bash
# Runs ON the GPU host, from the repository root, with .device/ carried: the CUDA test suites under
# compute-sanitizer's memcheck, racecheck and initcheck (each tool a separate pass; any report fails the pass).
# Logs go to $OUT when set, else .device/logs.
# Usage: scripts/gpu/sanitize-device.sh [gtest filter, default 'Cuda*']
set -uo pipefail
source "$(dirname "$0")/device-env.bash"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
[ -x "$sanitizer" ] || { echo "sanitize-device: compute-sanitizer not found" >&2; exit 1; }
filter=${1:-Cuda*}
status=0
for tool in memcheck racecheck initcheck; do
  echo "==== compute-sanitizer --tool $tool ($filter)" | tee "$logs/sanitize_$tool.log"
  "$sanitizer" --tool "$tool" --error-exitcode 99 .device/rwkv_tests --gtest_filter="$filter" 2>&1 \
    | tee -a "$logs/sanitize_$tool.log"
  code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || { echo "==== $tool: exit code $code"; status=1; }
done
exit $status
