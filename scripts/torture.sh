#!/usr/bin/env bash
# The long crash-consistency torture (not in CI; tests/cli/crash_torture.sh is CI's short version). A tiny CPU
# training run (validation every 5 steps, checkpoints every 2 steps, 2 kept) is killed with SIGKILL and resumed
# with `--resume auto`, and every run taken to its end is compared bit for bit with an uninterrupted one:
#   points   every syscall that changes proj_dir in a resume's start-up and in a whole fresh run (strace);
#   random   --kills N kills at random moments, a third as a save's temporary file appears;
#   ranks    --kills N kills of a 2-rank mpirun job with gradient accumulation: mpirun or one rank, after a
#            random delay or as a save's temporary file appears.
# Usage: scripts/torture.sh [--kills N] [--only points|random|ranks] [--rwkv PATH] [--seed S]
#   --kills N   random kills, and kills of the 2-rank job (default 200 each)
#   --every K   points: kill at every K-th point of the fresh run (default 1: all of them)
# Prints one line per kill and a summary; exits non-zero at the first failure with its seed and kill point.
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
source "$source_dir/tests/cli/lib/common.bash"
source "$source_dir/tests/cli/lib/torture.bash"

kills=200
every=1
only=""
rwkv="$source_dir/build/train/rwkv"
seed="$(( $(date +%s) % 100000 ))"
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --every) every="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --rwkv) rwkv="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "scripts/torture.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
rwkv="$(realpath "$rwkv")"
[ -x "$rwkv" ] || { echo "scripts/torture.sh: no rwkv binary at $rwkv (build first: scripts/build.sh)" >&2; exit 2; }
python=/usr/bin/python3
"$python" -c "import h5py, numpy" || { echo "scripts/torture.sh: needs python3-h5py and python3-numpy" >&2; exit 2; }
wants() { [ -z "$only" ] || [ "$only" = "$1" ]; }
enter_work_dir
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
RANDOM="$seed"
echo "torture: seed $seed (replay with --seed $seed), $kills kills, work dir $work"

torture_write_config 30
torture_start_checker
torture_reference "$PWD/reference"
echo "reference run: ${torture_run_ms} ms"

if wants points; then
  command -v strace > /dev/null || { echo "scripts/torture.sh: points need strace" >&2; exit 2; }
  torture_resume_start resume-start
  torture_points resume "$PWD/resume-start" "until:metrics.jsonl" "$PWD/reference"
  mkdir -p empty
  torture_points fresh "$PWD/empty" "::$every" "$PWD/reference"
fi
if wants random; then
  torture_random "$kills" "$PWD/reference"
fi
if wants ranks; then
  command -v mpirun > /dev/null || { echo "scripts/torture.sh: ranks need mpirun" >&2; exit 2; }
  # 2 ranks x micro_bsz 1 x accumulate 2; a hung rank ends the job after 20 s instead of 600.
  torture_write_config 30 "micro_bsz = 1" "accumulate_grad_batches = 2" "dist_timeout = 20"
  torture_reference "$PWD/reference-ranks" "${torture_mpirun[@]}"
  echo "2-rank reference run: ${torture_run_ms} ms"
  torture_ranks "$kills" "$PWD/reference-ranks"
fi
echo "torture: all checks passed (seed $seed; ${torture_points_killed:-0} kill points; ${SECONDS} s)"
