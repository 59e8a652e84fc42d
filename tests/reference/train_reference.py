#!/usr/bin/python3
"""A whole RWKV-LM training run in PyTorch, written from /work/shared/rwkv4-spec.md, not from the C++ trainer.

The other side of tests/cli/train_reference.sh: `rwkv train` (fp32, CPU) must give the same loss at every step and
the same parameters as this script, which trains the same initial weights on the same binidx data with the
RWKV-LM v4neo recipe:

  model, cross-entropy and L2Wrap   rwkv4_reference.py (imported: the independent PyTorch RWKV-4, spec 1, 1.7)
  data                              the .bin read with numpy after the .idx header (spec 5.1); sample i is the
                                    window of ctx_len + 1 tokens at offset o_i: x = tokens[o : o+T], y = shifted
  sample offsets                    magic prime (spec 5.3, RWKV-LM dataset.py):
                                      ii = 1 + epoch * samples_per_epoch + idx * world + rank,
                                      factor = int(p * (sqrt(5) - 1) / 2), o = (factor * ii^3 mod p) * ctx_len
                                    with samples_per_epoch = 40320 (Pile mode), idx = step * micro_bsz + j in this
                                    rank's epoch; the global batch of a step is the contiguous block of ii values.
                                    Otherwise random mode (spec 5.3: uniform in [0, data_size - ctx_len - 1)),
                                    drawn, as `rwkv train` documents its random sampler (data/sampler.h), from a
                                    counter-based hash of (seed, global sample number) -- RWKV-LM's own draws come
                                    from an unseeded numpy generator and cannot be reproduced by anyone.
  parameter groups                  layerwise_lr (spec 4.2): time_mix x1, time_decay x2, time_first x3 (x5 for all
                                    three in my_pile_stage 2); substring match, first wins; layerwise_lr 0: x1
  clipping                          torch.nn.utils.clip_grad_norm_(all parameters, 1.0), as Lightning applies
                                    gradient_clip_val = 1.0 (spec 4.3)
  optimizer                         torch.optim.Adam(betas, eps, lr per group): eps after the bias-corrected
                                    square root, as DeepSpeed FusedAdam (spec 4.1)
  schedule                          spec 4.4 / RWKV-LM trainer.py on_train_batch_start: exponential decay over
                                    epoch_count mini-epochs of epoch_steps by the absolute step, the cosine variant
                                    when my_exit_tokens is set, warmup 0.2 + 0.8 * s / w on the run-local step
  end of the run                    where RWKV-LM ends it: epoch_count * epoch_steps steps (with magic_prime, Pile
                                    mode: epoch_steps = 40320 / real_bsz, epoch_count = p // 40320, and the end is
                                    rwkv-final, saved in on_train_batch_end when real_step == p // real_bsz - 1,
                                    spec 5.3; Lightning >= 1.6, e.g. RWKV-LM's 1.9.5, has already counted the step
                                    just taken in global_step there, so after p // real_bsz - 1 steps); with
                                    my_exit_tokens, at the start of the first step whose token count reaches it (the
                                    cosine pc >= 1, spec 4.4), which is ceil(p / real_bsz) steps for
                                    my_exit_tokens = p * ctx_len: RWKV-LM saves rwkv-final after p // real_bsz - 1
                                    steps, trains on and saves it again at the exit.

Everything is float64 (the WKV loop always is), so the comparison bounds the C++ fp32 error.

    /usr/bin/python3 tests/reference/train_reference.py train --weights INIT.h5 --data PREFIX --out OUT.h5
        --micro_bsz 4 [--epoch_steps 8 --epoch_count 6 | --magic_prime P --my_exit_tokens N]
        [--lr_init --lr_final --warmup_steps --beta1 --beta2 --adam_eps --grad_clip --layerwise_lr --my_pile_stage
         --seed] [--save_steps 8,24]
    /usr/bin/python3 tests/reference/train_reference.py compare --reference OUT.h5 --run PROJ_DIR
        [--final FILE.h5] [--checkpoint STEP:FILE.h5 ...] [--tolerance 1e-5]

OUT.h5: datasets loss, lr, grad_norm (float64 [steps], step s + 1 at index s), offsets (int64 [steps, real_bsz]),
and groups params/<step>/<name> (float64) after each step of --save_steps, after the last step and (magic_prime)
after p // real_bsz - 1 steps; attributes steps (the run's length) and final_save_steps (p // real_bsz - 1,
or 0).

`compare` reads PROJ_DIR/metrics.jsonl (one record per step: "step", "loss", "lr") and the checkpoints' /model,
and exits 1 when a step is missing, a loss differs by more than --tolerance (relative), an lr by more than 1e-8
(relative), or a checkpoint's parameters by more than --tolerance (relative, all parameters as one vector).
"""

