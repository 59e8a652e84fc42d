# Sourced by the tests/cli/*.sh scripts (kept outside their glob so ctest does not run it as a test).

# A fresh working directory, removed when the script exits, made the current one.
enter_work_dir() {
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cd "$work"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# corpus.txt: 300 lines of small, repetitive English to train a tiny byte-level model on.
write_tiny_corpus() {
  for i in $(seq 1 300); do echo "line $i: the cat sat on the mat and the dog sat on the log."; done > corpus.txt
}

# model.h5: a freshly initialised 2-layer, 32-wide byte-level model (vocab 256, ctx 64, seed 3; tiny.ini); uses $rwkv.
write_tiny_model() {
  printf 'n_layer = 2\nn_embd = 32\nctx_len = 64\nvocab_size = 256\nseed = 3\n' > tiny.ini
  "$rwkv" init --config tiny.ini --out model.h5 > /dev/null
}
