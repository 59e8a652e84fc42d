# Sourced by tests/cli/crash_torture.sh (CI's short torture) and scripts/torture.sh (the long one): a tiny CPU
# training run killed with SIGKILL and resumed with `--resume auto`, again and again. After every kill the
# files in proj_dir must be ones a crash may leave (tests/cli/lib/torture_check.py `state`: checkpoints
# complete under their final names, metrics.jsonl whole lines except a torn last one and no record lost that
# a checkpoint counts on, run.json / vocab.json / loss.svg complete); every resume must start from the newest
# checkpoint; and every run taken to its end this way must equal the uninterrupted run bit for bit, with one
# metrics record per step (`done`).
#
# Three ways to choose the kill moments:
#   torture_points  deterministic: the run is traced once with strace, and then killed just before each chosen
#                   syscall that changes proj_dir (open for writing, write, fsync, rename, unlink), e.g. every
#                   one of a resume's start-up and of a checkpoint save + rotation. Needs strace.
#   torture_random  SIGKILL after a random delay, or as a chosen save's temporary file appears.
#   torture_ranks   (scripts/torture.sh) 2 MPI ranks: SIGKILL to mpirun or to one rank, during a step or a save.
# The caller sets $rwkv (the binary), $python, and is in a scratch directory.

torture_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

torture_fail() { echo "FAIL${torture_context:+ ($torture_context)}: $*" >&2; exit 1; }

# tiny.ini: STEPS steps of a 2-layer, 32-wide character-level model (vocab.json in proj_dir), a checkpoint every 2
# steps with only the 2 newest kept (saves and rotations are frequent), validation every 5 steps.
# Extra "key = value" lines after STEPS replace the line of that key or are appended (accumulate_grad_batches = 2).
torture_write_config() {
  torture_steps="$1"
  shift
  write_tiny_corpus
  local lines=("data_file = corpus.txt" "data_type = utf-8" "n_layer = 2" "n_embd = 32" "ctx_len = 32"
    "micro_bsz = 2" "epoch_steps = $torture_steps" "epoch_count = 1" "epoch_save = 0" "save_every_steps = 2"
    "keep_last = 2" "lr_init = 2e-3" "lr_final = 2e-4" "log_every = 1" "val_data_file = corpus.txt"
    "val_data_type = utf-8" "val_every = 5" "val_max_windows = 4")
  local extra i
  for extra in "$@"; do
    for i in "${!lines[@]}"; do [ "${lines[$i]%% =*}" != "${extra%% =*}" ] || unset 'lines[i]'; done
    lines+=("$extra")
  done
  printf '%s\n' "${lines[@]}" > tiny.ini
}

# One checker process for the whole torture (see torture_check.py).
torture_start_checker() {
  coproc TORTURE_CHECKER { "$python" "$torture_lib_dir/torture_check.py"; }
  torture_checker_in="${TORTURE_CHECKER[1]}"
  torture_checker_out="${TORTURE_CHECKER[0]}"
}

# torture_check COMMAND ARGS...: the checker's reply after "OK" (first line) in $torture_reply; fails on ERR.
torture_check() {
  echo "$*" >&"$torture_checker_in"
  read -r torture_reply <&"$torture_checker_out" || torture_fail "the checker died"
  [[ "$torture_reply" == OK* ]] || torture_fail "${torture_reply#ERR }"
  torture_reply="${torture_reply#OK}"
  torture_reply="${torture_reply# }"
}

# torture_reference DIR [launcher...]: the uninterrupted run, to compare with. Sets torture_run_ms.
torture_reference() {
  local dir="$1" start
  shift
  start="$(date +%s%N)"
  "$@" "$rwkv" train --config tiny.ini --proj_dir "$dir" > "$dir.log" 2>&1 ||
    torture_fail "reference run: $(tail -5 "$dir.log")"
  torture_run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ -f "$dir/rwkv-final.h5" ] || torture_fail "the reference run wrote no rwkv-final.h5"
  torture_check done "$dir" "$dir"
}

# torture_after_kill DIR LOG: checks what the kill left; sets torture_newest (newest checkpoint step, -1: none).
torture_after_kill() {
  torture_check state "$1"
  torture_newest="${torture_reply%% *}"
}

