#!/usr/bin/python3
"""Times one RWKV-4 training step in PyTorch on the CPU: the other side of `rwkv bench train`'s CPU comparison.

The model is rwkv4_reference.py's (imported, not copied): forward, cross-entropy with L2Wrap, autograd backward,
then global-norm clipping to 1.0 and torch.optim.Adam (betas 0.9/0.99, eps 1e-8) with the spec's lr multipliers
(time_decay x2, time_first x3) as parameter groups. Everything is float32 on random tokens; the step is timed
with time.perf_counter per phase and the median over the timed steps is reported, like `rwkv bench train`.

    /usr/bin/python3 tests/reference/torch_train_step.py [--wkv reference|fast] [--n_layer 2 --n_embd 64
        --ctx_len 128 --batch 8 --vocab 256] [--steps 10 --warmup 2] [--threads 2] [--json] [--check]

--wkv reference  the reference's WKV unchanged: a Python loop over t (each step vectorised over batch and
                 channels) in float64, differentiated by autograd through all T steps. Slow by design.
--wkv fast       the same loop over t in float32 as a torch.autograd.Function with a hand-written backward loop
                 (no autograd graph per time step): the fairer PyTorch CPU baseline.
--check          gradcheck of the fast WKV against autograd of the reference in float64, then exit.

The initial values are not the official init (speed does not depend on them); they keep the WKV well scaled.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkv4_reference as ref  # noqa: E402  (next to this file)


class WkvFunction(torch.autograd.Function):
    """WKV (spec 1.5) by its plain recurrence, the loop over t vectorised over [B, C]. w = -exp(time_decay)."""

    @staticmethod
    def forward(ctx, w, u, k, v):
        batch, time_steps, channels = k.shape
        decay = torch.exp(w)
        ek, euk = torch.exp(k), torch.exp(u + k)
        a = k.new_zeros(batch, channels)
        b = k.new_zeros(batch, channels)
        a_before, b_before, y = torch.empty_like(k), torch.empty_like(k), torch.empty_like(k)
        for t in range(time_steps):
            a_before[:, t], b_before[:, t] = a, b
            y[:, t] = (a + euk[:, t] * v[:, t]) / (b + euk[:, t])
            a = decay * a + ek[:, t] * v[:, t]
            b = decay * b + ek[:, t]
        ctx.save_for_backward(decay, v, ek, euk, a_before, b_before, y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        decay, v, ek, euk, a_before, b_before, y = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        batch, time_steps, channels = v.shape
        grad_a = v.new_zeros(batch, channels)  # d loss / d a_{t+1}, then a_t
        grad_b = v.new_zeros(batch, channels)
        grad_w = v.new_zeros(batch, channels)
        grad_u = v.new_zeros(batch, channels)
        grad_k, grad_v = torch.empty_like(v), torch.empty_like(v)
        for t in reversed(range(time_steps)):
            denominator = b_before[:, t] + euk[:, t]
            grad_numerator = grad_y[:, t] / denominator
            grad_denominator = -grad_y[:, t] * y[:, t] / denominator
            # a_{t+1} = e^w a_t + e^k v,  b_{t+1} = e^w b_t + e^k
            grad_w += decay * (a_before[:, t] * grad_a + b_before[:, t] * grad_b)
            through_euk = euk[:, t] * (grad_numerator * v[:, t] + grad_denominator)
            grad_u += through_euk
            grad_k[:, t] = through_euk + ek[:, t] * (v[:, t] * grad_a + grad_b)
            grad_v[:, t] = grad_numerator * euk[:, t] + ek[:, t] * grad_a
            grad_a = grad_numerator + decay * grad_a
            grad_b = grad_denominator + decay * grad_b
        return grad_w.sum(0), grad_u.sum(0), grad_k, grad_v


def fast_wkv(time_decay, time_first, k, v):
    """Drop-in for rwkv4_reference.wkv, in the inputs' dtype instead of float64."""
    return WkvFunction.apply(-torch.exp(time_decay), time_first, k.contiguous(), v.contiguous())


