#!/usr/bin/env python3
"""`shardlm convert --to gguf` checked by llama.cpp (llama-cpp-python) and gguf-py.

    check_gguf.py gguf-gpt2|gguf-llama|gguf-llamacpp-gpt2|gguf-llamacpp-llama SHARDLM_BIN SCRATCH_DIR
    check_gguf.py gguf-llamacpp-rope-scaling SHARDLM_BIN SCRATCH_DIR

A short real training run of the family is exported in f32, f16, bf16 and q8_0. gguf-py reads
each file (architecture, tensor types, vocabulary and special ids), and the f32 file's tensors
run through llama.cpp's graph for the architecture written out in numpy (adjacent-pair RoPE for
llama: what the q/k permutation is for) give shardlm's logits; llama.cpp loads
each, and its logits for every position of a prompt match shardlm's forward: f32 within 1e-4 of
the logit range, f16 and bf16 within their rounding, q8_0 with the same top-1 token at >= 95% of
positions. llama.cpp's tokenizer gives shardlm's ids on sample text.
gguf-llamacpp-rope-scaling: Llama 3.1's rope scaling through import, export and GGUF's
rope_freqs.weight (rope_scaling_case).
"""
import os
import shutil
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


def gguf_tensors(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    return r, {t.name: np.array(t.data, dtype=np.float64).reshape([int(d) for d in reversed(t.shape)])
               for t in r.tensors}


def value(r, key):
    return r.fields[key].parts[-1][0]


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def attention(q, k, v):
    """q [T, H, hd], k/v [T, KV, hd] (grouped), causal."""
    T, H, hd = q.shape
    k, v = np.repeat(k, H // k.shape[1], axis=1), np.repeat(v, H // v.shape[1], axis=1)
    s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(hd) + np.triu(np.full((T, T), -np.inf), 1)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("htu,uhd->thd", p, v).reshape(T, H * hd)


def gpt2_forward(path, ids):
    """llama.cpp's gpt2 graph (llm_build_gpt2) in numpy over the GGUF tensors."""
    r, W = gguf_tensors(path)
    H, L = int(value(r, "gpt2.attention.head_count")), int(value(r, "gpt2.block_count"))
    x = W["token_embd.weight"][ids] + W["position_embd.weight"][: len(ids)]
    gelu = lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    for l in range(L):
        w = lambda n: W[f"blk.{l}.{n}"]
        h = layer_norm(x, w("attn_norm.weight"), w("attn_norm.bias"))
        q, k, v = np.split(h @ w("attn_qkv.weight").T + w("attn_qkv.bias"), 3, axis=-1)
        T, C = q.shape
        a = attention(q.reshape(T, H, -1), k.reshape(T, H, -1), v.reshape(T, H, -1))
        x = x + a @ w("attn_output.weight").T + w("attn_output.bias")
        h = layer_norm(x, w("ffn_norm.weight"), w("ffn_norm.bias"))
        x = x + gelu(h @ w("ffn_up.weight").T + w("ffn_up.bias")) @ w("ffn_down.weight").T + w("ffn_down.bias")
    return layer_norm(x, W["output_norm.weight"], W["output_norm.bias"]) @ W["output.weight"].T


def llama_forward(path, ids, rope_freqs=True):
    """llama.cpp's llama graph in numpy over the GGUF tensors: RoPE on adjacent pairs
    (rope type NORM), which is what the q/k row permutation of the export is for, with each
    frequency divided by rope_freqs.weight where the file has it (Llama 3.1's scaling;
    rope_freqs=False ignores it, to show what it changes)."""
    r, W = gguf_tensors(path)
    H, KV = int(value(r, "llama.attention.head_count")), int(value(r, "llama.attention.head_count_kv"))
    L, eps = int(value(r, "llama.block_count")), float(value(r, "llama.attention.layer_norm_rms_epsilon"))
    base = float(value(r, "llama.rope.freq_base"))
    rms = lambda z, w: z / np.sqrt((z ** 2).mean(-1, keepdims=True) + eps) * w
    x = W["token_embd.weight"][ids]
    T = len(ids)

    def rope(z, heads):
        z = z.reshape(T, heads, -1).copy()
        hd = z.shape[-1]
        freqs = base ** (-np.arange(0, hd, 2) / hd)
        if rope_freqs and "rope_freqs.weight" in W:
            freqs = freqs / W["rope_freqs.weight"]
        theta = np.arange(T)[:, None] * freqs[None, :]
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        a, b = z[..., 0::2].copy(), z[..., 1::2].copy()
        z[..., 0::2], z[..., 1::2] = a * c - b * s, a * s + b * c
        return z

    for l in range(L):
        w = lambda n: W[f"blk.{l}.{n}"]
        h = rms(x, w("attn_norm.weight"))
        q, k = rope(h @ w("attn_q.weight").T, H), rope(h @ w("attn_k.weight").T, KV)
        v = (h @ w("attn_v.weight").T).reshape(T, KV, -1)
        x = x + attention(q, k, v) @ w("attn_output.weight").T
        h = rms(x, w("ffn_norm.weight"))
        g = h @ w("ffn_gate.weight").T
        x = x + (g / (1 + np.exp(-g)) * (h @ w("ffn_up.weight").T)) @ w("ffn_down.weight").T
    return rms(x, W["output_norm.weight"]) @ W["output.weight"].T


def llama_cpp_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)], dtype=np.float64)


