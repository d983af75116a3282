#!/usr/bin/env python3
"""Encoding speed of `shardlm data prepare` with a byte-level BPE tokenizer.json, against the
`tokenizers` library on the same text in the same run (docs/data-format.md records the figures).

    bench/bpe_prepare.py --shardlm build/shardlm --tokenizer TOKENIZER.json --text FILE... \
        [--threads 1 2] [--scratch DIR]

For each text and thread count: shardlm's tokens/s and MB/s over `data prepare` (--val-fraction
0, default blocks; the wall time of the command, which includes reading the file and writing the
shards), and tokenizers' encode_batch over the same 16 KiB blocks (RAYON_NUM_THREADS threads,
add_special_tokens=False), whose ids must equal shardlm's. Runs under the test venv's Python
(tokenizers, numpy).
"""
import argparse
import os
import shutil
import subprocess
import time

import numpy as np


def shard_ids(data):
    ids = []
    for line in open(os.path.join(data, "index.txt")):
        if line.startswith("shard train "):
            raw = open(os.path.join(data, line.split()[2]), "rb").read()
            width = int.from_bytes(raw[12:16], "little")
            ids.append(np.frombuffer(raw[64:], dtype="<u2" if width == 2 else "<u4"))
    return np.concatenate(ids)


def shardlm_prepare(shardlm, tokenizer, text, threads, scratch):
    out = os.path.join(scratch, "data")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([shardlm, "data", "prepare", "--input", text, "--tokenizer", tokenizer, "--out", out,
                    "--val-fraction", "0", "--threads", str(threads), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, shard_ids(out)


def library_encode(tokenizer, text, threads):
    """tokenizers over 16 KiB blocks cut at newlines (about what data prepare hands each thread)."""
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer)
    blocks, at = [], 0
    while at < len(text):
        end = len(text) if len(text) - at <= 16384 else text.rfind("\n", at, at + 16384) + 1 or at + 16384
        blocks.append(text[at:end])
        at = end
    t0 = time.perf_counter()
    encodings = tok.encode_batch(blocks, add_special_tokens=False)
    seconds = time.perf_counter() - t0
    return seconds, sum(len(e.ids) for e in encodings)


def library_whole(tokenizer, text):
    """The reference ids: the whole text in one call (cuts at newlines can change GPT-2's pieces)."""
    from tokenizers import Tokenizer
    return np.array(Tokenizer.from_file(tokenizer).encode(text, add_special_tokens=False).ids, dtype=np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardlm", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--text", nargs="+", required=True)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--scratch", default="/tmp/bpe-prepare-bench")
    a = ap.parse_args()
    os.makedirs(a.scratch, exist_ok=True)
    for path in a.text:
        text = open(path, encoding="utf-8").read()
        mb = len(text.encode()) / 1e6
        want = library_whole(a.tokenizer, text)
        for threads in a.threads:
            s_sec, s_ids = shardlm_prepare(a.shardlm, a.tokenizer, path, threads, a.scratch)
            l_sec, l_tokens = library_encode(a.tokenizer, text, threads)
            same = np.array_equal(s_ids[:-1], want)  # shardlm ends the document with EOS
            print(f"{os.path.basename(path)} ({mb:.1f} MB), {threads} thread(s): shardlm data prepare "
                  f"{len(s_ids) / s_sec / 1e6:.2f} M tokens/s ({mb / s_sec:.1f} MB/s, {s_sec:.1f} s); "
                  f"tokenizers encode_batch {l_tokens / l_sec / 1e6:.2f} M tokens/s ({l_sec:.1f} s); "
                  f"ids equal to tokenizers' on the whole text: {same}")


if __name__ == "__main__":
    main()
