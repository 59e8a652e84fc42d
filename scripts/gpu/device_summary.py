#!/usr/bin/env python3
"""The compact summary of a run-device.sh / sanitize-device.sh call (scripts/gpu/steps.bash writes results.tsv and
the step logs): GPU name and driver, one line per step (ok/FAIL, seconds), for a failed gtest step each failing
test and its first failure line (or the test it crashed or hung in), for a lab its check verdict, for a bench
its tokens/s, MFU and peak memory, and how to re-run what failed. At most LIMIT (3,000) characters: long lists
end in "... and N more".

Usage: device_summary.py --script NAME --work DIR [--rest FILE] RESULTS_TSV   (prints the summary; FILE gets
the FAIL lines a truncated summary left out, which steps.bash appends to summary.txt for --failed-from)
"""
import argparse
import json
import os
import re
import signal

LIMIT = 3000
MAX_TESTS = 3  # failing tests shown per gtest step


def log_path(work, name):
    return os.path.join(work, re.sub(r"[:/]", "_", name) + ".log")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def clip(text, width=150):
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def exit_reason(state, code, limit):
    if state == "timeout":
        return f"timed out after {limit} s (exit {code})"
    if state == "budget":
        return "not run: the call's time budget was spent"
    try:
        code = int(code)
    except ValueError:
        return f"exit {code}"
    if code > 128:
        try:
            return f"crashed: {signal.Signals(code - 128).name} (exit {code})"
        except ValueError:
            pass
    if code == 127:
        return "exit 127 (command not found)"
    return f"exit {code}"


def gtest_details(log, state):
    """Lines for a gtest log: each failing test with its first failure line, or the test that never ended."""
    lines = log.splitlines()
    failures = {}  # test -> first failure line
    order = []
    running = None
    for i, line in enumerate(lines):
        m = re.match(r"\[ RUN      \] (\S+)", line)
        if m:
            running = m.group(1)
            continue
        m = re.match(r"\[\s+(OK|FAILED|SKIPPED)\s+\] (\S+) \(", line)
        if m:
            if m.group(1) == "FAILED" and m.group(2) not in failures:
                failures[m.group(2)] = ""
                order.append(m.group(2))
            running = None
            continue
        if running and running not in failures and (re.search(r":\d+: Failure$", line) or "error:" in line):
            where = re.sub(r"^.*/", "", line.replace(": Failure", "").strip())
            what = " ".join(l.strip() for l in lines[i + 1 : i + 3] if not l.startswith("["))
            failures[running] = clip(f"{where}: {what}", 140)
            order.append(running)
    out = []
    shown = [t for t in order if t != running]
    for test in shown[:MAX_TESTS]:
        out.append(f"     {test}: {failures[test] or '(no failure line in the log)'}")
    if len(shown) > MAX_TESTS:
        out.append(f"     ... and {len(shown) - MAX_TESTS} more failing tests")
    if running:
        how = "hung (timed out)" if state == "timeout" else "crashed"
        first = f": {failures[running]}" if failures.get(running) else ""
        out.append(f"     {how} in {running}{first}")
    if not out:
        tail = [l for l in lines if l.strip() and not l.startswith("====")][-1:]
        if tail:
            out.append(f"     last line: {clip(tail[0], 140)}")
    return out


def lab_details(log):
    verdict = re.findall(r"^\S+: (all checks passed|SOME CHECKS FAILED|no CUDA device, nothing to run)$", log, re.M)
    out = [verdict[-1]] if verdict else []
    failed = [l for l in log.splitlines() if re.match(r"\s+check .* FAIL", l)]
    if failed:
        out.append(f"first: {clip(failed[0], 110)}" + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""))
    return "; ".join(out)


def bench_wkv_details(log):
    if "No CUDA device" in log:
        return "no CUDA device (timed the CPU)"
    rows = re.findall(r"^(\S+(?: \S+)?)\s+(forward\+backward|forward)\s+([\d.]+)\s", log, re.M)
    return ", ".join(f"{label} {'fwd+bwd' if p != 'forward' else 'fwd'} {ms} ms" for label, p, ms in rows)


def bench_train_details(work, name):
    path = os.path.join(work, "bench", name.split(":", 1)[1] + ".json")
    try:
        with open(path) as f:
            r = json.load(f)
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "MFU n/a"
        return f"{r['tokens_per_second']:,.0f} tok/s, {mfu}, peak {r['peak_memory_bytes'] / 2**30:.1f} GiB"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def bench_official_details(log):
    """One line per row of `rwkv bench train --official`'s table: tokens/s (x official), peak, goal."""
    lines = []
    for row in log.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 11 or cells[0] in ("workload", "---"):
            continue
        if cells[1].startswith("failed"):
            lines.append(f"     {cells[0]}: {clip(cells[1], 120)}")
            continue
        lines.append(f"     {cells[0]}: {cells[1]} tok/s ({cells[2]}), {cells[3]} model TFLOP/s, peak {cells[5]} GiB, "
                     f"{cells[8]} cudaMalloc + {cells[9]} waits/step; {clip(cells[10], 60)}")
    return lines


