#!/usr/bin/env bash
# Installs the Debian packages this project needs that are not yet installed (needs root or sudo).
#   scripts/install-deps.sh          build and run (and the demo's text corpus, Debian's fortunes)
#   scripts/install-deps.sh --test   also what the test suite needs: PyTorch, NumPy and h5py (reference and
#                                    export tests), clang with libFuzzer and the sanitizer runtimes (fuzz
#                                    targets), Chromium (renders the training report headless), strace (the
#                                    crash torture kills runs at chosen syscalls)
# The CUDA Toolkit is not installed here: when it is present (nvcc under /usr/local/cuda), the build finds it.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libopenblas-dev libhdf5-dev libboost-program-options-dev nlohmann-json3-dev libgtest-dev
  libopenmpi-dev openmpi-bin
  python3 fortunes
)
if [ "${1:-}" = "--test" ]; then
  packages+=(python3-numpy python3-h5py python3-torch clang libclang-rt-14-dev chromium strace)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
