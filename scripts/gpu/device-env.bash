# Sourced by the scripts that run ON the GPU host (run-device.sh, sanitize-device.sh): from the repository root,
# $logs = $OUT (the device tool's output folder) or .device/logs, the CUDA libraries on LD_LIBRARY_PATH, and
# RWKV_SOURCE_DIR for the tests that run tests/reference/ scripts.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
logs=${OUT:-.device/logs}
mkdir -p "$logs"
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export RWKV_SOURCE_DIR="$PWD"
