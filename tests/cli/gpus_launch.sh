#!/usr/bin/env bash
# `rwkv train --gpus N` refuses what it cannot do before starting anything: too few GPUs (this CI machine has
# none), a device that is not a GPU, a bad count, a process that is already a launched rank. (The supervisor
# itself is tested by LocalLauncherTest; a real multi-GPU launch needs GPUs.)
# Usage: gpus_launch.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
enter_work_dir
write_tiny_corpus
printf 'data_file = corpus.txt\ndata_type = bytes\nn_layer = 1\nn_embd = 16\nctx_len = 16\nmax_steps = 1\n' > tiny.ini

# Runs rwkv, which must fail with a message matching $1.
refused() {
  local pattern="$1"
  shift
  if "$rwkv" "$@" > out.log 2>&1; then cat out.log; fail "$* succeeded"; fi
  grep -Eq -- "$pattern" out.log || { cat out.log; fail "$*: expected a message matching '$pattern'"; }
  [ ! -d out ] || fail "$*: created proj_dir before refusing"
}

refused "--gpus: expected at least 1 GPU, got 0" train --config tiny.ini --gpus 0
refused "--gpus: expected a number of GPUs, got 'two'" train --config tiny.ini --gpus two
refused "cannot be combined with device = cpu" train --config tiny.ini --gpus 2 --device cpu
RANK=1 WORLD_SIZE=2 refused "already rank 1 of 2" train --config tiny.ini --gpus 2
gpus="$(nvidia-smi -L 2> /dev/null | grep -c '^GPU' || true)"
if [ "${gpus:-0}" -lt 2 ]; then
  refused "--gpus 2: this machine has [0-9]+ usable CUDA GPU" train --config tiny.ini --gpus 2
  refused "--gpus 3: this machine has" train --config tiny.ini --gpus=3
fi
echo "cli gpus_launch: all checks passed"
