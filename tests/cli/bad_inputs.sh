#!/usr/bin/env bash
# The bad-input catalogue, end to end through the binary: every case must exit 1 (an error, not a crash or a
# hang) with a message that names the file and the field, and must leave the good checkpoints in proj_dir
# byte-identical. One table row per case: name, expected message (extended regex), command.
# Usage: bad_inputs.sh <path-to-rwkv> <source-dir>
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
source_dir="$(realpath "$2")"
python=/usr/bin/python3
"$python" -c "import h5py, numpy" 2> /dev/null || { echo "SKIP: $python with h5py and numpy is needed"; exit 0; }
enter_work_dir
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

# ---- fixtures ------------------------------------------------------------------------------------------------
write_tiny_corpus
printf 'too short' > short.txt
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
proj_dir = good
n_layer = 2
n_embd = 16
ctx_len = 16
micro_bsz = 2
epoch_steps = 4
epoch_count = 1
epoch_save = 0
INI
"$rwkv" train --config tiny.ini --max_steps 2 > good.log 2>&1 || fail "good run: $(cat good.log)"
good=good/rwkv-step-2.h5
[ -f "$good" ] || fail "no good checkpoint"
"$python" "$source_dir/tests/data/write_binidx.py" ok --dtype uint16 --synthetic 4000 --doc_len 100 --vocab 100 \
  > /dev/null || fail "binidx writer"
"$python" "$source_dir/tests/data/write_binidx.py" big --dtype uint16 --synthetic 200000 --doc_len 1000 --vocab 100 \
  > /dev/null || fail "binidx writer"
sed 's/^lr_init.*//; s/^n_embd = 16$/n_embd = 16\nlr_intt = 1e-3/' tiny.ini > typo.ini
sed 's/^n_embd = 16$/n_embd = sixteen/' tiny.ini > wrong_type.ini

"$python" - "$good" <<'PY'
import json, shutil, struct, sys
import h5py, numpy as np
good = sys.argv[1]
idx, bin_ = open("ok.idx", "rb").read(), open("ok.bin", "rb").read()
def binidx(name, idx_bytes, bin_bytes=bin_):
    open(name + ".idx", "wb").write(idx_bytes)
    open(name + ".bin", "wb").write(bin_bytes)
def patch(data, offset, new):
    return data[:offset] + new + data[offset + len(new):]
binidx("magic", patch(idx, 0, b"XMIDIDX"))
binidx("version", patch(idx, 9, struct.pack("<Q", 2)))
binidx("dtype_float", patch(idx, 17, b"\x06"))
binidx("dtype_unknown", patch(idx, 17, b"\x09"))
binidx("short_idx", idx[:len(idx) - 5])
binidx("short_bin", idx, bin_[:len(bin_) - 10])
binidx("disagree", patch(idx, 34, struct.pack("<i", 101)))  # size[0] 100 -> 101, pointer[1] unchanged
binidx("negative", patch(idx, 34, struct.pack("<i", -1)))

tokens = (np.arange(4000) * 7 % 100).astype(np.int32)
np.save("ok.npy", tokens)
raw = open("ok.npy", "rb").read()
open("magic.npy", "wb").write(b"\x93NUMPX" + raw[6:])
open("header.npy", "wb").write(raw[:10] + raw[10:60].replace(b"'descr'", b"'dexcr'") + raw[60:])
np.save("float.npy", tokens.astype(np.float32))
np.save("twod.npy", tokens.reshape(40, 100))
fortran = raw.replace(b"'fortran_order': False", b"'fortran_order': True ")
assert fortran != raw
open("fortran.npy", "wb").write(fortran)
open("short.npy", "wb").write(raw[:len(raw) - 6])

# A byte-level BPE tokenizer.json with the 256 byte tokens and no merges, and things that are not one.
def byte_char(b):
    printable = [c for c in range(256) if 33 <= c <= 126 or 161 <= c <= 172 or c >= 174]
    table, extra = {}, 256
    for c in range(256):
        if c in printable:
            table[c] = chr(c)
        else:
            table[c] = chr(extra)
            extra += 1
    return table[b]
