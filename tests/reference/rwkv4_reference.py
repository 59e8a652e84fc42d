#!/usr/bin/python3
"""Independent PyTorch reference of RWKV-4 ("v4neo"), written from /work/shared/rwkv4-spec.md, not from the C++.

What it is for
    The C++ model (forward, backward, L2Wrap, Adam step) is checked against this script on small models: the
    C++ test writes the weights and a batch, runs this script, and compares the loss, the logits, every
    parameter's gradient and, optionally, the parameters after one optimiser step.

Run it with Debian's Python (apt-get install python3-torch python3-h5py python3-numpy); those packages are
for /usr/bin/python3, not for a pyenv or virtualenv `python3` that may come first on PATH:

    /usr/bin/python3 tests/reference/rwkv4_reference.py --weights W.h5 --batch BATCH.h5 --out OUT.h5 \\
        [--dtype float64|float32] [--adam LR,BETA1,BETA2,EPS[,WEIGHT_DECAY]] [--grad_clip 1.0]

Files
    W.h5      group /model: one float dataset per parameter under its official state_dict name (spec 1.8;
              time_mix_* are [1, 1, C]) and int64 attributes n_layer, n_embd, dim_att, dim_ffn, vocab_size,
              ctx_len. Exactly the expected names and shapes must be present (float16/32/64 accepted).
    BATCH.h5  datasets idx and targets: integer [B, T], 1 <= T <= ctx_len, ids in [0, vocab_size).
    OUT.h5    loss            float64 scalar: mean cross-entropy over the B*T positions (L2Wrap adds nothing)
              logits          float64 [B, T, V]
              grad/<name>     float64, one per parameter (official names and shapes, state_dict order):
                              d loss / d param including L2Wrap's extra logit gradient (spec 1.7)
              updated/<name>  float64, only with --adam: the parameters after one Adam step (below)
              attributes of /: dtype (the compute dtype), batch, seq_len, grad_norm (global L2 norm of the
              unclipped gradient); of /updated: lr, beta1, beta2, eps, weight_decay, grad_clip, clip_coef, step.

The model (spec 1.2-1.7), in the compute dtype (--dtype, default float64)
    x = emb[idx]; block 0 first applies ln0; each block: x += att(ln1(x)); x += ffn(ln2(x)); then ln_out, head.
    LayerNorm: biased variance, eps 1e-5. Token shift: the LayerNormed sub-block input delayed by one step,
    zero at t = 0; mix(z, z_prev, mu) = z*mu + z_prev*(1 - mu).
    att: k, v, r = Wk xk, Wv xv, Wr xr; y = WKV(w = -exp(time_decay), u = time_first, k, v);
         out = Wo (sigmoid(r) * y).
    WKV: the plain recurrence of spec 1.5 as a Python loop over t, always in float64:
         y_t = (a_t + e^(u+k_t) v_t) / (b_t + e^(u+k_t)); a_{t+1} = e^w a_t + e^(k_t) v_t; b likewise with 1.
    ffn: out = sigmoid(Wr xr) * (Wv relu(Wk xk)^2), Wr is C x C.
    loss = cross_entropy(logits, targets), mean over B*T. L2Wrap is a torch.autograd.Function: identity on the
    loss; its backward passes grad_output to the loss and adds 1e-4/(B*T) * max_v logits[b,t,v] at the argmax
    of every position to the logits' gradient, NOT scaled by grad_output. All gradients come from autograd.

--adam (spec 4.1-4.3; one step, n = 1, as DeepSpeed FusedAdam)
    1. Clip: with --grad_clip c > 0 (default 1.0; 0 = off), norm = sqrt(sum of all squared gradients),
       coef = c / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_); when coef < 1 every gradient is scaled by it.
    2. Per parameter, lr_p = lr * multiplier (layerwise_lr = 1, my_pile_stage != 2; first matching substring:
       "time_mix" x1, "time_decay" x2, "time_first" x3, everything else x1):
       m = (1-beta1) g; v = (1-beta2) g^2; m_hat = m / (1-beta1^n); v_hat = v / (1-beta2^n);
       p <- p - lr_p * (m_hat / (sqrt(v_hat) + eps) + wd * p), the wd term (decoupled AdamW) only when wd > 0
       and the parameter has >= 2 dimensions after squeezing (matrices, emb, head; not time_mix [1,1,C]).

Self-check: /usr/bin/python3 tests/reference/test_reference_selfcheck.py (WKV against the O(T^2) parallel
form and the stable form, gradcheck, RNN mode against GPT mode, Adam against torch.optim, the command line).

Exit status: 0 on success, 2 on bad input (the message names the file and the object), 1 on other failures.
"""

