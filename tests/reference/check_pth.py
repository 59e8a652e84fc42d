#!/usr/bin/python3
"""Checks `rwkv export` / `rwkv import` against real PyTorch (tests/cli/export_import.sh drives it).

  check_pth.py compare PTH H5 DTYPE     torch.load(PTH) holds exactly H5's /model tensors, in order, each equal
                                        bit for bit to the float32 value rounded to DTYPE by torch
  check_pth.py save H5 OUT DTYPE [--plain] [--views] [--legacy] [--drop NAME] [--extra NAME]
                                        torch.save H5's /model as an OrderedDict (like RWKV-LM) in DTYPE;
                                        --plain: a dict, --views: some tensors saved as non-contiguous views
                                        sharing one storage, --legacy: the pre-1.6 non-zip format
  check_pth.py same PTH_A PTH_B         same names, order, dtypes, shapes and bits
  check_pth.py same_h5 H5_A H5_B        same /model names, order, shapes and float32 bits
Exit status 0 when the check holds; the reason is printed otherwise.
"""
import collections
import sys

import h5py
import numpy as np
import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def h5_tensors(path):
    with h5py.File(path, "r") as f:
        return collections.OrderedDict((k, torch.from_numpy(np.array(f["model"][k], dtype=np.float32)))
                                       for k in f["model"].keys())


def bits(t):
    return t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)


def same_tensors(a, b, what):
    problems = []
    if list(a.keys()) != list(b.keys()):
        problems.append(f"{what}: names/order differ:\n  {list(a.keys())}\n  {list(b.keys())}")
    for k in a:
        if k not in b:
            continue
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            problems.append(f"{what}: {k}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        elif not torch.equal(bits(x), bits(y)):
            diff = (x.float() - y.float()).abs().max().item()
            problems.append(f"{what}: {k}: values differ (max |diff| {diff})")
    return problems


def main(argv):
    mode = argv[1]
    if mode == "compare":
        pth, h5, dtype = argv[2], argv[3], DTYPES[argv[4]]
        # weights_only: the restricted unpickler that torch >= 2.6 uses by default must accept the file.
        loaded = torch.load(pth, map_location="cpu", weights_only=True)
        problems = []
        if not isinstance(loaded, collections.OrderedDict):
            problems.append(f"torch.load gave a {type(loaded).__name__}, expected an OrderedDict")
        for k, t in loaded.items():
            if t.requires_grad or not t.is_contiguous():
                problems.append(f"{k}: requires_grad {t.requires_grad}, contiguous {t.is_contiguous()}")
        expected = collections.OrderedDict((k, v.to(dtype)) for k, v in h5_tensors(h5).items())
        problems += same_tensors(loaded, expected, f"{pth} vs {h5}")
        # The shapes the official loaders expect (spec §1.8).
        for k, t in loaded.items():
            if ".time_mix_" in k and (t.dim() != 3 or t.shape[:2] != (1, 1)):
                problems.append(f"{k}: shape {list(t.shape)}, expected [1, 1, C]")
            if k.endswith((".time_decay", ".time_first")) and t.dim() != 1:
                problems.append(f"{k}: shape {list(t.shape)}, expected [C]")
        if problems:
            print("\n".join(problems))
            return 1
        print(f"{pth}: {len(loaded)} tensors match {h5} in {argv[4]}")
        return 0
    if mode == "save":
        h5, out, dtype = argv[2], argv[3], DTYPES[argv[4]]
        flags = argv[5:]
        tensors = collections.OrderedDict((k, v.to(dtype)) for k, v in h5_tensors(h5).items())
        while "--drop" in flags:
            i = flags.index("--drop")
            tensors.pop(flags[i + 1])
            del flags[i:i + 2]
        while "--extra" in flags:
            i = flags.index("--extra")
            tensors[flags[i + 1]] = torch.zeros(3, dtype=dtype)
            del flags[i:i + 2]
        if "--views" in flags:
            # head.weight as a transposed view, and ln_out.weight/bias as slices of one shared storage.
            tensors["head.weight"] = tensors["head.weight"].t().contiguous().t()
            both = torch.cat([tensors["ln_out.weight"], tensors["ln_out.bias"]])
            c = tensors["ln_out.weight"].numel()
            tensors["ln_out.weight"], tensors["ln_out.bias"] = both[:c], both[c:]
        state = dict(tensors) if "--plain" in flags else tensors
        if "--legacy" in flags:
            torch.save(state, out, _use_new_zipfile_serialization=False)
        else:
            torch.save(state, out)
        return 0
    if mode == "same":
        problems = same_tensors(torch.load(argv[2], map_location="cpu"), torch.load(argv[3], map_location="cpu"),
                                f"{argv[2]} vs {argv[3]}")
    elif mode == "same_h5":
        problems = same_tensors(h5_tensors(argv[2]), h5_tensors(argv[3]), f"{argv[2]} vs {argv[3]}")
    else:
        print(__doc__)
        return 2
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
