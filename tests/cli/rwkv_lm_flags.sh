#!/usr/bin/env bash
# RWKV-LM command lines run unchanged: `python train.py <flags>` becomes `rwkv train <flags>`. A tiny run with the
# flags of RWKV-LM's README (no config file), the startup notes for flags that only steer Lightning/DeepSpeed,
# --devices/--num_nodes picking the ranks, and model variants refused by name.
# Usage: rwkv_lm_flags.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
enter_work_dir
write_tiny_corpus

# RWKV-LM's README line with a tiny model, byte-level data and the CPU.
readme_flags=(--load_model "" --wandb "" --proj_dir out --data_file corpus.txt --data_type bytes --vocab_size 256
  --ctx_len 16 --epoch_steps 3 --epoch_count 1 --epoch_begin 0 --epoch_save 0 --micro_bsz 2 --n_layer 2 --n_embd 16
  --pre_ffn 0 --head_qk 0 --lr_init 1e-3 --lr_final 1e-4 --warmup_steps 0 --beta1 0.9 --beta2 0.99 --adam_eps 1e-8
  --accelerator cpu --devices 1 --precision fp32 --strategy deepspeed_stage_2 --grad_cp 0 --random_seed 5)
"$rwkv" train "${readme_flags[@]}" > run.log 2>&1 || { cat run.log; fail "the README flags did not train"; }
grep -q '^note: strategy deepspeed_stage_2: no DeepSpeed' run.log || { cat run.log; fail "no strategy note"; }
grep -q 'fresh init (seed 5)' run.log || { cat run.log; fail "random_seed 5 was not the seed"; }
grep -q '^done at step 3; checkpoint out/rwkv-final.h5' run.log || { cat run.log; fail "did not end at step 3"; }
[ "$(grep -c '^note:' run.log)" = 1 ] || { cat run.log; fail "expected exactly one note"; }

# Runs rwkv, which must fail with a message matching $1 and create no proj_dir.
refused() {
  local pattern="$1"
  shift
  rm -rf refused_dir
  if "$rwkv" "$@" --proj_dir refused_dir > out.log 2>&1; then cat out.log; fail "$* succeeded"; fi
  grep -Eq -- "$pattern" out.log || { cat out.log; fail "$*: expected a message matching '$pattern'"; }
  [ ! -d refused_dir ] || fail "$*: created proj_dir before refusing"
  [ "$(wc -l < out.log)" -le 2 ] || { cat out.log; fail "$*: expected a one-line error"; }
}
tiny=(train --data_file corpus.txt --data_type bytes --n_layer 2 --n_embd 16 --ctx_len 16 --max_steps 1)
refused "pre_ffn 1 is refused: pre_ffn \(a ChannelMix" "${tiny[@]}" --pre_ffn 1
refused "head_qk 8 is refused" "${tiny[@]}" --head_qk 8
refused "my_pos_emb 2 is refused" "${tiny[@]}" --my_pos_emb 2
refused "tiny_att_dim 64 is refused" "${tiny[@]}" --tiny_att_dim 64
refused "my_qa_mask 1 is refused" "${tiny[@]}" --my_qa_mask 1
refused "precision fp16 is refused" "${tiny[@]}" --precision fp16
refused "num_nodes 2: start the 4 ranks with a launcher" "${tiny[@]}" --num_nodes 2 --devices 2 --accelerator gpu
RANK=0 WORLD_SIZE=2 refused "devices 3 x num_nodes 1 = 3 ranks, but the launcher started 2" "${tiny[@]}" --devices 3
gpus="$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)"
if [ "${gpus:-0}" -lt 2 ]; then  # --devices 2 on a GPU accelerator is --gpus 2
  refused "--devices 2: this machine has [0-9]+ usable CUDA GPU" "${tiny[@]}" --devices 2 --accelerator gpu
fi

# devices > 1 with accelerator cpu: one process, said so.
"$rwkv" "${tiny[@]}" --devices 2 --accelerator cpu --proj_dir cpu_run > cpu.log 2>&1 || { cat cpu.log; fail "cpu run"; }
grep -q '^note: devices 2 with accelerator cpu: one process' cpu.log || { cat cpu.log; fail "no devices note"; }

# RWKV-LM's fine-tuning knobs train: dropout, a weight-decay schedule.
"$rwkv" train --data_file corpus.txt --data_type bytes --n_layer 2 --n_embd 16 --ctx_len 16 --max_steps 2 --dropout 0.1 --weight_decay 0.1 --weight_decay_final 0.01 --proj_dir knobs \
  > knobs.log 2>&1 || { cat knobs.log; fail "dropout / weight_decay_final run"; }
grep -q '^done at step 2' knobs.log || { cat knobs.log; fail "dropout run did not reach step 2"; }

"$rwkv" train --help > help.txt
for expected in "RWKV-LM command lines run unchanged" "strategy: " "pre_ffn: refused unless 0" "devices: "; do
  grep -qF -- "$expected" help.txt || fail "--help lacks '$expected'"
done
echo "cli rwkv_lm_flags: all checks passed"
