#!/usr/bin/env bash
# A whole training run against an independent PyTorch implementation of the RWKV-LM recipe
# (tests/reference/train_reference.py): the same initial weights (from `rwkv init`), data, sample offsets, L2Wrap,
# layerwise-lr groups, global-norm clipping, schedule (warmup and decay) and Adam. `rwkv train` (fp32, CPU) must
# give the same loss at every step (relative <= 1e-5), the same lr (1e-8: it is logged with 9 digits) and the same parameters in every
# checkpoint (all parameters as one vector, relative <= 1e-5), run straight through, through a resume in the middle
# and on 2 MPI ranks. Set-ups:
#   b  small epoch_steps, several mini-epochs: warmup, then the exponential decay across mini-epoch boundaries,
#      epoch_save checkpoints; random sampling (magic primes force 40320 samples per mini-epoch)
#   a  the magic prime and my_exit_tokens that `rwkv data-info` suggests for the data: magic-prime samples, warmup
#      then the cosine schedule, the run ending where RWKV-LM ends it (the cosine exit: ceil(p / real_bsz) steps;
#      RWKV-LM has saved rwkv-final after p // real_bsz - 1 steps, trains on and saves it again there)
# RWKV_TRAIN_REFERENCE_SETUPS selects them (default "a b").
# Exits 77 (ctest: skipped) without /usr/bin/python3 with torch, h5py and numpy.
# Usage: train_reference.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
source_dir="$(realpath "$2")"
# Debian's torch is for /usr/bin/python3 (not a pyenv python3 first on PATH); a GPU host may have its own python3.
python=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import torch, h5py, numpy' 2> /dev/null; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "cli train_reference: SKIPPED: no python3 with torch, h5py and numpy" \
    "(Debian: apt-get install python3-torch python3-h5py python3-numpy)"
  exit 77
fi
setups="${RWKV_TRAIN_REFERENCE_SETUPS:-a b}"
enter_work_dir
# One thread per process: the 2-rank runs share a small machine, and the results do not depend on it.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
reference="$source_dir/tests/reference/train_reference.py"
mpi() { timeout 300 mpirun --allow-run-as-root --oversubscribe -np "$@"; }
have_mpi=0
if command -v mpirun > /dev/null; then have_mpi=1; else echo "cli train_reference: no mpirun: the 2-rank runs are skipped"; fi

# 5400 tokens over a vocabulary of 128, t' = (5 t + 17 + r) mod 128 with r in 0..7 from an LCG (so the loss can
# fall from ln 128 towards ln 8), in documents of 600 tokens: 168 chunks of ctx_len 32.
"$python" - > tokens.txt <<'PY'
state, t, out = 12345, 0, []
for i in range(5400):
    state = (state * 1103515245 + 12345) % 2**31
    t = (5 * t + 17 + (state >> 16) % 8) % 128
    out.append(t)
for d in range(0, len(out), 600):
    print(" ".join(map(str, out[d:d + 600])))
PY
"$python" "$source_dir/tests/data/write_binidx.py" data --dtype uint16 --tokens tokens.txt
printf 'n_layer = 2\nn_embd = 64\nctx_len = 32\nvocab_size = 128\nseed = 7\n' > model.ini
"$rwkv" init --config model.ini --out init.h5 > /dev/null

# What both set-ups share: L2-D64, ctx 32, global batch 4, fp32 on the CPU, from init.h5 (fresh Adam, warmup).
lr_init=3e-3 lr_final=1e-4 warmup=5
cat > common.ini <<INI
data_file = data
data_type = binidx
vocab_size = 128
n_layer = 2
n_embd = 64
ctx_len = 32
micro_bsz = 4
load_model = init.h5
lr_init = $lr_init
lr_final = $lr_final
warmup_steps = $warmup
precision = fp32
device = cpu
keep_last = 0
log_every = 1000
INI
common_reference=(--weights init.h5 --data data --ctx_len 32 --micro_bsz 4 --lr_init "$lr_init" --lr_final "$lr_final"
  --warmup_steps "$warmup")
failures=0

