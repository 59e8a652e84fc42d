#!/usr/bin/python3
"""Side by side on the CPU, in one run: `rwkv bench train` against a PyTorch training step of the same model.

    /usr/bin/python3 tests/reference/bench_cpu_vs_torch.py --rwkv build/train/rwkv [--rounds 3]
        [--n_layer 2 --n_embd 64 --ctx_len 128 --batch 8 --vocab 256] [--steps 10 --warmup 2] [--threads 2]

Each round runs the three contenders one after another (so load on a shared machine hits them alike), each
timing forward + backward + clipping + Adam in float32 on random tokens, median step over --steps after --warmup:
  rwkv             `rwkv bench train --device cpu` (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = --threads)
  pytorch-fast     torch_train_step.py --wkv fast: the reference model with a float32 WKV loop and a
                   hand-written backward (the fair PyTorch baseline)
  pytorch-ref      torch_train_step.py --wkv reference: rwkv4_reference.py's WKV as written (float64 Python loop
                   through autograd; slow by design)
and the table shows the median tokens/s over the rounds, with every round's number.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(command, threads):
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                       OMP_WAIT_POLICY="passive")
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rwkv", required=True, help="the rwkv binary")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n_layer", type=int, default=2)
    parser.add_argument("--n_embd", type=int, default=64)
    parser.add_argument("--ctx_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip_reference", action="store_true", help="leave out the slow reference WKV")
    args = parser.parse_args()

    shape = ["--n_layer", str(args.n_layer), "--n_embd", str(args.n_embd), "--ctx_len", str(args.ctx_len)]
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    contenders = {
        "rwkv": [args.rwkv, "bench", "train", "--device", "cpu", *shape, "--micro_bsz", str(args.batch),
                 "--vocab_size", str(args.vocab), *timing, "--json"],
    }
    torch_step = [sys.executable, os.path.join(HERE, "torch_train_step.py"), *shape, "--batch", str(args.batch),
                  "--vocab", str(args.vocab), *timing, "--threads", str(args.threads), "--json"]
    contenders["pytorch-fast"] = torch_step + ["--wkv", "fast"]
    if not args.skip_reference:
        contenders["pytorch-ref"] = torch_step + ["--wkv", "reference"]

    results = {name: [] for name in contenders}
    for round_index in range(args.rounds):
        for name, command in contenders.items():
            result = run_json(command, args.threads)
            results[name].append(result)
            print(f"round {round_index + 1}: {name:13s} {result['tokens_per_second']:9.0f} tokens/s  "
                  f"({result['step_ms']:.1f} ms/step: forward {result['forward_ms']:.1f}, backward "
                  f"{result['backward_ms']:.1f}, optimizer {result['optimizer_ms']:.1f})", flush=True)

    print(f"\nL{args.n_layer}-D{args.n_embd}, vocab {args.vocab}, batch {args.batch} x ctx {args.ctx_len}, float32, "
          f"{args.threads} threads; median of {args.rounds} rounds (each the median step of {args.steps} after "
          f"{args.warmup} warm-up)")
    print(f"{'':13s} {'tokens/s':>9s} {'ms/step':>8s} {'fwd':>7s} {'bwd':>7s} {'opt':>7s}  vs rwkv   rounds (tokens/s)")
    rwkv_speed = statistics.median(r["tokens_per_second"] for r in results["rwkv"])
    for name, runs in results.items():
        speed = statistics.median(r["tokens_per_second"] for r in runs)
        columns = [statistics.median(r[key] for r in runs) for key in ("step_ms", "forward_ms", "backward_ms",
                                                                      "optimizer_ms")]
        rounds = ", ".join(f"{r['tokens_per_second']:.0f}" for r in runs)
        print(f"{name:13s} {speed:9.0f} {columns[0]:8.1f} {columns[1]:7.1f} {columns[2]:7.1f} {columns[3]:7.1f}  "
              f"{speed / rwkv_speed:6.2f}x   {rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
