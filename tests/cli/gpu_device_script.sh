#!/usr/bin/env bash
# scripts/gpu/run-device.sh without a GPU: stand-in binaries (RWKV_DEVICE_DIR) for the test executable, the labs,
# `rwkv` and nvidia-smi, whose gtest suites pass, fail an assertion, hang and segfault. Checks one line per step
# while running, the compact summary (≤ 3,000 characters, last in the output: the GPU, the failing test and its
# first assertion, the timeout and the crash as such, the labs' verdicts, the bench figures), that $OUT holds
# only logs.tar.gz and summary.txt, that `--failed-from summary.txt` (or a list of names) re-runs exactly the
# failed steps, truncation of a long summary, and the real rwkv_tests' Cuda* suites listed as steps.
# Usage: gpu_device_script.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
script="$(realpath "$2")/scripts/gpu/run-device.sh"
enter_work_dir; [ -z "${KEEP:-}" ] || { trap - EXIT; echo "work: $PWD"; }
mkdir -p dev/labs bin out

# The test executable: suites CudaPass, CudaFail, CudaHang, CudaCrash (and FAKE_MANY failing ones).
cat > dev/rwkv_tests <<'EOF'
#!/usr/bin/env bash
for arg in "$@"; do
  case $arg in
    --gtest_list_tests)
      echo "Running main() from gtest_main.cc"
      for s in CudaPass CudaFail CudaHang CudaCrash; do printf '%s.\n  One\n' "$s"; done
      for i in $(seq 1 "${FAKE_MANY:-0}"); do printf 'CudaMany%s.\n  One\n' "$i"; done
      exit 0;;
    --gtest_filter=*) filter=${arg#--gtest_filter=};;
    --gtest_output=xml:*) xml=${arg#--gtest_output=xml:};;
  esac
done
suite=${filter%%.*}
echo "[==========] Running 2 tests from 1 test suite."
case $suite in
  CudaPass)
    printf '[ RUN      ] CudaPass.One\n[       OK ] CudaPass.One (1 ms)\n[ RUN      ] CudaPass.Two\n[  SKIPPED ] CudaPass.Two (0 ms)\n'
    printf '[==========] 2 tests from 1 test suite ran. (1 ms total)\n[  PASSED  ] 1 test.\n[  SKIPPED ] 1 test, listed below:\n'
    echo '<testsuites tests="2" failures="0"/>' > "$xml";;
  CudaFail|CudaMany*)
    echo "[ RUN      ] $suite.First"
    echo "/src/tests/kernels/cuda_fake_test.cpp:42: Failure"
    echo "Expected equality of these values:"
    echo "  gpu_sum"
    echo "[  FAILED  ] $suite.First (3 ms)"
    echo "[ RUN      ] $suite.Second"
    echo "/src/tests/kernels/cuda_fake_test.cpp:77: Failure"
    echo "Value of: bit_identical"
    echo "[  FAILED  ] $suite.Second (1 ms)"
    exit 1;;
  CudaHang) echo "[ RUN      ] CudaHang.Sleeps"; sleep 30;;
  CudaCrash) echo "[ RUN      ] CudaCrash.Segfaults"; kill -SEGV $$;;
esac
EOF
cat > dev/labs/lab_good <<'EOF'
#!/usr/bin/env bash
printf 'lab_good on NVIDIA H100\n  check v1 forward                   ok    max |diff| 0\n\nlab_good: all checks passed\n'
EOF
cat > dev/labs/lab_bad <<'EOF'
#!/usr/bin/env bash
printf 'lab_bad on NVIDIA H100\n  check v2 backward                  FAIL  max |diff| 0.5 at 7 (3.00 of the tolerance)\n'
printf '\nlab_bad: SOME CHECKS FAILED\n'
exit 1
EOF
# `bench train --official` is the real binary's table, shrunk to run on the CPU in a second.
cat > dev/rwkv <<'EOF'
#!/usr/bin/env bash
if [ "$1 $2 $3" = "bench train --official" ]; then
  exec "$REAL_RWKV" bench train --official --device cpu --n_layer 2 --n_embd 32 --ctx_len 8 --vocab_size 64 \
    --steps 1 --warmup 0
fi
if [[ "$*" == *"--profile"* ]]; then
  exec "$REAL_RWKV" bench train --device cpu --n_layer 2 --n_embd 32 --ctx_len 8 --vocab_size 64 --micro_bsz 2 \
    --steps 1 --warmup 0 --profile 1