import argparse
import math
import sys
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DIM_NAMES = ("n_layer", "n_embd", "dim_att", "dim_ffn", "vocab_size", "ctx_len")
LAYER_NORM_EPS = 1e-5
L2WRAP_FACTOR = 1e-4
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by (norm + 1e-6)


class InputError(Exception):
    """Bad input file; the message names the file and the object."""


# ---- parameters -------------------------------------------------------------------------------------------------

def parameter_shapes(dims):
    """(name, shape) of every parameter in state_dict order (spec 1.8)."""
    C, A, F_, V = dims["n_embd"], dims["dim_att"], dims["dim_ffn"], dims["vocab_size"]
    shapes = [("emb.weight", (V, C))]
    for layer in range(dims["n_layer"]):
        b = f"blocks.{layer}."
        shapes += [(b + "ln1.weight", (C,)), (b + "ln1.bias", (C,)), (b + "ln2.weight", (C,)), (b + "ln2.bias", (C,))]
        if layer == 0:
            shapes += [(b + "ln0.weight", (C,)), (b + "ln0.bias", (C,))]
        shapes += [
            (b + "att.time_decay", (A,)),
            (b + "att.time_first", (A,)),
            (b + "att.time_mix_k", (1, 1, C)),
            (b + "att.time_mix_v", (1, 1, C)),
            (b + "att.time_mix_r", (1, 1, C)),
            (b + "att.key.weight", (A, C)),
            (b + "att.value.weight", (A, C)),
            (b + "att.receptance.weight", (A, C)),
            (b + "att.output.weight", (C, A)),
            (b + "ffn.time_mix_k", (1, 1, C)),
            (b + "ffn.time_mix_r", (1, 1, C)),
            (b + "ffn.key.weight", (F_, C)),
            (b + "ffn.receptance.weight", (C, C)),
            (b + "ffn.value.weight", (C, F_)),
        ]
    shapes += [("ln_out.weight", (C,)), ("ln_out.bias", (C,)), ("head.weight", (V, C))]
    return shapes


