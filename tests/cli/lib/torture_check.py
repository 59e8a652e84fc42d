"""Checks for the crash-consistency torture (tests/cli/crash_torture.sh, scripts/torture.sh).

One process serves every check of a torture run (python and h5py start-up would otherwise dominate it): each
line on stdin is a command, each reply one line, "OK ..." or "ERR <what is wrong>".

  state DIR               after a kill: every rwkv-*.h5 under a final name is a complete, readable checkpoint;
                          metrics.jsonl is whole lines of JSON except at most a torn last line, its training
                          records are steps 1..M once each in order (M >= the newest checkpoint's step: nothing
                          a checkpoint counts on was lost), its validations are once each; run.json, vocab.json
                          and loss.svg, where present, are complete. Reply: "OK <newest step or -1> <M>".
  done DIR REFERENCE      a run that completed: its rwkv-final.h5 is bit-identical to REFERENCE's (/model,
                          /optimizer, step counters), its metrics.jsonl lists the same steps and validations as
                          REFERENCE's (once each, no torn line), and no temporary file is left. Reply: "OK".
  same A.h5 B.h5          /model, /optimizer and the step counters of A and B are bit-identical. Reply: "OK".
  points TRACE DIR SELECT the kill points of a traced run: the syscalls of TRACE (strace -f -y -o) made by the
                          process's main thread that change something under DIR (open for writing, write,
                          rename, unlink, truncate, fsync), and of them those SELECT chooses (see choose()).
                          Reply: "OK <all> <chosen>" and then a line "<index> <syscall> <when> <files>" per
                          chosen point, where <when> counts that syscall's calls in the main thread (strace -e
                          inject=<syscall>:signal=KILL:when=<when> kills just before it runs).
"""
import glob
import json
import os
import re
import sys

import h5py
import numpy as np


class Problem(Exception):
    pass


def datasets(group, prefix=""):
    out = {}
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            out.update(datasets(item, prefix + name + "/"))
        else:
            out[prefix + name] = item
    return out


def newest_checkpoint(directory):
    newest = -1
    for path in sorted(glob.glob(os.path.join(directory, "rwkv-*.h5"))):
        try:
            with h5py.File(path, "r") as f:
                for group in ("model", "optimizer", "train"):
                    if group not in f:
                        raise Problem("no /" + group)
                if int(f["train"].attrs["complete"]) != 1:
                    raise Problem("no complete mark")
                for dataset in datasets(f).values():
                    dataset[()]  # reads every byte
                newest = max(newest, int(f["train"].attrs["global_step"]))
        except Exception as e:
            raise Problem("unreadable checkpoint under a final name: %s: %s" % (path, e))
    return newest


def metrics(directory, allow_torn_tail):
    """(training steps, validation steps) of DIR/metrics.jsonl, in file order."""
    path = os.path.join(directory, "metrics.jsonl")
    if not os.path.exists(path):
        return [], []
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail and not allow_torn_tail:
        raise Problem("metrics.jsonl ends with a torn line: %r" % tail[:60])
    steps, validations = [], []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise Problem("metrics.jsonl line %d is not JSON: %r" % (number, line[:80]))
        if "val_loss" in record:
            validations.append(record["step"])
        elif "loss" in record:
            steps.append(record["step"])
        else:
            raise Problem("metrics.jsonl line %d is neither a step nor a validation: %r" % (number, line[:80]))
    if steps != list(range(1, len(steps) + 1)):
        raise Problem("metrics.jsonl training steps are not 1..%d once each: %s" % (len(steps), steps))
    if len(set(validations)) != len(validations) or validations != sorted(validations):
        raise Problem("metrics.jsonl validations are not once each in order: %s" % validations)
    if validations and validations[-1] > len(steps):
        raise Problem("metrics.jsonl has a validation at step %d after its last step %d" % (validations[-1], len(steps)))
    return steps, validations


