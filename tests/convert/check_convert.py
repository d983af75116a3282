#!/usr/bin/env python3
"""`shardlm convert` checked by the real consumers (CTest label `convert`, the test venv).

    check_convert.py CASE SHARDLM_BIN SCRATCH_DIR

hf-gpt2, hf-llama: a short real training run (tokenizer, dataset, checkpoint saved on 2 ranks
with tp 2) exported to a Hugging Face directory in f32, bf16 and f16 (bf16 sharded). transformers
loads each; its logits on a batch of ids match shardlm's forward (`shardlm generate
--logits-out`) within 1e-4 in f32, and within the dtype's rounding for bf16/f16 (whose stored
tensors are checked to be the f32 ones rounded, bit for bit); its greedy generation equals
`shardlm generate --temperature 0` for 32 tokens; AutoTokenizer gives shardlm's ids; the f32
export imported back is bit-identical to the checkpoint.
import-gpt2, import-llama: a random model made by transformers (save_pretrained; once with
sharded safetensors) imported gives transformers' logits and trains on (`--init-from`).
bad-input: unsupported architecture, missing tensor, wrong shape and dtype, truncated
safetensors, mismatched tokenizer: refused naming the file and the field.
gguf-gpt2, gguf-llama: see check_gguf.py.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

CASE, SHARDLM, SCRATCH = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
VOCAB = 512
SEQ = 64
# Small models of each family with awkward sizes (GQA, an MLP width that is no power of two).
MODELS = {
    "gpt2": ["--model", "tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "4"],
    "llama": ["--model", "llama-tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "4"],
}
SAMPLES = ["To be, or not to be, that is the question:\n",
           "  Whether 'tis nobler   in the mind to suffer\n\tThe slings and arrows 1234567890",
           "Ünïcödé ☃ 日本語 text, emoji 🎉, and a final space "]


def run(args, check=0, np=1, timeout=600, stdin=None):
    cmd = (MPIRUN + ["-np", str(np)] if np > 1 else []) + [SHARDLM] + args
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def expect_error(args, *needles):
    p = run(args, check=None)
    assert p.returncode != 0, f"expected a failure: {args}\n{p.stdout}"
    text = p.stdout + p.stderr
    for n in needles:
        assert n in text, f"message lacks {n!r}:\n{text}"
    print("refused as expected:", text.strip().splitlines()[-1])


def dataset():
    """A SentencePiece tokenizer and a prepared dataset from Shakespeare (made once per scratch)."""
    data = os.path.join(SCRATCH, "data")
    if not os.path.exists(data):
        os.makedirs(SCRATCH, exist_ok=True)
        text = os.path.join(SCRATCH, "text.txt")
        with open(os.path.join(REPO, "data", "tinyshakespeare.txt")) as f:
            open(text, "w").write(f.read()[:300000])
        run(["tokenizer", "train", "--input", text, "--vocab-size", str(VOCAB), "--model-prefix",
             os.path.join(SCRATCH, "tok")])
        run(["data", "prepare", "--input", text, "--tokenizer", os.path.join(SCRATCH, "tok.model"),
             "--out", data, "--val-fraction", "0.1", "--quiet"])
    return data


def train(family, out, extra=(), np=2):
    run(["train", "--out", out, "--data", dataset(), "--max-seq-len", str(SEQ), "--seq-len", str(SEQ),
         "--micro-batch", "2", "--global-batch", "4", "--steps", "6", "--lr", "3e-3", "--warmup", "2",
         "--tp", str(np)] + MODELS[family] + list(extra), np=np)
    return os.path.join(out, "checkpoints")


def batch(n_rows=2, T=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, size=(n_rows, T)).tolist()


def shardlm_logits(ckpt, ids):
    """shardlm's own forward: logits [T, V] after every position of `ids`."""
    path = os.path.join(SCRATCH, "logits.f32")
    run(["generate", "--checkpoint", ckpt, "--prompt-ids", " ".join(map(str, ids)), "--max-tokens", "0",
         "--logits-out", path])
    return np.fromfile(path, dtype="<f4").reshape(len(ids), -1)


def shardlm_greedy(ckpt, ids, n=32):
    out = run(["generate", "--checkpoint", ckpt, "--prompt-ids", " ".join(map(str, ids)), "--max-tokens", str(n),
               "--temperature", "0"]).stdout.split()
    return [int(x) for x in out][len(ids):]


def hf_model(path, dtype="float32"):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model.eval()


def hf_logits(model, ids):
    import torch
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def consolidated_params(ckpt, tag):
    import h5py
    out = os.path.join(SCRATCH, tag + ".h5")
    if os.path.exists(out):
        os.remove(out)
    run(["ckpt", "consolidate", ckpt, out])
    with h5py.File(out) as f:
        return {k: f["param"][k][()] for k in f["param"]}


