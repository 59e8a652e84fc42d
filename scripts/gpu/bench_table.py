#!/usr/bin/env python3
"""Turns the `rwkv bench train --json` results of run-device.sh ($OUT/bench/*.json) into the README's H100 table:
tokens/s, MFU and peak memory of each run, with the ratio to the official RWKV-LM figures of ../shared/GPU.md
(measured there on the same H100 host, bf16, ctx 1024) and the issue's target.

Usage: scripts/gpu/bench_table.py BENCH_DIR   (prints Markdown; run-device.sh writes it to bench/table.md)
"""
import json
import pathlib
import sys

# name prefix -> (workload, official tokens/s, official peak GiB or None, target)
OFFICIAL = {
    "169m-b16": ("169M L12-D768, ctx 1024, B16", 156_000, 22.6, "≥ 2.5× (390K tok/s), ≤ 0.6× memory"),
    "430m-b16": ("430M L24-D1024, ctx 1024, B16", 81_000, 39.2, "≥ 2×"),
    "1b5-b8": ("1.5B L24-D2048, ctx 1024, B8", 33_400, 51.2, "≥ 55% MFU"),
}


def rows(bench_dir):
    for path in sorted(pathlib.Path(bench_dir).glob("*.json")):
        name = path.stem
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            print(f"bench_table: skipping {path}: {error}", file=sys.stderr)
            continue
        prefix, _, precision = name.rpartition("-")
        workload, tokens, memory, target = OFFICIAL.get(prefix, (result.get("model", name), None, None, ""))
        speed = result["tokens_per_second"]
        gib = result["peak_memory_bytes"] / 2**30
        mfu = f"{100 * result['mfu']:.1f}%" if result.get("mfu") is not None else "n/a"
        ratio = f"{speed / tokens:.2f}×" if tokens else ""
        memory_ratio = f"{gib / memory:.2f}×" if memory else ""
        yield (f"| {workload} | {precision} | {speed:,.0f} tok/s ({ratio}) | {mfu} | {gib:.1f} GiB ({memory_ratio}) "
               f"| {result['step_ms']:.1f} = {result['forward_ms']:.1f} + {result['backward_ms']:.1f} + "
               f"{result['optimizer_ms']:.1f} | {target} |")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    results = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
    if not results:
        sys.exit(f"bench_table: no *.json in {sys.argv[1]}")
    print(f"Device: {json.loads(results[0].read_text()).get('device_name', 'unknown')}\n")
    print("| workload | precision | rwkv (× official) | MFU | peak memory (× official) | ms/step = fwd + bwd + opt | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows(sys.argv[1]):
        print(row)


if __name__ == "__main__":
    main()
