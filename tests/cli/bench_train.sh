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

# --profile: the time per op family after the timed steps, in the text and in the JSON.
"$rwkv" bench train --config tiny.ini --steps 1 --warmup 0 --profile 2 > profile.log
for field in "per op family (wall clock" "gemm" "wkv forward" "wkv backward" "optimizer" "(in no op"; do
  grep -qF "$field" profile.log || fail "the profile has no '$field':"$'\n'"$(cat profile.log)"
done
"$rwkv" bench train --config tiny.ini --steps 1 --warmup 0 --profile 1 --json > profile.json
/usr/bin/python3 - profile.json <<'PY' || fail "bad profile JSON: $(cat profile.json)"
import json, sys
report = json.load(open(sys.argv[1]))
families = {f["family"]: f for f in report["profile"]}
assert {"gemm", "wkv forward", "wkv backward", "cross-entropy", "optimizer"} <= set(families), families
assert all(f["calls_per_step"] >= 1 and f["ms_per_step"] >= 0 for f in families.values()), families
assert sum(f["ms_per_step"] for f in families.values()) <= report["profiled_step_ms"] * 1.001, report
PY
json_without_profile=$("$rwkv" bench train --config tiny.ini --steps 1 --warmup 0 --json)
[[ "$json_without_profile" == *'"profile": []'* ]] || fail "no --profile should give an empty profile: $json_without_profile"

if "$rwkv" bench train --config tiny.ini --steps 0 2> steps.err; then fail "--steps 0 was accepted"; fi
grep -q -- "--steps" steps.err || fail "the --steps error does not name it: $(cat steps.err)"
if "$rwkv" bench --config tiny.ini --data_type binidx 2> vocab.err; then fail "a missing vocab_size was accepted"; fi
grep -q "vocab_size" vocab.err || fail "the vocab error does not name vocab_size: $(cat vocab.err)"
# --official: RWKV-LM's five workloads in one call. Shrunk to fit this machine (the keys given apply to every
# row), the table must say the rows are not comparable and give no ratio; micro_bsz and grad_cp stay the
# workloads' own (16, 16 with grad_cp, 32, 16, 8).
small=(--device cpu --n_layer 2 --n_embd 32 --ctx_len 8 --vocab_size 64 --steps 1 --warmup 0)
"$rwkv" bench train --official "${small[@]}" > official.log 2> official.err || fail "--official failed: $(cat official.err)"
for field in "RWKV-LM v4neo" "not comparable with the official figures: given n_layer n_embd ctx_len vocab_size"              "| 169M B16 |" "| 169M B16 grad_cp |" "| 169M B32 |" "| 430M B16 |" "| 1.5B B8 |" "x official"; do
  grep -qF "$field" official.log || fail "the --official table has no '$field':"$'\n'"$(cat official.log)"
done
grep -F "| 169M B16 |" official.log | grep -qF "| - |" || fail "a shrunk row shows a ratio: $(cat official.log)"
if grep -qE ": (NOT )?met \|" official.log; then fail "a shrunk row claims a goal: $(cat official.log)"; fi
"$rwkv" bench train --official "${small[@]}" --json > official.json 2> /dev/null
/usr/bin/python3 - official.json <<'PY' || fail "bad --official JSON: $(cat official.json)"
import json, sys
suite = json.load(open(sys.argv[1]))
assert suite["suite"] == "official" and suite["comparable"] is False, suite
rows = suite["rows"]
assert [r["workload"] for r in rows] == ["169M B16", "169M B16 grad_cp", "169M B32", "430M B16", "1.5B B8"], rows
assert [r["report"]["micro_bsz"] for r in rows] == [16, 16, 32, 16, 8], rows
assert rows[0]["official_tokens_per_second"] == 156000 and rows[1]["official_tokens_per_second"] is None, rows
assert all(r["goal_met"] is None and r["report"]["tokens_per_second"] > 0 for r in rows), rows
assert all(r["report"]["ctx_len"] == 8 and r["report"]["peak_memory_bytes"] > 0 for r in rows), rows
PY

echo "bench_train: ok"
