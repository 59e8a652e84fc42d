# Sourced by run-device.sh and sanitize-device.sh (after device-env.bash): the step machinery that makes one call
# of the device tool count. A script declares its steps with add_step, then calls run_steps "$@":
#   - each selected step runs with its own `timeout` (RWKV_STEP_TIMEOUT overrides every step's limit), its
#     output in a log in a work folder ($work, a temporary folder), printing one line: name, ok/FAIL, seconds;
#   - the whole call stays within RWKV_DEVICE_BUDGET seconds (default 540, inside the tool's 10-minute limit): a
#     step gets at most what is left, and steps that cannot start are reported "not run (budget)" as failures;
#   - at the end every log goes into ONE archive $outdir/logs.tar.gz and the compact summary (≤ 3,000 characters,
#     scripts/gpu/device_summary.py) into $outdir/summary.txt and to stdout, last (when it had to be cut,
#     summary.txt goes on with the failed steps left out, so that --failed-from finds them all); $outdir is
#     $OUT when set (the device tool's output folder), else .device/logs;
#   - the exit code is 0 when every selected step passed, 1 otherwise.
# Arguments (or RWKV_DEVICE_STEPS, space-separated, when there are none) choose the steps: names or globs
# (`tests:*`, `lab:*`, `bench:169m-*`), `default` for the default set, `all` for every step; `--failed-from FILE`
# adds the steps that FILE lists as failed (a summary.txt from an earlier call: its FAIL lines; or a file of
# step names, one a line); `--list` prints the steps (default ones marked *) and runs nothing. A name or glob
# that matches no step is reported as a failed step (so a typo costs nothing but a line).

step_names=()
declare -A step_default=() step_timeout=() step_command=() step_kind=()

# add_step <name> <default: yes|no> <timeout seconds> <kind> <shell command>: kind picks how the summary reads
# the log (gpu, gtest, lab, bench-wkv, bench-train, bench-official, bench-profile, data-parallel,
# plain). The command is one string run by
# `bash -c` (quote paths with printf %q), with $work (the work folder) in its environment.
add_step() {
  step_names+=("$1")
  step_default[$1]=$2
  step_timeout[$1]=$3
  step_kind[$1]=$4
  step_command[$1]=$5
}