import argparse
import json
import math
import os
import struct
import sys

import h5py
import numpy as np

MASK64 = (1 << 64) - 1
SAMPLES_PER_MINI_EPOCH = 40320  # spec 4.5: Pile mode, 8!
BINIDX_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


# ---- data (spec 5.1) -------------------------------------------------------------------------------------------

def read_binidx_tokens(prefix):
    """The .bin as one flat token stream; the item type from the .idx header (magic, version, dtype code)."""
    with open(prefix + ".idx", "rb") as f:
        header = f.read(18)
    if header[:9] != b"MMIDIDX\x00\x00" or struct.unpack("<Q", header[9:17])[0] != 1:
        sys.exit(f"{prefix}.idx: not a version-1 MMIDIDX index")
    code = header[17]
    if code not in BINIDX_DTYPES:
        sys.exit(f"{prefix}.idx: dtype code {code} is not a token type")
    return np.fromfile(prefix + ".bin", dtype=np.dtype(BINIDX_DTYPES[code]).newbyteorder("<")).astype(np.int64)


def magic_offset(ii, p, ctx_len, shift=0):
    """RWKV-LM dataset.py: factor = int(p * (sqrt(5) - 1) / 2) in double precision, chunk = factor * ii^3 mod p."""
    factor = int(p * ((math.sqrt(5) - 1) / 2))
    return ((factor * ii * ii * ii) % p) * ctx_len + shift


def mix64(x):
    """splitmix64 (Steele, Lea, Flood 2014): add the golden gamma, then the variant-13 finaliser."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def random_offset(seed, sample, offsets):
    """Uniform in [0, offsets) for global sample number `sample`: Lemire's bounded draw of the hash
    mix64(mix64(seed) ^ sample) (+ attempt on a rejection), as data/sampler.h documents `rwkv train`'s draw."""
    key = mix64(mix64(seed) ^ sample)
    threshold = (-offsets % (1 << 64)) % offsets
    attempt = 0
    while True:
        product = mix64((key + attempt) & MASK64) * offsets
        if product & MASK64 >= threshold:
            return product >> 64
        attempt += 1


def step_offsets(args, step, data_size):
    """Offsets of the global batch of optimizer step `step` (0-based), in rank-interleaved order m = 0..real_bsz-1;
    with W ranks of micro_bsz B, sample m is sample j = m // W of rank m % W."""
    real_bsz = args.micro_bsz * args.world
    offsets = []
    for m in range(real_bsz):
        j, rank = divmod(m, args.world)
        if args.magic_prime:
            epoch_steps = SAMPLES_PER_MINI_EPOCH // real_bsz
            epoch = args.epoch_begin + step // epoch_steps
            idx = (step % epoch_steps) * args.micro_bsz + j   # this rank's index in its epoch (DataLoader order)
            ii = 1 + epoch * SAMPLES_PER_MINI_EPOCH + idx * args.world + rank
            offsets.append(magic_offset(ii, args.magic_prime, args.ctx_len))
        else:
            offsets.append(random_offset(args.seed, step * real_bsz + m, data_size - args.ctx_len - 1))
    return offsets


# ---- schedule (spec 4.4, RWKV-LM trainer.py on_train_batch_start) ------------------------------------------------

def learning_rate(args, step):
    """(lr, exit): the lr of run-local step `step` and whether the cosine schedule ends the run before it."""
    real_step = step + args.epoch_begin * args.epoch_steps
    w = args.warmup_steps
    if args.lr_final == args.lr_init or args.epoch_count == 0:
        lr = args.lr_init
    else:
        decay_step = real_step - args.my_pile_edecay * args.epoch_steps
        decay_total = (args.epoch_count - args.my_pile_edecay) * args.epoch_steps
        progress = min(1.0, max(0.0, (decay_step - w + 1) / (decay_total - w)))
        if args.lr_final == 0 or args.lr_init == 0:
            lr = args.lr_init + (args.lr_final - args.lr_init) * progress
        else:
            lr = args.lr_init * math.exp(math.log(args.lr_final / args.lr_init) * progress)
    exit_now = False
    if args.my_exit_tokens != 0:
        real_bsz = args.micro_bsz * args.world
        tokens, warmup_tokens = real_step * args.ctx_len * real_bsz, w * args.ctx_len * real_bsz
        pc = min(1.0, max(0.0, (tokens - warmup_tokens) / (abs(args.my_exit_tokens) - warmup_tokens)))
        f = args.lr_final / args.lr_init
        mult = (0.5 + f / 2) + (0.5 - f / 2) * math.cos(math.pi * pc)
        lr = args.lr_init * mult if args.my_exit_tokens > 0 else (lr + args.lr_init * mult) / 2
        exit_now = pc >= 1
    if step < w:
        lr = lr * (0.2 + 0.8 * step / w)
    return lr, exit_now


