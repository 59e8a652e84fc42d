#!/usr/bin/env python3
"""Independent binidx writer for the tests: standard library only, written from the published
Megatron / GPT-NeoX MMapIndexedDataset layout (spec section 5.1), not from our C++ code.

  write_binidx.py PREFIX --dtype uint16 --tokens FILE
      FILE holds one document per line, token ids separated by spaces (an empty line = empty document).
  write_binidx.py PREFIX --dtype uint16 --synthetic N [--doc_len L] [--vocab V]
      N tokens in documents of L tokens (the last may be shorter); token i = (i * 7919 + 13) % V.

Writes PREFIX.bin then PREFIX.idx.
"""
import argparse
import struct
import sys

# dtype name -> (binidx code, struct format of one item)
DTYPES = {
    "uint8": (1, "B"),
    "int8": (2, "b"),
    "int16": (3, "h"),
    "int32": (4, "i"),
    "int64": (5, "q"),
    "float64": (7, "d"),  # not a token type: lets tests check that readers reject it
    "uint16": (8, "H"),
}


def read_documents(path):
    with open(path, "r", encoding="ascii") as f:
        return [[int(t) for t in line.split()] for line in f.read().split("\n")[:-1]]


def synthetic_documents(count, doc_len, vocab):
    docs, i = [], 0
    while i < count:
        n = min(doc_len, count - i)
        docs.append([((i + k) * 7919 + 13) % vocab for k in range(n)])
        i += n
    return docs


def write(prefix, dtype, docs):
    code, fmt = DTYPES[dtype]
    itemsize = struct.calcsize("<" + fmt)
    with open(prefix + ".bin", "wb") as f:
        for doc in docs:
            f.write(struct.pack("<%d%s" % (len(doc), fmt), *doc))
    sizes = [len(doc) for doc in docs]
    pointers, address = [], 0
    for size in sizes:
        pointers.append(address)
        address += size * itemsize
    doc_idx = list(range(len(docs) + 1))
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", code))
        f.write(struct.pack("<Q", len(sizes)))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(struct.pack("<%di" % len(sizes), *sizes))
        f.write(struct.pack("<%dq" % len(pointers), *pointers))
        f.write(struct.pack("<%dq" % len(doc_idx), *doc_idx))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefix")
    parser.add_argument("--dtype", default="uint16", choices=sorted(DTYPES))
    parser.add_argument("--tokens")
    parser.add_argument("--synthetic", type=int)
    parser.add_argument("--doc_len", type=int, default=1000)
    parser.add_argument("--vocab", type=int, default=50277)
    args = parser.parse_args()
    if (args.tokens is None) == (args.synthetic is None):
        parser.error("give exactly one of --tokens and --synthetic")
    docs = read_documents(args.tokens) if args.tokens else synthetic_documents(args.synthetic, args.doc_len, args.vocab)
    write(args.prefix, args.dtype, docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