# torture_resume DIR REFERENCE [launcher...]: resumes the run in DIR to its end (no kill), checks that it
# started from the newest checkpoint ($torture_newest), met no bad checkpoint and equals REFERENCE.
torture_resume() {
  local dir="$1" reference="$2" log="$1.resume.log"
  shift 2
  "$@" "$rwkv" train --config tiny.ini --proj_dir "$dir" --resume auto > "$log" 2>&1 ||
    torture_fail "the resume failed: $(tail -5 "$log")"
  torture_expect_start "$log" "$dir"
  torture_check done "$dir" "$reference"
}

# torture_expect_start LOG DIR: LOG's run started from DIR's newest checkpoint, or fresh when there was none.
torture_expect_start() {
  local log="$1" dir="$2"
  ! grep -q "skipping unusable checkpoint" "$log" || torture_fail "a resume met a bad checkpoint: $(cat "$log")"
  grep -q "^rwkv train: " "$log" || return 0  # killed before it said where it started
  if (( torture_newest >= 0 )); then
    grep -Eq "^rwkv train: resumed from $dir/rwkv-(step-$torture_newest|final)\.h5" "$log" ||
      torture_fail "expected a resume from step $torture_newest: $(grep -m1 '^rwkv train: ' "$log")"
  else
    grep -q "^rwkv train: fresh init" "$log" || torture_fail "expected a fresh start: $(grep -m1 '^rwkv train: ' "$log")"
  fi
}

# ---- deterministic kill points (strace) -----------------------------------------------------------------------

torture_syscalls=openat,write,writev,pwrite64,pwritev,rename,renameat,renameat2,unlink,unlinkat,ftruncate,fsync,fdatasync
# Under ASan (scripts/sanitize.sh) leak detection is off for traced runs: LeakSanitizer cannot work under ptrace.
torture_strace() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -f -qq -o "$1" "${@:2}"; }

# torture_points NAME START_DIR SELECT REFERENCE: kills a resume of START_DIR's state (an empty directory: a
# fresh run) just before each chosen syscall that changes the run's directory, and takes each killed run to
# its end. SELECT chooses among the syscalls of one traced, uninterrupted run (torture_check.py choose():
# all, until:FILE, save:CHECKPOINT, spread:K or a slice a:b:c).
torture_points() {
  local name="$1" start="$2" select="$3" reference="$4" dir="$PWD/run-$1" point syscall when what n i chosen
  rm -rf "$dir" && cp -a "$start" "$dir"
  torture_strace "$name.trace" -y -s 0 -e trace="$torture_syscalls" \
    "$rwkv" train --config tiny.ini --proj_dir "$dir" --resume auto > "$name.traced.log" 2>&1 ||
    torture_fail "$name: the traced run failed: $(tail -5 "$name.traced.log")"
  torture_check done "$dir" "$reference"
  echo "points $name.trace $dir $select" >&"$torture_checker_in"
  read -r torture_reply <&"$torture_checker_out" || torture_fail "the checker died"
  [[ "$torture_reply" == OK* ]] || torture_fail "$name: ${torture_reply#ERR }"
  read -r n chosen <<< "${torture_reply#OK }"
  local points=()
  for (( i = 0; i < chosen; i++ )); do read -r point <&"$torture_checker_out"; points+=("$point"); done
  local count=0 in_save=0
  for point in "${points[@]}"; do
    read -r i syscall when what <<< "$point"
    torture_context="$name point $i of $n: kill before $syscall #$when ($what)"
    rm -rf "$dir" && cp -a "$start" "$dir"
    local status=0
    torture_strace /dev/null -e trace="$syscall" -e inject="$syscall:signal=KILL:when=$when" \
      "$rwkv" train --config tiny.ini --proj_dir "$dir" --resume auto > "$name.killed.log" 2>&1 || status=$?
    (( status == 137 )) || torture_fail "the run was not killed there (exit $status): $(tail -3 "$name.killed.log")"
    [[ "$what" != *.tmp-* ]] || in_save=$((in_save + 1))
    torture_newest="$(ls "$start" | sed -nE 's/^rwkv-step-([0-9]+)\.h5$/\1/p' | sort -n | tail -1)"
    torture_newest="${torture_newest:--1}"
    torture_expect_start "$name.killed.log" "$dir"
    torture_after_kill "$dir"
    torture_resume "$dir" "$reference"
    count=$((count + 1))
  done
  torture_context=""
  echo "  $name: $count of $n kill points, $in_save of them inside a save, each resumed to the end: identical"
  torture_points_killed=$(( ${torture_points_killed:-0} + count ))
}

