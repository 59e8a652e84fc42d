#!/usr/bin/env bash
# Validation during training and `rwkv report` end to end: a tiny run with validation on, then the report page
# rendered by a real headless browser, whose script must have drawn one point per training record and the
# validation curve; the screenshot must not be blank. Also: report errors, a torn last record, HTML escaping, and
# 2 data-parallel ranks validating (each a share) without hanging. Skips the browser part without chromium and
# the MPI part without mpirun or an MPI build.
# Usage: report.sh <path-to-rwkv> <source-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
rwkv="$(realpath "$1")"
python=/usr/bin/python3
enter_work_dir

write_tiny_corpus
for i in $(seq 1 60); do echo "held out $i: a dog naps on the mat by the cat."; done > val.txt
cat > tiny.ini <<'INI'
data_file = corpus.txt
data_type = bytes
val_data_file = val.txt
val_data_type = bytes
val_every = 3
val_max_windows = 20
proj_dir = run
n_layer = 2
n_embd = 32
ctx_len = 32
micro_bsz = 4
epoch_steps = 4
epoch_count = 2
epoch_save = 0
save_every_steps = 4
lr_init = 2e-3
lr_final = 2e-4
INI

"$rwkv" train --config tiny.ini > train.log
grep -q "^  validation  val.txt: 20 windows of 33 tokens" train.log || fail "no validation line in the startup table"
[ "$(grep -c '^validation at step' train.log)" -eq 3 ] || fail "expected validations at steps 3, 6 and 8"
grep -q '^validation at step 8 | val_loss' train.log || fail "no validation at the end"
[ "$(grep -c '"val_loss"' run/metrics.jsonl)" -eq 3 ] || fail "metrics.jsonl should have 3 validation records"
[ "$(grep -c '"rss_peak_mib"' run/metrics.jsonl)" -eq 8 ] || fail "training records lack the peak memory"
grep -q '"val_every": "3"' run/run.json || fail "run.json lacks the config"
grep -q '"cpu_cores"' run/run.json || fail "run.json lacks the hardware"

# Bad validation data: an error naming the file before any training output.
if "$rwkv" train --config tiny.ini --proj_dir bad --val_data_file nope.txt 2> bad.txt; then
  fail "a missing val_data_file was accepted"
fi
grep -q "val_data_file 'nope.txt'" bad.txt || fail "the missing val_data_file is not named: $(cat bad.txt)"
[ ! -e bad/metrics.jsonl ] || fail "training started despite bad validation data"
echo "short" > short.txt
if "$rwkv" train --config tiny.ini --proj_dir bad --val_data_file short.txt 2> bad.txt; then
  fail "a val_data_file shorter than one window was accepted"
fi
grep -q "fewer than one window" bad.txt || fail "no 'fewer than one window' error: $(cat bad.txt)"

# The report, and its errors.
"$rwkv" report --run run > report.log
grep -q "wrote run/report.html (8 steps, 3 validations, 2 checkpoints)" report.log || fail "report: $(cat report.log)"
[ -s run/report.html ] || fail "no run/report.html"
if "$rwkv" report --run nowhere 2> err.txt; then fail "a missing run directory was accepted"; fi
grep -q "rwkv report: error: .*'nowhere' does not exist" err.txt || fail "missing run directory: $(cat err.txt)"
mkdir empty_run
if "$rwkv" report --run empty_run 2> err.txt; then fail "a run without metrics.jsonl was accepted"; fi
grep -q "metrics.jsonl is missing" err.txt || fail "missing metrics.jsonl: $(cat err.txt)"

# A run that crashed mid-record, with a hostile name and config value: warned, skipped and escaped.
hostile='x<img src=y onerror=alert(1)>'
mkdir "$hostile"
cp run/metrics.jsonl run/run.json "$hostile"/
sed -i 's|"val.txt"|"</script><script>alert(2)</script>"|' "$hostile/run.json"
printf '{"step": 9, "loss": 1.2, "grad_n' >> "$hostile/metrics.jsonl"
"$rwkv" report --run "$hostile" --out hostile.html > /dev/null 2> warn.txt || fail "report of a torn run failed"
grep -q "warning: skipped the incomplete last record" warn.txt || fail "no warning for the torn record"
! grep -q "<img" hostile.html || fail "the run name was not escaped"
! grep -q "<script>alert" hostile.html || fail "a config value was not escaped"

# $CHROMIUM overrides the browser (e.g. CHROMIUM=none to try the skip).
chromium="${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}"
if [ ! -x "$chromium" ]; then
  echo "cli report: browser part skipped (no chromium at $chromium)"
