#!/usr/bin/env bash
# End-to-end test of `rwkv data-info`: $1 = the rwkv binary, $2 = the source directory.
set -u
rwkv="$1"
source_dir="$2"
if ! command -v python3 > /dev/null; then
  echo "SKIP: python3 not found (needed to write the test dataset)"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_line() {  # expect_line <output file> <regex>
  grep -Eq "$2" "$1" || fail "no line matching '$2' in: $(cat "$1")"
}

# 200,499 tokens at ctx_len 512: the example of BlinkDL/RWKV-LM #216 (magic_prime 389).
python3 "$source_dir/tests/data/write_binidx.py" "$work/d" --dtype uint16 --synthetic 200499 --doc_len 1000 --vocab 50277 \
  || { echo "FAIL: python writer"; exit 1; }

"$rwkv" data-info --data "$work/d" --ctx_len 512 > "$work/out" 2>&1 || fail "data-info exited $?: $(cat "$work/out")"
expect_line "$work/out" '^data_type: +binidx$'
expect_line "$work/out" '^tokens: +200499$'
expect_line "$work/out" '^documents: +201$'
expect_line "$work/out" '^shards: +1$'
expect_line "$work/out" '^dtype: +uint16$'
expect_line "$work/out" '^chunks: +391 '
expect_line "$work/out" '^magic_prime: +389 '
expect_line "$work/out" '^my_exit_tokens: +199168 '
expect_line "$work/out" '^epoch_count: +0 '

# A valid prime is confirmed.
"$rwkv" data-info --data "$work/d.bin" --ctx_len 512 --magic_prime 389 > "$work/ok" 2>&1 || fail "389 rejected: $(cat "$work/ok")"
expect_line "$work/ok" '389 is valid'
# A smaller prime leaves more than 1% of the chunks unread: RWKV-LM's dataset.py asserts 0.99 < p / chunks.
if "$rwkv" data-info --data "$work/d" --ctx_len 512 --magic_prime 383 > "$work/small" 2>&1; then
  fail "magic_prime 383 accepted (383 / 391 chunks = 0.98)"
fi
expect_line "$work/small" '383 / 391 = 0.9795 must be > 0.99'
expect_line "$work/small" 'Use --magic_prime 389'

# A wrong prime exits non-zero and says which one to use.
if "$rwkv" data-info --data "$work/d" --ctx_len 512 --magic_prime 391 > "$work/bad" 2>&1; then
  fail "magic_prime 391 accepted"
fi
expect_line "$work/bad" 'magic_prime 391 does not fit'
expect_line "$work/bad" 'Use --magic_prime 389'

# --show: rank 1 of 2, micro_bsz 2 reads ii = 2, 4 at step 0 and 6, 8 at step 1.
"$rwkv" data-info --data "$work/d" --ctx_len 512 --show 3 --world 2 --rank 1 --micro_bsz 2 > "$work/show" 2>&1 \
  || fail "--show exited $?: $(cat "$work/show")"
for pair in "0 0 2" "0 1 4" "1 0 6"; do
  set -- $pair
  offset=$(python3 -c "p = 389; f = int(p * 0.6180339887498949); print((f * $3 ** 3) % p * 512)")
  expect_line "$work/show" "^  step $1 sample $2: offset $offset \\(ii $3, "
done
[ "$(grep -c '^  step' "$work/show")" = 3 ] || fail "--show 3 printed $(grep -c '^  step' "$work/show") samples"

# --vocab_size below the largest id: non-zero exit naming the file and the offset.
if "$rwkv" data-info --data "$work/d" --ctx_len 512 --vocab_size 50000 > "$work/vocab" 2>&1; then
  fail "vocab_size 50000 accepted"
fi
expect_line "$work/vocab" "token id [0-9]+ at token offset [0-9]+ of $work/d.bin is >= vocab_size 50000"
"$rwkv" data-info --data "$work/d" --ctx_len 512 --vocab_size 50277 > "$work/vocab_ok" 2>&1 || fail "vocab_size 50277 rejected"
expect_line "$work/vocab_ok" '^max token id: +50276 '

# A truncated .bin: non-zero exit with a message naming it.
cp "$work/d.idx" "$work/cut.idx"
head -c 1000 "$work/d.bin" > "$work/cut.bin"
if "$rwkv" data-info --data "$work/cut" --ctx_len 512 > "$work/cut.out" 2>&1; then
  fail "truncated .bin accepted"
fi
expect_line "$work/cut.out" "$work/cut.bin has 1000 bytes .*truncated"

# A corrupt .idx magic.
cp "$work/d.bin" "$work/magic.bin"
{ printf 'XXIDIDX\0\0'; tail -c +10 "$work/d.idx"; } > "$work/magic.idx"
if "$rwkv" data-info --data "$work/magic" --ctx_len 512 > "$work/magic.out" 2>&1; then
  fail "bad magic accepted"
fi
expect_line "$work/magic.out" "$work/magic.idx: bad magic"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "data_info: all checks passed"
