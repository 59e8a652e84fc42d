#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, train the demo model and print a sample.
# Trains a small byte-level RWKV-4 (configs/demo.ini) on Debian's fortune cookies: on the GPU when there is
# one, else on the CPU (a few minutes on 2 cores). Extra arguments go to `rwkv train` (e.g. --device cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

mkdir -p build/demo
corpus=build/demo/fortunes.txt
if [ ! -s "$corpus" ]; then
  # Every plain-text fortune file (not the .dat indexes), in a fixed order.
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | LC_ALL=C sort |
    xargs cat > "$corpus"
fi
rm -rf build/demo/run
time ./build/train/rwkv train --config configs/demo.ini "$@"
echo
echo "--- a sample from the trained model ---"
./build/train/rwkv generate --model build/demo/run/rwkv-final.h5 --prompt "Q: What is the meaning of life?
A:" --tokens 400 --temperature 0.8 --top_p 0.9 --seed 7
