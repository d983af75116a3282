#!/usr/bin/python3
"""Runs the h5py snippets of docs/checkpoint-format.md ("Reading a checkpoint without shardlm"),
exactly as written there, on a checkpoint that test_checkpoint_dtypes.cpp saved, and checks what
they return against the values the test wrote down.

usage: checkpoint_h5py_dtypes.py DOCS_MD CHECKPOINT_DIR EXPECTED_TXT
EXPECTED_TXT: one line per tensor, "role name dtype v0 v1 ..." with the values (row-major, what a
CheckpointReader returns) as C99 hex floats. Exit status 0 and "ok" when everything matches.
"""
import re
import sys

import h5py
import numpy as np


def doc_snippets(docs_md):
    text = open(docs_md).read()
    section = text.split("## Reading a checkpoint without shardlm", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def main(docs_md, ckpt, expected_txt):
    snippets = doc_snippets(docs_md)
    assert len(snippets) == 2, f"expected the load and raw_bits snippets, found {len(snippets)}"
    example = 'ckpt = "ckpt/step_00001000"'
    assert example in snippets[0], f"the first snippet no longer sets {example}"
    env = {}
    for code in snippets:
        exec(code.replace(example, f"ckpt = {ckpt!r}"), env)  # the one edit: the path
    load, raw_bits, slice_dtypes = env["load"], env["raw_bits"], list(env["dtypes"])
    # The raw-bits snippet decoded /param/wte of rank 0 (one bf16 slice: the whole tensor).
    if not np.array_equal(env["wte"], load("param", "wte")):
        print(f"raw-bits snippet: wte = {env['wte']}, load() = {load('param', 'wte')}")
        return 1

    s = env["s"]
    names = s["name"].asstr()[...]
    roles = s["role"].asstr()[...]
    datasets = s["dataset"].asstr()[...]
    problems = []
    seen = set()
    for line in open(expected_txt):
        role, name, dtype, *values = line.split()
        want = np.array([float.fromhex(v) for v in values], np.float32)
        got = load(role, name)
        if not np.array_equal(got.ravel(), want):
            problems.append(f"{role}/{name} ({dtype}): load() gives {got.ravel()}, expected {want}")
        rows = [i for i in range(len(names)) if names[i] == name and roles[i] == role]
        if {slice_dtypes[i] for i in rows} != {dtype}:
            problems.append(f"{role}/{name}: slices/dtype says {[slice_dtypes[i] for i in rows]}")
        for i in rows:
            path = f"{ckpt}/rank_{s['rank'][i]:05d}.h5"
            with h5py.File(path, "r") as f:
                d = f[datasets[i]]
                as_h5py = d[...]
                attr = d.attrs["dtype"]
                attr = attr.decode() if isinstance(attr, bytes) else attr
            numpy_type = {"f32": np.float32, "bf16": np.float32, "f16": np.float16}[dtype]
            if as_h5py.dtype != numpy_type or attr != dtype:
                problems.append(f"{path}{datasets[i]}: h5py reads {as_h5py.dtype}, attribute "
                                f"dtype {attr!r}; expected {np.dtype(numpy_type)}, {dtype!r}")
            if dtype == "bf16":  # the docs' raw-bits recipe agrees with h5py's conversion
                from_bits = (raw_bits(path, datasets[i]).astype("<u4") << 16).view("<f4")
                if not np.array_equal(from_bits, as_h5py):
                    problems.append(f"{path}{datasets[i]}: raw bits give {from_bits}, "
                                    f"h5py {as_h5py}")
                seen.add("bf16 raw")
            if dtype == "f16":
                if not np.array_equal(raw_bits(path, datasets[i]).view("<f2"), as_h5py):
                    problems.append(f"{path}{datasets[i]}: f16 raw bits differ from h5py")
        seen.add(dtype)
    if seen != {"f32", "bf16", "f16", "bf16 raw"}:
        problems.append(f"the test checkpoint should hold every dtype; it held {sorted(seen)}")
    if problems:
        print("\n".join(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
