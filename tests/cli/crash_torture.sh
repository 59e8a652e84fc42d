#!/usr/bin/env bash
# Crash consistency: a tiny CPU training run is killed with SIGKILL at random moments (some of them while a
# checkpoint is being written) and resumed with `--resume auto` each time. After every kill, every file under a
# final checkpoint name must be a complete, readable checkpoint; every resume must start from the newest of
# them (fresh only while none was ever completed); and a run that completes this way must end with /model and
# /optimizer bit-identical to an uninterrupted run's.
# Usage: crash_torture.sh <path-to-rwkv> <source-dir>
# Environment: RWKV_TORTURE_SEED (default: from the clock; printed, so that a failure can be replayed),
#              RWKV_TORTURE_TRIALS (default 24).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
python=/usr/bin/python3
"$python" -c "import h5py, numpy" 2> /dev/null || { echo "SKIP: $python with h5py and numpy is needed"; exit 0; }
enter_work_dir

seed="${RWKV_TORTURE_SEED:-$(( $(date +%s) % 100000 ))}"
trials="${RWKV_TORTURE_TRIALS:-24}"
RANDOM="$seed"
echo "crash torture: seed $seed, $trials trials (replay with RWKV_TORTURE_SEED=$seed)"
fail() { echo "FAIL (seed $seed, trial ${trial:-0}): $*" >&2; exit 1; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

write_tiny_corpus
# 30 steps, a checkpoint every 2 and only the 2 newest kept: saves and rotations are frequent.
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
n_layer = 2
n_embd = 32
ctx_len = 32
micro_bsz = 2
epoch_steps = 30
epoch_count = 1
epoch_save = 0
save_every_steps = 2
keep_last = 2
lr_init = 2e-3
lr_final = 2e-4
log_every = 1
INI

# check.py checkpoints DIR: every rwkv-*.h5 is complete and every dataset reads; prints the newest step (or -1).
# check.py same A B: /model, /optimizer and the step counters of A and B are bit-identical.
cat > check.py <<'PY'
import glob, os, sys
import h5py, numpy as np

def datasets(group, prefix=""):
    out = {}
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            out.update(datasets(item, prefix + name + "/"))
        else:
            out[prefix + name] = item
    return out

def check_dir(directory):
    newest = -1
    for path in sorted(glob.glob(os.path.join(directory, "rwkv-*.h5"))):
        try:
            with h5py.File(path, "r") as f:
                for group in ("model", "optimizer", "train"):
                    assert group in f, "no /" + group
                assert int(f["train"].attrs["complete"]) == 1, "no complete mark"
                for name, dataset in datasets(f).items():
                    dataset[()]  # reads every byte
                newest = max(newest, int(f["train"].attrs["global_step"]))
        except Exception as e:
            sys.exit("unreadable checkpoint under a final name: %s: %s" % (path, e))
    print("OK", newest) if sys.argv[1] == "serve" else print(newest)

def same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for group in ("model", "optimizer"):
            da, db = datasets(fa[group]), datasets(fb[group])
            if sorted(da) != sorted(db):
                sys.exit("/%s members differ: %s vs %s" % (group, sorted(da), sorted(db)))
            for name in da:
                x, y = np.asarray(da[name][()]), np.asarray(db[name][()])
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    sys.exit("/%s/%s differs between %s and %s" % (group, name, a, b))
            if dict(fa[group].attrs) != dict(fb[group].attrs):
                sys.exit("/%s attributes differ" % group)
        for key in ("global_step", "tokens_seen", "mini_epoch"):
            if fa["train"].attrs[key] != fb["train"].attrs[key]:
                sys.exit("/train %s differs" % key)

if sys.argv[1] == "serve":  # one process for all trials: "checkpoints DIR" per line -> "OK STEP" or "ERR ..."
    for line in sys.stdin:
        try:
            check_dir(line.split()[1])
        except SystemExit as e:
            print("ERR", e.code)
        sys.stdout.flush()
elif sys.argv[1] == "checkpoints":
    check_dir(sys.argv[2])
else:
    same(sys.argv[2], sys.argv[3])
PY
coproc CHECKER { "$python" check.py serve; }
checker_in="${CHECKER[1]}"
checker_out="${CHECKER[0]}"
# check_checkpoints DIR: prints the newest step of DIR's checkpoints (-1: none); fails if any is unreadable.
check_checkpoints() {
  local reply
  echo "checkpoints $1" >&"$checker_in"
  read -r reply <&"$checker_out" || fail "the checkpoint checker died"
  [[ "$reply" == OK* ]] || fail "${reply#ERR }"
  echo "${reply#OK }"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The uninterrupted reference, timed: the kill delays are drawn over its duration.
start="$(now_ms)"
"$rwkv" train --config tiny.ini --proj_dir reference > reference.log 2>&1 || fail "reference run: $(cat reference.log)"
run_ms=$(( $(now_ms) - start ))
[ -f reference/rwkv-final.h5 ] || fail "the reference run wrote no rwkv-final.h5"
echo "reference run: ${run_ms} ms"

rounds=0        # runs taken to completion through kills and resumes, each compared with the reference
completed=-1    # newest step of a checkpoint ever seen complete in run/ (-1: none yet this round)
kills_in_write=0
finish_round() {  # the run in run/ has completed: compare it with the reference and start over
  "$python" check.py same reference/rwkv-final.h5 run/rwkv-final.h5 || fail "resumed run differs from the reference"
  ! compgen -G "run/*.tmp-*" > /dev/null || fail "temporary files left behind: $(ls run)"
  # The metrics log has each step once, in order, however often the run died.
  [ "$(sed -E 's/^\{"step": ([0-9]+),.*/\1/' run/metrics.jsonl | tr '\n' ' ')" = "$(seq -s ' ' 1 30) " ] ||
    fail "metrics.jsonl does not list steps 1..30 once each: $(cut -c1-20 run/metrics.jsonl | tr '\n' ' ')"
  rounds=$((rounds + 1))
  rm -rf run
  completed=-1
}

kills=0
trial=0
while (( kills < trials )); do
  trial=$((trial + 1))
  newest="$completed"
  "$rwkv" train --config tiny.ini --proj_dir run --resume auto > "trial$trial.log" 2>&1 &
  pid=$!
  if (( trial % 3 == 0 )); then
    # Kill while a checkpoint is being written: when the temporary file of a randomly chosen later save appears
    # (a step checkpoint, or the final one), at once or a moment later.
    target=$(( newest < 0 ? 2 : newest + 2 ))
    target=$(( target + 2 * (RANDOM % 4) ))
    name="rwkv-step-$target.h5"
    (( target < 30 )) || name="rwkv-final.h5"
    while kill -0 "$pid" 2> /dev/null && [ ! -e "run/$name.tmp-$pid" ]; do :; done
    extra=$(( RANDOM % 3 ))
    (( extra == 0 )) || sleep "0.00$extra"
    how="while writing $name (+${extra} ms)"
  else
    delay=$(( RANDOM % (run_ms * 3 / 4 + 1) ))
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    how="after ${delay} ms"
  fi
  if kill -KILL "$pid" 2> /dev/null; then
    wait "$pid" 2> /dev/null || true
    kills=$((kills + 1))
    # The temporary file still there proves that the kill landed in the middle of a save.
    if compgen -G "run/rwkv-*.tmp-$pid" > /dev/null; then
      kills_in_write=$((kills_in_write + 1))
      how="$how, temporary file left"
    fi
  else
    wait "$pid" || fail "run exited non-zero without being killed: $(cat "trial$trial.log")"
    how="(finished before the kill)"
  fi
  # (a) the resume started from the newest complete checkpoint, or fresh only when none had been completed.
  if grep -q "^rwkv train: " "trial$trial.log"; then
    if (( newest >= 0 )); then
      grep -Eq "^rwkv train: resumed from run/rwkv-step-$newest\.h5" "trial$trial.log" ||
        fail "expected a resume from step $newest: $(head -1 "trial$trial.log")"
    else
      grep -q "^rwkv train: fresh init" "trial$trial.log" || fail "expected a fresh start: $(head -1 "trial$trial.log")"
    fi
  fi
  ! grep -q "skipping unusable checkpoint" "trial$trial.log" || fail "resume met a bad checkpoint: $(cat "trial$trial.log")"
  # (b) every file under a final name is a complete checkpoint, and the newest never goes backwards.
  after="$(check_checkpoints run)" || fail "after the kill $how"
  (( after >= completed )) || fail "the newest checkpoint went back from step $completed to $after"
  (( completed < 0 || after >= 0 )) || fail "no checkpoint left after step $completed had been saved"
  completed="$after"
  echo "trial $trial: killed $how; newest checkpoint: step $after"
  if [ -f run/rwkv-final.h5 ]; then finish_round; fi
done
(( kills_in_write >= trials / 6 )) || fail "only $kills_in_write of $kills kills landed in the middle of a save"

# (c) finish the last round without kills and compare with the reference.
if [ -d run ]; then
  "$rwkv" train --config tiny.ini --proj_dir run --resume auto > last.log 2>&1 || fail "last resume: $(cat last.log)"
  ! grep -q "skipping unusable checkpoint" last.log || fail "the last resume met a bad checkpoint"
  finish_round
fi
echo "cli crash_torture: all checks passed ($kills kills in $trial trials, $kills_in_write in the middle of a save, $rounds runs compared; ${SECONDS} s)"