def check_tokenizer(out_dir, tok_model):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out_dir)
    with open(os.path.join(REPO, "data", "tinyshakespeare.txt")) as f:
        corpus = f.read()[300000:320000]
    for text in SAMPLES + [corpus]:
        want = [int(x) for x in run(["tokenizer", "encode", "--model", tok_model], stdin=text).stdout.split()]
        got = tok.encode(text, add_special_tokens=False)
        assert got == want, f"AutoTokenizer ids differ on {text[:60]!r}:\n{got[:40]}\n{want[:40]}"
        assert tok.decode(got) == text, f"AutoTokenizer decode differs on {text[:60]!r}"
    print(f"tokenizer: AutoTokenizer ids equal shardlm's on {len(SAMPLES) + 1} samples "
          f"({len(corpus)} corpus characters)")


def check_rounded(f32_dir, dir16, dtype):
    """Every tensor of the 16-bit export is the f32 export's, rounded to nearest even."""
    import torch
    from safetensors.torch import load_file
    def load(d):
        out = {}
        for name in sorted(os.listdir(d)):
            if name.endswith(".safetensors"):
                out.update(load_file(os.path.join(d, name)))
        return out
    a, b = load(f32_dir), load(dir16)
    assert a.keys() == b.keys(), (a.keys() ^ b.keys())
    for k in a:
        assert b[k].dtype == getattr(torch, dtype), (k, b[k].dtype)
        assert torch.equal(a[k].to(b[k].dtype), b[k]), f"{k}: {dtype} export is not the rounded f32"


def case_hf(family):
    from safetensors import safe_open
    ckpt = train(family, os.path.join(SCRATCH, "run"))
    tok_model = os.path.join(SCRATCH, "tok.model")
    dirs = {}
    for dtype, extra in (("f32", []), ("bf16", ["--max-shard-size", "200KB"]), ("f16", [])):
        dirs[dtype] = os.path.join(SCRATCH, "hf_" + dtype)
        shutil.rmtree(dirs[dtype], ignore_errors=True)
        run(["convert", "--to", "hf", ckpt, dirs[dtype], "--dtype", dtype] + extra)
    index = json.load(open(os.path.join(dirs["bf16"], "model.safetensors.index.json")))
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1, files
    with safe_open(os.path.join(dirs["f32"], "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}, f.metadata()
    config = json.load(open(os.path.join(dirs["f32"], "config.json")))
    assert config["architectures"] == [{"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[family]]
    if family == "gpt2":
        assert config["n_ctx"] == SEQ

    f32 = hf_model(dirs["f32"])
    worst = 0.0
    for ids in batch():
        ref = shardlm_logits(ckpt, ids)
        worst = max(worst, float(np.abs(hf_logits(f32, ids) - ref).max()))
    print(f"f32: transformers vs shardlm logits max |diff| {worst:.2e}")
    assert worst <= 1e-4, worst
    for dtype, torch_dtype, rel in (("bf16", "bfloat16", 4e-2), ("f16", "float16", 5e-3)):
        check_rounded(dirs["f32"], dirs[dtype], torch_dtype)
        model = hf_model(dirs[dtype], torch_dtype)  # computes in the 16-bit type
        for ids in batch():
            ref = shardlm_logits(ckpt, ids)
            err = float(np.abs(hf_logits(model, ids) - ref).max() / (ref.max() - ref.min()))
            print(f"{dtype}: max |diff| / logit range {err:.2e} (bound {rel})")
            assert err <= rel, err

    prompt = batch(1, 8, seed=1)[0]
    want = shardlm_greedy(ckpt, prompt)
    import torch
    got = f32.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=32)[0].tolist()[len(prompt):]
    eos = config["eos_token_id"]
    got = got[:got.index(eos)] if eos in got else got
    assert got == want, f"greedy: transformers {got}\nshardlm {want}"
    print(f"greedy: transformers' generate equals shardlm generate --temperature 0 ({len(want)} tokens)")
    check_tokenizer(dirs["f32"], tok_model)

    back = os.path.join(SCRATCH, "roundtrip")
    shutil.rmtree(back, ignore_errors=True)
    run(["convert", "--from", "hf", dirs["f32"], back])
    a, b = consolidated_params(ckpt, "orig"), consolidated_params(back, "back")
    assert a.keys() == b.keys(), a.keys() ^ b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), f"round trip differs in {k}"
    print(f"round trip shardlm -> HF -> shardlm: {len(a)} tensors bit-identical")


def random_hf_model(family, out, shard=None):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
    torch.manual_seed(7)
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=64, n_layer=2, n_head=4,
                                           bos_token_id=2, eos_token_id=3))
    else:
        # llama-tiny's shape at n_embd 64 (GQA 4 over 2; an MLP width of 344), so `shardlm train
        # --init-from` can name it with flags.
        model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=344,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=SEQ, rope_theta=10000.0, rms_norm_eps=1e-5,
                                             tie_word_embeddings=False, bos_token_id=2, eos_token_id=3))
    with torch.no_grad():  # non-trivial norms and biases, so that a mix-up shows
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    shutil.rmtree(out, ignore_errors=True)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, **kwargs)
    shutil.copy(os.path.join(SCRATCH, "tok.model"), os.path.join(out, "tokenizer.model"))
    return model.eval()