def complete_side_files(directory):
    for name in ("run.json", "vocab.json"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    json.load(f)
            except ValueError as e:
                raise Problem("%s is not complete JSON: %s" % (path, e))
    path = os.path.join(directory, "loss.svg")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if not f.read().endswith("</svg>\n"):
                raise Problem("%s is cut short" % path)


def check_state(directory):
    newest = newest_checkpoint(directory)
    steps, _ = metrics(directory, allow_torn_tail=True)
    if len(steps) < newest:
        raise Problem("metrics.jsonl lists steps 1..%d but the newest checkpoint is at step %d: records were lost"
                      % (len(steps), newest))
    complete_side_files(directory)
    return "OK %d %d" % (newest, len(steps))


def check_same(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for group in ("model", "optimizer"):
            da, db = datasets(fa[group]), datasets(fb[group])
            if sorted(da) != sorted(db):
                raise Problem("/%s members differ: %s vs %s" % (group, sorted(da), sorted(db)))
            for name in da:
                x, y = np.asarray(da[name][()]), np.asarray(db[name][()])
                if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                    raise Problem("/%s/%s differs between %s and %s" % (group, name, a, b))
            if dict(fa[group].attrs) != dict(fb[group].attrs):
                raise Problem("/%s attributes differ" % group)
        for key in ("global_step", "tokens_seen", "mini_epoch"):
            if fa["train"].attrs[key] != fb["train"].attrs[key]:
                raise Problem("/train %s differs" % key)
    return "OK"


def check_done(directory, reference):
    check_same(os.path.join(reference, "rwkv-final.h5"), os.path.join(directory, "rwkv-final.h5"))
    got, expected = metrics(directory, False), metrics(reference, False)
    if got != expected:
        raise Problem("metrics.jsonl lists steps %s and validations %s; the uninterrupted run %s and %s"
                      % (got[0], got[1], expected[0], expected[1]))
    left = glob.glob(os.path.join(directory, "*.tmp*"))
    if left:
        raise Problem("temporary files left behind: %s" % left)
    complete_side_files(directory)
    newest_checkpoint(directory)
    return "OK"


WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
PATHS = re.compile(r'"([^"]*)"|<([^>]*)>')


def kill_points(trace, directory):
    """[(syscall, when, files)] of the main thread's calls in TRACE that change something under DIR."""
    directory = os.path.abspath(directory)
    points, seen, main = [], {}, None
    for line in open(trace, encoding="utf-8", errors="replace"):
        match = LINE.match(line)
        if not match:
            continue
        pid, name, args = int(match.group(1)), match.group(2), match.group(3)
        main = pid if main is None else main
        if pid != main:
            continue
        seen[name] = seen.get(name, 0) + 1
        if name in ("openat", "open") and not any(flag in args for flag in WRITE_FLAGS + ("O_DIRECTORY",)):
            continue
        files = []
        for quoted, annotated in PATHS.findall(args):
            path = os.path.abspath(quoted or annotated)
            if path == directory or path.startswith(directory + "/"):
                files.append(os.path.relpath(path, directory))
        if files:
            points.append((name, seen[name], ",".join(files)))
    return points


def choose(points, select):
    """Indices of the points SELECT names: all | until:FILE | save:CHECKPOINT | whole-save:CHECKPOINT | spread:K |
    a:b:c (a slice)."""
    n = len(points)
    kind, _, what = select.partition(":")
    if kind == "all":
        return list(range(n))
    if kind == "until":  # from the start through the first write to FILE itself
        for i, (name, _, files) in enumerate(points):
            if name in ("write", "writev", "pwrite64", "pwritev") and files == what:
                return list(range(i + 1))
        raise Problem("no write to %s among the kill points" % what)
    if kind in ("save", "whole-save"):  # from the creation of CHECKPOINT's temporary to the next metrics record
        first = next((i for i, (_, _, files) in enumerate(points) if files.startswith(what + ".tmp-")), None)
        if first is None:
            raise Problem("no save of %s among the kill points" % what)
        last = next((i for i in range(first, n) if points[i][0] == "write" and points[i][2] == "metrics.jsonl"), n)
        window = list(range(first, last))
        if kind == "whole-save":
            return window
        # "save": every step of the save but HDF5's data writes, of which the first, a middle and the last one
        data = [i for i in window if points[i][0] in ("pwrite64", "pwritev") and points[i][2].startswith(what)]
        keep = set(data[:1] + data[len(data) // 2:len(data) // 2 + 1] + data[-1:])
        return [i for i in window if i not in data or i in keep]
    if kind == "spread":  # K points evenly spread, the last one included
        k = int(what)
        return sorted({round(j * (n - 1) / max(1, k - 1)) for j in range(k)})
    return list(range(n))[slice(*[int(part) if part else None for part in select.split(":")])]


def serve():
    for line in sys.stdin:
        words = line.split()
        try:
            if words[0] == "state":
                reply = check_state(words[1])
            elif words[0] == "done":
                reply = check_done(words[1], words[2])
            elif words[0] == "same":
                reply = check_same(words[1], words[2])
            elif words[0] == "points":
                points = kill_points(words[1], words[2])
                chosen = choose(points, words[3])
                reply = "\n".join(["OK %d %d" % (len(points), len(chosen))] +
                                   ["%d %s %d %s" % ((i,) + points[i]) for i in chosen])
            else:
                reply = "ERR unknown command " + words[0]
        except Problem as e:
            reply = "ERR " + str(e)
        except Exception as e:  # a checker bug must fail the torture, not hang it
            reply = "ERR checker: %s: %s" % (type(e).__name__, e)
        print(reply, flush=True)


if __name__ == "__main__":
    serve()
