# Sourced by the scripts that run ON the GPU host (run-device.sh, sanitize-device.sh): from the repository root,
# $dev = the binaries' folder (RWKV_DEVICE_DIR, default .device, from scripts/gpu/build-device.sh), the CUDA
# libraries on LD_LIBRARY_PATH, and RWKV_SOURCE_DIR for the tests that run tests/reference/ scripts.
caller_dir=$PWD  # relative paths in arguments (--failed-from FILE) are the caller's
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dev=$(realpath -m "${RWKV_DEVICE_DIR:-.device}")
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export RWKV_SOURCE_DIR="$PWD"
