#!/usr/bin/env bash
# End-to-end test of `rwkv generate --state-out/--state-in`: generating after a saved state gives exactly the text
# of one uninterrupted run with the same seed (also with the prompt split across the two runs); a state from a
# model of other dimensions, or a file that is not a state, is refused with an error naming the file and field.
# Usage: generate_state.sh <path-to-rwkv> <source-dir>
set -euo pipefail
rwkv="$1"
source_dir="$2"
source "$source_dir/tests/cli/lib/common.bash"
enter_work_dir

write_tiny_model
gen() { "$rwkv" generate --model model.h5 --top_p 0.9 "$@"; }

a="The cat sat on the mat."
b=" The dog sat on the log."
# generate prints the prompt, the generated text, then a newline.
gen --prompt "$a$b" --tokens 40 --seed 11 > full.txt
gen --prompt "$a$b" --tokens 40 --seed 12 > other_seed.txt
cmp -s full.txt other_seed.txt && fail "the seed changes nothing: the comparison below would prove nothing"

# ---- the whole prompt in the state, nothing more read ------------------------------------------------------
gen --prompt "$a$b" --tokens 0 --state-out ab.h5 > /dev/null || fail "--state-out failed"
[ -f ab.h5 ] || fail "no state file written"
ls | grep -q '\.tmp-' && fail "temporary file left behind: $(ls)"
gen --state-in ab.h5 --tokens 40 --seed 11 > resumed.txt || fail "--state-in failed"
{ printf '%s' "$a$b"; cat resumed.txt; } | cmp -s - full.txt || fail "resumed text differs from the uninterrupted one"

# ---- the prompt split across the two runs -------------------------------------------------------------------
gen --prompt "$a" --tokens 5 --seed 99 --state-out a.h5 > /dev/null || fail "--state-out with tokens failed"
gen --state-in a.h5 --prompt "$b" --tokens 40 --seed 11 > split.txt || fail "--state-in with a prompt failed"
{ printf '%s' "$a"; cat split.txt; } | cmp -s - full.txt || fail "split-prompt text differs from the uninterrupted one"

# ---- chained: the state out of a --state-in run ---------------------------------------------------------------
gen --state-in a.h5 --prompt "$b" --tokens 0 --state-out chained.h5 > /dev/null
gen --state-in chained.h5 --tokens 40 --seed 11 > chained.txt
cmp -s chained.txt resumed.txt || fail "chained state gives another text"

# ---- the file layout (spec 8.2), when h5py is there --------------------------------------------------------
if /usr/bin/python3 -c 'import h5py' > /dev/null 2>&1; then
  /usr/bin/python3 - ab.h5 <<'PY' || fail "state file layout"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f["state"].shape == (10, 32) and f["state"].dtype == "float32", f["state"]
    assert f["logits"].shape == (256,), f["logits"]
    attrs = {k: f.attrs[k] for k in f.attrs}
    assert attrs["n_layer"] == 2 and attrs["n_embd"] == 32 and attrs["vocab_size"] == 256, attrs
    assert attrs["tokens"] == 47, attrs
PY
fi

# ---- refusals ----------------------------------------------------------------------------------------------------
printf 'n_layer = 2\nn_embd = 64\nctx_len = 64\nvocab_size = 256\nseed = 3\n' > wide.ini
"$rwkv" init --config wide.ini --out wide.h5 > /dev/null
if "$rwkv" generate --model wide.h5 --state-in ab.h5 --tokens 5 > out.txt 2> err.txt; then
  fail "a state of another model was accepted"
fi
grep -q "^rwkv generate: error: ab.h5: attribute 'n_embd' = 32 does not match the model's 64" err.txt \
  || fail "mismatch error: $(cat err.txt)"
if gen --state-in model.h5 --tokens 5 > out.txt 2> err.txt; then fail "a weights file was accepted as a state"; fi
grep -q "model.h5: not an RNN state file" err.txt || fail "not-a-state error: $(cat err.txt)"
printf 'garbage' > garbage.h5
if gen --state-in garbage.h5 --tokens 5 > out.txt 2> err.txt; then fail "garbage was accepted as a state"; fi
grep -q "^rwkv generate: error: .*garbage.h5" err.txt || fail "garbage error: $(cat err.txt)"
echo "generate_state: ok"
