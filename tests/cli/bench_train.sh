#!/usr/bin/env bash
# `rwkv bench train` end to end: the text report, --json for scripts, the `rwkv bench --config F` shorthand, and
# bad options. Usage: bench_train.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$1"
enter_work_dir

# The data file is never read: byte data implies vocab 256 even when the file does not exist.
cat > tiny.ini <<'INI'
data_file = no-such-file.txt
data_type = bytes
device = cpu
n_layer = 2
n_embd = 32
ctx_len = 16
micro_bsz = 2
INI

"$rwkv" bench train --config tiny.ini --steps 2 --warmup 1 > text.log
for field in "tokens/s" "ms per step" "forward" "backward" "optimizer" "MFU          n/a" "peak memory" "GEMMs" \
             "vocab 256"; do
  grep -q "$field" text.log || fail "the text report has no '$field':"$'\n'"$(cat text.log)"
done

"$rwkv" bench --config tiny.ini --steps 2 --warmup 0 --micro_bsz 3 --json > out.json
/usr/bin/python3 - out.json <<'PY' || fail "bad JSON: $(cat out.json)"
import json, math, sys
report = json.load(open(sys.argv[1]))
assert report["micro_bsz"] == 3 and report["tokens_per_step"] == 48 and report["steps"] == 2, report
for key in ("tokens_per_second", "step_ms", "forward_ms", "backward_ms", "optimizer_ms", "peak_memory_bytes"):
    assert math.isfinite(report[key]) and report[key] > 0, (key, report[key])
assert report["mfu"] is None and report["device"] == "cpu", report
PY

# A diverging run (lr 1e30) still prints strict JSON: non-finite numbers are null, never nan or inf.
"$rwkv" bench --config tiny.ini --steps 3 --warmup 0 --lr_init 1e30 --lr_final 1e30 --json > diverged.json
/usr/bin/python3 - diverged.json <<'PY' || fail "not strict JSON: $(cat diverged.json)"
import json, sys
def refuse(constant):
    raise ValueError("non-JSON constant " + constant)
report = json.loads(open(sys.argv[1]).read(), parse_constant=refuse)
assert report["last_loss"] is None or isinstance(report["last_loss"], float), report
PY

if "$rwkv" bench train --config tiny.ini --steps 0 2> steps.err; then fail "--steps 0 was accepted"; fi
grep -q -- "--steps" steps.err || fail "the --steps error does not name it: $(cat steps.err)"
if "$rwkv" bench --config tiny.ini --data_type binidx 2> vocab.err; then fail "a missing vocab_size was accepted"; fi
grep -q "vocab_size" vocab.err || fail "the vocab error does not name vocab_size: $(cat vocab.err)"
echo "bench_train: ok"
