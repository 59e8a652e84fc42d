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
