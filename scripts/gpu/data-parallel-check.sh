#!/usr/bin/env bash
# Runs ON the GPU host (called by run-device.sh): the data-parallel path on one GPU. Trains the same model on the
# same random tokens three ways: a plain process, `--gpus 1` (one NCCL rank meeting over the TCP bootstrap) and
# `mpirun -np 1` (one NCCL rank whose id travels over MPI). Prints each run's communicator line, its median
# tokens/s and all-reduce wait after backward (after the first 5 steps) and the largest loss difference to the
# plain run. Exits non-zero when a run
# fails or the losses differ by more than 1e-4.
# Usage: scripts/gpu/data-parallel-check.sh [rwkv binary]
#   CONFIG (default configs/pile-169m.ini), STEPS (30), MICRO_BSZ (16), TOKENS (random tokens, 4000000),
#   PYTHON (python3, with numpy), EXTRA (more `--key value` for every run, e.g. "--device cpu --n_layer 2" to try it without a GPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
rwkv="$(realpath "${1:-.device/rwkv}")"
config=${CONFIG:-configs/pile-169m.ini}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"${PYTHON:-python3}" - "$work/tokens.npy" "${TOKENS:-4000000}" <<'PY'
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(0).integers(0, 50277, size=int(sys.argv[2]), dtype=np.uint16))
PY
# Random sampling (the Pile's magic prime does not fit this data), no checkpoints, the same steps everywhere.
common=(--config "$config" --data_file "$work/tokens.npy" --data_type numpy --magic_prime 0 --my_pile_stage 0
        --micro_bsz "${MICRO_BSZ:-16}" --max_steps "${STEPS:-30}" --epoch_steps 100000 --epoch_save 0
        --save_every_steps 0 --log_every 1 ${EXTRA:-})

status=0
run() {  # run <name> <command...>
  local name=$1
  shift
  echo "== $name: $*"
  if ! "$@" --proj_dir "$work/$name" > "$work/$name.log" 2>&1; then
    tail -n 20 "$work/$name.log"
    echo "== $name FAILED"
    status=1
    return
  fi
  grep -aE "  parallel " "$work/$name.log" | sed "s/\x1b\[K//" || true
}
run plain "$rwkv" train "${common[@]}"
if nvidia-smi -L > /dev/null 2>&1; then
  run gpus1 "$rwkv" train "${common[@]}" --gpus 1
else
  echo "== gpus1: skipped (no GPU)"
fi
if command -v mpirun > /dev/null; then
  run mpirun1 mpirun --allow-run-as-root -np 1 "$rwkv" train "${common[@]}"
else
  echo "== mpirun1: skipped (no mpirun)"
fi

"${PYTHON:-python3}" - "$work" <<'PY' || status=1
import json, os, statistics, sys
work = sys.argv[1]
def records(name):
    path = os.path.join(work, name, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [r for r in map(json.loads, f) if "loss" in r]
plain = records("plain")
worst = 0.0
for name in ("plain", "gpus1", "mpirun1"):
    rs = records(name)
    if not rs:
        continue
    rate = statistics.median(r["tokens_per_s"] for r in rs[5:] or rs)
    line = f"{name:8s} median {rate:12.0f} tokens/s over {len(rs)} steps"
    wait = statistics.median(r.get("reduce_wait_ms", 0.0) for r in rs[5:] or rs)
    line += f", all-reduce wait after backward {wait:.3f} ms"
    if plain and name != "plain":
        diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(plain, rs))
        worst = max(worst, diff)
        plain_rate = statistics.median(r["tokens_per_s"] for r in plain[5:] or plain)
        line += f", {rate / plain_rate:.3f}x plain"
        line += f", max |loss - plain loss| {diff:.2e}"
    print(line)
sys.exit(0 if worst <= 1e-4 else 1)
PY
exit $status