# The log of a step: its name with ':' and '/' made file-name safe, under $work.
step_log() {
  local safe=${1//[:\/]/_}
  echo "$work/$safe.log"
}

select_steps() {  # select_steps <patterns...>: fills `selected` (in declaration order) and `unmatched`
  local pattern name
  local -A chosen=()
  unmatched=()
  for pattern in "$@"; do
    local hit=0
    for name in "${step_names[@]}"; do
      # shellcheck disable=SC2053  # the pattern is a glob on purpose
      if { [ "$pattern" = default ] && [ "${step_default[$name]}" = yes ]; } || [ "$pattern" = all ] ||
        [[ $name == $pattern ]]; then
        chosen[$name]=1
        hit=1
      fi
    done
    [ "$hit" -eq 1 ] || unmatched+=("$pattern")
  done
  selected=()
  for name in "${step_names[@]}"; do
    [ -n "${chosen[$name]:-}" ] && selected+=("$name")
  done
}

# failed_steps_in <file>: the step names a summary.txt marks FAIL, or the names of a plain list (one a line;
# blank lines and '#' comments skipped).
failed_steps_in() {
  if grep -q '^== device summary' "$1"; then
    awk '$1 == "FAIL" { print $2 }' "$1"
  else
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$1" | awk '{ print $1 }'
  fi
}

run_steps() {
  local patterns=() list=0
  while [ $# -gt 0 ]; do
    case $1 in
      --failed-from)
        [ -z "${2:-}" ] || [[ $2 == /* ]] || [ ! -e "${caller_dir:-.}/$2" ] || set -- "$1" "${caller_dir:-.}/$2" "${@:3}"
        [ -r "${2:-}" ] || { echo "${script_name}: --failed-from needs a readable file" >&2; return 2; }
        mapfile -t -O "${#patterns[@]}" patterns < <(failed_steps_in "$2")
        if [ "${#patterns[@]}" -eq 0 ]; then echo "${script_name}: $2 lists no failed step: nothing to run"; return 0; fi
        shift 2;;
      --failed-from=*)
        set -- --failed-from "${1#--failed-from=}" "${@:2}";;
      --list) list=1; shift;;
      -h|--help) sed -n '2,/^set /p' "$0" | sed '$d'; return 0;;
      *) patterns+=("$1"); shift;;
    esac
  done
  if [ "${#patterns[@]}" -eq 0 ]; then
    read -r -a patterns <<< "${RWKV_DEVICE_STEPS:-default}"
  fi
  if [ "$list" -eq 1 ]; then
    local name
    for name in "${step_names[@]}"; do
      printf '%s %-28s timeout %4ss\n' "$([ "${step_default[$name]}" = yes ] && echo '*' || echo ' ')" "$name" \
        "${step_timeout[$name]}"
    done
    return 0
  fi
  select_steps "${patterns[@]}"

  local budget=${RWKV_DEVICE_BUDGET:-540} start=$SECONDS results="$work/results.tsv"
  : > "$results"
  local name
  for name in "${unmatched[@]}"; do
    printf '%s\tfail\t2\t0\t-\tunknown\n' "$name" >> "$results"
    printf '%-30s FAIL     0.0 s  (no such step)\n' "$name"
  done
  for name in "${selected[@]}"; do
    local log limit left code began ended seconds state
    log=$(step_log "$name")
    limit=${RWKV_STEP_TIMEOUT:-${step_timeout[$name]}}
    left=$((budget - (SECONDS - start)))
    if [ "$left" -lt 5 ]; then
      printf '%s\tbudget\t-\t0\t%s\t%s\n' "$name" "$limit" "${step_kind[$name]}" >> "$results"
      printf '%-30s FAIL     0.0 s  (not run: the %s s budget is spent)\n' "$name" "$budget"
      continue
    fi
    [ "$limit" -le "$left" ] || limit=$left
    began=$(date +%s.%N)
    (
      echo "==== step $name (timeout ${limit}s): ${step_command[$name]}"
      # A new process group per step: timeout kills the whole command, children included.
      work="$work" timeout -k 10 "$limit" bash -c "${step_command[$name]}" < /dev/null
      code=$?
      echo "==== exit code $code"
      exit $code
    ) > "$log" 2>&1
    code=$?
    ended=$(date +%s.%N)
    seconds=$(awk -v a="$began" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')
    if [ "$code" -eq 0 ]; then state=ok
    elif [ "$code" -eq 124 ] || { [ "$code" -eq 137 ] && awk -v s="$seconds" -v l="$limit" 'BEGIN { exit !(s >= l) }'; }; then
      state=timeout
    else state=fail
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$state" "$code" "$seconds" "$limit" "${step_kind[$name]}" >> "$results"
    case $state in
      ok) printf '%-30s ok    %6s s\n' "$name" "$seconds";;
      timeout) printf '%-30s FAIL  %6s s  (timed out after %s s)\n' "$name" "$seconds" "$limit";;
      *) printf '%-30s FAIL  %6s s  (exit code %s)\n' "$name" "$seconds" "$code";;
    esac
  done
  finish_steps "$results"
}

# finish_steps <results.tsv>: the bench table (when a training bench ran), the summary, the archive; the exit code.
finish_steps() {
  local results=$1 status=0
  if compgen -G "$work/bench/*.json" > /dev/null; then
    python3 scripts/gpu/bench_table.py "$work/bench" > "$work/bench/table.md" 2> "$work/bench/table.log" || true
  fi
  if ! python3 scripts/gpu/device_summary.py --script "$script_name" --work "$work" --rest "$work/left-out.txt" \
    "$results" > "$work/summary.txt" 2> "$work/summary.log"; then
    # Without Python the step lines still make a summary.
    { echo "== device summary (device_summary.py failed: $(tail -n 1 "$work/summary.log"))"
      awk -F'\t' '{ printf "%s %s %s s exit %s\n", ($2 == "ok" ? "ok  " : "FAIL"), $1, $4, $3 }' "$results"
    } > "$work/summary.txt"
  fi
  grep -q -v -P '^[^\t]*\tok\t' "$results" && status=1
  mkdir -p "$outdir"
  cp "$work/summary.txt" "$outdir/summary.txt"
  if [ -s "$work/left-out.txt" ]; then  # summary.txt names every failed step, for --failed-from
    { echo "== the failed steps left out above (for --failed-from):"; cat "$work/left-out.txt"; } >> "$outdir/summary.txt"
  fi
  tar -C "$(dirname "$work")" -czf "$outdir/logs.tar.gz" --transform "s,^$(basename "$work"),logs," \
    "$(basename "$work")"
  echo
  cat "$work/summary.txt"
  return $status
}

# The work folder for the logs (kept out of $OUT, which gets only the archive and the summary).
outdir=${OUT:-.device/logs}
work=$(mktemp -d "${TMPDIR:-/tmp}/rwkv-device.XXXXXX")
trap 'rm -rf "$work"' EXIT
script_name=$(basename "$0")
