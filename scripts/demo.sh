#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, and run the demo training.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# Until the RWKV trainer lands, the demo trains a small network with the autograd.
./build/train/rwkv demo-mlp