# torture_resume_start DIR: the state a kill between saves leaves after step 7 (checkpoints at steps 4 and 6,
# metrics up to step 7 and a torn record of step 8), from which torture_points "resume" starts: its start-up
# must drop the records after step 6 without losing the others.
torture_resume_start() {
  local dir="$PWD/$1"
  "$rwkv" train --config tiny.ini --proj_dir "$dir" --max_steps 7 > "$1.log" 2>&1 ||
    torture_fail "preparing $1: $(tail -5 "$1.log")"
  rm "$dir/rwkv-step-7.h5"
  printf '{"step": 8, "loss": 2.' >> "$dir/metrics.jsonl"
  torture_check state "$dir"
  [ "$torture_reply" = "6 7" ] || torture_fail "preparing $1: expected checkpoint 6 and records 1..7, got $torture_reply"
}

# torture_after_trial LOG DIR NEWEST HOW REFERENCE [launcher...]: after a random or rank trial (a kill, or a run
# that finished first): it started from the newest checkpoint (NEWEST before it), what it left is consistent and
# the newest checkpoint never went back; a run that reached its end is started once more (it only tidies up:
# "nothing to do"), compared with REFERENCE and removed for the next round (counted in torture_rounds).
torture_after_trial() {
  local log="$1" dir="$2" newest="$3" how="$4" reference="$5"
  shift 5
  torture_expect_start "$log" "$dir"
  torture_after_kill "$dir"
  (( torture_newest >= newest )) || torture_fail "the newest checkpoint went back from step $newest to $torture_newest"
  echo "  trial ${log//[!0-9]/}: $how; newest checkpoint: step $torture_newest"
  if [ -f "$dir/rwkv-final.h5" ]; then
    torture_resume "$dir" "$reference" "$@"
    torture_rounds=$((torture_rounds + 1))
    rm -rf "$dir"
    torture_newest=-1
  fi
}

# ---- random kills -----------------------------------------------------------------------------------------

# torture_random KILLS REFERENCE: SIGKILL after a random delay (two trials in three) or as the temporary file of
# a randomly chosen later save appears (one in three), --resume auto after each; every run that reaches its end
# is compared with REFERENCE. Uses $RANDOM (seed it first).
torture_random() {
  local kills_wanted="$1" reference="$2" dir=run-random trial=0 kills=0 in_save=0
  torture_rounds=0
  local pid how target name extra delay newest
  rm -rf "$dir"
  torture_newest=-1
  while (( kills < kills_wanted )); do
    trial=$((trial + 1))
    torture_context="random trial $trial"
    newest="$torture_newest"
    "$rwkv" train --config tiny.ini --proj_dir "$dir" --resume auto > "random$trial.log" 2>&1 &
    pid=$!
    if (( trial % 3 == 0 )); then
      target=$(( (newest < 0 ? 2 : newest + 2) + 2 * (RANDOM % 4) ))
      name="rwkv-step-$target.h5"
      (( target < torture_steps )) || name="rwkv-final.h5"
      while kill -0 "$pid" 2> /dev/null && [ ! -e "$dir/$name.tmp-$pid" ]; do :; done
      extra=$(( RANDOM % 3 ))
      (( extra == 0 )) || sleep "0.00$extra"
      how="while writing $name (+${extra} ms)"
    else
      delay=$(( RANDOM % (torture_run_ms * 3 / 4 + 1) ))
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
      how="after ${delay} ms"
    fi
    if kill -KILL "$pid" 2> /dev/null; then
      wait "$pid" 2> /dev/null || true
      kills=$((kills + 1))
      if compgen -G "$dir/rwkv-*.tmp-$pid" > /dev/null; then
        in_save=$((in_save + 1))
        how="$how, temporary file left"
      fi
    else
      wait "$pid" || torture_fail "the run exited non-zero without being killed: $(tail -5 "random$trial.log")"
      how="(finished before the kill)"
    fi
    torture_after_trial "random$trial.log" "$dir" "$newest" "killed $how" "$reference"
  done
  torture_context="random, the last round"
  [ ! -d "$dir" ] || torture_resume "$dir" "$reference"
  torture_context=""
  echo "  random: $kills kills in $trial trials ($in_save in the middle of a save), $((torture_rounds + 1)) runs compared"
}