vocab = {byte_char(b): b for b in range(256)}
tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
             "normalizer": {"type": "NFC"},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
             "post_processor": None, "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": vocab, "merges": []}}
json.dump(tokenizer, open("tokenizer.json", "w"))
open("not_json.json", "w").write("this is not JSON\n")
json.dump({"hello": "world"}, open("not_tokenizer.json", "w"))
open("truncated_tokenizer.json", "w").write(json.dumps(tokenizer)[:3000])
unigram = dict(tokenizer, model={"type": "Unigram", "vocab": [["a", 0.0]]})
json.dump(unigram, open("unigram.json", "w"))
open("doc.txt", "w").write("hello world\n")
open("bad.jsonl", "w").write('{"text": "fine"}\n{"text": "also fine"}\n{"text": oops}\n')
open("no_text.jsonl", "w").write('{"text": "fine"}\n{"body": "no text key"}\n')
open("not_object.jsonl", "w").write('{"text": "fine"}\n[1, 2, 3]\n')
open("lambada_bad.jsonl", "w").write('{"text": "a b c"}\nnot json at all\n')

# Checkpoints. Ours carry a seal (train/io/file_seal.h: length and checksum in the first 512 bytes, before the
# HDF5 signature at 512): damage to a sealed file is reported as such. The other cases remove the seal (zero
# its first 8 bytes, as for a file written by another tool) so that the reader's own checks are reached.
data = open(good, "rb").read()
assert data[:8] == b"RWKVSEAL" and data[512:520] == b"\x89HDF\r\n\x1a\n", "checkpoints should be sealed"
def unsealed(name, content):
    open(name, "wb").write(b"\x00" * 8 + content[8:])