fi
case "$1 $2" in
  "bench wkv") printf 'kernel     pass               median ms\nv1 fp32    forward                 0.123      0.120\nv1 fp32    forward+backward        0.456      0.450\n';;
  "bench train") echo '{"tokens_per_second": 412345.6, "mfu": 0.351, "peak_memory_bytes": 10737418240}';;
  *) echo "fake rwkv: $*" >&2; exit 2;;
esac
EOF
printf '#!/usr/bin/env bash\necho "name, driver_version, memory.total [MiB], clocks.max.sm [MHz]"\necho "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 1980 MHz"\n' > bin/nvidia-smi
chmod +x dev/rwkv_tests dev/labs/lab_* dev/rwkv bin/nvidia-smi

device() {  # device <out dir> <arguments...>: the script with the stand-ins, its exit code in $code
  local out=$1
  shift
  mkdir -p "$out"
  code=0
  REAL_RWKV="$rwkv" PATH="$PWD/bin:$PATH" OUT="$PWD/$out" RWKV_DEVICE_DIR="$PWD/dev" RWKV_STEP_TIMEOUT=2 \
    timeout 60 bash "$script" "$@" \
    > "$out.log" 2>&1 || code=$?
}
step_lines() { sed '/^$/q' "$1" | sed '/^$/d'; }  # the lines printed while running (before the summary)
has() { grep -qF -- "$2" "$1" || { cat "$1"; fail "$1 lacks: $2"; }; }

# The default steps with failures: every one reported, one line each, the summary last.
device out1
[ "$code" -eq 1 ] || { cat out1.log; fail "exit code $code, expected 1 (steps failed)"; }
step_lines out1.log > steps1.txt
expected=(gpu tests:CudaPass tests:CudaFail tests:CudaHang tests:CudaCrash lab:bad lab:good bench:wkv-fp32 bench:wkv-bf16
  bench:169m-b16-bf16)
[ "$(awk '{print $1}' steps1.txt | tr '\n' ' ')" = "${expected[*]} " ] ||
  { cat out1.log; fail "step lines: expected one per default step: ${expected[*]}"; }
[ "$(ls out1 | tr '\n' ' ')" = "logs.tar.gz summary.txt " ] || fail "out1 holds $(ls out1), expected logs.tar.gz summary.txt"
summary=out1/summary.txt
[ "$(wc -c < $summary)" -le 3000 ] || fail "summary.txt has $(wc -c < $summary) characters (> 3000)"
# The summary is the end of the output.
[ "$(tail -c "$(wc -c < $summary)" out1.log)" = "$(cat $summary)" ] || { cat out1.log; fail "the output does not end with the summary"; }
has $summary "== device summary (run-device.sh): 10 steps, 6 passed, 4 failed"
has $summary "GPU: NVIDIA H100 80GB HBM3, driver 550.54.15"
has $summary "ok   tests:CudaPass"
has $summary "| 2 tests, 1 skipped"
has $summary "CudaFail.First: cuda_fake_test.cpp:42: Expected equality of these values: gpu_sum"
has $summary "CudaFail.Second: cuda_fake_test.cpp:77: Value of: bit_identical"
grep -E "^FAIL tests:CudaHang [0-9.]+ s: timed out after 2 s" $summary > /dev/null || { cat $summary; fail "no timeout line"; }
has $summary "hung (timed out) in CudaHang.Sleeps"
has $summary "crashed: SIGSEGV (exit 139)"
has $summary "crashed in CudaCrash.Segfaults"
has $summary "lab:good"
has $summary "| all checks passed"
has $summary "| SOME CHECKS FAILED; first: check v2 backward"
has $summary "v1 fp32 fwd 0.123 ms, v1 fp32 fwd+bwd 0.456 ms"
has $summary "bench:169m-b16-bf16"
has $summary "412,346 tok/s, MFU 35.1%, peak 10.0 GiB"
has $summary "re-run the failed: scripts/gpu/run-device.sh tests:CudaFail tests:CudaHang tests:CudaCrash lab:bad"
tar -tzf out1/logs.tar.gz > archive.txt
for f in logs/tests_CudaFail.log logs/tests_CudaHang.log logs/tests/CudaPass.xml logs/lab_bad.log logs/bench/169m-b16-bf16.json \
  logs/bench/table.md logs/summary.txt; do
  grep -qx "$f" archive.txt || { cat archive.txt; fail "logs.tar.gz lacks $f"; }
done

