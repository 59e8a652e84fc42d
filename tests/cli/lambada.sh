#!/usr/bin/env bash
# End-to-end test of `rwkv eval --lambada`: the numbers of a byte-level model match the independent PyTorch
# reference (tests/reference/lambada_reference.py, which splits and tokenizes the file itself), the text and
# JSON outputs, the errors for bad lines, and the GPT-NeoX tokenizer path when its tokenizer.json is present.
# Usage: lambada.sh <path-to-rwkv> <source-dir>
set -euo pipefail
rwkv="$1"
source_dir="$2"
source "$source_dir/tests/cli/lib/common.bash"
enter_work_dir

write_tiny_model
fixture="$source_dir/tests/train/files/lambada_sentences.jsonl"

# ---- text and JSON output --------------------------------------------------------------------------------
"$rwkv" eval --model model.h5 --lambada "$fixture" > text.txt 2> text.err || fail "eval failed: $(cat text.err)"
grep -Eq '^ppl [0-9.]+  acc [0-9.]+  \(7 examples, [0-9]+ target tokens\)' text.txt || fail "text output: $(cat text.txt)"
"$rwkv" eval --model model.h5 --lambada "$fixture" --json --batch 3 > ours.json || fail "eval --json failed"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["examples"] == 7 and r["ppl"] > 1 and 0 <= r["acc"] <= 1, r' \
  ours.json || fail "json output: $(cat ours.json)"

# ---- against the reference -------------------------------------------------------------------------------
if /usr/bin/python3 -c 'import torch, h5py' > /dev/null 2>&1; then
  /usr/bin/python3 "$source_dir/tests/reference/lambada_reference.py" --weights model.h5 --jsonl "$fixture" --json \
    > reference.json || fail "reference failed"
  python3 - ours.json reference.json <<'PY' || fail "ours $(cat ours.json) vs reference $(cat reference.json)"
import json, sys
ours, ref = (json.load(open(p)) for p in sys.argv[1:3])
assert ours["examples"] == ref["examples"] == 7, (ours, ref)
assert abs(ours["ppl"] - ref["ppl"]) <= 1e-5 * ref["ppl"], (ours["ppl"], ref["ppl"])
assert abs(ours["mean_logprob"] * 7 - sum(ref["logprob"])) <= 1e-5 * abs(sum(ref["logprob"]))
assert ours["acc"] == ref["acc"], (ours["acc"], ref["acc"])
PY
else
  echo "SKIP reference comparison: /usr/bin/python3 has no torch/h5py"
fi

# ---- bad input ---------------------------------------------------------------------------------------------
expect_error() {  # expect_error PATTERN ARGS...: the command fails and stderr matches PATTERN
  local pattern="$1"
  shift
  if "$rwkv" eval "$@" > out.txt 2> err.txt; then fail "eval $* succeeded"; fi
  grep -q -- "$pattern" err.txt || fail "eval $*: expected '$pattern' in: $(cat err.txt)"
  grep -q "^rwkv eval: error:" err.txt || fail "not a clean error: $(cat err.txt)"
}
printf '{"text": "a b"}\n{"text" "a b"}\n' > notjson.jsonl
expect_error "notjson.jsonl:2: not JSON" --model model.h5 --lambada notjson.jsonl
printf '{"text": "a b"}\n\n{"words": "a b"}\n' > notext.jsonl
expect_error 'notext.jsonl:3: the object has no "text" field' --model model.h5 --lambada notext.jsonl
printf '{"text": ["a b"]}\n' > notstring.jsonl
expect_error 'notstring.jsonl:1: "text" is an array, expected a string' --model model.h5 --lambada notstring.jsonl
printf '{"text": "a b"}\n{"text": "oneword"}\n' > nospace.jsonl
expect_error "nospace.jsonl:2: the text has no space" --model model.h5 --lambada nospace.jsonl
expect_error "cannot open 'missing.jsonl'" --model model.h5 --lambada missing.jsonl
expect_error "exactly one of --data and --lambada" --model model.h5
expect_error "exactly one of --data and --lambada" --model model.h5 --lambada "$fixture" --data x.txt
printf 'n_layer = 2\nn_embd = 32\nctx_len = 64\nvocab_size = 100\nseed = 3\n' > small.ini
"$rwkv" init --config small.ini --out small.h5 > /dev/null
expect_error "starts every example with token 187" --model small.h5 --lambada "$fixture"

# ---- the held-out loss usage still works ---------------------------------------------------------------------
write_tiny_corpus
"$rwkv" eval --model model.h5 --data corpus.txt --data_type bytes --ctx_len 32 --json > heldout.json \
  || fail "eval --data failed"
grep -q '"loss"' heldout.json || fail "held-out output: $(cat heldout.json)"

# ---- the GPT-NeoX tokenizer ----------------------------------------------------------------------------------
tokenizer="${RWKV_TOKENIZER_JSON:-$source_dir/../shared/data/20B_tokenizer.json}"
if [ -f "$tokenizer" ]; then
  printf 'n_layer = 2\nn_embd = 32\nctx_len = 64\nvocab_size = 50277\nseed = 3\n' > neox.ini
  "$rwkv" init --config neox.ini --out neox.h5 > /dev/null
  "$rwkv" eval --model neox.h5 --lambada "$fixture" --tokenizer "$tokenizer" --json > neox.json \
    || fail "eval with the 20B tokenizer failed"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["examples"] == 7 and r["ppl"] > 1, r' \
    neox.json || fail "20B output: $(cat neox.json)"
  expect_error "pass --tokenizer" --model neox.h5 --lambada "$fixture"
else
  echo "SKIP 20B tokenizer part: $tokenizer not found (set RWKV_TOKENIZER_JSON)"
fi
echo "lambada: ok"
