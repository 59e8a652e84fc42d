#!/usr/bin/env bash
# Crash consistency, CI's short version (tests/cli/lib/torture.bash says what is checked; scripts/torture.sh is
# the long one). A tiny CPU training run is killed with SIGKILL and resumed with `--resume auto`:
#   1. deterministically, just before every syscall that changes proj_dir during a resume's start-up (the
#      metrics log's rewrite, run.json, the first appends) and during one checkpoint save with its rotation and
#      loss.svg, and a spread of the final save; each killed run is resumed to its end and compared;
#   2. at random moments (a third of them as a save's temporary file appears).
# Usage: crash_torture.sh <path-to-rwkv> <source-dir>
# Environment: RWKV_TORTURE_SEED (random kills; default from the clock, printed so that a failure replays),
#              RWKV_TORTURE_TRIALS (random kills, default 6).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib/torture.bash"
rwkv="$(realpath "$1")"
python=/usr/bin/python3
"$python" -c "import h5py, numpy" 2> /dev/null || { echo "SKIP: $python with h5py and numpy is needed"; exit 0; }
command -v strace > /dev/null || { echo "SKIP: strace is needed (scripts/install-deps.sh --test installs it)"; exit 0; }
enter_work_dir
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

seed="${RWKV_TORTURE_SEED:-$(( $(date +%s) % 100000 ))}"
RANDOM="$seed"
echo "crash torture: seed $seed (replay with RWKV_TORTURE_SEED=$seed)"
torture_write_config 16
torture_start_checker
torture_reference "$PWD/reference"
echo "reference run: ${torture_run_ms} ms"

# 1. Kill points. A resume's start-up, from a state with records after the newest checkpoint and a torn line:
#    every point up to its first step's metrics record.
torture_resume_start resume-start
torture_points resume "$PWD/resume-start" "until:metrics.jsonl" "$PWD/reference"
# A fresh run: every point of the save at step 6 and the rotation that deletes step 2's checkpoint, then a
# spread over the rest of the run (the final save included).
mkdir empty
torture_points save "$PWD/empty" "save:rwkv-step-6.h5" "$PWD/reference"
torture_points spread "$PWD/empty" "spread:4" "$PWD/reference"

# 2. Random kills.
torture_random "${RWKV_TORTURE_TRIALS:-6}" "$PWD/reference"
echo "cli crash_torture: all checks passed ($torture_points_killed kill points; seed $seed; ${SECONDS} s)"