# ---- two MPI ranks ------------------------------------------------------------------------------------------

torture_mpirun=(mpirun --allow-run-as-root --oversubscribe -np 2)

# torture_wait_gone TIMEOUT_S PID...: waits until none of the processes exists; fails naming them otherwise.
torture_wait_gone() {
  local limit=$(( $1 * 10 )) tick=0 pid alive
  shift
  while :; do
    alive=""
    for pid in "$@"; do kill -0 "$pid" 2> /dev/null && alive="$alive $pid"; done
    [ -n "$alive" ] || return 0
    (( tick++ < limit )) || torture_fail "processes$alive still run $(( limit / 10 )) s after the kill"
    sleep 0.1
  done
}

# torture_ranks KILLS REFERENCE: the job of 2 ranks under mpirun (REFERENCE is an uninterrupted 2-rank run),
# killed in turn: mpirun after a random delay, one rank after a random delay, mpirun as a save's temporary
# file appears, one rank as it appears. After each kill every process of the job must be gone within
# dist_timeout + 30 s (a rank that outlived its job could write into the next one's proj_dir).
torture_ranks() {
  local kills_wanted="$1" reference="$2" dir=run-ranks trial=0 kills=0 in_save=0
  torture_rounds=0
  local launcher ranks victim how delay target name newest
  rm -rf "$dir"
  torture_newest=-1
  while (( kills < kills_wanted )); do
    trial=$((trial + 1))
    torture_context="ranks trial $trial"
    newest="$torture_newest"
    "${torture_mpirun[@]}" "$rwkv" train --config tiny.ini --proj_dir "$dir" --resume auto > "ranks$trial.log" 2>&1 &
    launcher=$!
    ranks=""
    while kill -0 "$launcher" 2> /dev/null && [ "$(echo $ranks | wc -w)" -lt 2 ]; do
      ranks="$(pgrep -P "$launcher" -f "rwkv train" | tr '\n' ' ' || true)"
    done
    if (( trial % 4 >= 2 )); then
      target=$(( (newest < 0 ? 2 : newest + 2) + 2 * (RANDOM % 4) ))
      name="rwkv-step-$target.h5"
      (( target < torture_steps )) || name="rwkv-final.h5"
      while kill -0 "$launcher" 2> /dev/null && ! compgen -G "$dir/$name.tmp-*" > /dev/null; do :; done
      how="as $name was being written"
    else
      delay=$(( 200 + RANDOM % (torture_run_ms * 3 / 4 + 1) ))
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
      how="after ${delay} ms"
    fi
    if (( trial % 2 == 0 )); then
      victim="$launcher"
      how="mpirun killed $how"
    else
      victim="$(echo $ranks | cut -d' ' -f$(( 1 + RANDOM % 2 )))"
      how="rank pid $victim killed $how"
    fi
    if [ -n "$victim" ] && kill -KILL "$victim" 2> /dev/null; then
      kills=$((kills + 1))
      wait "$launcher" 2> /dev/null || true
      # shellcheck disable=SC2086
      torture_wait_gone 60 $ranks
      if compgen -G "$dir/rwkv-*.tmp-*" > /dev/null; then
        in_save=$((in_save + 1))
        how="$how, temporary file left"
      fi
    else
      wait "$launcher" || torture_fail "the job exited non-zero without a kill: $(tail -5 "ranks$trial.log")"
      how="(finished before the kill)"
    fi
    torture_after_trial "ranks$trial.log" "$dir" "$newest" "$how" "$reference" "${torture_mpirun[@]}"
  done
  torture_context="ranks, the last round"
  [ ! -d "$dir" ] || torture_resume "$dir" "$reference" "${torture_mpirun[@]}"
  torture_context=""
  echo "  2 ranks: $kills kills in $trial trials ($in_save in the middle of a save), $((torture_rounds + 1)) runs compared"
}
