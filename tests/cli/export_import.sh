#!/usr/bin/env bash
# `rwkv export` / `rwkv import` against real PyTorch: every tensor of an exported .pth (bf16, fp16, fp32, and
# ZIP64) equals the HDF5 weights rounded by torch; .pth files written by torch.save (OrderedDict, dict, views)
# import exactly and export back bit-identically; an imported model evaluates to the same loss; bad input fails
# clearly and never leaves a partial file. Skipped without /usr/bin/python3 + torch + h5py.
# Usage: export_import.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$1"
check="$2/tests/reference/check_pth.py"
python=/usr/bin/python3
if ! "$python" -c 'import torch, h5py, numpy' 2> /dev/null; then
  echo "cli export_import: skipped (needs $python with torch, h5py and numpy)"
  exit 0
fi
enter_work_dir

write_tiny_corpus
cat > tiny.ini <<'INI'
n_layer = 2
n_embd = 32
dim_ffn = 96
vocab_size = 256
ctx_len = 32
seed = 7
INI
"$rwkv" init --config tiny.ini --out model.h5 > /dev/null

# ---- export: each dtype checked tensor by tensor by torch.load ----
for dtype in bf16 fp16 fp32; do
  "$rwkv" export --model model.h5 --out "m_$dtype.pth" --dtype "$dtype" > "export_$dtype.log"
  grep -q "wrote m_$dtype.pth: RWKV-4 L2-D32" "export_$dtype.log" || fail "export $dtype: $(cat "export_$dtype.log")"
  "$python" "$check" compare "m_$dtype.pth" model.h5 "$dtype" || fail "export $dtype does not match the HDF5"
done
"$rwkv" export --model model.h5 --out default.pth > /dev/null
"$python" "$check" compare default.pth model.h5 bf16 || fail "the default dtype is not bf16"
"$rwkv" export --model model.h5 --out m_zip64.pth --dtype fp32 --force_zip64 > /dev/null
"$python" "$check" compare m_zip64.pth model.h5 fp32 || fail "torch cannot read the ZIP64 export"
"$python" -c 'import zipfile, sys; z = zipfile.ZipFile(sys.argv[1]); sys.exit(z.testzip() is not None)' m_zip64.pth \
  || fail "python's zipfile rejects the ZIP64 export"