else
  browse() {
    timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
      --no-first-run --disable-extensions "$@" 2> chromium.err
  }
  browse --dump-dom "file://$work/run/report.html" > dom.html || { cat chromium.err; fail "chromium --dump-dom"; }
  # One point per training record (a finite loss each) and one per validation, drawn by the page's script.
  "$python" - dom.html run/metrics.jsonl <<'PY' || fail "the rendered page's curves are wrong"
import html.parser, json, re, sys
class Paths(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.paths, self.rendered, self.markers = {}, False, 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and a.get("data-rendered") == "yes":
            self.rendered = True
        if tag == "path" and "data-series" in a:
            self.paths[a["data-series"]] = a.get("d", "")
        if tag == "circle" and a.get("class") == "marker":
            self.markers += 1
page = Paths()
page.feed(open(sys.argv[1]).read())
records = [json.loads(line) for line in open(sys.argv[2])]
train = [r for r in records if "loss" in r]
val = [r for r in records if "val_loss" in r]
def points(d):
    return len(re.findall(r"[ML]", d))
problems = []
if not page.rendered:
    problems.append("the page's script did not finish (no data-rendered on body)")
for name, expected in (("train-loss", len(train)), ("val-loss", len(val)), ("lr", len(train)),
                       ("tokens-per-s", len(train)), ("rss-peak", len(train))):
    got = points(page.paths.get(name, ""))
    print(f"{name}: {got} points drawn, {expected} records")
    if got != expected:
        problems.append(f"{name}: {got} points drawn for {expected} records")
if page.markers != len(val):
    problems.append(f"{page.markers} validation markers for {len(val)} validations")
if len(train) != 8 or len(val) != 3:
    problems.append(f"unexpected metrics: {len(train)} steps, {len(val)} validations")
print("\n".join(problems) or "curves: all drawn")
sys.exit(1 if problems else 0)
PY
  grep -q "rwkv-step-4.h5" dom.html || fail "the checkpoint list is not on the page"

  # A screenshot that is not blank: many non-white pixels in several colours.
  browse --screenshot="$work/shot.png" --window-size=1200,1400 --hide-scrollbars "file://$work/run/report.html" \
    > /dev/null || { cat chromium.err; fail "chromium --screenshot"; }
  "$python" - shot.png <<'PY' || fail "the screenshot looks blank"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, header = 8, b"", None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
width, height, depth, colour, _, _, interlace = header
assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG {header}"
channels = 3 if colour == 2 else 4
raw, stride = zlib.decompress(idat), width * channels
rows, previous = [], bytearray(stride)
for y in range(height):
    kind = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):  # undo the PNG row filter
        left = line[i - channels] if i >= channels else 0
        up, corner = previous[i], previous[i - channels] if i >= channels else 0
        if kind == 1: line[i] = (line[i] + left) & 255
        elif kind == 2: line[i] = (line[i] + up) & 255
        elif kind == 3: line[i] = (line[i] + (left + up) // 2) & 255
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    rows.append(bytes(line))
    previous = line
pixels = [row[x:x + 3] for row in rows[::4] for x in range(0, stride, channels * 4)]
colours = set(pixels)
ink = sum(1 for p in pixels if p != b"\xff\xff\xff") / len(pixels)
print(f"screenshot {width}x{height}: {len(colours)} colours, {ink:.1%} non-white (sampled)")
sys.exit(0 if len(colours) >= 8 and ink > 0.02 else 1)
PY
fi

# Data-parallel: 2 ranks each validate a share and combine; the same loss as 1 rank, and no hang.
if command -v mpirun > /dev/null; then
  if timeout 300 mpirun --allow-run-as-root --oversubscribe -np 2 "$rwkv" train --config tiny.ini --proj_dir two \
    --micro_bsz 2 --max_steps 3 > two.log 2>&1; then
    "$rwkv" train --config tiny.ini --proj_dir one --max_steps 3 > one.log 2>&1 || { cat one.log; fail "1-rank run"; }
    grep -q "parallel    2 ranks" two.log || fail "the MPI run did not have 2 ranks"
    one="$(grep -o '"val_loss": [0-9.e+-]*' one/metrics.jsonl | tail -1 | cut -d' ' -f2)"
    two="$(grep -o '"val_loss": [0-9.e+-]*' two/metrics.jsonl | tail -1 | cut -d' ' -f2)"
    "$python" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 1e-5 * abs(b))" \
      "$two" "$one" || fail "2-rank val_loss $two differs from 1-rank $one"
    echo "data-parallel validation: 2 ranks $two, 1 rank $one"
  elif grep -q "built without MPI" two.log; then
    echo "cli report: MPI part skipped (this rwkv was built without MPI)"
  else
    cat two.log
    fail "2-rank run with validation"
  fi
else
  echo "cli report: MPI part skipped (no mpirun on PATH)"
fi
echo "cli report: all checks passed"
