#!/usr/bin/env bash
# Data-parallel training through the binary under mpirun (CPU): 2 ranks x micro_bsz 2 must train the same
# parameters as 1 rank x micro_bsz 4, also with accumulation and with ZeRO-1; checkpoints must resume on another
# number of ranks and continue like the 1-rank run; SIGTERM to one rank stops all ranks with one checkpoint; a
# rank killed mid-training must make the job exit non-zero promptly. Skips without mpirun, h5py or MPI build.
# Usage: data_parallel.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
if ! command -v mpirun > /dev/null; then
  echo "cli data_parallel: skipped (no mpirun on PATH)"
  exit 0
fi
python=/usr/bin/python3
if ! "$python" -c 'import h5py, numpy' 2> /dev/null; then
  echo "cli data_parallel: skipped (needs $python with h5py and numpy to compare checkpoints)"
  exit 0
fi
enter_work_dir

# Root in CI containers, and more ranks than cores on small machines.
mpi() { timeout 300 mpirun --allow-run-as-root --oversubscribe -np "$@"; }

write_tiny_corpus
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
n_layer = 2
n_embd = 32
ctx_len = 32
epoch_steps = 5
epoch_count = 4
epoch_save = 0
lr_init = 2e-3
lr_final = 2e-4
log_every = 1
save_every_steps = 3
max_steps = 6
INI

# Relative difference of the /model tensors of two checkpoints: |a - b| / |b| over all parameters (one vector);
# the worst single tensor is printed too (tensors that start at zero show rounding noise relative to small norms).
cat > compare.py <<'PY'
import sys, h5py, numpy as np
def model_tensors(path):
    tensors = {}
    def keep(name, item):
        if isinstance(item, h5py.Dataset):
            tensors[name] = np.asarray(item, dtype=np.float64)
    with h5py.File(path, "r") as f:
        f["model"].visititems(keep)
    return tensors
a, b = model_tensors(sys.argv[1]), model_tensors(sys.argv[2])
if not a or a.keys() != b.keys():
    sys.exit(f"different tensors in {sys.argv[1]} and {sys.argv[2]}")
difference = np.sqrt(sum(np.sum((a[k] - b[k]) ** 2) for k in a))
norm = np.sqrt(sum(np.sum(b[k] ** 2) for k in a))
worst = max((np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-30), k) for k in a)
relative = difference / norm
print(f"{len(a)} tensors: relative difference {relative:.3e} (worst tensor {worst[1]}: {worst[0]:.3e})")
sys.exit(0 if relative <= float(sys.argv[3]) else 1)
PY
same() { "$python" compare.py "$1" "$2" 1e-6 || fail "$3: $1 and $2 differ by more than 1e-6"; }

# 2 ranks x micro_bsz 2 and 1 rank x micro_bsz 4: the same global batch at every step.
if ! mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --proj_dir two > two.log 2>&1; then
  if grep -q "built without MPI" two.log; then
    echo "cli data_parallel: skipped (this rwkv was built without MPI)"
    exit 0
  fi
  cat two.log
  fail "2-rank run"
fi
"$rwkv" train --config tiny.ini --micro_bsz 4 --proj_dir one > one.log 2>&1 || { cat one.log; fail "1-rank run"; }
grep -q "parallel    2 ranks (2 per node), communicator MPI" two.log \
  || fail "no data-parallel line in the startup table"
[ "$(grep -c '^rwkv train:' two.log)" -eq 1 ] || fail "ranks other than 0 printed the startup table"
[ "$(grep -c 'step 6/6' two.log)" -eq 1 ] || fail "expected one step 6 line (rank 0's)"
[ "$(wc -l < two/metrics.jsonl)" -eq 6 ] || fail "metrics.jsonl should have 6 lines (rank 0 writes it)"
grep -q '"reduce_wait_ms": [0-9]' two/metrics.jsonl || fail "metrics.jsonl should record the all-reduce wait"
same one/rwkv-step-3.h5 two/rwkv-step-3.h5 "step 3"
same one/rwkv-step-6.h5 two/rwkv-step-6.h5 "step 6"
"$python" -c 'import h5py, sys; sys.exit(int(h5py.File("two/rwkv-step-3.h5")["train"].attrs["world_size"]) != 2)' \
  || fail "the 2-rank checkpoint does not record world_size 2"

# Many small gradient buckets (about 5 KB: the tiny model's default is one bucket) reduced while backward goes
# on: the same parameters.
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --grad_bucket_mb 0.005 --proj_dir buckets > buckets.log 2>&1 \
  || { cat buckets.log; fail "2-rank run with small buckets"; }
