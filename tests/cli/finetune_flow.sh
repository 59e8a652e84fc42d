#!/usr/bin/env bash
# The small-data fine-tune flow of the README, end to end: `rwkv tokenize --ctx_len` suggests RWKV-LM flags (a
# magic prime far below one mini-epoch of 40320 samples), those flags go straight into `rwkv train` on top of a
# config, the run ends where tokenize said (rwkv-final.h5), and `rwkv generate` samples from it. Also the prime
# alone (no my_exit_tokens): the run ends at p // batch - 1, where RWKV-LM saves rwkv-final, at constant lr_init.
# Usage: finetune_flow.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
source_dir="$(realpath "$2")"
tokenizer="${RWKV_TOKENIZER_JSON:-$source_dir/../shared/data/20B_tokenizer.json}"
if [ ! -f "$tokenizer" ]; then
  echo "SKIP: GPT-NeoX 20B tokenizer.json not found at $tokenizer (set RWKV_TOKENIZER_JSON)"
  exit 0
fi
enter_work_dir
# 668 lines of 14 tokens (+ 86): 9438 tokens, 294 chunks of ctx_len 32, and 293 is a prime p % 3 == 2 within the
# 1% that RWKV-LM's dataset.py demands (0.99 < p / chunks): tiny data rarely has one (see data-info).
for i in $(seq 1 668); do echo "line $i: the quick brown fox jumps over the lazy dog."; done > text.txt

"$rwkv" tokenize --tokenizer "$tokenizer" --input text.txt --output data/mytext --ctx_len 32 --micro_bsz 4 > tok.log 2>&1 \
  || { cat tok.log; fail "tokenize"; }
flags="$(sed -nE 's/^  train with: (.*)$/\1/p' tok.log)"
steps="$(sed -nE 's/^  that run: +([0-9]+) steps at a global batch of 4 with --my_exit_tokens.*/\1/p' tok.log)"
prime="$(sed -nE 's/.*--magic_prime ([0-9]+).*/\1/p' <<< "$flags")"
[ -n "$flags" ] && [ -n "$steps" ] && [ -n "$prime" ] || { cat tok.log; fail "tokenize printed no flags or steps"; }
[ "$prime" -lt 40320 ] || fail "the test wants a prime below one mini-epoch, got $prime"
[ "$steps" = $(((prime + 3) / 4)) ] || fail "tokenize says $steps steps for p = $prime at batch 4"
"$rwkv" data-info --data data/mytext --ctx_len 32 --micro_bsz 4 > info.log 2>&1 || { cat info.log; fail "data-info"; }
grep -q "^steps: *$steps steps at a global batch of 4" info.log || { cat info.log; fail "data-info steps differ"; }

# "Pre-trained" weights with the tokenizer's vocabulary, and a fine-tune config as a user would write it.
printf 'n_layer = 2\nn_embd = 16\nctx_len = 32\nvocab_size = 50277\nseed = 3\n' > base.ini
"$rwkv" init --config base.ini --out base.h5 > /dev/null
cat > ft.ini <<INI
load_model = base.h5
proj_dir = ft
n_layer = 2
n_embd = 16
micro_bsz = 4
lr_init = 1e-3
lr_final = 1e-4
warmup_steps = 0
device = cpu
INI
# shellcheck disable=SC2086  # the suggested flags are words
"$rwkv" train --config ft.ini $flags > train.log 2>&1 || { cat train.log; fail "train with the suggested flags"; }
grep -q "ends at step $steps (my_exit_tokens" train.log || { cat train.log; fail "startup table: not step $steps"; }
grep -q "^done at step $steps; checkpoint ft/rwkv-final.h5" train.log || { cat train.log; fail "not done at $steps"; }
"$rwkv" generate --model ft/rwkv-final.h5 --tokenizer "$tokenizer" --prompt "The trainer" --tokens 8 --seed 1 \
  > sample.txt 2> gen.err || { cat gen.err; fail "generate"; }
grep -q "^The trainer" sample.txt || fail "generate printed: $(cat sample.txt)"

# The prime alone: RWKV-LM's rwkv-final step, p // 4 - 1, and lr_init throughout (epoch_count is 0).
alone=$((prime / 4 - 1))
"$rwkv" train --config ft.ini --magic_prime "$prime" --ctx_len 32 --data_file data/mytext --vocab_size 50277 \
  --proj_dir ft_alone > alone.log 2>&1 || { cat alone.log; fail "train with the prime alone"; }
grep -q "ends at step $alone (one pass over the $prime chunks" alone.log || { cat alone.log; fail "not $alone"; }
grep -q "^done at step $alone; checkpoint ft_alone/rwkv-final.h5" alone.log || { cat alone.log; fail "end"; }
grep -q "^step $alone/$alone | .* | lr 1.000e-03 |" alone.log || { cat alone.log; fail "lr is not lr_init"; }
echo "cli finetune_flow: all checks passed (p = $prime, $steps steps; alone $alone)"
