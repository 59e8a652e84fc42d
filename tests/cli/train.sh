#!/usr/bin/env bash
# End to end through the binary: train, resume, interrupt with SIGTERM, eval, generate, and bad input.
# Usage: train.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$1"
enter_work_dir

write_tiny_corpus
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
proj_dir = run
n_layer = 2
n_embd = 32
ctx_len = 32
micro_bsz = 4
epoch_steps = 5
epoch_count = 4
epoch_save = 0
lr_init = 2e-3
lr_final = 2e-4
log_every = 1
INI

# Train 6 steps with a checkpoint every 3.
"$rwkv" train --config tiny.ini --max_steps 6 --save_every_steps 3 > train1.log
grep -q "step 6/6" train1.log || fail "no step 6 line"
[ -f run/rwkv-step-3.h5 ] && [ -f run/rwkv-step-6.h5 ] || fail "step checkpoints missing"
[ -s run/metrics.jsonl ] && [ -s run/loss.svg ] || fail "metrics or loss curve missing"
[ "$(wc -l < run/metrics.jsonl)" -eq 6 ] || fail "metrics.jsonl should have 6 lines"

# Resume to the end of the schedule (20 steps).
"$rwkv" train --config tiny.ini --resume auto > train2.log
grep -q "resumed from run/rwkv-step-6.h5" train2.log || fail "did not resume from step 6"
grep -q "step 7/20" train2.log || fail "resume did not continue at step 7"
[ -f run/rwkv-final.h5 ] || fail "no final checkpoint"
[ "$(wc -l < run/metrics.jsonl)" -eq 20 ] || fail "metrics.jsonl should have 20 lines after the resume"

# SIGTERM: the step finishes, a checkpoint is saved, exit status 0.
"$rwkv" train --config tiny.ini --proj_dir run_term --epoch_count 100000 > term.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "^step 3/" term.log 2>/dev/null && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM did not exit 0"
grep -q "interrupted: saving and stopping" term.log || fail "no interruption message"
ls run_term/rwkv-step-*.h5 > /dev/null 2>&1 || fail "no checkpoint after SIGTERM"

# eval and generate from the final checkpoint.
"$rwkv" eval --model run/rwkv-final.h5 --data corpus.txt --data_type bytes --json > eval.json
grep -q '"loss"' eval.json && grep -q '"ppl"' eval.json && grep -q '"tokens"' eval.json || fail "eval --json"
"$rwkv" generate --model run/rwkv-final.h5 --prompt "line" --tokens 20 --seed 1 > gen1.txt
"$rwkv" generate --model run/rwkv-final.h5 --prompt "line" --tokens 20 --seed 1 > gen2.txt
cmp -s gen1.txt gen2.txt || fail "generation is not deterministic for a seed"
[ "$(wc -c < gen1.txt)" -gt 20 ] || fail "generation printed too little"

# Bad input: clear errors, non-zero exit, and the good checkpoint untouched.
before="$(md5sum run/rwkv-final.h5)"
if "$rwkv" train --config tiny.ini --lr_intt 1e-3 2> err1.txt; then fail "a misspelt key was accepted"; fi
grep -q "did you mean 'lr_init'" err1.txt || fail "no suggestion for a misspelt key"
if "$rwkv" train --config tiny.ini --data_file missing.bin 2> err2.txt; then fail "a missing data file was accepted"; fi
grep -q "missing.bin" err2.txt || fail "the missing data file is not named"
if "$rwkv" train --config tiny.ini --resume run/rwkv-nope.h5 2> err3.txt; then fail "a missing checkpoint was accepted"; fi
grep -q "rwkv-nope.h5" err3.txt || fail "the missing checkpoint is not named"
[ "$before" = "$(md5sum run/rwkv-final.h5)" ] || fail "a failed run changed the final checkpoint"
echo "cli train: all checks passed"