def lr_scale(args, name):
    """Spec 4.2: the parameter's group multiplier."""
    if not args.layerwise_lr:
        return 1.0
    stage2 = args.my_pile_stage == 2
    if "time_mix" in name:
        return 5.0 if stage2 else 1.0
    if "time_decay" in name:
        return 5.0 if stage2 else 2.0
    if "time_first" in name:
        return 5.0 if stage2 else 3.0
    return 1.0


# ---- train ------------------------------------------------------------------------------------------------------

def train(args):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import rwkv4_reference as ref  # noqa: E402  (next to this file)

    torch.set_num_threads(1)
    dims, weights = ref.load_weights(args.weights, torch.float64)
    dims["ctx_len"] = args.ctx_len  # the trained context (the file's may differ, as with --load_model)
    tokens = read_binidx_tokens(args.data)
    real_bsz = args.micro_bsz * args.world
    if args.magic_prime:
        p = args.magic_prime
        slots = len(tokens) // args.ctx_len
        # dataset.py's assertions (MaybeIsPrime, p % 3 == 2, 0.99 < p / slots <= 1) and the last window in bounds.
        if any(p % d == 0 for d in range(2, math.isqrt(p) + 1)) or p % 3 != 2 or not 0.99 < p / slots <= 1 or \
                (p - 1) * args.ctx_len + args.ctx_len + 1 > len(tokens):
            sys.exit(f"magic_prime {p} is not one RWKV-LM accepts for {len(tokens)} tokens at ctx_len {args.ctx_len}")
        assert SAMPLES_PER_MINI_EPOCH % real_bsz == 0
        args.epoch_steps = SAMPLES_PER_MINI_EPOCH // real_bsz  # train.py's Pile-mode forcing
        args.epoch_count = p // SAMPLES_PER_MINI_EPOCH
    # Where RWKV-LM ends the run. With my_exit_tokens: at the start of the first step whose real_step * ctx_len *
    # real_bsz reaches |my_exit_tokens| (cosine pc >= 1), saving rwkv-final first. With magic_prime it has also
    # saved rwkv-final in on_train_batch_end at real_step == p // real_bsz - 1, where Lightning's global_step
    # already counts the step just taken: after p // real_bsz - 1 steps; the exit overwrites that file. Without
    # either: epoch_count mini-epochs.
    final_save_steps = args.magic_prime // real_bsz - 1 if args.magic_prime else 0
    if args.my_exit_tokens:
        steps = 0
        while not learning_rate(args, steps)[1]:
            steps += 1
    elif args.magic_prime:
        steps = final_save_steps
    else:
        steps = args.epoch_count * args.epoch_steps

    # Parameter groups in state_dict order of first appearance of each multiplier.
    params = {name: t.clone().requires_grad_(True) for name, t in weights.items()}
    groups = {}
    for name, p in params.items():
        groups.setdefault(lr_scale(args, name), []).append(p)
    optimizer = torch.optim.Adam([{"params": ps, "my_lr_scale": s} for s, ps in groups.items()], lr=args.lr_init,
                                 betas=(args.beta1, args.beta2), eps=args.adam_eps, weight_decay=0)
    save_steps = {int(s) for s in args.save_steps.split(",") if s} | {steps, final_save_steps}
    losses, lrs, norms, all_offsets, snapshots = [], [], [], [], {}
    for step in range(steps):
        lr, _ = learning_rate(args, step)
        offsets = step_offsets(args, step, len(tokens))
        windows = np.stack([tokens[o:o + args.ctx_len + 1] for o in offsets])
        x, y = torch.from_numpy(windows[:, :-1].copy()), torch.from_numpy(windows[:, 1:].copy())
        for group in optimizer.param_groups:
            group["lr"] = lr * group["my_lr_scale"]
        optimizer.zero_grad()
        loss, _ = ref.loss_and_logits(params, dims, x, y, l2wrap=True)
        loss.backward()
        if args.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(list(params.values()), args.grad_clip)
        else:
            norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params.values()))
        optimizer.step()
        losses.append(float(loss))
        lrs.append(lr)
        norms.append(float(norm))
        all_offsets.append(offsets)
        if step + 1 in save_steps:
            snapshots[step + 1] = {name: t.detach().numpy().copy() for name, t in params.items()}

    with h5py.File(args.out, "w") as f:
        f.attrs["steps"] = np.int64(steps)
        f.attrs["final_save_steps"] = np.int64(final_save_steps)
        f.create_dataset("loss", data=np.array(losses, dtype=np.float64))
        f.create_dataset("lr", data=np.array(lrs, dtype=np.float64))
        f.create_dataset("grad_norm", data=np.array(norms, dtype=np.float64))
        f.create_dataset("offsets", data=np.array(all_offsets, dtype=np.int64))
        for s, tensors in snapshots.items():
            group = f.create_group(f"params/{s}")
            for name, value in tensors.items():
                group.create_dataset(name, data=value)
    clipped = sum(1 for n in norms if n > args.grad_clip) if args.grad_clip > 0 else 0
    print(f"reference: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}, lr {min(lrs):.3e}.."
          f"{max(lrs):.3e}, {clipped} of {len(losses)} steps clipped (grad norm {min(norms):.3f}..{max(norms):.3f})")
    return 0