def open_hdf5(path):
    """h5py.File for reading; a missing, non-HDF5 or truncated file becomes an InputError naming the file."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"{path}: cannot read as HDF5: {error}") from None


def read_dims(path, model):
    dims = {}
    for name in DIM_NAMES:
        if name not in model.attrs:
            raise InputError(f"{path}: /model: attribute {name} is missing")
        value = model.attrs[name]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{path}: /model: attribute {name} = {value!r} is not an integer")
        value = int(value)
        if value <= 0:
            raise InputError(f"{path}: /model: attribute {name} = {value} must be positive")
        dims[name] = value
    return dims


def load_weights(path, dtype):
    """Returns (dims, OrderedDict name -> tensor in `dtype`) after checking names, kinds, dtypes and shapes."""
    with open_hdf5(path) as f:
        if "model" not in f or not isinstance(f["model"], h5py.Group):
            raise InputError(f"{path}: /model: no such group")
        model = f["model"]
        dims = read_dims(path, model)
        expected = parameter_shapes(dims)
        problems = []
        for name, shape in expected:
            where = f"{path}: /model/{name}"
            if name not in model:
                problems.append(f"{where}: missing from the file")
            elif not isinstance(model[name], h5py.Dataset):
                problems.append(f"{where}: is not a dataset")
            elif model[name].dtype.kind != "f":
                problems.append(f"{where}: holds {model[name].dtype} values, expected float32")
            elif tuple(model[name].shape) != shape:
                problems.append(f"{where}: shape {list(model[name].shape)} does not match the model's {list(shape)}")
        names = {name for name, _ in expected}
        problems += [f"{path}: /model/{name}: unexpected tensor (not in the model)"
                     for name in model if name not in names]
        if problems:
            raise InputError("\n".join(problems))
        params = OrderedDict()
        for name, _ in expected:
            params[name] = torch.from_numpy(np.asarray(model[name][()], dtype=np.float64)).to(dtype)
    return dims, params


def load_batch(path, dims):
    with open_hdf5(path) as f:
        arrays = {}
        for name in ("idx", "targets"):
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise InputError(f"{path}: /{name}: no such dataset")
            data = f[name]
            if data.dtype.kind not in "iu":
                raise InputError(f"{path}: /{name}: holds {data.dtype} values, expected int64")
            if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
                raise InputError(f"{path}: /{name}: shape {list(data.shape)} is not [B, T] with B, T >= 1")
            arrays[name] = np.asarray(data[()], dtype=np.int64)
    if arrays["idx"].shape != arrays["targets"].shape:
        raise InputError(f"{path}: /targets: shape {list(arrays['targets'].shape)} differs from /idx's "
                         f"{list(arrays['idx'].shape)}")
    if arrays["idx"].shape[1] > dims["ctx_len"]:
        raise InputError(f"{path}: /idx: T = {arrays['idx'].shape[1]} exceeds ctx_len = {dims['ctx_len']}")
    for name, values in arrays.items():
        bad = (values < 0) | (values >= dims["vocab_size"])
        if bad.any():
            position = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"{path}: /{name}: id {values[position]} at {list(position)} is outside "
                             f"[0, {dims['vocab_size']})")
    return torch.from_numpy(arrays["idx"]), torch.from_numpy(arrays["targets"])


# ---- the model --------------------------------------------------------------------------------------------------

def layer_norm(x, weight, bias):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased
    return (x - mean) / torch.sqrt(var + LAYER_NORM_EPS) * weight + bias


def token_shift(z):
    """z_prev[:, t] = z[:, t-1], zero at t = 0."""
    return torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)


def mix(z, z_prev, mu):
    return z * mu + z_prev * (1 - mu)


def wkv(time_decay, time_first, k, v):
    """The WKV operator (spec 1.5) by its plain recurrence, a Python loop over t in float64. k, v: [B, T, A]."""
    out_dtype = k.dtype
    w = -torch.exp(time_decay.double())
    u = time_first.double()
    k, v = k.double(), v.double()
    decay = torch.exp(w)
    a = torch.zeros_like(k[:, 0])
    b = torch.zeros_like(k[:, 0])
    outputs = []
    for t in range(k.shape[1]):
        current = torch.exp(u + k[:, t])
        outputs.append((a + current * v[:, t]) / (b + current))
        a = decay * a + torch.exp(k[:, t]) * v[:, t]
        b = decay * b + torch.exp(k[:, t])
    y = torch.stack(outputs, dim=1)
    if not torch.isfinite(y).all():
        raise FloatingPointError("WKV overflowed in float64 (|k| or time_first too large for the plain recurrence)")
    return y.to(out_dtype)


def time_mix(p, prefix, z):
    z_prev = token_shift(z)
    xk = mix(z, z_prev, p[prefix + "time_mix_k"])
    xv = mix(z, z_prev, p[prefix + "time_mix_v"])
    xr = mix(z, z_prev, p[prefix + "time_mix_r"])
    k = xk @ p[prefix + "key.weight"].T
    v = xv @ p[prefix + "value.weight"].T
    r = xr @ p[prefix + "receptance.weight"].T
    y = wkv(p[prefix + "time_decay"], p[prefix + "time_first"], k, v)
    return (torch.sigmoid(r) * y) @ p[prefix + "output.weight"].T


def channel_mix(p, prefix, z):
    z_prev = token_shift(z)
    xk = mix(z, z_prev, p[prefix + "time_mix_k"])
    xr = mix(z, z_prev, p[prefix + "time_mix_r"])
    hidden = torch.relu(xk @ p[prefix + "key.weight"].T) ** 2
    return torch.sigmoid(xr @ p[prefix + "receptance.weight"].T) * (hidden @ p[prefix + "value.weight"].T)


def forward(p, dims, idx):
    """Logits [B, T, V] of the training ("GPT") mode, spec 1.2."""
    x = p["emb.weight"][idx]
    for layer in range(dims["n_layer"]):
        b = f"blocks.{layer}."
        if layer == 0:
            x = layer_norm(x, p[b + "ln0.weight"], p[b + "ln0.bias"])
        x = x + time_mix(p, b + "att.", layer_norm(x, p[b + "ln1.weight"], p[b + "ln1.bias"]))
        x = x + channel_mix(p, b + "ffn.", layer_norm(x, p[b + "ln2.weight"], p[b + "ln2.bias"]))
    x = layer_norm(x, p["ln_out.weight"], p["ln_out.bias"])
    return x @ p["head.weight"].T


class L2Wrap(torch.autograd.Function):
    """Identity on the loss; backward adds 1e-4/(B*T) * max logit at each position's argmax (spec 1.7)."""

    @staticmethod
    def forward(ctx, loss, logits):
        ctx.save_for_backward(logits)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (logits,) = ctx.saved_tensors
        factor = L2WRAP_FACTOR / (logits.shape[0] * logits.shape[1])
        max_values, max_ids = torch.max(logits, dim=-1, keepdim=True)
        extra = torch.zeros_like(logits).scatter_(-1, max_ids, max_values * factor)
        return grad_output, extra  # the extra gradient deliberately ignores grad_output


def loss_and_logits(p, dims, idx, targets, l2wrap=True):
    logits = forward(p, dims, idx)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    if l2wrap:
        loss = L2Wrap.apply(loss, logits)
    return loss, logits


