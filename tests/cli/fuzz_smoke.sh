#!/usr/bin/env bash
# A short run of every libFuzzer target (tests/fuzz) from its committed seeds: fails when a target finds a crash,
# a sanitizer report, a leak or a hang. Skips (passes with a message) when clang with libFuzzer is missing.
# The clang build lives next to the calling build (fuzz-smoke/), so a second run only rebuilds what changed.
# RWKV_FUZZ_SMOKE_SECONDS sets the seconds per target (default 5; two targets run at a time). Built at -O0 (quicker
# to compile from scratch; RWKV_FUZZ_OPT overrides).
set -euo pipefail
rwkv="$1"
source_dir="$2"
build_dir="$(cd "$(dirname "$rwkv")/.." && pwd)/fuzz-smoke"
seconds="${RWKV_FUZZ_SMOKE_SECONDS:-5}"
status=0
RWKV_FUZZ_OPT="${RWKV_FUZZ_OPT:--O0}" "$source_dir/scripts/fuzz.sh" --seconds "$seconds" --parallel 2 --build-dir "$build_dir" \
  --work-dir "$build_dir/fuzz-work" || status=$?
if [[ $status -eq 77 ]]; then
  echo "SKIP: clang with libFuzzer is not available (see the message above); the fuzz smoke test did not run"
  exit 0
fi
[[ $status -eq 0 ]] || { echo "FAIL: a fuzz target failed: the summary above names the input and the log" >&2; exit 1; }
