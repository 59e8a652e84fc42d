#!/usr/bin/env bash
# A rank that hangs (alive, but never reaching its next collective) under mpirun must not hang the job: with
# --dist_timeout 5 the job exits non-zero well within 30 s, and the output names the stalled rank's activity
# and step. The hang comes from the trainer's test hook RWKV_TEST_HANG_RANK / RWKV_TEST_HANG_STEP. Skips
# without mpirun or an MPI build.
# Usage: data_parallel_hang.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
if ! command -v mpirun > /dev/null; then
  echo "cli data_parallel_hang: skipped (no mpirun on PATH)"
  exit 0
fi
enter_work_dir

write_tiny_corpus
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
n_layer = 2
n_embd = 32
ctx_len = 32
micro_bsz = 2
epoch_steps = 5
epoch_count = 4
epoch_save = 0
log_every = 1
max_steps = 8
INI

# Rank 1 stops responding before step 3; rank 0 waits for it in the step's gradient all-reduce.
start=$SECONDS
status=0
# -x exports the hook to every rank (mpirun passes only what it is told to on other nodes).
RWKV_TEST_HANG_RANK=1 RWKV_TEST_HANG_STEP=3 timeout 60 mpirun --allow-run-as-root --oversubscribe \
  -x RWKV_TEST_HANG_RANK -x RWKV_TEST_HANG_STEP -np 2 "$rwkv" train --config tiny.ini --proj_dir hang \
  --dist_timeout 5 > hang.log 2>&1 || status=$?
elapsed=$((SECONDS - start))
if grep -q "built without MPI" hang.log; then
  echo "cli data_parallel_hang: skipped (this rwkv was built without MPI)"
  exit 0
fi
echo "rank 1 hung before step 3: the job exited with status $status after $elapsed s; it said:"
grep -v "^step\|^\[\|^  \|^resolved\|^[a-z_]* = " hang.log | tail -n 12 | sed 's/^/  | /'
grep -q "hang timeout 5 s" hang.log || fail "the startup table does not show the hang timeout"
grep -q "^step 2/" hang.log || fail "the run did not reach step 2 before the hang"
if grep -q "^step 3/" hang.log; then fail "step 3 completed although rank 1 hung before it"; fi
[ "$status" -ne 124 ] || fail "the job hung for 60 s although dist_timeout is 5 s"
[ "$status" -ne 0 ] || fail "the job exited 0 after a rank hung"
[ "$elapsed" -le 30 ] || fail "the job took $elapsed s to stop (dist_timeout 5 s)"
grep -Eq "rwkv train: rank [01] of 2: no progress for [0-9]+ s in (forward/backward|all-reduce) \(step 3\); aborting" \
  hang.log || fail "no message naming the stalled rank, activity and step"
echo "cli data_parallel_hang: all checks passed"
