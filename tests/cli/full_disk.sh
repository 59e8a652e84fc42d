#!/usr/bin/env bash
# A save that cannot be written (a full disk, as a file size limit: `ulimit -f` with SIGXFSZ ignored makes
# write() fail with EFBIG) fails the run with a clear error naming the checkpoint, leaves no temporary file and
# no partial checkpoint, and the previous checkpoint survives byte for byte and still resumes. An unwritable
# proj_dir is refused before any training.
# Usage: full_disk.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
enter_work_dir
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

write_tiny_corpus
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
proj_dir = run
n_layer = 2
n_embd = 32
ctx_len = 32
micro_bsz = 2
epoch_steps = 10
epoch_count = 1
epoch_save = 0
save_every_steps = 2
log_every = 1
INI

"$rwkv" train --config tiny.ini --max_steps 4 > first.log 2>&1 || fail "first run: $(cat first.log)"
[ -f run/rwkv-step-4.h5 ] || fail "no step-4 checkpoint"
before="$(md5sum run/rwkv-step-2.h5 run/rwkv-step-4.h5)"
checkpoint_kib=$(( $(stat -c %s run/rwkv-step-4.h5) / 1024 ))

# Files may grow to half a checkpoint: the logs still fit, the step-6 checkpoint does not.
status=0
( trap '' XFSZ; ulimit -f $(( checkpoint_kib / 2 )); exec "$rwkv" train --config tiny.ini --resume auto --max_steps 6 ) \
  > full.log 2> full.err || status=$?
(( status == 1 )) || fail "a failed save should exit 1, got $status: $(cat full.err)"
grep -q "^rwkv train: error: checkpoint: cannot save 'run/rwkv-step-6.h5'" full.err || fail "unclear error: $(cat full.err)"
grep -q "File too large" full.err || fail "the error does not say why: $(cat full.err)"
[ "$(wc -l < full.err)" -eq 1 ] || fail "expected a one-line error: $(cat full.err)"
[ ! -e run/rwkv-step-6.h5 ] || fail "a partial step-6 checkpoint was left under its final name"
! compgen -G "run/*.tmp-*" > /dev/null || fail "temporary file left behind: $(ls run)"
[ "$before" = "$(md5sum run/rwkv-step-2.h5 run/rwkv-step-4.h5)" ] || fail "the earlier checkpoints changed"

# With room again, the run resumes from step 4 and finishes.
"$rwkv" train --config tiny.ini --resume auto > resume.log 2>&1 || fail "resume after the failure: $(cat resume.log)"
grep -q "^rwkv train: resumed from run/rwkv-step-4.h5" resume.log || fail "did not resume from step 4: $(head -1 resume.log)"
! grep -q "skipping unusable checkpoint" resume.log || fail "the resume met a bad checkpoint"
[ -f run/rwkv-final.h5 ] || fail "no final checkpoint after the resume"

# A size limit that the first save already exceeds: the run fails and leaves no checkpoint at all.
status=0
( trap '' XFSZ; ulimit -f $(( checkpoint_kib / 2 )); exec "$rwkv" train --config tiny.ini --proj_dir run2 --max_steps 2 ) \
  > full2.log 2> full2.err || status=$?
(( status == 1 )) || fail "a failed first save should exit 1, got $status: $(cat full2.err)"
grep -q "cannot save 'run2/rwkv-step-2.h5'" full2.err || fail "unclear error: $(cat full2.err)"
[ -z "$(ls run2 | grep '^rwkv-')" ] || fail "files left after a failed first save: $(ls run2)"

# proj_dir that cannot be created (a file is in the way) or written (read-only; root ignores permissions, so
# the check runs as nobody when this script is root and setpriv exists).
touch not_a_dir
status=0
"$rwkv" train --config tiny.ini --proj_dir not_a_dir/run > nodir.log 2> nodir.err || status=$?
(( status == 1 )) || fail "proj_dir under a file should exit 1, got $status: $(cat nodir.err)"
grep -q "proj_dir 'not_a_dir/run'" nodir.err || fail "the proj_dir is not named: $(cat nodir.err)"

mkdir readonly
cp run/rwkv-final.h5 readonly/
chmod 555 readonly
as_other_user=()
if [ "$(id -u)" -eq 0 ]; then
  if command -v setpriv > /dev/null; then
    as_other_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 755 "$work"
    chmod 644 corpus.txt tiny.ini
  else
    echo "note: running as root without setpriv: the read-only proj_dir check is skipped"
  fi
fi
if [ "$(id -u)" -ne 0 ] || (( ${#as_other_user[@]} )); then
  final_before="$(md5sum < readonly/rwkv-final.h5)"
  status=0
  "${as_other_user[@]}" "$rwkv" train --config tiny.ini --proj_dir readonly --resume auto --epoch_count 2 \
    > ro.log 2> ro.err || status=$?
  (( status == 1 )) || fail "a read-only proj_dir should exit 1, got $status: $(cat ro.err)"
  grep -q "proj_dir 'readonly' is not writable" ro.err || fail "unclear error: $(cat ro.err)"
  [ "$final_before" = "$(md5sum < readonly/rwkv-final.h5)" ] || fail "the checkpoint in the read-only dir changed"
fi
chmod 755 readonly
echo "cli full_disk: all checks passed"