buckets="$(sed -n 's/.*gradients in \([0-9]*\) buckets.*/\1/p' buckets.log)"
[ -n "$buckets" ] && [ "$buckets" -ge 8 ] || { cat buckets.log; fail "expected 8 or more gradient buckets"; }
grep -q "gradients in 1 bucket of <= 25 MiB" two.log || fail "the default run should use one 25 MiB bucket"
same one/rwkv-step-6.h5 buckets/rwkv-step-6.h5 "$buckets gradient buckets"
# One rank under mpirun takes the whole data-parallel path (buckets, MPI_Iallreduce over one rank): the same
# parameters bit for bit as a plain process with the same threads (mpirun binds a rank to one core, and the
# GEMMs' summation order depends on the thread count, so both use one thread).
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$rwkv" train --config tiny.ini --micro_bsz 4 --proj_dir plain_one \
  > plain_one.log 2>&1 || { cat plain_one.log; fail "plain 1-thread run"; }
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpi 1 -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$rwkv" train \
  --config tiny.ini --micro_bsz 4 --grad_bucket_mb 0.005 --proj_dir mpi_one > mpi_one.log 2>&1 \
  || { cat mpi_one.log; fail "1-rank run under mpirun"; }
grep -q "parallel    1 rank (1 per node), communicator MPI.*gradients in [0-9]* buckets" mpi_one.log \
  || { cat mpi_one.log; fail "1 rank under mpirun should reduce gradients in buckets"; }
"$python" compare.py plain_one/rwkv-step-6.h5 mpi_one/rwkv-step-6.h5 0 \
  || fail "1 rank under mpirun differs from a plain run"

# Activation checkpointing: the gradients are produced inside each block's recomputation (a nested backward).
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --grad_bucket_mb 0.005 --grad_cp 1 --proj_dir buckets_cp \
  > buckets_cp.log 2>&1 || { cat buckets_cp.log; fail "2-rank run with small buckets and grad_cp"; }
same one/rwkv-step-6.h5 buckets_cp/rwkv-step-6.h5 "gradient buckets with grad_cp = 1"

# With gradient accumulation: 2 ranks x micro_bsz 1 x 2 micro-steps and 1 rank x micro_bsz 2 x 2 micro-steps.
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 1 --accumulate_grad_batches 2 --max_steps 3 --proj_dir two_acc \
  > two_acc.log 2>&1 || { cat two_acc.log; fail "2-rank run with accumulation"; }
"$rwkv" train --config tiny.ini --micro_bsz 2 --accumulate_grad_batches 2 --max_steps 3 --proj_dir one_acc \
  > one_acc.log 2>&1 || { cat one_acc.log; fail "1-rank run with accumulation"; }
same one_acc/rwkv-step-3.h5 two_acc/rwkv-step-3.h5 "accumulation"

# The 2-rank checkpoint at step 3 resumes on 1 rank (same global batch) and continues like the 1-rank run.
mkdir resumed && cp two/rwkv-step-3.h5 resumed/
"$rwkv" train --config tiny.ini --micro_bsz 4 --proj_dir resumed --resume auto > resumed.log 2>&1 \
  || { cat resumed.log; fail "resume on 1 rank"; }
grep -q "resumed from resumed/rwkv-step-3.h5" resumed.log || fail "did not resume from the 2-rank checkpoint"
grep -q "step 4/6" resumed.log || fail "the resume did not continue at step 4"
if grep -q "global batch" resumed.log; then fail "a same-global-batch resume warned"; fi
same one/rwkv-step-6.h5 resumed/rwkv-step-6.h5 "2-rank checkpoint resumed on 1 rank"

# And the 1-rank checkpoint resumes on 2 ranks.
mkdir resumed2 && cp one/rwkv-step-3.h5 resumed2/
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --proj_dir resumed2 --resume auto > resumed2.log 2>&1 \
  || { cat resumed2.log; fail "resume on 2 ranks"; }
same one/rwkv-step-6.h5 resumed2/rwkv-step-6.h5 "1-rank checkpoint resumed on 2 ranks"

# ZeRO-1 (Adam moments sharded over the 2 ranks) trains the same parameters; its checkpoint holds the full
# moments and resumes on 1 rank without ZeRO, and the 1-rank checkpoint resumes on 2 ranks with ZeRO.
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --zero 1 --proj_dir zero > zero.log 2>&1 \
  || { cat zero.log; fail "2-rank ZeRO-1 run"; }
