#!/usr/bin/env bash
# The layer drawing of README "Layout and architecture", checked: every #include "<folder>/..." in core/,
# kernels/, autograd/, data/ and the rooms of train/ must point into its own folder or one the table below
# allows (down or sideways, never up), so the folders form no cycle. Fails naming each offending line.
# Usage: include_layers.sh <path-to-rwkv (unused)> <source-dir>
set -euo pipefail
source_dir="$(realpath "${2:-$(dirname "${BASH_SOURCE[0]}")/../..}")"
cd "$source_dir"

# folder -> the folders it may include besides itself. The train/ rooms: model/ (RWKV-4 module, init, RNN
# mode), config/ (the run's option table), optim/ (optimizer, schedule), io/ (file formats), dist/ (ranks and
# collectives), eval/ (held-out loss, LAMBADA), train/ itself (the run) and cli/ (the binary).
declare -A allowed=(
  [core]=""
  [kernels]="core"
  [autograd]="core kernels"
  [data]="core"
  [train/model]="core kernels autograd data"
  [train/config]="core kernels autograd data train/model"
  [train/optim]="core kernels autograd data train/model train/config"
  [train/io]="core kernels autograd data train/model train/config train/optim"
  [train/dist]="core kernels autograd data train/config train/optim"
  [train/eval]="core kernels autograd data train/model train/config train/optim train/dist"
  [train]="core kernels autograd data train/model train/config train/optim train/io train/dist train/eval"
  [train/cli]="core kernels autograd data train/model train/config train/optim train/io train/dist train/eval train"
)

# The folder a path belongs to: train/<room>/... for a room of train/, else its first component.
folder_of() {
  local path="$1" room
  if [[ "$path" == train/* ]]; then
    room="${path#train/}"
    room="${room%%/*}"
    if [[ -n "${allowed[train/$room]+x}" ]]; then echo "train/$room"; else echo train; fi
  else
    echo "${path%%/*}"
  fi
}

failures=0
checked=0
while IFS= read -r file; do
  from="$(folder_of "$file")"
  [[ -n "${allowed[$from]+x}" ]] || { echo "FAIL: $file is in no folder of the layer table"; failures=$((failures + 1)); continue; }
  while IFS= read -r line; do
    number="${line%%:*}"
    [[ "$line" =~ include[[:space:]]+\"([^\"]*)\" ]] || continue
    target="${BASH_REMATCH[1]}"
    [[ "$target" == */* ]] || continue  # a file beside it, or a system header written with quotes
    to="$(folder_of "$target")"
    [[ -n "${allowed[$to]+x}" ]] || continue  # not one of ours (e.g. nlohmann/json.hpp)
    checked=$((checked + 1))
    [[ "$to" == "$from" ]] && continue
    if [[ " ${allowed[$from]} " != *" $to "* ]]; then
      echo "FAIL: $file:$number includes $target: $from/ may include only ${allowed[$from]:-nothing} (README, Layout)"
      failures=$((failures + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$file" || true)
done < <(find core kernels autograd data train -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) | sort)

if ((checked == 0)); then
  echo "FAIL: no includes found under $source_dir"
  exit 1
fi
if ((failures > 0)); then
  echo "$failures include(s) point up or sideways outside the drawing"
  exit 1
fi
echo "OK: $checked includes of our folders point down or within their own folder"
