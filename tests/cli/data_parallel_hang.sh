#!/usr/bin/env bash
# A rank that hangs (alive, but never reaching its next collective) under mpirun must not hang the job: with
# --dist_timeout 5 the job exits non-zero well within 30 s, and the output names the stalled rank's activity
# and step. The hang comes from outside: SIGSTOP to rank 1 leaves it alive but never at its next collective.
# Skips without mpirun or an MPI build.
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
INI

# A long run (it never ends by itself); rank 1 is stopped once the log shows step 2, and rank 0 then waits for
# it in a collective of whichever step rank 1 was in.
timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 "$rwkv" train --config tiny.ini --proj_dir hang \
  --max_steps 0 --epoch_count 100000 --dist_timeout 5 > hang.log 2>&1 &
job=$!
for _ in $(seq 1 300); do
  grep -q "^step 2/\|built without MPI" hang.log 2> /dev/null && break
  kill -0 "$job" 2> /dev/null || break
  sleep 0.1
done
if grep -q "built without MPI" hang.log; then
  wait "$job" || true
  echo "cli data_parallel_hang: skipped (this rwkv was built without MPI)"
  exit 0
fi
grep -q "^step 2/" hang.log || { kill "$job" 2> /dev/null; cat hang.log; fail "the run did not reach step 2"; }
# Rank 1's process: the ranks are children of mpirun, itself the child of timeout ($job).
victim=""
for pid in $(for launcher in $(pgrep -P "$job"); do pgrep -P "$launcher"; done); do
  if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=$pid; fi
done
[ -n "$victim" ] || { kill "$job"; fail "could not find rank 1's process"; }
# A stopped process ignores everything but SIGKILL and SIGCONT: never leave it behind.
trap 'kill -KILL "$victim" 2> /dev/null || true; rm -rf "$work"' EXIT
start=$SECONDS
kill -STOP "$victim"
status=0
wait "$job" || status=$?
elapsed=$((SECONDS - start))
echo "rank 1 (pid $victim) stopped once the log showed step 2: the job exited with status $status after" \
  "$elapsed s; it said:"
grep -v "^step\|^\[\|^  \|^resolved\|^[a-z_]* = " hang.log | tail -n 12 | sed 's/^/  | /'
grep -q "hang timeout 5 s" hang.log || fail "the startup table does not show the hang timeout"
[ "$status" -ne 124 ] || fail "the job hung for 60 s although dist_timeout is 5 s"
[ "$status" -ne 0 ] || fail "the job exited 0 after a rank hung"
[ "$elapsed" -le 30 ] || fail "the job took $elapsed s to stop (dist_timeout 5 s)"
# Rank 0 reports where it waits for the stopped rank (a gradient bucket's all-reduce, or the step's loss).
activity="(forward/backward|all-reduce( \(gradient bucket(, start)?\))?)"
message="$(grep -Eo "rwkv train: rank [01] of 2: no progress for [0-9]+ s in $activity \(step [0-9]+\); aborting" \
  hang.log | head -n 1)" || true
[ -n "$message" ] || fail "no message naming the stalled rank, activity and step"
stalled="$(echo "$message" | sed -E 's/.*\(step ([0-9]+)\).*/\1/')"
[ "$stalled" -ge 3 ] || fail "the stall is reported at step $stalled, but step 2 completed"
if grep -q "^step $stalled/" hang.log; then fail "step $stalled completed although the message says it stalled"; fi
echo "cli data_parallel_hang: all checks passed"