grep -q "ZeRO-1 (" zero.log || fail "ZeRO-1 is not in the startup table"
same one/rwkv-step-6.h5 zero/rwkv-step-6.h5 "ZeRO-1"
mkdir zero_resumed && cp zero/rwkv-step-3.h5 zero_resumed/
"$rwkv" train --config tiny.ini --micro_bsz 4 --proj_dir zero_resumed --resume auto > zero_resumed.log 2>&1 \
  || { cat zero_resumed.log; fail "resume of the ZeRO-1 checkpoint on 1 rank"; }
same one/rwkv-step-6.h5 zero_resumed/rwkv-step-6.h5 "ZeRO-1 checkpoint resumed on 1 rank"
mkdir zero_resumed2 && cp one/rwkv-step-3.h5 zero_resumed2/
mpi 2 "$rwkv" train --config tiny.ini --micro_bsz 2 --zero 1 --proj_dir zero_resumed2 --resume auto \
  > zero_resumed2.log 2>&1 || { cat zero_resumed2.log; fail "resume on 2 ranks with ZeRO-1"; }
same one/rwkv-step-6.h5 zero_resumed2/rwkv-step-6.h5 "1-rank checkpoint resumed on 2 ranks with ZeRO-1"

# Starts a long 2-rank run in the background ($job: the timeout process) and waits for its step 3.
start_long_run() {
  timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 "$rwkv" train --config tiny.ini --micro_bsz 2 \
    --proj_dir "$1" --max_steps 0 --epoch_count 100000 --save_every_steps 0 > "$1.log" 2>&1 &
  job=$!
  for _ in $(seq 1 300); do grep -q "^step 3/" "$1.log" 2> /dev/null && break; sleep 0.1; done
  grep -q "^step 3/" "$1.log" || { kill "$job"; cat "$1.log"; fail "$1: the run never reached step 3"; }
}
# The process id of rank $1 of the job: the ranks are children of mpirun, itself the child of timeout ($job).
rank_pid() {
  for pid in $(for launcher in $(pgrep -P "$job"); do pgrep -P "$launcher"; done); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$pid"
      return
    fi
  done
  kill "$job"
  fail "could not find rank $1's process"
}

# SIGTERM to one rank (as a scheduler's signal to the tasks would be): all ranks agree to stop after the same
# step, rank 0 saves, and the job exits 0. (mpirun itself, given SIGTERM, kills its ranks after a grace period.)
start_long_run term
kill -TERM "$(rank_pid 1)"
wait "$job" || { cat term.log; fail "SIGTERM to rank 1: the job did not exit 0"; }
grep -q "interrupted: saving and stopping" term.log || { cat term.log; fail "SIGTERM: no interruption message"; }
ls term/rwkv-step-*.h5 > /dev/null 2>&1 || fail "SIGTERM: no checkpoint"
echo "SIGTERM to rank 1: $(grep '^saved' term.log)"

# A rank killed with SIGKILL mid-training: the job must end non-zero within 60 s, saying so.
start_long_run killed
victim="$(rank_pid 1)"
start=$SECONDS
kill -KILL "$victim"
status=0
wait "$job" || status=$?
echo "killed rank 1 (pid $victim): the job exited with status $status after $((SECONDS - start)) s; it said:"
grep -v "^step\|^\[" killed.log | tail -n 8 | sed 's/^/  | /'
[ "$status" -ne 0 ] || fail "the job exited 0 after a rank was killed"
[ "$status" -ne 124 ] || fail "the job hung for 60 s after a rank was killed"
# SIGKILL to mpirun itself (nothing can be passed on to the ranks): the orphaned ranks must not train on and
# write into proj_dir beside a job that replaces them; they save at the next step, as for SIGTERM, and exit.
start_long_run orphans
ranks="$(rank_pid 0) $(rank_pid 1)"
kill -KILL "$(pgrep -P "$job")"
wait "$job" 2> /dev/null || true
for _ in $(seq 1 300); do
  alive=0
  for pid in $ranks; do kill -0 "$pid" 2> /dev/null && alive=1; done
  (( alive )) || break
  sleep 0.1
done
(( ! alive )) || { kill -KILL $ranks; fail "the ranks trained on for 30 s after mpirun was killed"; }
saved="$(ls orphans/rwkv-step-*.h5 2> /dev/null || true)"
[ -n "$saved" ] || fail "the orphaned ranks stopped without saving"
"$rwkv" train --config tiny.ini --micro_bsz 4 --proj_dir orphans --resume auto --max_steps 1 > orphans_resumed.log 2>&1 ||
  { cat orphans_resumed.log; fail "the orphans' checkpoint does not resume"; }
echo "SIGKILL to mpirun: the ranks saved $(basename $saved) and exited"
echo "cli data_parallel: all checks passed"
