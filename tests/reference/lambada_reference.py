#!/usr/bin/python3
"""LAMBADA with the official RWKV protocol (ChatRWKV v2/benchmark.py), on the independent PyTorch model of
rwkv4_reference.py (float64), to check `rwkv eval --lambada` and train/eval/lambada.cpp.

    /usr/bin/python3 tests/reference/lambada_reference.py --weights W.h5 (--jsonl F.jsonl | --examples E.h5)
        [--out OUT.h5] [--json]

Protocol, per example: text.rsplit(" ", 1) gives context and last word; target = " " + last word;
src = [187] + tokens(context); dst = tokens(target); ONE forward over src + dst (each example alone, no padding);
logprob = sum_i log_softmax(logits[len(src) - 1 + i])[dst[i]]; correct = every dst[i] is the argmax (torch.argmax:
the first index among equal maxima). ppl = exp(-mean logprob), acc = mean correct.

Inputs
    --jsonl F.jsonl  one {"text": ...} per line (blank lines skipped), tokenized as UTF-8 bytes (ids 0..255): for
                     byte-level models. The split is done here, independently of the C++.
    --examples E.h5  pre-tokenized examples (e.g. by the 20B tokenizer in C++): int datasets context and target
                     (all examples' ids concatenated; the context WITHOUT the 187 prefix, added here) and
                     context_lengths, target_lengths (one per example).
Output
    --out OUT.h5     logprob float64 [N], correct int64 [N]; attributes ppl, acc, examples.
    --json           prints {"ppl", "acc", "examples", "logprob": [...], "correct": [...]} on stdout.
Exit status: 0 on success, 2 on bad input.
"""

import argparse
import json
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rwkv4_reference import InputError, forward, load_weights  # noqa: E402

PREFIX = [187]


def examples_from_jsonl(path):
    examples = []
    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            text = json.loads(line)["text"]
            parts = text.rsplit(" ", 1)
            if len(parts) != 2:
                raise InputError(f"{path}:{number}: the text has no space")
            context, target = parts[0], " " + parts[1]
            examples.append((list(context.encode("utf-8")), list(target.encode("utf-8"))))
    return examples


def examples_from_h5(path):
    with h5py.File(path, "r") as f:
        context, target = np.asarray(f["context"][()], np.int64), np.asarray(f["target"][()], np.int64)
        context_lengths = np.asarray(f["context_lengths"][()], np.int64)
        target_lengths = np.asarray(f["target_lengths"][()], np.int64)
    examples, c, t = [], 0, 0
    for cl, tl in zip(context_lengths, target_lengths):
        examples.append((context[c:c + cl].tolist(), target[t:t + tl].tolist()))
        c, t = c + cl, t + tl
    return examples


def score(params, dims, examples):
    logprobs, correct = [], []
    with torch.no_grad():
        for context, target in examples:
            src, dst = PREFIX + context, target
            logits = forward(params, dims, torch.tensor([src + dst], dtype=torch.int64))[0]
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            total, all_right = 0.0, True
            for i, token in enumerate(dst):
                row = log_probs[len(src) - 1 + i]
                total += float(row[token])
                if int(torch.argmax(row)) != token:
                    all_right = False
            logprobs.append(total)
            correct.append(all_right)
    return logprobs, correct


def main(argv=None):
    parser = argparse.ArgumentParser(description="LAMBADA reference (see the module docstring).")
    parser.add_argument("--weights", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--jsonl")
    source.add_argument("--examples")
    parser.add_argument("--out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        dims, params = load_weights(args.weights, torch.float64)
        examples = examples_from_jsonl(args.jsonl) if args.jsonl else examples_from_h5(args.examples)
    except InputError as error:
        print(f"lambada_reference.py: {error}", file=sys.stderr)
        return 2
    logprobs, correct = score(params, dims, examples)
    ppl = math.exp(-sum(logprobs) / len(logprobs))
    acc = sum(correct) / len(correct)
    if args.out:
        with h5py.File(args.out, "w") as f:
            f.create_dataset("logprob", data=np.array(logprobs, np.float64))
            f.create_dataset("correct", data=np.array(correct, np.int64))
            f.attrs["ppl"], f.attrs["acc"], f.attrs["examples"] = ppl, acc, np.int64(len(logprobs))
    if args.json:
        print(json.dumps({"ppl": ppl, "acc": acc, "examples": len(logprobs), "logprob": logprobs,
                          "correct": correct}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