# ---- compare ----------------------------------------------------------------------------------------------------

def model_tensors(path):
    tensors = {}
    with h5py.File(path, "r") as f:
        for name, item in f["model"].items():
            tensors[name] = np.asarray(item, dtype=np.float64)
    return tensors


def parameter_error(run, reference):
    """|a - b| / |b| over all parameters as one vector, and the worst tensor."""
    if run.keys() != reference.keys():
        return math.inf, f"different tensors: {sorted(run.keys() ^ reference.keys())[:4]}"
    difference = math.sqrt(sum(float(np.sum((run[k].reshape(reference[k].shape) - reference[k]) ** 2)) for k in run))
    norm = math.sqrt(sum(float(np.sum(reference[k] ** 2)) for k in run))
    worst = max((float(np.linalg.norm(run[k].reshape(reference[k].shape) - reference[k])) /
                 max(float(np.linalg.norm(reference[k])), 1e-30), k) for k in run)
    return difference / norm, f"worst tensor {worst[1]}: {worst[0]:.2e}"


def compare(args):
    failures = []
    with h5py.File(args.reference, "r") as f:
        losses, lrs = np.asarray(f["loss"]), np.asarray(f["lr"])
        steps = args.steps or int(f.attrs["steps"])
        final_save_steps = int(f.attrs["final_save_steps"])
        snapshots = {int(s): {n: np.asarray(t) for n, t in g.items()} for s, g in f["params"].items()} \
            if "params" in f else {}
    records = {}
    with open(os.path.join(args.run, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                records[int(record["step"])] = record
    if sorted(records) != list(range(1, steps + 1)):
        failures.append(f"metrics.jsonl has steps {min(records, default=0)}..{max(records, default=0)} "
                        f"({len(records)} records); the reference run has steps 1..{steps}")
    worst_loss, worst_lr = (0.0, 0), (0.0, 0)
    for s in range(1, steps + 1):
        if s not in records:
            continue
        loss, lr = records[s]["loss"], records[s]["lr"]
        loss_error = math.inf if loss is None else abs(loss - losses[s - 1]) / abs(losses[s - 1])
        lr_error = abs(lr - lrs[s - 1]) / lrs[s - 1]
        worst_loss, worst_lr = max(worst_loss, (loss_error, s)), max(worst_lr, (lr_error, s))
        if loss_error > args.tolerance:
            failures.append(f"step {s}: loss {loss} vs reference {losses[s - 1]:.9g} "
                            f"(relative error {loss_error:.2e} > {args.tolerance:g})")
        if lr_error > 1e-8:  # metrics.jsonl prints the lr with 9 significant digits (5e-9 relative)
            failures.append(f"step {s}: lr {lr} vs reference {lrs[s - 1]:.9g} (relative error {lr_error:.2e})")
    print(f"{args.label}: {len(records)} steps; worst loss error {worst_loss[0]:.2e} (step {worst_loss[1]}), "
          f"worst lr error {worst_lr[0]:.2e} (step {worst_lr[1]})")
    checkpoints = [spec.split(":", 1) for spec in args.checkpoint]
    if args.final:
        checkpoints.append((str(steps), args.final))
    for step_text, path in checkpoints:
        step = int(step_text)
        if step not in snapshots:
            failures.append(f"{path}: the reference has no parameters after step {step}")
            continue
        if not os.path.exists(path):
            failures.append(f"{path}: missing (expected the parameters after step {step})")
            continue
        error, worst = parameter_error(model_tensors(path), snapshots[step])
        print(f"{args.label}: {os.path.basename(path)} vs reference after step {step}: parameters differ by "
              f"{error:.2e} (relative, all parameters; {worst})")
        if not error <= args.tolerance:
            failures.append(f"{path}: parameters after step {step} differ from the reference by {error:.2e} "
                            f"(> {args.tolerance:g}; {worst})")
    if args.identical_to:
        # A resumed run against the uninterrupted one: the same losses and final parameters bit for bit.
        with open(os.path.join(args.identical_to, "metrics.jsonl")) as f:
            straight = {int(r["step"]): r["loss"] for r in map(json.loads, f) if "loss" in r}
        if straight != {step: record["loss"] for step, record in records.items()}:
            failures.append(f"the losses differ from those of the uninterrupted run {args.identical_to}")
        a, b = (model_tensors(os.path.join(d, "rwkv-final.h5")) for d in (args.run, args.identical_to))
        if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a):
            failures.append(f"rwkv-final.h5 differs from that of the uninterrupted run {args.identical_to}")
        else:
            print(f"{args.label}: losses and rwkv-final.h5 identical to {args.identical_to}'s")
    if final_save_steps and final_save_steps != steps:
        print(f"{args.label}: note: RWKV-LM saves rwkv-final after {final_save_steps} steps (real_step "
              f"p // real_bsz - 1), trains on until its cosine schedule exits after {steps} steps and saves it again")
    for failure in failures[:20]:
        print(f"{args.label}: FAIL: {failure}")
    if len(failures) > 20:
        print(f"{args.label}: ... and {len(failures) - 20} more")
    return 1 if failures else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("train", help="train with the RWKV-LM recipe and write the losses and parameters")
    t.add_argument("--weights", required=True, help="initial weights (HDF5 /model, as `rwkv init` writes)")
    t.add_argument("--data", required=True, help="binidx prefix")
    t.add_argument("--out", required=True)
    t.add_argument("--ctx_len", type=int, required=True)
    t.add_argument("--micro_bsz", type=int, required=True, help="the global batch (one process)")
    t.add_argument("--world", type=int, default=1, help="how the global batch would be split over ranks (order)")
    t.add_argument("--epoch_steps", type=int, default=1000)
    t.add_argument("--epoch_count", type=int, default=500)
    t.add_argument("--epoch_begin", type=int, default=0)
    t.add_argument("--magic_prime", type=int, default=0)
    t.add_argument("--my_exit_tokens", type=int, default=0)
    t.add_argument("--my_pile_edecay", type=int, default=0)
    t.add_argument("--my_pile_stage", type=int, default=0)
    t.add_argument("--lr_init", type=float, default=6e-4)
    t.add_argument("--lr_final", type=float, default=1e-5)
    t.add_argument("--warmup_steps", type=int, default=-1)
    t.add_argument("--beta1", type=float, default=0.9)
    t.add_argument("--beta2", type=float, default=0.99)
    t.add_argument("--adam_eps", type=float, default=1e-8)
    t.add_argument("--grad_clip", type=float, default=1.0)
    t.add_argument("--layerwise_lr", type=int, default=1)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--save_steps", default="", help="comma-separated steps after which to keep the parameters")
    c = commands.add_parser("compare", help="compare a `rwkv train` run with a reference output")
    c.add_argument("--reference", required=True)
    c.add_argument("--run", required=True, help="proj_dir of the run (metrics.jsonl)")
    c.add_argument("--final", help="checkpoint to compare with the parameters after the last step")
    c.add_argument("--checkpoint", action="append", default=[], metavar="STEP:FILE",
                   help="checkpoint to compare with the parameters after STEP")
    c.add_argument("--identical_to", metavar="PROJ_DIR",
                   help="also require the losses and rwkv-final.h5 of this run to be bit-identical")
    c.add_argument("--steps", type=int, default=0,
                   help="steps the run must have (default: the reference's rwkv-final, attribute steps)")
    c.add_argument("--tolerance", type=float, default=1e-5)
    c.add_argument("--label", default="compare")
    args = parser.parse_args(argv)
    if args.command == "train":
        if args.micro_bsz % args.world:
            parser.error("--micro_bsz is the global batch; it must be a multiple of --world")
        args.micro_bsz //= args.world
        return train(args)
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
