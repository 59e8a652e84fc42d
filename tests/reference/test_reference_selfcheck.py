#!/usr/bin/python3
"""Self-check of rwkv4_reference.py: the reference must be right before it can prove the C++ model right.

    /usr/bin/python3 tests/reference/test_reference_selfcheck.py [-v]

- WKV: the Python-loop recurrence equals a direct O(T^2) evaluation of the parallel definition and the
  numerically stable (aa, bb, pp) form of spec 1.5; torch.autograd.gradcheck passes on the WKV alone.
- Model: gradcheck of the cross-entropy loss of a tiny model (dim_att != n_embd) w.r.t. every parameter;
  L2Wrap adds exactly the gradient of 1e-4/(2BT) sum(max logit^2), independent of grad_output.
- RNN mode (spec 8.3, one token at a time with the stable WKV state) gives the same logits as the GPT mode.
- Random weights everywhere: finite loss and a non-zero gradient for every parameter; float32 agrees.
- Adam and clipping agree with torch.optim.Adam/AdamW and torch.nn.utils.clip_grad_norm_.
- The command line: the OUT.h5 layout and values, and clear errors (exit status 2) for bad files.
"""

import math
import os
import subprocess
import sys
import tempfile
import unittest
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwkv4_reference as ref  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rwkv4_reference.py")
PYTHON = "/usr/bin/python3"