def bench_profile_details(log):
    """`rwkv bench train --profile`: the step, then the largest op families with their share."""
    head = re.search(r"^  tokens/s\s+(\d+)", log, re.M)
    families = re.findall(r"^  (\S.*?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%$", log, re.M)
    text = ", ".join(f"{name} {ms} ms ({share}%)" for name, _, ms, share in families[:6])
    return [f"     {head.group(1) if head else '?'} tok/s; per step: {clip(text, 200)}"] if families else []


def gpu_details(log):
    rows = [l for l in log.splitlines() if l.strip() and not l.startswith("====") and "name" not in l.lower()]
    if rows and "," in rows[0]:
        fields = [f.strip() for f in rows[0].split(",")]
        return "GPU: " + ", driver ".join(fields[:2]) + (f", {fields[2]}" if len(fields) > 2 else "")
    return "GPU: none found (" + clip(rows[0] if rows else "nvidia-smi printed nothing", 100) + ")"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", default="run-device.sh")
    parser.add_argument("--work", required=True)
    parser.add_argument("--rest", help="file for the failed steps' lines left out of a truncated summary")
    parser.add_argument("results")
    args = parser.parse_args()
    with open(args.results) as f:
        results = [line.rstrip("\n").split("\t") for line in f if line.strip()]

    gpu_line = "GPU: not queried (the gpu step was not selected)"
    step_lines = []  # (ok, [lines])
    failed = []
    total = 0.0
    for name, state, code, seconds, limit, kind in results:
        total += float(seconds)
        log = read(log_path(args.work, name))
        ok = state == "ok"
        if not ok:
            failed.append(name)
        head = f"{'ok  ' if ok else 'FAIL'} {name} {seconds} s"
        if kind == "unknown":
            head += ": no such step"
        elif not ok:
            head += ": " + exit_reason(state, code, limit)
        extra = []
        if kind == "gpu":
            gpu_line = gpu_details(log)
        elif kind == "gtest" and not ok and state != "budget":
            extra = gtest_details(log, state)
        elif kind == "gtest":
            ran = re.search(r"\[==========\] (\d+) tests? from \d+ test suites? ran", log)
            skipped = re.search(r"\[  SKIPPED \] (\d+) tests?,", log)
            if ran:
                head += f" | {ran.group(1)} tests" + (f", {skipped.group(1)} skipped" if skipped else "")
        elif kind == "lab" and lab_details(log):
            head += " | " + lab_details(log)
        elif kind == "bench-wkv" and ok:
            head += " | " + clip(bench_wkv_details(log), 200)
        elif kind == "bench-train" and bench_train_details(args.work, name):
            head += " | " + bench_train_details(args.work, name)
        elif kind == "bench-profile" and ok:
            extra = bench_profile_details(log)
        elif kind == "bench-official":
            extra = bench_official_details(log)
        elif kind == "data-parallel":
            extra = [f"     {clip(l, 140)}" for l in log.splitlines() if "median" in l or "FAILED" in l][:4]
        elif kind == "sanitizer" and not ok:
            m = re.search(r"ERROR SUMMARY: (\d+) errors?", log)
            first = re.search(r"^========= (?!COMPUTE-SANITIZER|ERROR SUMMARY)(\S.*)$", log, re.M)
            if m:
                head += f" | {m.group(1)} sanitizer errors"
            if first:
                extra = [f"     {clip(first.group(1), 140)}"]
        if not ok and kind not in ("gtest", "unknown", "data-parallel") and not extra and state != "budget":
            tail = [l for l in log.splitlines() if l.strip() and not l.startswith("====")][-1:]
            if tail:
                extra = [f"     last line: {clip(tail[0], 140)}"]
        step_lines.append((ok, [head] + extra))

    top = (f"== device summary ({args.script}): {len(results)} steps, {len(results) - len(failed)} passed, "
           f"{len(failed)} failed, {total:.0f} s")
    footer = []
    if failed:
        listed = " ".join(failed)
        if len(listed) <= 300:
            footer = [f"re-run the failed: scripts/gpu/{args.script} {listed}"]
        else:
            footer = [f"re-run the {len(failed)} failed: scripts/gpu/{args.script} --failed-from summary.txt"]
    footer.append("logs: logs.tar.gz (step logs, gtest XML, bench JSON and table.md)")

    def render(lines):
        return "\n".join([top, gpu_line] + lines + footer) + "\n"

    body = [l for _, ls in step_lines for l in ls]
    text = render(body)
    if len(text) > LIMIT:  # passing steps on one line
        passed = [ls[0][5:] for ok, ls in step_lines if ok]
        body = ["ok   " + ", ".join(passed)] + [l for ok, ls in step_lines if not ok for l in ls]
        text = render(body)
    if len(text) > LIMIT:  # only the failing steps' first lines
        body = [f"ok   {len(passed)} steps"] + [ls[0] for ok, ls in step_lines if not ok]
        text = render(body)
    left_out = []
    if len(text) > LIMIT:  # the first failing steps; the rest listed in --rest's file for --failed-from
        while len(render(body + [f"... and {len(left_out)} more failed steps"])) > LIMIT and len(body) > 2:
            left_out.insert(0, body.pop())
        text = render(body + [f"... and {len(left_out)} more failed steps"])
    if args.rest:
        with open(args.rest, "w") as f:
            f.writelines(line + "\n" for line in left_out)
    print(text, end="")


if __name__ == "__main__":
    main()
