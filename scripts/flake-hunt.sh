#!/usr/bin/env bash
# Runs the whole ctest suite again and again under load, as CI on a busy 2-core machine sees it: ctest -j2
# beside a CPU hog (one busy process per --hogs). Every failure is kept with its output; a test that fails even
# once is a bug to find (never a retry). Not in CI.
# Usage: scripts/flake-hunt.sh [--runs N] [--hogs H] [--build DIR] [-- ctest args...]
#   --runs N   suite runs (default 10)     --hogs H   busy processes beside it (default 1)
#   --build    the build directory (default build; scripts/build.sh makes it)
# Prints one line per run (passed/failed, time, the failing tests) and a summary; the failing tests' output
# goes to <build>/flake-hunt/run-<i>.log. Exits 1 when any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10
hogs=1
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "scripts/flake-hunt.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$build/CTestTestfile.cmake" ] || { echo "scripts/flake-hunt.sh: no ctest build in $build (scripts/build.sh)" >&2; exit 2; }
export RWKV_TOKENIZER_JSON="${RWKV_TOKENIZER_JSON:-$(cd .. && pwd)/shared/data/20B_tokenizer.json}"
mkdir -p "$build/flake-hunt"
hog_pids=()
stop_hogs() { [ ${#hog_pids[@]} -eq 0 ] || kill "${hog_pids[@]}" 2> /dev/null || true; }
trap stop_hogs EXIT
for (( h = 0; h < hogs; h++ )); do
  ( while :; do :; done ) &
  hog_pids+=($!)
done
failed_runs=0
declare -A failures=()
for (( i = 1; i <= runs; i++ )); do
  start=$SECONDS
  log="$build/flake-hunt/run-$i.log"
  status=0
  (cd "$build" && ctest -j2 --output-on-failure "$@") > "$log" 2>&1 || status=$?
  failing="$(sed -nE 's/^[[:space:]]*[0-9]+ - (.*) \((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)\)$/\1/p' "$log" | tr '\n' ' ')"
  summary="$(grep -E '^[0-9]+% tests passed' "$log" || echo "ctest exited $status")"
  if (( status != 0 )); then
    failed_runs=$((failed_runs + 1))
    for test in $failing; do failures[$test]=$(( ${failures[$test]:-0} + 1 )); done
  fi
  echo "run $i: $summary ($((SECONDS - start)) s)${failing:+; failing: $failing}"
done
echo "flake hunt: $((runs - failed_runs)) of $runs runs passed with $hogs hog(s) beside ctest -j2"
for test in "${!failures[@]}"; do echo "  $test failed ${failures[$test]} time(s)"; done
(( failed_runs == 0 ))