def check_fast_wkv():
    torch.manual_seed(0)
    shape = (2, 7, 5)
    inputs = [torch.randn(size, dtype=torch.float64).requires_grad_() for size in (5, 5, shape, shape)]
    assert torch.autograd.gradcheck(fast_wkv, inputs), "fast WKV gradient check failed"
    grad_y = torch.randn(shape, dtype=torch.float64)
    fast = torch.autograd.grad(fast_wkv(*inputs), inputs, grad_y)
    reference = torch.autograd.grad(ref.wkv(*inputs), inputs, grad_y)
    for name, a, b in zip(("time_decay", "time_first", "k", "v"), fast, reference):
        error = float((a - b).abs().max())
        assert error < 1e-9, f"fast WKV: d/d{name} differs from the reference's autograd by {error}"
    print("fast WKV: gradcheck passed; gradients match the reference's autograd within 1e-9")


def initial_parameters(dims, generator):
    """float32 leaf tensors in state_dict order: LayerNorms 1/0, mixes 0.5, decays spread over channels."""
    params = {}
    for name, shape in ref.parameter_shapes(dims):
        if name.endswith((".weight", ".bias")) and len(shape) == 1:
            value = torch.ones(shape) if name.endswith(".weight") else torch.zeros(shape)
        elif "time_mix" in name:
            value = torch.full(shape, 0.5)
        elif "time_decay" in name:
            value = torch.linspace(-5, 1, shape[0])
        elif "time_first" in name:
            value = torch.full(shape, math.log(0.3))
        else:
            value = torch.randn(shape, generator=generator) / math.sqrt(shape[1])
        params[name] = value.float().requires_grad_(True)
    return params


def optimizer_for(params):
    groups = {}
    for name, p in params.items():
        groups.setdefault(ref.lr_multiplier(name), []).append(p)
    lr = 6e-4
    return torch.optim.Adam([{"params": ps, "lr": lr * multiplier} for multiplier, ps in groups.items()],
                            lr=lr, betas=(0.9, 0.99), eps=1e-8)


def benchmark(args):
    torch.set_num_threads(args.threads)
    if args.wkv == "fast":
        ref.wkv = fast_wkv  # time_mix looks the WKV up at call time
    dims = {"n_layer": args.n_layer, "n_embd": args.n_embd, "dim_att": args.n_embd, "dim_ffn": 4 * args.n_embd,
            "vocab_size": args.vocab, "ctx_len": args.ctx_len}
    generator = torch.Generator().manual_seed(args.seed)
    params = initial_parameters(dims, generator)
    optimizer = optimizer_for(params)
    phases = {"forward": [], "backward": [], "optimizer": [], "step": []}
    loss = None
    for step in range(args.warmup + args.steps):
        tokens = torch.randint(0, args.vocab, (args.batch, args.ctx_len + 1), generator=generator)
        start = time.perf_counter()
        loss, _ = ref.loss_and_logits(params, dims, tokens[:, :-1], tokens[:, 1:])
        after_forward = time.perf_counter()
        loss.backward()
        after_backward = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        end = time.perf_counter()
        if step >= args.warmup:
            phases["forward"].append((after_forward - start) * 1e3)
            phases["backward"].append((after_backward - after_forward) * 1e3)
            phases["optimizer"].append((end - after_backward) * 1e3)
            phases["step"].append((end - start) * 1e3)
    medians = {name: statistics.median(values) for name, values in phases.items()}
    tokens_per_step = args.batch * args.ctx_len
    return {"implementation": f"pytorch {torch.__version__} ({args.wkv} WKV)", "threads": args.threads,
            "model": f"L{args.n_layer}-D{args.n_embd}", "micro_bsz": args.batch, "ctx_len": args.ctx_len,
            "vocab": args.vocab, "steps": args.steps, "warmup": args.warmup,
            "tokens_per_second": tokens_per_step / (medians["step"] / 1e3),
            "step_ms": medians["step"], "forward_ms": medians["forward"], "backward_ms": medians["backward"],
            "optimizer_ms": medians["optimizer"], "last_loss": float(loss)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wkv", choices=("reference", "fast"), default="reference")
    parser.add_argument("--n_layer", type=int, default=2)
    parser.add_argument("--n_embd", type=int, default=64)
    parser.add_argument("--ctx_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="check the fast WKV's gradients and exit")
    args = parser.parse_args()
    if args.check:
        check_fast_wkv()
        return 0
    result = benchmark(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['implementation']}, {args.threads} threads: {result['model']}, batch {args.batch} x ctx "
              f"{args.ctx_len}: {result['tokens_per_second']:.0f} tokens/s, {result['step_ms']:.1f} ms per step "
              f"(forward {result['forward_ms']:.1f} + backward {result['backward_ms']:.1f} + optimizer "
              f"{result['optimizer_ms']:.1f}), loss {result['last_loss']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
