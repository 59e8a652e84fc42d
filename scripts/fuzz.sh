#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, CUDA off) and runs each for a while.
#
#   scripts/fuzz.sh [--seconds N] [--parallel P] [--build-dir DIR] [--work-dir DIR] [--update-corpus] [target...]
#
#   --seconds N       run each target N seconds (default 600)
#   --parallel P      run P targets at a time (default 1)
#   --build-dir DIR   the clang build (default build-fuzz in the repository; configured when needed)
#   --work-dir DIR    where new corpus entries, crash artifacts and logs go (default DIR/fuzz-work)
#   --update-corpus   afterwards, merge the inputs that add coverage into the committed tests/fuzz/corpus/<target>
#   target...         fuzz_binidx fuzz_npy fuzz_tokenizer_json fuzz_bpe_encode fuzz_config fuzz_checkpoint (the
#                     default: all of these) or fuzz_checkpoint_bytes (raw HDF5 bytes; libhdf5 crashes on some)
#
# Each run starts from the committed seeds (tests/fuzz/corpus/<target>, read only) and writes the new inputs it
# finds to <work-dir>/<target>/corpus. A crash, leak, sanitizer report, or an input slower than 25 s (a hang)
# stops that target and fails the script; the input is saved as <work-dir>/<target>/crash-* (or leak-*,
# timeout-*, oom-*). Reproduce it with: <build-dir>/tests/fuzz/<target> <that file>.
# Exit status: 0 when every target ran clean, 1 when one failed, 77 when clang with libFuzzer is not available.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
all_targets=(fuzz_binidx fuzz_npy fuzz_tokenizer_json fuzz_bpe_encode fuzz_config fuzz_checkpoint)
# Raw HDF5 bytes: finds crashes inside libhdf5 itself (see tests/fuzz/fuzz_checkpoint_bytes.cpp), so only on request.
extra_targets=(fuzz_checkpoint_bytes)
seconds=600
parallel=1
build_dir="$root/build-fuzz"
work_dir=""
update_corpus=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    --update-corpus) update_corpus=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *)
      [[ " ${all_targets[*]} ${extra_targets[*]} " == *" $1 "* ]] ||
        { echo "fuzz.sh: unknown target '$1' (known: ${all_targets[*]} ${extra_targets[*]})" >&2; exit 2; }
      targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: --seconds needs a positive integer" >&2; exit 2; }
[[ "$parallel" =~ ^[0-9]+$ && "$parallel" -gt 0 ]] || { echo "fuzz.sh: --parallel needs a positive integer" >&2; exit 2; }
work_dir="${work_dir:-$build_dir/fuzz-work}"

# ---- toolchain: clang with libFuzzer, or skip --------------------------------------------------------------
cxx="${RWKV_FUZZ_CXX:-clang++}"
cc="${RWKV_FUZZ_CC:-clang}"
if ! command -v "$cxx" > /dev/null || ! command -v "$cc" > /dev/null; then
  echo "fuzz.sh: $cxx/$cc not found; the fuzz targets need clang with libFuzzer (Debian: apt-get install clang)" >&2
  exit 77
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2> "$probe/log"; then
  echo "fuzz.sh: $cxx cannot link a libFuzzer target with ASan/UBSan:" >&2
  cat "$probe/log" >&2
  exit 77
fi

# ---- build only the targets (and the libraries they link) ------------------------------------------------
if [[ ! -f "$build_dir/build.ninja" && ! -f "$build_dir/Makefile" ]]; then
  generator=()
  command -v ninja > /dev/null && generator=(-G Ninja)
  # -O1 (RWKV_FUZZ_OPT): what libFuzzer recommends; the smoke test asks for -O0, which compiles ~40% faster.
  # No -Werror: the project's warning set is GCC's; the GCC build enforces it.
  flags="${RWKV_FUZZ_OPT:--O1} -gline-tables-only"
  CC="$cc" CXX="$cxx" cmake -S "$root" -B "$build_dir" "${generator[@]}" -DRWKV_FUZZ=ON -DRWKV_CUDA=OFF \
    -DRWKV_BUILD_TESTS=OFF -DRWKV_WERROR=OFF -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$flags" \
    -DCMAKE_C_FLAGS_DEBUG="$flags" > "$probe/configure.log" 2>&1 || { cat "$probe/configure.log" >&2; exit 1; }
fi
cmake --build "$build_dir" -j "${RWKV_FUZZ_BUILD_JOBS:-2}" --target "${targets[@]}"

# ---- run -------------------------------------------------------------------------------------------------
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0}"

run_target() {  # runs one target; its summary line goes to <work>/<target>/result
  local target="$1" dir="$work_dir/$1"
  mkdir -p "$dir/corpus"
  rm -f "$dir/result"
  local start=$SECONDS status=0 asan_options="$ASAN_OPTIONS"
  if [[ "$target" == fuzz_checkpoint* ]]; then
    # libhdf5 1.10 trusts the length of a variable-length string in the file and allocates it (up to ~8 GB)
    # before finding the heap object shorter. Let such C allocations fail (HDF5 turns that into an error, which we
    # throw as rwkv::Error) instead of counting them as out-of-memory crashes. operator new still aborts on them.
    asan_options="$asan_options:allocator_may_return_null=1:max_allocation_size_mb=1024"
  fi
  # The outer timeout is a backstop for a hang that libFuzzer's own -timeout does not catch.
  ASAN_OPTIONS="$asan_options" timeout --kill-after=30 $((seconds + 120)) "$build_dir/tests/fuzz/$target" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=4096 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$dir/" "$dir/corpus" "$root/tests/fuzz/corpus/$target" > "$dir/log" 2>&1 || status=$?
  local execs
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)"
  if [[ $status -eq 0 ]]; then
    echo "$target: ok, $((SECONDS - start)) s, ${execs:-?} runs, corpus $(ls "$dir/corpus" | wc -l) new + $(ls "$root/tests/fuzz/corpus/$target" | wc -l) seeds" > "$dir/result"
  else
    local artifact
    artifact="$(ls -t "$dir"/{crash,leak,timeout,oom,slow-unit}-* 2> /dev/null | head -1 || true)"
    echo "$target: FAILED (exit $status) after $((SECONDS - start)) s, ${execs:-?} runs; input: ${artifact:-none}; log: $dir/log" > "$dir/result"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|==fuzz==)|runtime error' "$dir/log" | head -5 | sed 's/^/    /' >> "$dir/result" || true
  fi
  cat "$dir/result"
}

echo "fuzz.sh: ${#targets[@]} target(s), $seconds s each, $parallel at a time; work in $work_dir"
for target in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $parallel ]]; do wait -n || true; done
  run_target "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
  grep -q ': ok,' "$work_dir/$target/result" 2> /dev/null || failed=1
done
if [[ $update_corpus -eq 1 && $failed -eq 0 ]]; then
  for target in "${targets[@]}"; do
    "$build_dir/tests/fuzz/$target" -merge=1 "$root/tests/fuzz/corpus/$target" "$work_dir/$target/corpus" \
      > "$work_dir/$target/merge.log" 2>&1
    echo "fuzz.sh: $target: corpus now $(ls "$root/tests/fuzz/corpus/$target" | wc -l) files"
  done
fi
echo "fuzz.sh: summary"
for target in "${targets[@]}"; do sed 's/^/  /' "$work_dir/$target/result" 2> /dev/null || echo "  $target: no result"; done
exit $failed