ls ./*.tmp-* > /dev/null 2>&1 && fail "a temporary file was left behind"

# A trainer checkpoint exports like a weights file (same /model group).
cat > train.ini <<'INI'
data_file = corpus.txt
data_type = bytes
proj_dir = run
n_layer = 2
n_embd = 32
dim_ffn = 96
ctx_len = 32
micro_bsz = 4
epoch_steps = 2
epoch_count = 1
epoch_save = 0
lr_init = 2e-3
lr_final = 2e-4
INI
"$rwkv" train --config train.ini > train.log
"$rwkv" export --model run/rwkv-final.h5 --out ckpt.pth --dtype fp32 > /dev/null
"$python" "$check" compare ckpt.pth run/rwkv-final.h5 fp32 || fail "checkpoint export"

# ---- round trips through import ----
# Our own fp32 export: import gives the same tensors, and exporting again gives the same bytes.
"$rwkv" import --pth m_fp32.pth --out back.h5 --ctx_len 32 > import.log
grep -q "wrote back.h5: RWKV-4 L2-D32 (dim_att 32, dim_ffn 96, vocab 256, ctx 32)" import.log \
  || fail "import summary: $(cat import.log)"
"$python" "$check" same_h5 model.h5 back.h5 || fail "fp32 import differs from the original"
"$rwkv" export --model back.h5 --out again.pth --dtype fp32 > /dev/null
cmp -s m_fp32.pth again.pth || fail "export -> import -> export is not byte-identical"

# Files written by torch.save: an OrderedDict like RWKV-LM's, a plain dict, and non-contiguous views.
for dtype in fp32 bf16 fp16; do
  "$python" "$check" save model.h5 "py_$dtype.pth" "$dtype"
  "$rwkv" import --pth "py_$dtype.pth" --out "py_$dtype.h5" --ctx_len 32 > /dev/null
  "$rwkv" export --model "py_$dtype.h5" --out "re_$dtype.pth" --dtype "$dtype" > /dev/null
  "$python" "$check" same "py_$dtype.pth" "re_$dtype.pth" || fail "torch.save $dtype -> import -> export differs"
  "$python" "$check" compare "m_$dtype.pth" "py_$dtype.h5" "$dtype" || fail "import of torch.save $dtype"
done
"$python" "$check" same_h5 model.h5 py_fp32.h5 || fail "fp32 torch.save import is not exact"
"$python" "$check" save model.h5 plain.pth fp32 --plain --views
"$rwkv" import --pth plain.pth --out plain.h5 --ctx_len 32 > /dev/null
"$python" "$check" same_h5 model.h5 plain.h5 || fail "dict with non-contiguous views imported wrongly"

# The imported model evaluates exactly like the original.
"$rwkv" eval --model model.h5 --data corpus.txt --data_type bytes --ctx_len 16 --device cpu --json > eval_a.json
"$rwkv" eval --model py_fp32.h5 --data corpus.txt --data_type bytes --ctx_len 16 --device cpu --json > eval_b.json
cmp -s eval_a.json eval_b.json || fail "eval differs: $(cat eval_a.json) vs $(cat eval_b.json)"
# ... and fine-tunes (`train --load_model`).
"$rwkv" train --config train.ini --proj_dir run2 --load_model py_bf16.h5 --max_steps 1 > ft.log \
  || fail "train --load_model on an imported model: $(cat ft.log)"

# ---- bad input: one clear message each, exit 1, no output file ----
expect_error() {  # expect_error FRAGMENT rwkv-args...
  local fragment="$1"
  shift
  if "$rwkv" "$@" > out.txt 2> err.txt; then fail "accepted: $*"; fi
  grep -qF -- "$fragment" err.txt || fail "'$fragment' not in the error of '$*': $(cat err.txt)"
}
echo "not a zip at all, just some text that is long enough" > text.pth
expect_error "text.pth: not a zip archive" import --pth text.pth --out x.h5
head -c 3000 m_fp32.pth > truncated.pth
expect_error "truncated.pth: truncated zip archive" import --pth truncated.pth --out x.h5
"$python" "$check" save model.h5 legacy.pth fp32 --legacy
expect_error "legacy (pre-1.6, non-zip) serialization format" import --pth legacy.pth --out x.h5
"$python" "$check" save model.h5 missing.pth fp32 --drop head.weight --drop blocks.1.att.time_first --extra bogus
expect_error "(3 problems)" import --pth missing.pth --out x.h5
grep -q "head.weight: missing" err.txt && grep -q "blocks.1.att.time_first: missing" err.txt \
  && grep -q "bogus: unexpected tensor" err.txt || fail "missing/extra tensors not all listed: $(cat err.txt)"
# Flip one byte inside the first tensor's data: the CRC check catches it.
"$python" - m_fp32.pth corrupt.pth <<'PY'
import struct, sys, zipfile
data = bytearray(open(sys.argv[1], "rb").read())
at = zipfile.ZipFile(sys.argv[1]).getinfo("archive/data/0").header_offset
name_length, extra_length = struct.unpack("<HH", data[at + 26:at + 30])
data[at + 30 + name_length + extra_length + 5] ^= 0x40
open(sys.argv[2], "wb").write(data)
PY
expect_error "archive/data/0: CRC-32 mismatch" import --pth corrupt.pth --out x.h5
[ -e x.h5 ] && fail "a failed import left x.h5"
expect_error "--dtype: expected bf16, fp16 or fp32" export --model model.h5 --out x.pth --dtype int8
expect_error "missing.h5" export --model missing.h5 --out x.pth
[ -e x.pth ] && fail "a failed export left x.pth"
ls ./*.tmp-* > /dev/null 2>&1 && fail "a temporary file was left behind"
echo "cli export_import: ok"