# The second call: exactly the failed steps, from the summary or from a list of names.
cp $summary last-summary.txt
device out2 --failed-from last-summary.txt
[ "$(step_lines out2.log | awk '{print $1}' | tr '\n' ' ')" = "tests:CudaFail tests:CudaHang tests:CudaCrash lab:bad " ] ||
  { cat out2.log; fail "--failed-from summary.txt did not re-run exactly the failed steps"; }
printf '# from last time\ntests:CudaCrash\n\nlab:*\n' > names.txt
device out3 --failed-from names.txt
[ "$(step_lines out3.log | awk '{print $1}' | tr '\n' ' ')" = "tests:CudaCrash lab:bad lab:good " ] ||
  { cat out3.log; fail "--failed-from names.txt ran other steps"; }

# Arguments and RWKV_DEVICE_STEPS pick steps; all passing exits 0; an unknown name is a failed step.
device out4 tests:CudaPass 'lab:g*'
[ "$code" -eq 0 ] || { cat out4.log; fail "passing steps exited $code"; }
[ "$(step_lines out4.log | awk '{print $1}' | tr '\n' ' ')" = "tests:CudaPass lab:good " ] || { cat out4.log; fail "glob selection"; }
RWKV_DEVICE_STEPS="gpu nosuch" device out5
[ "$code" -eq 1 ] || fail "an unknown step name exited $code"
has out5/summary.txt "FAIL nosuch 0 s: no such step"
# Without nvidia-smi (no GPU): the gpu step fails, the summary and the archive are still written.
code=0
PATH="/usr/bin:/bin" OUT="$PWD/out6" RWKV_DEVICE_DIR="$PWD/dev" bash "$script" gpu lab:good > out6.log 2>&1 || code=$?
if ! command -v nvidia-smi > /dev/null; then
  [ "$code" -eq 1 ] || fail "the gpu step without nvidia-smi exited $code"
  has out6/summary.txt "GPU: none found"
fi
if [ ! -s out6/logs.tar.gz ] || [ ! -s out6/summary.txt ]; then fail "no archive or summary without a GPU"; fi

# Many failures: still ≤ 3,000 characters, the long lists cut.
FAKE_MANY=100 device out7 'tests:*'
has out7/summary.txt "more failed steps"
has out7/summary.txt "--failed-from summary.txt"
[ "$(step_lines out7.log | wc -l)" -eq 104 ] || fail "expected 104 step lines with FAKE_MANY=100"
[ "$(tail -c 3000 out7.log | grep -c '^== device summary')" -eq 1 ] || fail "the printed long summary is over 3,000 characters"
cp out7/summary.txt many-summary.txt  # the file names every failed step, the cut ones after the summary
FAKE_MANY=100 device out8 --failed-from many-summary.txt
[ "$(step_lines out8.log | wc -l)" -eq 103 ] || { step_lines out8.log | head; fail "expected the 103 failed steps re-run"; }

# bench:official: one summary line per workload of the real table (here shrunk, so no ratio and no goal).
device out9 bench:official
[ "$code" -eq 0 ] || { cat out9.log; fail "bench:official exited $code"; }
for workload in "169M B16" "169M B16 grad_cp" "169M B32" "430M B16" "1.5B B8"; do
  grep -qE "^     $workload: [0-9]+ tok/s \(-\), [0-9.]+ model TFLOP/s, peak [0-9.]+ GiB, - cudaMalloc \+ - waits/step;" \
    out9/summary.txt || { cat out9/summary.txt; fail "the summary has no line for $workload"; }
done
tar -xzf out9/logs.tar.gz -C out9 && grep -rqF "| 1.5B B8 |" out9 || fail "the archive lacks the official table"
# bench:profile-169m: the step's largest op families in one line (the real binary's profile, shrunk).
device out10 bench:profile-169m
[ "$code" -eq 0 ] || { cat out10.log; fail "bench:profile-169m exited $code"; }
grep -qE "^     [0-9]+ tok/s; per step: .*gemm [0-9.]+ ms \([0-9.]+%\)" out10/summary.txt ||
  { cat out10/summary.txt; fail "the summary lacks the profile line"; }

# The real test executable lists its Cuda* suites as steps (they skip without a GPU).
real_tests="$(dirname "$rwkv")/../tests/rwkv_tests"
[ -x "$real_tests" ] || fail "no test executable at $real_tests"
mkdir real
ln -s "$(realpath "$real_tests")" real/rwkv_tests
RWKV_DEVICE_DIR="$PWD/real" bash "$script" --list > list.txt
has list.txt "* tests:CudaWkv"
has list.txt "* tests:CudaTrainer"
has list.txt "  bench:1b5-b8-bf16"
echo "gpu_device_script: ok"