def random_params(dims, seed, dtype=torch.float64):
    """Random values for every parameter (never the init: zero matrices would hide missing gradients)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)

    params = OrderedDict()
    for name, shape in ref.parameter_shapes(dims):
        if name.endswith("ln0.weight") or ".ln" in name and name.endswith(".weight") or name == "ln_out.weight":
            value = uniform(shape, 0.6, 1.4)
        elif name.endswith(".bias"):
            value = uniform(shape, -0.3, 0.3)
        elif "time_decay" in name:
            value = uniform(shape, -3.0, 1.5)
        elif "time_first" in name:
            value = uniform(shape, -1.5, 1.0)
        elif "time_mix" in name:
            value = uniform(shape, -0.1, 1.2)
        else:  # matrices [out, in]
            value = torch.randn(shape, generator=gen, dtype=torch.float64) * (1.5 / math.sqrt(shape[1]))
        params[name] = value.to(dtype)
    return params


def random_batch(dims, batch, seq_len, seed):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, dims["vocab_size"], (batch, seq_len), generator=gen)
    targets = torch.randint(0, dims["vocab_size"], (batch, seq_len), generator=gen)
    return idx, targets


def wkv_parallel(time_decay, time_first, k, v):
    """Direct O(T^2) evaluation of the parallel definition (spec 1.5), each weight sum stabilised by its max."""
    w = -torch.exp(time_decay.double())
    u = time_first.double()
    k, v = k.double(), v.double()
    y = torch.empty_like(k)
    for t in range(k.shape[1]):
        exponents = [(t - 1 - i) * w + k[:, i] for i in range(t)] + [u + k[:, t]]
        exponents = torch.stack(exponents, dim=1)  # [B, t+1, A]
        weights = torch.exp(exponents - exponents.max(dim=1, keepdim=True).values)
        y[:, t] = (weights * v[:, : t + 1]).sum(dim=1) / weights.sum(dim=1)
    return y


def wkv_stable(time_decay, time_first, k, v):
    """The numerically stable (aa, bb, pp) form of spec 1.5, as the kernels compute it (but in float64)."""
    w = -torch.exp(time_decay.double())
    u = time_first.double()
    k, v = k.double(), v.double()
    aa = torch.zeros_like(k[:, 0])
    bb = torch.zeros_like(k[:, 0])
    pp = torch.full_like(k[:, 0], -1e38)
    y = torch.empty_like(k)
    for t in range(k.shape[1]):
        kk, vv = k[:, t], v[:, t]
        q = torch.maximum(pp, u + kk)
        e1, e2 = torch.exp(pp - q), torch.exp(u + kk - q)
        y[:, t] = (e1 * aa + e2 * vv) / (e1 * bb + e2)
        q = torch.maximum(pp + w, kk)
        e1, e2 = torch.exp(pp + w - q), torch.exp(kk - q)
        aa, bb, pp = e1 * aa + e2 * vv, e1 * bb + e2, q
    return y


def rnn_logits(p, dims, idx):
    """RNN mode (spec 8.3, without the fp16 rescale trick): one token at a time, state carried between steps."""
    batch, seq_len = idx.shape
    C, A = dims["n_embd"], dims["dim_att"]
    state = []
    for _ in range(dims["n_layer"]):
        state.append({"ffn_prev": torch.zeros(batch, C, dtype=torch.float64),
                      "att_prev": torch.zeros(batch, C, dtype=torch.float64),
                      "aa": torch.zeros(batch, A, dtype=torch.float64),
                      "bb": torch.zeros(batch, A, dtype=torch.float64),
                      "pp": torch.full((batch, A), -1e30, dtype=torch.float64)})
    sq = {name: (t.reshape(-1) if "time_mix" in name else t) for name, t in p.items()}
    logits = []
    for t in range(seq_len):
        x = sq["emb.weight"][idx[:, t]]
        for layer in range(dims["n_layer"]):
            b, s = f"blocks.{layer}.", state[layer]
            if layer == 0:
                x = ref.layer_norm(x, sq[b + "ln0.weight"], sq[b + "ln0.bias"])
            z = ref.layer_norm(x, sq[b + "ln1.weight"], sq[b + "ln1.bias"])
            xk = ref.mix(z, s["att_prev"], sq[b + "att.time_mix_k"])
            xv = ref.mix(z, s["att_prev"], sq[b + "att.time_mix_v"])
            xr = ref.mix(z, s["att_prev"], sq[b + "att.time_mix_r"])
            s["att_prev"] = z
            r = torch.sigmoid(xr @ sq[b + "att.receptance.weight"].T)
            k = xk @ sq[b + "att.key.weight"].T
            v = xv @ sq[b + "att.value.weight"].T
            w = -torch.exp(sq[b + "att.time_decay"])
            u = sq[b + "att.time_first"]
            aa, bb, pp = s["aa"], s["bb"], s["pp"]
            q = torch.maximum(pp, u + k)
            e1, e2 = torch.exp(pp - q), torch.exp(u + k - q)
            out = (e1 * aa + e2 * v) / (e1 * bb + e2)
            q = torch.maximum(pp + w, k)
            e1, e2 = torch.exp(pp + w - q), torch.exp(k - q)
            s["aa"], s["bb"], s["pp"] = e1 * aa + e2 * v, e1 * bb + e2, q
            x = x + (r * out) @ sq[b + "att.output.weight"].T
            z = ref.layer_norm(x, sq[b + "ln2.weight"], sq[b + "ln2.bias"])
            xk = ref.mix(z, s["ffn_prev"], sq[b + "ffn.time_mix_k"])
            xr = ref.mix(z, s["ffn_prev"], sq[b + "ffn.time_mix_r"])
            s["ffn_prev"] = z
            gate = torch.sigmoid(xr @ sq[b + "ffn.receptance.weight"].T)
            x = x + gate * ((torch.relu(xk @ sq[b + "ffn.key.weight"].T) ** 2) @ sq[b + "ffn.value.weight"].T)
        x = ref.layer_norm(x, sq["ln_out.weight"], sq["ln_out.bias"])
        logits.append(x @ sq["head.weight"].T)
    return torch.stack(logits, dim=1)


def max_relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


TINY = {"n_layer": 2, "n_embd": 8, "dim_att": 4, "dim_ffn": 12, "vocab_size": 7, "ctx_len": 8}
SMALL = {"n_layer": 2, "n_embd": 32, "dim_att": 32, "dim_ffn": 128, "vocab_size": 50, "ctx_len": 16}


class Wkv(unittest.TestCase):
    def random_inputs(self, seed, batch=2, seq_len=11, channels=6, k_scale=3.0):
        gen = torch.Generator().manual_seed(seed)
        time_decay = -3.0 + 5.0 * torch.rand(channels, generator=gen, dtype=torch.float64)
        time_first = -1.5 + 3.0 * torch.rand(channels, generator=gen, dtype=torch.float64)
        k = k_scale * torch.randn(batch, seq_len, channels, generator=gen, dtype=torch.float64)
        v = torch.randn(batch, seq_len, channels, generator=gen, dtype=torch.float64)
        return time_decay, time_first, k, v

    def test_loop_equals_parallel_definition_and_stable_form(self):
        for seed in range(3):
            inputs = self.random_inputs(seed)
            y = ref.wkv(*inputs)
            parallel = wkv_parallel(*inputs)
            stable = wkv_stable(*inputs)
            self.assertLess(max_relative_error(y, parallel), 1e-12)
            self.assertLess(max_relative_error(stable, parallel), 1e-12)
            torch.testing.assert_close(y[:, 0], inputs[3][:, 0], rtol=0, atol=1e-15)  # y_0 = v_0

    def test_hand_computed_values(self):
        # One channel, T = 3, w = -exp(0) = -1, u = 0.5 (spec 1.5 / RWKV-CUDA run.py):
        # y2 = (e^(w+k0) v0 + e^k1 v1 + e^(u+k2) v2) / (e^(w+k0) + e^k1 + e^(u+k2)).
        k = torch.tensor([[[0.3], [-0.2], [0.7]]], dtype=torch.float64)
        v = torch.tensor([[[1.0], [-2.0], [0.5]]], dtype=torch.float64)
        y = ref.wkv(torch.tensor([0.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64), k, v)
        e = math.exp
        y1 = (e(0.3) * 1.0 + e(0.5 - 0.2) * -2.0) / (e(0.3) + e(0.5 - 0.2))
        y2 = (e(-1 + 0.3) * 1.0 + e(-0.2) * -2.0 + e(0.5 + 0.7) * 0.5) / (e(-1 + 0.3) + e(-0.2) + e(0.5 + 0.7))
        self.assertAlmostEqual(float(y[0, 0, 0]), 1.0, places=15)
        self.assertAlmostEqual(float(y[0, 1, 0]), y1, places=14)
        self.assertAlmostEqual(float(y[0, 2, 0]), y2, places=14)

    def test_gradcheck(self):
        inputs = tuple(t.clone().requires_grad_(True) for t in self.random_inputs(7, batch=2, seq_len=6, channels=3))
        self.assertTrue(torch.autograd.gradcheck(ref.wkv, inputs, eps=1e-6, atol=1e-8, rtol=1e-6))


class Model(unittest.TestCase):
    def test_gradcheck_of_the_loss_without_l2wrap(self):
        params = random_params(TINY, seed=1)
        idx, targets = random_batch(TINY, batch=2, seq_len=5, seed=2)
        names = list(params)

        def loss_of(*tensors):
            return ref.loss_and_logits(OrderedDict(zip(names, tensors)), TINY, idx, targets, l2wrap=False)[0]

        inputs = tuple(t.clone().requires_grad_(True) for t in params.values())
        self.assertTrue(torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-8, rtol=1e-6))

    def test_l2wrap_adds_the_penalty_gradient_unscaled(self):
        gen = torch.Generator().manual_seed(3)
        logits = (4 * torch.randn(2, 3, 5, generator=gen, dtype=torch.float64)).requires_grad_(True)
        targets = torch.randint(0, 5, (2, 3), generator=gen)
        ce = F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1))
        wrapped = ref.L2Wrap.apply(ce, logits)
        self.assertEqual(float(wrapped), float(ce))  # identity in the forward pass
        wrapped.backward(torch.tensor(2.0, dtype=torch.float64))
        ce_grad, = torch.autograd.grad(
            F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1)), logits)
        penalty = 1e-4 / (2 * 2 * 3) * (logits.max(dim=-1).values ** 2).sum()
        penalty_grad, = torch.autograd.grad(penalty, logits)
        torch.testing.assert_close(logits.grad, 2 * ce_grad + penalty_grad, rtol=1e-14, atol=1e-18)
        # Exactly one extra entry per position, at the argmax.
        extra = logits.grad - 2 * ce_grad
        self.assertEqual(int((extra.abs() > 1e-12).sum()), 6)

    def test_rnn_mode_matches_gpt_mode(self):
        dims = dict(SMALL, dim_att=SMALL["n_embd"])
        params = random_params(dims, seed=4)
        idx, _ = random_batch(dims, batch=2, seq_len=12, seed=5)
        gpt = ref.forward(params, dims, idx)
        rnn = rnn_logits(params, dims, idx)
        self.assertLess(max_relative_error(rnn, gpt), 1e-12)

    def test_random_weights_give_finite_loss_and_nonzero_gradients_everywhere(self):
        params = random_params(SMALL, seed=6)
        idx, targets = random_batch(SMALL, batch=3, seq_len=16, seed=7)
        loss, logits, grads = ref.gradients(params, SMALL, idx, targets)
        self.assertTrue(math.isfinite(float(loss)))
        self.assertGreater(float(loss), 0.5)
        self.assertEqual(list(grads), [name for name, _ in ref.parameter_shapes(SMALL)])
        for name, g in grads.items():
            self.assertEqual(tuple(g.shape), tuple(params[name].shape), name)
            self.assertTrue(torch.isfinite(g).all(), name)
            self.assertGreater(float(g.abs().max()), 0.0, name)
        # float32 compute agrees with float64 to float32 accuracy.
        loss32, logits32, grads32 = ref.gradients(
            OrderedDict((n, t.float()) for n, t in params.items()), SMALL, idx, targets)
        self.assertLess(abs(float(loss32) - float(loss)) / float(loss), 1e-5)
        self.assertLess(max_relative_error(logits32.double(), logits), 1e-5)
        for name in grads:
            self.assertLess(max_relative_error(grads32[name].double(), grads[name]), 1e-3, name)


class Optimizer(unittest.TestCase):
    def setUp(self):
        self.params = random_params(TINY, seed=8)
        gen = torch.Generator().manual_seed(9)
        self.grads = OrderedDict((n, 0.3 * torch.randn(t.shape, generator=gen, dtype=torch.float64))
                                 for n, t in self.params.items())

    def torch_step(self, lr, betas, eps, weight_decay):
        leaves = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in self.params.items())
        for name, leaf in leaves.items():
            leaf.grad = self.grads[name].clone()
        groups = []
        for name, leaf in leaves.items():
            decays = weight_decay > 0 and leaf.squeeze().dim() >= 2
            groups.append({"params": [leaf], "lr": lr * ref.lr_multiplier(name),
                           "weight_decay": weight_decay if decays else 0.0})
        optimizer = (torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam)(groups, lr=lr, betas=betas, eps=eps)
        optimizer.step()
        return OrderedDict((n, t.detach()) for n, t in leaves.items())

    def test_adam_matches_torch_optim(self):
        for weight_decay in (0.0, 0.1):
            ours = ref.adam_step(self.params, self.grads, 1e-3, 0.9, 0.99, 1e-8, weight_decay)
            theirs = self.torch_step(1e-3, (0.9, 0.99), 1e-8, weight_decay)
            for name in ours:
                torch.testing.assert_close(ours[name], theirs[name], rtol=1e-13, atol=1e-16, msg=name)

    def test_multipliers(self):
        self.assertEqual(ref.lr_multiplier("blocks.3.att.time_decay"), 2.0)
        self.assertEqual(ref.lr_multiplier("blocks.3.att.time_first"), 3.0)
        self.assertEqual(ref.lr_multiplier("blocks.3.att.time_mix_k"), 1.0)
        self.assertEqual(ref.lr_multiplier("blocks.3.ffn.key.weight"), 1.0)

    def test_clipping_matches_torch(self):
        leaves = [t.clone().requires_grad_(True) for t in self.params.values()]
        for leaf, g in zip(leaves, self.grads.values()):
            leaf.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(leaves, max_norm=1.0)
        clipped, coef = ref.clip_gradients(self.grads, 1.0)
        self.assertAlmostEqual(ref.global_norm(self.grads), float(norm), places=12)
        self.assertLess(coef, 1.0)
        for leaf, g in zip(leaves, clipped.values()):
            torch.testing.assert_close(g, leaf.grad, rtol=1e-14, atol=0)
        self.assertEqual(ref.clip_gradients(self.grads, 0.0)[1], 1.0)
        self.assertEqual(ref.clip_gradients(self.grads, 1e9)[1], 1.0)


def write_weights(path, dims, params, order=None):
    with h5py.File(path, "w") as f:
        model = f.create_group("model")
        for name in DIM_ORDER:
            model.attrs[name] = np.int64(dims[name])
        for name in order or params:
            model.create_dataset(name, data=params[name].float().numpy())


DIM_ORDER = ref.DIM_NAMES


def write_batch(path, idx, targets):
    with h5py.File(path, "w") as f:
        f.create_dataset("idx", data=idx.numpy().astype(np.int64))
        f.create_dataset("targets", data=targets.numpy().astype(np.int64))


def run_script(*args):
    return subprocess.run([PYTHON, SCRIPT, *args], capture_output=True, text=True)


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.weights = os.path.join(self.dir.name, "W.h5")
        self.batch = os.path.join(self.dir.name, "BATCH.h5")
        self.out = os.path.join(self.dir.name, "OUT.h5")
        self.dims = dict(SMALL, dim_att=64, dim_ffn=96, n_layer=3)
        self.params = random_params(self.dims, seed=10)
        self.idx, self.targets = random_batch(self.dims, batch=2, seq_len=9, seed=11)
        write_batch(self.batch, self.idx, self.targets)

    def tearDown(self):
        self.dir.cleanup()

    def test_outputs(self):
        names = list(self.params)
        write_weights(self.weights, self.dims, self.params, order=list(reversed(names)))  # order must not matter
        result = run_script("--weights", self.weights, "--batch", self.batch, "--out", self.out,
                            "--adam", "1e-3,0.9,0.99,1e-8,0.01", "--grad_clip", "0.5")
        self.assertEqual(result.returncode, 0, result.stderr)
        # The file holds float32 values: the expected numbers start from those.
        params32 = OrderedDict((n, t.float().double()) for n, t in self.params.items())
        loss, logits, grads = ref.gradients(params32, self.dims, self.idx, self.targets)
        with h5py.File(self.out, "r") as f:
            self.assertEqual(f["loss"].shape, ())
            self.assertEqual(f["loss"].dtype, np.float64)
            self.assertEqual(f["logits"].shape, (2, 9, self.dims["vocab_size"]))
            self.assertEqual(f["logits"].dtype, np.float64)
            self.assertEqual(list(f["grad"]), names)
            self.assertEqual(f.attrs["dtype"], "float64")
            self.assertAlmostEqual(float(f["loss"][()]), float(loss), places=13)
            np.testing.assert_allclose(f["logits"][()], logits.numpy(), rtol=1e-13, atol=1e-13)
            for name, shape in ref.parameter_shapes(self.dims):
                self.assertEqual(f["grad"][name].shape, shape, name)
                self.assertEqual(f["grad"][name].dtype, np.float64, name)
                np.testing.assert_allclose(f["grad"][name][()], grads[name].numpy(), rtol=1e-12, atol=1e-15)
            clipped, coef = ref.clip_gradients(grads, 0.5)
            self.assertAlmostEqual(f["updated"].attrs["clip_coef"], coef, places=14)
            self.assertLess(coef, 1.0)
            expected = ref.adam_step(params32, clipped, 1e-3, 0.9, 0.99, 1e-8, 0.01)
            self.assertEqual(list(f["updated"]), names)
            for name in names:
                np.testing.assert_allclose(f["updated"][name][()], expected[name].numpy(), rtol=1e-14, atol=1e-15)
            # One Adam step from zero moments moves each element by about lr * multiplier (plus decay).
            step = np.abs(f["updated"]["blocks.1.att.time_first"][()] - params32["blocks.1.att.time_first"].numpy())
            self.assertTrue(np.all(step > 2.9e-3) and np.all(step <= 3e-3 + 1e-12))

        result = run_script("--weights", self.weights, "--batch", self.batch, "--out", self.out, "--dtype", "float32")
        self.assertEqual(result.returncode, 0, result.stderr)
        with h5py.File(self.out, "r") as f:
            self.assertNotIn("updated", f)
            self.assertEqual(f.attrs["dtype"], "float32")
            self.assertLess(abs(float(f["loss"][()]) - float(loss)) / float(loss), 1e-5)

    def expect_failure(self, *fragments, weights=None, batch=None):
        result = run_script("--weights", weights or self.weights, "--batch", batch or self.batch, "--out", self.out)
        self.assertEqual(result.returncode, 2, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        return result.stderr

    def test_bad_weight_files(self):
        w = self.weights
        missing = OrderedDict((n, t) for n, t in self.params.items() if n != "blocks.2.ffn.key.weight")
        write_weights(w, self.dims, missing)
        self.expect_failure(f"{w}: /model/blocks.2.ffn.key.weight: missing from the file")

        extra = OrderedDict(self.params)
        extra["head_q.weight"] = torch.zeros(4, 32)
        write_weights(w, self.dims, extra)
        self.expect_failure(f"{w}: /model/head_q.weight: unexpected tensor")

        wrong = OrderedDict(self.params)
        wrong["blocks.0.att.key.weight"] = torch.zeros(64, 16)
        write_weights(w, self.dims, wrong)
        self.expect_failure(f"{w}: /model/blocks.0.att.key.weight: shape [64, 16] does not match the model's [64, 32]")

        write_weights(w, self.dims, self.params)
        with h5py.File(w, "a") as f:
            del f["model"].attrs["ctx_len"]
        self.expect_failure(f"{w}: /model: attribute ctx_len is missing")

        with open(w, "w") as f:
            f.write("not hdf5\n")
        self.expect_failure(f"{w}: cannot read as HDF5", "signature")
        absent = os.path.join(self.dir.name, "absent.h5")
        self.expect_failure(f"{absent}: cannot read as HDF5", weights=absent)

        write_weights(w, self.dims, self.params)
        size = os.path.getsize(w)
        with open(w, "r+b") as f:
            f.truncate(size // 2)
        self.expect_failure(w, "truncated")

    def test_bad_batch_files(self):
        write_weights(self.weights, self.dims, self.params)
        b = self.batch
        write_batch(b, self.idx, self.targets + self.dims["vocab_size"])
        self.expect_failure(f"{b}: /targets: id ", f"is outside [0, {self.dims['vocab_size']})")
        long_idx = torch.zeros(1, self.dims["ctx_len"] + 1, dtype=torch.int64)
        write_batch(b, long_idx, long_idx)
        self.expect_failure(f"{b}: /idx: T = 17 exceeds ctx_len = 16")
        with h5py.File(b, "w") as f:
            f.create_dataset("idx", data=self.idx.numpy())
        self.expect_failure(f"{b}: /targets: no such dataset")
        with h5py.File(b, "w") as f:
            f.create_dataset("idx", data=self.idx.numpy().astype(np.float32))
            f.create_dataset("targets", data=self.targets.numpy())
        self.expect_failure(f"{b}: /idx: holds float32 values")


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main()