def case_import(family):
    dataset()
    for shard in (None, "100KB"):
        hf_dir = os.path.join(SCRATCH, "hf_random")
        model = random_hf_model(family, hf_dir, shard)
        sharded = os.path.exists(os.path.join(hf_dir, "model.safetensors.index.json"))
        assert sharded == bool(shard), os.listdir(hf_dir)
        ckpt = os.path.join(SCRATCH, "imported")
        shutil.rmtree(ckpt, ignore_errors=True)
        run(["convert", "--from", "hf", hf_dir, ckpt])
        worst = 0.0
        for ids in batch():
            worst = max(worst, float(np.abs(hf_logits(model, ids) - shardlm_logits(ckpt, ids)).max()))
        print(f"import ({'sharded' if shard else 'one file'}): shardlm vs transformers logits max |diff| {worst:.2e}")
        assert worst <= 1e-4, worst
    run_dir = os.path.join(SCRATCH, "finetune")
    shutil.rmtree(run_dir, ignore_errors=True)
    p = run(["train", "--out", run_dir, "--data", dataset(), "--init-from", ckpt, "--max-seq-len", str(SEQ),
             "--seq-len", str(SEQ), "--micro-batch", "2", "--global-batch", "4", "--steps", "4", "--lr", "1e-3",
             "--eval-every", "4", "--eval-steps", "1"] + MODELS[family])
    assert "--init-from" in p.stdout + p.stderr, p.stdout
    losses = [json.loads(l)["loss"] for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"loss"' in l]
    assert len(losses) == 4 and all(np.isfinite(losses)), losses
    print("trained on from the import:", losses)


def rewrite_safetensors(src_dir, dst_dir, edit):
    """A copy of src_dir whose model.safetensors went through edit(dict of tensors)."""
    from safetensors.torch import load_file, save_file
    shutil.rmtree(dst_dir, ignore_errors=True)
    shutil.copytree(src_dir, dst_dir)
    path = os.path.join(dst_dir, "model.safetensors")
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})
    return path


def case_bad_input():
    import torch
    dataset()
    good = os.path.join(SCRATCH, "hf_good")
    random_hf_model("llama", good)
    out = lambda: os.path.join(SCRATCH, "out_" + str(len(os.listdir(SCRATCH))))
    bad = os.path.join(SCRATCH, "hf_bad")

    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(good, bad)
    cfg = json.load(open(os.path.join(good, "config.json")))
    json.dump(dict(cfg, model_type="bert"), open(os.path.join(bad, "config.json"), "w"))
    expect_error(["convert", "--from", "hf", bad, out()], "config.json", "model_type 'bert'")
    json.dump(dict(cfg, hidden_act="gelu"), open(os.path.join(bad, "config.json"), "w"))
    expect_error(["convert", "--from", "hf", bad, out()], "config.json", "hidden_act")

    name = "model.layers.1.self_attn.k_proj.weight"
    rewrite_safetensors(good, bad, lambda t: t.pop(name))
    expect_error(["convert", "--from", "hf", bad, out()], name, "missing")
    path = rewrite_safetensors(good, bad, lambda t: t.update({name: t[name][:-1].clone()}))
    expect_error(["convert", "--from", "hf", bad, out()], path, name, "shape")
    rewrite_safetensors(good, bad, lambda t: t.update({name: t[name].to(torch.int64)}))
    expect_error(["convert", "--from", "hf", bad, out()], path, name, "dtype 'I64'")
    rewrite_safetensors(good, bad, lambda t: t.update({"model.layers.0.extra.weight": torch.zeros(2)}))
    expect_error(["convert", "--from", "hf", bad, out()], "model.layers.0.extra.weight", "unexpected")
    path = rewrite_safetensors(good, bad, lambda t: None)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    expect_error(["convert", "--from", "hf", bad, out()], path, "truncated")
    with open(path, "r+b") as f:
        f.truncate(20)
    expect_error(["convert", "--from", "hf", bad, out()], path, "header")

    rewrite_safetensors(good, bad, lambda t: None)
    text = os.path.join(SCRATCH, "text.txt")
    run(["tokenizer", "train", "--input", text, "--vocab-size", "400", "--model-prefix", os.path.join(SCRATCH, "small")])
    shutil.copy(os.path.join(SCRATCH, "small.model"), os.path.join(bad, "tokenizer.model"))
    expect_error(["convert", "--from", "hf", bad, out()], "tokenizer.model", "400 pieces", "vocab_size is 512")

    ckpt = train("gpt2", os.path.join(SCRATCH, "run"), np=1)
    expect_error(["convert", "--to", "onnx", ckpt, out()], "--to 'onnx'")
    expect_error(["convert", "--to", "hf", ckpt, out(), "--dtype", "q8_0"], "--dtype 'q8_0'")
    expect_error(["convert", "--to", "hf", ckpt, good], "already exists")


CASES = {"hf-gpt2": lambda: case_hf("gpt2"), "hf-llama": lambda: case_hf("llama"),
         "import-gpt2": lambda: case_import("gpt2"), "import-llama": lambda: case_import("llama"),
         "bad-input": case_bad_input}

if __name__ == "__main__":
    os.makedirs(SCRATCH, exist_ok=True)
    CASES[CASE]()
    print(f"{CASE}: ok")