def case(family):
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
        if dtype == "f32":  # the file read as llama.cpp's graph reads it, in numpy
            mine = {"gpt2": gpt2_forward, "llama": llama_forward}[family](path, ids)
            err = float(np.abs(mine - ref).max() / span)
            print(f"f32: numpy forward of llama.cpp's {family} graph over the GGUF tensors vs shardlm: {err:.2e}")
            assert err <= 1e-5, err
        if not with_llama_cpp:
            continue
        from llama_cpp import Llama
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


ROPE_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32}


def llama3_factors(head_dim, theta, s):
    """convert_hf_to_gguf.py's rope_freqs for rope_type llama3, in float32 as its torch code."""
    f32 = np.float32
    freqs = f32(1.0) / (f32(theta) ** (np.arange(0, head_dim, 2, dtype=f32) / f32(head_dim)))
    orig, low, high, factor = f32(s["original_max_position_embeddings"]), f32(s["low_freq_factor"]), \
        f32(s["high_freq_factor"]), f32(s["factor"])
    out = []
    for freq in freqs:
        wavelen = f32(2 * np.pi) / freq
        if wavelen < orig / high:
            out.append(f32(1))
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(f32(1) / ((f32(1) - smooth) / factor + smooth))
    return np.array(out, dtype=f32)