# train_variants <setup> <resume step> <checkpoint args for compare, with DIR for the run's proj_dir...>
# Runs the set-up straight through, with --max_steps <resume step> then --resume auto, and on 2 ranks x micro_bsz 2;
# compares each with the reference (<setup>_ref.h5).
train_variants() {
  local setup="$1" resume_step="$2"
  shift 2
  local variant dir args
  for variant in plain resume two_ranks; do
    dir="${setup}_$variant"
    case "$variant" in
      plain) "$rwkv" train --config "$setup.ini" --proj_dir "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; fail "$dir"; } ;;
      resume)
        "$rwkv" train --config "$setup.ini" --proj_dir "$dir" --max_steps "$resume_step" > "$dir.log" 2>&1 \
          || { cat "$dir.log"; fail "$dir: first part"; }
        "$rwkv" train --config "$setup.ini" --proj_dir "$dir" --resume auto >> "$dir.log" 2>&1 \
          || { cat "$dir.log"; fail "$dir: resumed part"; }
        grep -q "resumed from $dir/rwkv-step-$resume_step.h5" "$dir.log" \
          || { cat "$dir.log"; fail "$dir: did not resume from step $resume_step"; }
        ;;
      two_ranks)
        [ "$have_mpi" = 1 ] || continue
        if ! mpi 2 "$rwkv" train --config "$setup.ini" --proj_dir "$dir" --micro_bsz 2 > "$dir.log" 2>&1; then
          if grep -q "built without MPI" "$dir.log"; then
            echo "cli train_reference: this rwkv was built without MPI: the 2-rank runs are skipped"
            have_mpi=0
            continue
          fi
          cat "$dir.log"
          fail "$dir"
        fi
        ;;
    esac
    args=()
    for arg in "$@"; do args+=("${arg//DIR/$dir}"); done
    if [ "$variant" = resume ]; then
      args+=(--checkpoint "$resume_step:$dir/rwkv-step-$resume_step.h5" --identical_to "${setup}_plain")
    fi
    "$python" "$reference" compare --reference "${setup}_ref.h5" --run "$dir" --label "$dir" "${args[@]}" \
      || failures=$((failures + 1))
  done
}

for setup in $setups; do
  case "$setup" in
    b)
      # 6 mini-epochs of 8 steps (48 steps), warmup 5, exponential decay by the absolute step; epoch_save 2 saves
      # rwkv-0, rwkv-2 and rwkv-4 (after steps 8, 24, 40), then rwkv-final. The resume starts mid-mini-epoch.
      { cat common.ini; printf 'epoch_steps = 8\nepoch_count = 6\nepoch_save = 2\n'; } > b.ini
      "$python" "$reference" train "${common_reference[@]}" --epoch_steps 8 --epoch_count 6 --save_steps 8,20,24,40 \
        --out b_ref.h5
      train_variants b 20 --final DIR/rwkv-final.h5 --checkpoint 8:DIR/rwkv-0.h5 --checkpoint 24:DIR/rwkv-2.h5 \
        --checkpoint 40:DIR/rwkv-4.h5
      ;;
    a)
      # The prime and token budget `rwkv data-info` prints for this data (RWKV-LM's rules: the reference checks
      # that dataset.py would accept the prime), Pile stage 2 (every time_* parameter at 5x).
      "$rwkv" data-info --data data --ctx_len 32 > data-info.txt
      prime="$(sed -n 's/^magic_prime: *\([0-9][0-9]*\) .*/\1/p' data-info.txt)"
      exit_tokens="$(sed -n 's/^my_exit_tokens: *\([0-9][0-9]*\) .*/\1/p' data-info.txt)"
      [ -n "$prime" ] && [ -n "$exit_tokens" ] || { cat data-info.txt; fail "data-info printed no magic_prime"; }
      echo "set-up a: data-info suggests magic_prime $prime, my_exit_tokens $exit_tokens"
      { cat common.ini; printf 'magic_prime = %s\nmy_exit_tokens = %s\nmy_pile_stage = 2\nepoch_save = 0\n' \
        "$prime" "$exit_tokens"; } > a.ini
      "$python" "$reference" train "${common_reference[@]}" --magic_prime "$prime" --my_exit_tokens "$exit_tokens" \
        --my_pile_stage 2 --save_steps 20 --out a_ref.h5
      train_variants a 20 --final DIR/rwkv-final.h5
      ;;
    *) fail "RWKV_TRAIN_REFERENCE_SETUPS: unknown set-up '$setup' (a, b)" ;;
  esac
done
[ "$failures" -eq 0 ] || fail "$failures run(s) differ from the PyTorch reference"
echo "cli train_reference: set-ups '$setups' match the PyTorch reference"