open("truncated.h5", "wb").write(data[:len(data) // 2])
unsealed("truncated_unsealed.h5", data[:len(data) // 2])
middle = len(data) // 2
open("flipped.h5", "wb").write(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:])
open("appended.h5", "wb").write(data + b"junk")
unsealed("signature.h5", data[:512] + b"\x00" * 8 + data[520:])
unsealed("superblock.h5", data[:520] + bytes(b ^ 0xFF for b in data[520:600]) + data[600:])
def edited(name, edit, seal_removed=True):
    shutil.copy(good, name)
    with h5py.File(name, "r+") as f:
        edit(f)
    if seal_removed:
        unsealed(name, open(name, "rb").read())
edited("edited_sealed.h5", lambda f: f["train"].attrs.__setitem__("global_step", 7), seal_removed=False)
edited("incomplete.h5", lambda f: f["train"].attrs.__delitem__("complete"))
edited("missing_tensor.h5", lambda f: f["model"].__delitem__("blocks.1.ffn.key.weight"))
def wrong_shape(f):
    del f["model"]["blocks.0.att.key.weight"]
    f["model"].create_dataset("blocks.0.att.key.weight", data=np.zeros((16, 8), np.float32))
edited("wrong_shape.h5", wrong_shape)
def wrong_dtype(f):
    del f["model"]["head.weight"]
    f["model"].create_dataset("head.weight", data=np.zeros((256, 16), np.int32))
edited("wrong_dtype.h5", wrong_dtype)
edited("missing_moment.h5", lambda f: f["optimizer"]["exp_avg"].__delitem__("emb.weight"))
def moment_shape(f):
    del f["optimizer"]["exp_avg_sq"]["emb.weight"]
    f["optimizer"]["exp_avg_sq"].create_dataset("emb.weight", data=np.zeros((3, 16), np.float32))
edited("moment_shape.h5", moment_shape)
edited("future_version.h5", lambda f: f["train"].attrs.__setitem__("format_version", 99))
edited("one_layer.h5", lambda f: f["model"].attrs.__setitem__("n_layer", 1))
PY
[ -f future_version.h5 ] || fail "fixture script failed"
magic_prime="$("$rwkv" data-info --data big --ctx_len 4 2> /dev/null | sed -nE 's/^magic_prime: +([0-9]+).*/\1/p')"
[ -n "$magic_prime" ] || fail "data-info gave no magic_prime"
touch a_file
sums() { md5sum good/rwkv-*.h5; }
good_sums="$(sums)"

# ---- the table -------------------------------------------------------------------------------------------
failures=0
cases=0
report() { echo "FAIL: $*"; failures=$((failures + 1)); }
# case NAME REGEX COMMAND...: COMMAND must exit 1 with an error matching REGEX on stderr, within 60 s.
case_() {
  local name="$1" regex="$2"
  shift 2
  cases=$((cases + 1))
  local status=0
  timeout 60 "$@" > "$name.out" 2> "$name.err" < /dev/null || status=$?
  if (( status != 1 )); then
    report "$name: exit status $status (want 1): $(head -c 600 "$name.err")"
  elif ! grep -Eq -- "$regex" "$name.err"; then
    report "$name: error does not match /$regex/: $(head -c 600 "$name.err")"
  else
    echo "ok  $name: $(head -c 300 "$name.err" | head -1)"
  fi
  if [ "$good_sums" != "$(sums)" ]; then
    report "$name: the good checkpoints in proj_dir changed"
    good_sums="$(sums)"
  fi
}
# before_training NAME: the case failed before the first step (small data is scanned for bad ids up front).
before_training() { ! grep -q "^step " "$1.out" || report "$1: the error came only after training had started"; }
train=("$rwkv" train --config tiny.ini --max_steps 2)
bin=(--data_type binidx --vocab_size 100)

# binidx
case_ binidx_magic 'magic\.idx.*bad magic' "${train[@]}" --data_file magic "${bin[@]}"
case_ binidx_version 'version\.idx.*unsupported binidx version 2' "${train[@]}" --data_file version "${bin[@]}"
case_ binidx_dtype_float 'dtype_float\.idx.*dtype code 6' "${train[@]}" --data_file dtype_float "${bin[@]}"
case_ binidx_dtype_unknown 'dtype_unknown\.idx.*unknown dtype code 9' "${train[@]}" --data_file dtype_unknown "${bin[@]}"
case_ binidx_truncated_idx 'short_idx\.idx.*truncated' "${train[@]}" --data_file short_idx "${bin[@]}"
case_ binidx_truncated_bin 'short_bin\.bin.*truncated' "${train[@]}" --data_file short_bin "${bin[@]}"
case_ binidx_sizes_pointers 'disagree\.idx.*sizes and pointers disagree' "${train[@]}" --data_file disagree "${bin[@]}"
case_ binidx_negative_size 'negative\.idx.*negative size' "${train[@]}" --data_file negative "${bin[@]}"
case_ binidx_missing 'nothing\.idx.*No such file' "${train[@]}" --data_file nothing "${bin[@]}"
case_ binidx_id_over_vocab 'token id 51 at token offset 2 of ok\.bin is >= vocab_size 50' "${train[@]}" --data_file ok --data_type binidx --vocab_size 50
before_training binidx_id_over_vocab
case_ val_data_truncated_idx 'short_idx\.idx.*truncated' "${train[@]}" --val_data_file short_idx --val_data_type binidx
# .npy
case_ npy_magic 'magic\.npy.*(magic|not a \.npy)' "${train[@]}" --data_type numpy --data_file magic.npy --vocab_size 100
case_ npy_header 'header\.npy.*descr' "${train[@]}" --data_type numpy --data_file header.npy --vocab_size 100
case_ npy_float 'float\.npy.*dtype' "${train[@]}" --data_type numpy --data_file float.npy --vocab_size 100
case_ npy_2d 'twod\.npy.*(1-D|shape)' "${train[@]}" --data_type numpy --data_file twod.npy --vocab_size 100
case_ npy_fortran 'fortran\.npy.*Fortran' "${train[@]}" --data_type numpy --data_file fortran.npy --vocab_size 100
case_ npy_truncated 'short\.npy.*(truncated|bytes|size)' "${train[@]}" --data_type numpy --data_file short.npy --vocab_size 100
case_ npy_id_over_vocab 'token id [0-9]+ at token offset [0-9]+ of ok\.npy is >= vocab_size 50' "${train[@]}" --data_type numpy --data_file ok.npy --vocab_size 50
before_training npy_id_over_vocab
# tokenizer.json and .jsonl
tok=("$rwkv" tokenize --input doc.txt --output tokout)
case_ tokenizer_not_json 'not_json\.json' "${tok[@]}" --tokenizer not_json.json
case_ tokenizer_not_a_tokenizer 'not_tokenizer\.json: pre_tokenizer: missing' "${tok[@]}" --tokenizer not_tokenizer.json
case_ tokenizer_truncated 'truncated_tokenizer\.json' "${tok[@]}" --tokenizer truncated_tokenizer.json
case_ tokenizer_unigram 'unigram\.json.*(BPE|Unigram)' "${tok[@]}" --tokenizer unigram.json
case_ tokenizer_missing 'missing\.json' "${tok[@]}" --tokenizer missing.json
case_ jsonl_not_json 'bad\.jsonl:3' "$rwkv" tokenize --tokenizer tokenizer.json --input bad.jsonl --output jout
case_ jsonl_no_text_key 'no_text\.jsonl:2.*text' "$rwkv" tokenize --tokenizer tokenizer.json --input no_text.jsonl --output jout
case_ jsonl_not_object 'not_object\.jsonl:2' "$rwkv" tokenize --tokenizer tokenizer.json --input not_object.jsonl --output jout
case_ bench_tokenizer_jsonl_not_json 'bad\.jsonl:3' "$rwkv" bench tokenizer --tokenizer tokenizer.json --input bad.jsonl \
  --repeats 1 --threads 1
case_ lambada_jsonl_not_json 'lambada_bad\.jsonl:2' "$rwkv" eval --model "$good" --lambada lambada_bad.jsonl --tokenizer tokenizer.json
# configuration
case_ config_typo_in_file "typo\.ini.*lr_intt.*did you mean 'lr_init'" "$rwkv" train --config typo.ini --max_steps 2
case_ config_typo_on_command_line "lr_intt.*did you mean 'lr_init'" "${train[@]}" --lr_intt 1e-3
case_ config_wrong_type_in_file "wrong_type\\.ini.*'sixteen'.*'n_embd' is invalid.*integer" "$rwkv" train --config wrong_type.ini --max_steps 2
case_ config_wrong_type "'abc'.*'--ctx_len' is invalid.*integer" "${train[@]}" --ctx_len abc
case_ config_negative_micro_bsz 'micro_bsz.*-2' "${train[@]}" --micro_bsz -2
case_ config_negative_n_embd 'n_embd.*-16' "${train[@]}" --n_embd -16
case_ config_missing_file 'nothing\.ini' "$rwkv" train --config nothing.ini
case_ config_ctx_len_over_data 'ctx_len.*17 tokens; the data has 9.*data_file short\.txt' "${train[@]}" --data_file short.txt
case_ config_micro_bsz_vs_magic_prime 'micro_bsz.*40320' "${train[@]}" --data_file big "${bin[@]}" --ctx_len 4 \
  --magic_prime "$magic_prime" --micro_bsz 11
case_ config_magic_prime_not_prime 'magic_prime 45001 does not fit.*not prime.*Use --magic_prime 49991.*data_file big' "${train[@]}" --data_file big "${bin[@]}" \
  --ctx_len 4 --magic_prime 45001
case_ config_magic_prime_one_mod_three 'magic_prime 49999 does not fit.*% 3 = 1, must be 2.*data_file big' "${train[@]}" --data_file big "${bin[@]}" --ctx_len 4 \
  --magic_prime 49999
case_ config_magic_prime_too_large 'magic_prime 60017 does not fit.*must be <= .*49999.*data_file big' "${train[@]}" --data_file big "${bin[@]}" \
  --ctx_len 4 --magic_prime 60017
case_ config_unknown_data_type 'data_type.*parquet' "${train[@]}" --data_type parquet
case_ config_missing_data 'missing\.bin' "${train[@]}" --data_file missing.bin
case_ config_vocab_too_small 'vocab_size.*(100|256)' "${train[@]}" --vocab_size 100
case_ proj_dir_is_a_file "proj_dir 'a_file/run'" "${train[@]}" --proj_dir a_file/run
# checkpoints: resume, load_model, eval and generate
for command in resume load_model; do
  case_ "${command}_truncated" 'truncated\.h5: damaged: truncated: its seal records [0-9]+ bytes but the file has [0-9]+' \
    "${train[@]}" "--$command" truncated.h5
  case_ "${command}_truncated_unsealed" 'truncated_unsealed\.h5: cannot open the HDF5 file.*truncated' \
    "${train[@]}" "--$command" truncated_unsealed.h5
  case_ "${command}_flipped_bit" 'flipped\.h5: damaged: the checksum' "${train[@]}" "--$command" flipped.h5
  case_ "${command}_appended" 'appended\.h5: damaged: longer than written' "${train[@]}" "--$command" appended.h5
  case_ "${command}_edited_sealed" 'edited_sealed\.h5: damaged' "${train[@]}" "--$command" edited_sealed.h5
  case_ "${command}_signature" 'signature\.h5.*not an HDF5 file' "${train[@]}" "--$command" signature.h5
  case_ "${command}_superblock" 'superblock\.h5: cannot open the HDF5 file' "${train[@]}" "--$command" superblock.h5
  case_ "${command}_missing_tensor" 'missing_tensor\.h5.*blocks\.1\.ffn\.key\.weight' "${train[@]}" "--$command" missing_tensor.h5
  case_ "${command}_wrong_shape" 'wrong_shape\.h5.*blocks\.0\.att\.key\.weight.*16' "${train[@]}" "--$command" wrong_shape.h5
  case_ "${command}_wrong_dtype" 'wrong_dtype\.h5.*head\.weight' "${train[@]}" "--$command" wrong_dtype.h5
  case_ "${command}_missing_file" 'nope\.h5' "${train[@]}" "--$command" nope.h5
done
case_ resume_incomplete 'incomplete\.h5.*incomplete' "${train[@]}" --resume incomplete.h5
case_ resume_missing_moment 'missing_moment\.h5.*exp_avg/emb\.weight' "${train[@]}" --resume missing_moment.h5
case_ resume_moment_shape 'moment_shape\.h5.*exp_avg_sq/emb\.weight.*shape' "${train[@]}" --resume moment_shape.h5
case_ resume_future_version 'future_version\.h5.*version 99' "${train[@]}" --resume future_version.h5
case_ resume_other_model "$good.*(shape|n_embd)" "${train[@]}" --resume "$good" --n_embd 32
case_ eval_truncated 'truncated\.h5: damaged: truncated' "$rwkv" eval --model truncated.h5 --data corpus.txt --data_type bytes
case_ eval_missing_tensor 'missing_tensor\.h5.*blocks\.1\.ffn\.key\.weight' "$rwkv" eval --model missing_tensor.h5 \
  --data corpus.txt --data_type bytes
case_ eval_dims_make_no_model 'one_layer\.h5: /model: .*n_layer' "$rwkv" eval --model one_layer.h5 --data corpus.txt \
  --data_type bytes
case_ generate_superblock 'superblock\.h5: cannot open the HDF5 file' "$rwkv" generate --model superblock.h5 --prompt hi --tokens 4
case_ generate_wrong_shape 'wrong_shape\.h5.*blocks\.0\.att\.key\.weight' "$rwkv" generate --model wrong_shape.h5 \
  --prompt hi --tokens 4

echo "cli bad_inputs: $cases cases, $failures failures"
(( failures == 0 )) || exit 1
echo "cli bad_inputs: all checks passed"
