#!/usr/bin/env bash
# Quick start, step 2: install what is missing, build, and run the whole test suite (GPU tests skip cleanly
# without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
export RWKV_TOKENIZER_JSON="${RWKV_TOKENIZER_JSON:-$(cd .. && pwd)/shared/data/20B_tokenizer.json}"
cd build
ctest --output-on-failure -j "$(nproc)"