def rope_scaling_case():
    """Llama 3.1's rope scaling at a context where it matters: head_dim 16 and an original
    context of 32, so that the 8 frequencies fall in all three bands and positions run past 32.
    A transformers model imports (logits equal), exports back to transformers (equal again) and to
    GGUF, whose rope_freqs.weight is the converter's; numpy's llama.cpp graph and llama.cpp
    itself match shardlm's logits, and without the factors they would not."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cc.dataset()  # tok.model, the vocabulary the file needs
    with open(os.path.join(cc.REPO, "data", "tinyshakespeare.txt")) as f:
        text = f.read()[:20000]
    tokens = [int(x) for x in cc.run(["tokenizer", "encode", "--model", os.path.join(cc.SCRATCH, "tok.model")],
                                     stdin=text).stdout.split()]
    torch.manual_seed(11)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=cc.VOCAB, hidden_size=64, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=cc.SEQ, rope_theta=10000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, bos_token_id=2, eos_token_id=3, rope_scaling=dict(ROPE_SCALING)))
    # 40 AdamW steps on Shakespeare: logits of a trained model's range (about 10, not 1 at init),
    # as the trained runs of the other cases have (llama.cpp's own f32 error is a fixed size).
    opt, rng = torch.optim.AdamW(model.parameters(), lr=3e-3), np.random.default_rng(0)
    for _ in range(40):
        x = torch.tensor([tokens[a:a + cc.SEQ] for a in rng.integers(0, len(tokens) - cc.SEQ, size=8)])
        opt.zero_grad()
        model(x, labels=x).loss.backward()
        opt.step()
    model.eval()
    hf_dir, ckpt = os.path.join(cc.SCRATCH, "hf_rope"), os.path.join(cc.SCRATCH, "rope_ckpt")
    for d in (hf_dir, ckpt):
        shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(hf_dir)
    shutil.copy(os.path.join(cc.SCRATCH, "tok.model"), os.path.join(hf_dir, "tokenizer.model"))
    cc.run(["convert", "--from", "hf", hf_dir, ckpt])
    ids = tokens[1000:1000 + cc.SEQ - 4]
    ref = cc.shardlm_logits(ckpt, ids).astype(np.float64)
    err = float(np.abs(cc.hf_logits(model, ids) - ref).max())
    print(f"import: transformers (rope_scaling llama3) vs shardlm logits max |diff| {err:.2e}")
    assert err <= 1e-4, err
    back = os.path.join(cc.SCRATCH, "hf_rope_back")
    shutil.rmtree(back, ignore_errors=True)
    cc.run(["convert", "--to", "hf", ckpt, back])
    err = float(np.abs(cc.hf_logits(cc.hf_model(back), ids) - ref).max())
    print(f"export: transformers loads the rope-scaled export, logits max |diff| {err:.2e}")
    assert err <= 1e-4, err

    path = os.path.join(cc.SCRATCH, "rope.gguf")
    if os.path.exists(path):
        os.remove(path)
    cc.run(["convert", "--to", "gguf", ckpt, path])
    r, W = gguf_tensors(path)
    want = llama3_factors(16, 10000.0, ROPE_SCALING)
    assert {t.name: t.tensor_type.name for t in r.tensors}["rope_freqs.weight"] == "F32"
    assert np.array_equal(W["rope_freqs.weight"].astype(np.float32), want), (W["rope_freqs.weight"], want)
    bands = int((want == 1).sum()), int(((want > 1) & (want < 8)).sum()), int((want == 8).sum())
    assert all(n > 0 for n in bands), bands
    print(f"gguf: rope_freqs.weight {want.tolist()} equals convert_hf_to_gguf.py's (bands {bands})")
    span = ref.max() - ref.min()
    err = float(np.abs(llama_forward(path, ids) - ref).max() / span)
    unscaled = float(np.abs(llama_forward(path, ids, rope_freqs=False) - ref).max() / span)
    print(f"gguf: numpy llama.cpp graph vs shardlm {err:.2e} of the logit range; ignoring rope_freqs {unscaled:.2e}")
    assert err <= 1e-5 and unscaled > 5 * BOUNDS["f32"], (err, unscaled)
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=cc.SEQ, logits_all=True, n_threads=2, n_batch=cc.SEQ, verbose=False)
    got = llama_cpp_logits(llm, ids)
    err = float(np.abs(got - ref).max() / span)
    print(f"gguf: llama.cpp vs shardlm logits max |diff| / range {err:.2e} (bound {BOUNDS['f32']})")
    assert err <= BOUNDS["f32"], err


if __name__ == "__main__":
    # gguf-FAMILY: gguf-py and a numpy forward of llama.cpp's graph check every export;
    # gguf-llamacpp-FAMILY: llama.cpp itself loads them (llama-cpp-python, in the test venv
    # unless it was made with SHARDLM_TEST_LLAMACPP=0).
    with_llama_cpp = cc.CASE.startswith("gguf-llamacpp-")
    if with_llama_cpp:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            print("llama-cpp-python is not in the test venv: run "
                  "scripts/test-venv.sh BUILD_DIR (without SHARDLM_TEST_LLAMACPP=0) to check with llama.cpp")
            sys.exit(77)
    os.makedirs(cc.SCRATCH, exist_ok=True)
    if cc.CASE == "gguf-llamacpp-rope-scaling":
        rope_scaling_case()
    else:
        case(cc.CASE.rsplit("-", 1)[1])
    print(f"{cc.CASE}: ok")