def gradients(params, dims, idx, targets):
    """(loss, logits, OrderedDict name -> gradient) with L2Wrap."""
    leaves = OrderedDict((name, t.detach().clone().requires_grad_(True)) for name, t in params.items())
    loss, logits = loss_and_logits(leaves, dims, idx, targets)
    loss.backward()
    grads = OrderedDict((name, t.grad.detach()) for name, t in leaves.items())
    return loss.detach(), logits.detach(), grads


# ---- one optimiser step -----------------------------------------------------------------------------------------

def lr_multiplier(name):
    """layerwise_lr = 1, my_pile_stage != 2 (spec 4.2): first matching substring wins."""
    for pattern, multiplier in (("time_mix", 1.0), ("time_decay", 2.0), ("time_first", 3.0)):
        if pattern in name:
            return multiplier
    return 1.0


def global_norm(grads):
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads.values()))


def clip_gradients(grads, max_norm):
    """Returns (clipped grads, coef); coef = 1 when nothing was clipped or max_norm <= 0."""
    if max_norm <= 0:
        return grads, 1.0
    coef = max_norm / (global_norm(grads) + CLIP_EPS)
    if coef >= 1.0:
        return grads, 1.0
    return OrderedDict((name, g * coef) for name, g in grads.items()), coef


def adam_step(params, grads, lr, beta1, beta2, eps, weight_decay=0.0, step=1):
    """One DeepSpeed FusedAdam step from zero moments (spec 4.1), with the spec 4.2 lr multipliers."""
    updated = OrderedDict()
    for name, p in params.items():
        g = grads[name]
        m = (1 - beta1) * g
        v = (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** step)
        v_hat = v / (1 - beta2 ** step)
        update = m_hat / (torch.sqrt(v_hat) + eps)
        if weight_decay > 0 and p.squeeze().dim() >= 2:
            update = update + weight_decay * p
        updated[name] = p - lr * lr_multiplier(name) * update
    return updated


# ---- command line -----------------------------------------------------------------------------------------------

def parse_adam(text):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--adam {text!r}: expected numbers lr,beta1,beta2,eps[,weight_decay]")
    if len(values) not in (4, 5):
        raise argparse.ArgumentTypeError(f"--adam {text!r}: expected 4 or 5 values lr,beta1,beta2,eps[,weight_decay]")
    return values + [0.0] * (5 - len(values))


def write_output(path, dtype_name, loss, logits, grads, grad_norm, adam=None):
    with h5py.File(path, "w") as f:
        f.attrs["dtype"] = dtype_name
        f.attrs["batch"] = np.int64(logits.shape[0])
        f.attrs["seq_len"] = np.int64(logits.shape[1])
        f.attrs["grad_norm"] = np.float64(grad_norm)
        f.create_dataset("loss", data=np.float64(loss.item()))
        f.create_dataset("logits", data=logits.double().numpy())
        grad_group = f.create_group("grad", track_order=True)
        for name, g in grads.items():
            grad_group.create_dataset(name, data=g.double().numpy())
        if adam is not None:
            updated, settings = adam
            group = f.create_group("updated", track_order=True)
            for key, value in settings.items():
                group.attrs[key] = value
            for name, p in updated.items():
                group.create_dataset(name, data=p.double().numpy())


def main(argv=None):
    parser = argparse.ArgumentParser(description="Independent PyTorch reference of RWKV-4 (see the module docstring).")
    parser.add_argument("--weights", required=True, help="HDF5 file with /model")
    parser.add_argument("--batch", required=True, help="HDF5 file with idx and targets, int [B, T]")
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="compute dtype of everything but the WKV loop (always float64)")
    parser.add_argument("--adam", type=parse_adam, metavar="LR,BETA1,BETA2,EPS[,WD]",
                        help="also apply one Adam step and write /updated")
    parser.add_argument("--grad_clip", type=float, default=1.0, help="global gradient-norm clip for --adam (0 = off)")
    args = parser.parse_args(argv)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32

    try:
        dims, params = load_weights(args.weights, dtype)
        idx, targets = load_batch(args.batch, dims)
    except InputError as error:
        print(f"rwkv4_reference.py: {error}", file=sys.stderr)
        return 2

    loss, logits, grads = gradients(params, dims, idx, targets)
    grad_norm = global_norm(grads)
    adam = None
    if args.adam is not None:
        lr, beta1, beta2, eps, weight_decay = args.adam
        clipped, coef = clip_gradients(grads, args.grad_clip)
        updated = adam_step(params, clipped, lr, beta1, beta2, eps, weight_decay)
        settings = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
                    "grad_clip": args.grad_clip, "clip_coef": coef, "step": np.int64(1)}
        adam = (updated, settings)
    try:
        write_output(args.out, args.dtype, loss, logits, grads, grad_norm, adam)
    except OSError as error:
        print(f"rwkv4_reference.py: {args.out}: cannot write: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
