#!/usr/bin/env python3
"""`shardlm convert --to gguf` checked by llama.cpp (llama-cpp-python) and gguf-py.

    check_gguf.py gguf-gpt2|gguf-llama SHARDLM_BIN SCRATCH_DIR

A short real training run of the family is exported in f32, f16, bf16 and q8_0. gguf-py reads
each file (architecture, tensor types, the vocabulary equal to shardlm's pieces); llama.cpp loads
each, and its logits for every position of a prompt match shardlm's forward: f32 within 1e-4 of
the logit range, f16 and bf16 within their rounding, q8_0 with the same top-1 token at >= 95% of
positions. llama.cpp's tokenizer gives shardlm's ids on sample text.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_convert as cc  # noqa: E402  (the same CASE SHARDLM SCRATCH arguments)

BOUNDS = {"f32": 1e-4, "f16": 5e-3, "bf16": 4e-2}  # max |diff| / logit range
TYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}


def check_with_gguf_py(path, dtype):
    from gguf import GGUFReader
    r = GGUFReader(path)
    field = lambda k: r.fields[k]
    arch = bytes(field("general.architecture").parts[-1]).decode()
    tokens = [bytes(field("tokenizer.ggml.tokens").parts[i]).decode() for i in field("tokenizer.ggml.tokens").data]
    types = {t.name: t.tensor_type.name for t in r.tensors}
    matrices = {n: t for n, t in types.items() if not n.endswith(("norm.weight", "bias"))}
    want = TYPES[dtype]
    odd = [n for n, t in matrices.items() if t != want]
    # q8_0 needs rows of a multiple of 32; such matrices are written f16.
    assert not odd or (dtype == "q8_0" and all(matrices[n] == "F16" for n in odd)), (dtype, odd)
    assert all(t == "F32" for n, t in types.items() if n not in matrices), types
    # shardlm's special pieces and byte fallback (docs/data-format.md), and the ids' fields.
    assert len(tokens) == cc.VOCAB and tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"], tokens[:4]
    assert tokens[4:260] == [f"<0x{b:02X}>" for b in range(256)], tokens[4:8]
    special = {k: int(field(f"tokenizer.ggml.{k}_token_id").parts[-1][0]) for k in ("bos", "eos", "unknown", "padding")}
    assert special == {"bos": 2, "eos": 3, "unknown": 1, "padding": 0}, special
    return arch, odd


def llama_cpp_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)], dtype=np.float64)


def case(family):
    from llama_cpp import Llama
    ckpt = cc.train(family, os.path.join(cc.SCRATCH, "run"))
    tok_model = os.path.join(cc.SCRATCH, "tok.model")
    ids = cc.batch(1, 48)[0]
    ref = cc.shardlm_logits(ckpt, ids).astype(np.float64)
    span = ref.max() - ref.min()
    with open(os.path.join(cc.REPO, "data", "tinyshakespeare.txt")) as f:
        texts = cc.SAMPLES + [f.read()[300000:305000]]
    for dtype in ("f32", "f16", "bf16", "q8_0"):
        path = os.path.join(cc.SCRATCH, f"model-{dtype}.gguf")
        if os.path.exists(path):
            os.remove(path)
        cc.run(["convert", "--to", "gguf", ckpt, path, "--dtype", dtype])
        arch, odd = check_with_gguf_py(path, dtype)
        assert arch == family, arch
        llm = Llama(model_path=path, n_ctx=cc.SEQ, logits_all=True, n_threads=2, n_batch=cc.SEQ,
                    verbose=False)
        got = llama_cpp_logits(llm, ids)
        if dtype == "q8_0":
            agree = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
            print(f"q8_0 ({len(odd)} matrices f16): llama.cpp top-1 equals shardlm's at {agree:.0%} of positions")
            assert agree >= 0.95, agree
        else:
            err = float(np.abs(got - ref).max() / span)
            print(f"{dtype}: llama.cpp vs shardlm logits max |diff| / range {err:.2e} (bound {BOUNDS[dtype]})")
            assert err <= BOUNDS[dtype], err
        if dtype == "f32":
            for text in texts:
                want = [int(x) for x in cc.run(["tokenizer", "encode", "--model", tok_model], stdin=text).stdout.split()]
                got_ids = llm.tokenize(text.encode(), add_bos=False, special=False)
                assert got_ids == want, f"llama.cpp ids differ on {text[:60]!r}:\n{got_ids[:40]}\n{want[:40]}"
            print(f"tokenizer: llama.cpp ids equal shardlm's on {len(texts)} samples")
        del llm


if __name__ == "__main__":
    os.makedirs(cc.SCRATCH, exist_ok=True)
    case({"gguf-gpt2": "gpt2", "gguf-llama": "llama"}[cc.CASE])
    print(f"{cc.CASE}: ok")
