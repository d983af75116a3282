#!/usr/bin/env python3
"""Byte-level BPE tokenizers (a tokenizer.json of GPT-2's kind) checked against the `tokenizers`
library and transformers (CTest label `convert`, the test venv).

    check_bpe.py bpe-tokenizer|bpe-flow|bpe-bad-input SHARDLM_BIN SCRATCH_DIR

bpe-tokenizer: a ByteLevel BPE trained by `tokenizers` on Tiny Shakespeare plus text with
non-ASCII letters, digits, contractions, runs of spaces, newlines, emoji and <|endoftext|>, and
the same vocabulary in the layout transformers' GPT2Tokenizer writes (GPT-2's: <|endoftext|> the
last vocabulary entry, a TemplateProcessing post-processor). `shardlm data prepare` (blocks of
16 KiB and of 256 bytes) must give exactly the library's encode(text, add_special_tokens=False)
ids on a corpus sample (plus the EOS it appends), `shardlm tokenizer encode` the same on samples
and on random text over every assigned code point, and decoding must give the text back.
bpe-flow: a GPT-2 Hugging Face directory with that tokenizer -> `shardlm convert --from hf` (the
checkpoint carries tokenizer.json, also written next to it) -> `data prepare` with it -> `train
--init-from` -> `generate` -> `convert --to hf` (AutoTokenizer and transformers' logits agree) and
`--to gguf` (gguf-py reads the gpt2 vocabulary; llama.cpp, where installed, gives the same ids
and logits). A checkpoint of another tokenizer is refused by --init-from.
bpe-bad-input: a truncated tokenizer.json, another model type, another pre-tokenizer, and a
normalizer are refused naming the file and the field; an import keeps the weights of a model
whose tokenizer.json is refused and says why.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import unicodedata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_convert as cc  # noqa: E402  (the same CASE SHARDLM SCRATCH arguments)

EOT = "<|endoftext|>"
VOCAB = 1000
SAMPLES = cc.SAMPLES + [
    "don't you'll we've I'm he'd they're it's 'tis O'ER 'S ''s !!'ll\n",
    "numbers 1234567890 3.14159 ١٢٣ ⅷ ² 10,000\n",
    "  multiple   spaces\t\ttabs\n\n\nnewlines  \n   \n",
    f"{EOT}between{EOT}\n{EOT}",
    "\u00a0nbsp\u3000ideographic\u2028ls\u2029ps\x85nel\x0bvt\x0cff\r\n crlf",
    "Ünïcödé ☃ 日本語のテキスト, emoji 🎉👍🏽👨‍👩‍👧, Ελληνικά, русский, עברית, हिन्दी\n",
    " ", "\n", "'", "a" * 300 + " " + "7" * 50,
]


def shakespeare():
    with open(os.path.join(cc.REPO, "data", "tinyshakespeare.txt"), encoding="utf-8") as f:
        return f.read()


def random_text(seed, n=20000):
    """Random text over every code point assigned in this Python's Unicode (14.0; shardlm's ICU
    72 has 15.0, the library's Oniguruma 16.0: later letters differ, docs/data-format.md), mixed
    with spaces, newlines, apostrophes and <|endoftext|>."""
    rng = random.Random(seed)
    assigned = [chr(c) for c in range(0x110000)
                if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]
    glue = [" ", "  ", "\n", "\n  ", "\t", "'s", " '", "'ll", "\u00a0", "\u3000", EOT, "the", "42"]
    return "".join(rng.choice(assigned) if rng.random() < 0.6 else rng.choice(glue) for _ in range(n))


def train_tokenizer(path, text, vocab=VOCAB):
    """A ByteLevel BPE as `tokenizers` trains one (GPT-2's pre-tokenizer, no prefix space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text] + SAMPLES * 20, trainer=trainer)
    tok.save(path)
    return tok


def gpt2_layout(tok_json, out_dir):
    """The same vocabulary as GPT-2's files have it (<|endoftext|> last, as id 50256 is in
    GPT-2), loaded and saved by transformers' GPT2Tokenizer: its tokenizer.json layout."""
    from transformers import GPT2Tokenizer
    model = json.load(open(tok_json))["model"]
    vocab = [p for p, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if p != EOT] + [EOT]
    raw = os.path.join(cc.SCRATCH, "gpt2-files")
    os.makedirs(raw, exist_ok=True)
    json.dump({p: i for i, p in enumerate(vocab)}, open(os.path.join(raw, "vocab.json"), "w"))
    with open(os.path.join(raw, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in model["merges"]))
    tok = GPT2Tokenizer.from_pretrained(raw)
    shutil.rmtree(out_dir, ignore_errors=True)
    tok.save_pretrained(out_dir)
    return tok


def library(path):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(path)


def dataset_ids(data):
    """Every token of the dataset's train split, in order (the shards' payloads)."""
    ids = []
    for line in open(os.path.join(data, "index.txt")):
        if line.startswith("shard train "):
            raw = open(os.path.join(data, line.split()[2]), "rb").read()
            width = int.from_bytes(raw[12:16], "little")
            ids += np.frombuffer(raw[64:], dtype="<u2" if width == 2 else "<u4").tolist()
    return ids


def decode(tok_path, ids):
    """`shardlm tokenizer decode`, read as bytes (text mode would turn \r\n into \n)."""
    p = subprocess.run([cc.SHARDLM, "tokenizer", "decode", "--model", tok_path], env=cc.ENV, check=True,
                       input=" ".join(map(str, ids)).encode(), capture_output=True)
    return p.stdout.decode("utf-8")


def prepare(tok_path, text_path, out, *extra):
    shutil.rmtree(out, ignore_errors=True)
    return cc.run(["data", "prepare", "--input", text_path, "--tokenizer", tok_path, "--out", out,
                   "--quiet"] + list(extra)).stdout


def check_tokenizer_file(tok_path, what):
    lib = library(tok_path)
    eot = lib.token_to_id(EOT)
    text = shakespeare()[300000:400000] + "".join(SAMPLES) + random_text(1)
    text_path = os.path.join(cc.SCRATCH, "corpus.txt")
    open(text_path, "w", encoding="utf-8").write(text)
    want = lib.encode(text, add_special_tokens=False).ids + [eot]
    for block in ("16384", "256"):
        data = os.path.join(cc.SCRATCH, "data-" + block)
        prepare(tok_path, text_path, data, "--val-fraction", "0", "--block-bytes", block)
        got = dataset_ids(data)
        at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        assert got == want, (f"{what}: data prepare (--block-bytes {block}) differs from tokenizers at token {at}:"
                             f" {[lib.id_to_token(i) for i in got[at - 3:at + 4]]} vs"
                             f" {[lib.id_to_token(i) for i in want[at - 3:at + 4]]}")
        assert open(os.path.join(data, "tokenizer.json"), "rb").read() == open(tok_path, "rb").read()
        assert "tokenizer tokenizer.json" in open(os.path.join(data, "index.txt")).read()
    print(f"{what}: data prepare ids equal tokenizers' on {len(text)} characters ({len(want)} tokens), "
          "blocks of 16 KiB and of 256 bytes")
    data = os.path.join(cc.SCRATCH, "data-split")
    prepare(tok_path, text_path, data, "--val-fraction", "0.2", "--block-bytes", "2048")
    assert "all shards valid" in cc.run(["data", "inspect", data]).stdout
    for i, sample in enumerate(SAMPLES + [random_text(seed) for seed in (2, 3, 4)]):
        ids = lib.encode(sample, add_special_tokens=False).ids
        got = [int(x) for x in cc.run(["tokenizer", "encode", "--model", tok_path], stdin=sample).stdout.split()]
        assert got == ids, f"{what}: tokenizer encode differs on sample {i} {sample[:40]!r}"
        back = decode(tok_path, got)
        assert back == sample.replace(EOT, ""), f"{what}: decode differs on sample {i}"
        assert lib.decode(ids) == back, f"{what}: tokenizers' decode differs on sample {i}"
    print(f"{what}: tokenizer encode/decode equal tokenizers' on {len(SAMPLES) + 3} samples")


def case_tokenizer():
    tok_path = os.path.join(cc.SCRATCH, "tokenizer.json")
    train_tokenizer(tok_path, shakespeare()[:500000])
    check_tokenizer_file(tok_path, "trained ByteLevel BPE")
    layout = os.path.join(cc.SCRATCH, "gpt2-layout")
    gpt2_layout(tok_path, layout)
    j = json.load(open(os.path.join(layout, "tokenizer.json")))
    assert j["added_tokens"][0]["content"] == EOT and j["added_tokens"][0]["id"] == VOCAB - 1, j["added_tokens"]
    check_tokenizer_file(os.path.join(layout, "tokenizer.json"), "GPT2Tokenizer layout")


def gpt2_hf_dir(out):
    """A random GPT-2 Hugging Face directory whose tokenizer is the GPT2Tokenizer layout."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    tok_path = os.path.join(cc.SCRATCH, "tokenizer.json")
    train_tokenizer(tok_path, shakespeare()[:500000])
    tok = gpt2_layout(tok_path, out)
    torch.manual_seed(3)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=cc.SEQ, n_embd=64, n_layer=2,
                                       n_head=4, bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1))
    model.save_pretrained(out)
    return model.eval(), tok


def check_gguf(run_dir, tok_path, ids):
    from gguf import GGUFReader
    path = os.path.join(cc.SCRATCH, "model.gguf")
    if os.path.exists(path):
        os.remove(path)
    cc.run(["convert", "--to", "gguf", run_dir, path])
    r = GGUFReader(path)
    field = lambda k: r.fields[k]
    text = lambda k: bytes(field(k).parts[-1]).decode()
    strings = lambda k: [bytes(field(k).parts[i]).decode() for i in field(k).data]
    lib = library(tok_path)
    assert text("tokenizer.ggml.model") == "gpt2" and text("tokenizer.ggml.pre") == "gpt-2"
    vocab = sorted(lib.get_vocab().items(), key=lambda kv: kv[1])
    assert strings("tokenizer.ggml.tokens") == [p for p, _ in vocab]
    merges = json.load(open(tok_path))["model"]["merges"]
    assert strings("tokenizer.ggml.merges") == [m if isinstance(m, str) else " ".join(m) for m in merges]
    types = [int(field("tokenizer.ggml.token_type").parts[i][0]) for i in field("tokenizer.ggml.token_type").data]
    assert types[VOCAB - 1] == 3 and set(types[:VOCAB - 1]) == {1}, set(types)
    assert int(field("tokenizer.ggml.eos_token_id").parts[-1][0]) == VOCAB - 1
    print(f"gguf: gpt2 vocabulary of {len(vocab)} tokens and {len(merges)} merges, <|endoftext|> control")
    try:
        from llama_cpp import Llama
    except ImportError:
        print("gguf: llama-cpp-python not in the test venv; llama.cpp's check left out")
        return
    llm = Llama(model_path=path, n_ctx=cc.SEQ, logits_all=True, n_threads=2, n_batch=cc.SEQ, verbose=False)
    ref = cc.shardlm_logits(run_dir, ids).astype(np.float64)
    llm.reset()
    llm.eval(ids)
    got = np.array(llm.scores[:len(ids)], dtype=np.float64)
    err = float(np.abs(got - ref).max() / (ref.max() - ref.min()))
    # ggml's GELU reads an f16 table: on this nearly untrained model (logit range about 2) the
    # f32 file measured 5.8e-5 of the range (check_gguf.py's trained GPT-2: 8.8e-6).
    print(f"gguf: llama.cpp vs shardlm logits max |diff| / range {err:.2e} (bound 3e-4)")
    assert err <= 3e-4, err
    texts = SAMPLES + [shakespeare()[400000:405000]] + [random_text(seed, 3000) for seed in (5, 6)]
    for t in texts:  # special=True: <|endoftext|> in the text is the token, as for the library
        want = lib.encode(t, add_special_tokens=False).ids
        mine = llm.tokenize(t.encode(), add_bos=False, special=True)
        assert mine == want, f"llama.cpp ids differ on {t[:50]!r}:\n{mine[:30]}\n{want[:30]}"
    print(f"gguf: llama.cpp's tokenizer gives the library's ids on {len(texts)} samples")


def case_flow():
    from transformers import AutoTokenizer
    hf_dir = os.path.join(cc.SCRATCH, "hf-gpt2")
    model, _ = gpt2_hf_dir(hf_dir)
    tok_path = os.path.join(hf_dir, "tokenizer.json")
    ckpt = os.path.join(cc.SCRATCH, "imported")
    shutil.rmtree(ckpt, ignore_errors=True)
    out = cc.run(["convert", "--from", "hf", hf_dir, ckpt]).stdout
    carried = os.path.join(ckpt, "tokenizer.json")
    assert "its tokenizer" in out and open(carried, "rb").read() == open(tok_path, "rb").read(), out
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, size=40).tolist()
    worst = float(np.abs(cc.hf_logits(model, ids) - cc.shardlm_logits(ckpt, ids)).max())
    print(f"import: shardlm vs transformers logits max |diff| {worst:.2e}; tokenizer.json carried")
    assert worst <= 1e-4, worst

    text_path = os.path.join(cc.SCRATCH, "train.txt")
    open(text_path, "w", encoding="utf-8").write(shakespeare()[:200000])
    data = os.path.join(cc.SCRATCH, "data")
    prepare(carried, text_path, data, "--val-fraction", "0.1")
    run_dir = os.path.join(cc.SCRATCH, "finetune")
    shutil.rmtree(run_dir, ignore_errors=True)
    shape = ["--model", "tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "4", "--max-seq-len", str(cc.SEQ)]
    cc.run(["train", "--out", run_dir, "--data", data, "--init-from", ckpt, "--seq-len", str(cc.SEQ),
            "--micro-batch", "2", "--global-batch", "4", "--steps", "4", "--lr", "1e-3", "--eval-every", "4",
            "--eval-steps", "1"] + shape)
    losses = [json.loads(l)["loss"] for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"loss"' in l]
    assert len(losses) == 4 and all(np.isfinite(losses)), losses
    print("trained on from the import with data prepared by its tokenizer.json:", losses)
    prompt = "ROMEO:\nWhat, don't you"
    said = cc.run(["generate", "--checkpoint", run_dir, "--prompt", prompt, "--max-tokens", "12"]).stdout
    assert said.startswith(prompt) and len(said) > len(prompt), said
    print(f"generate: {said.strip()!r}")

    other = os.path.join(cc.SCRATCH, "other.json")
    train_tokenizer(other, shakespeare()[500000:900000])  # the same size, other merges
    other_data = os.path.join(cc.SCRATCH, "other-data")
    prepare(other, text_path, other_data, "--val-fraction", "0.1")
    cc.expect_error(["train", "--out", os.path.join(cc.SCRATCH, "refused"), "--data", other_data, "--init-from",
                     ckpt, "--seq-len", str(cc.SEQ), "--micro-batch", "2", "--global-batch", "4", "--steps", "1"] + shape,
                    "--init-from", "another tokenizer")

    export = os.path.join(cc.SCRATCH, "export")
    shutil.rmtree(export, ignore_errors=True)
    cc.run(["convert", "--to", "hf", run_dir, export])
    assert not os.path.exists(os.path.join(export, "tokenizer.model"))
    auto = AutoTokenizer.from_pretrained(export)
    lib = library(carried)
    for t in SAMPLES + [shakespeare()[600000:610000]]:
        assert auto.encode(t, add_special_tokens=False) == lib.encode(t, add_special_tokens=False).ids, t[:40]
    exported = cc.hf_model(export)
    worst = float(np.abs(cc.hf_logits(exported, ids) - cc.shardlm_logits(run_dir, ids)).max())
    print(f"export: AutoTokenizer equals the library on {len(SAMPLES) + 1} samples; logits max |diff| {worst:.2e}")
    assert worst <= 1e-4, worst
    check_gguf(run_dir, carried, ids)


def case_bad_input():
    tok_path = os.path.join(cc.SCRATCH, "tokenizer.json")
    train_tokenizer(tok_path, shakespeare()[:200000], vocab=400)
    text_path = os.path.join(cc.SCRATCH, "small.txt")
    open(text_path, "w").write(shakespeare()[:20000])
    good = json.load(open(tok_path))
    bad = os.path.join(cc.SCRATCH, "bad.json")
    out = os.path.join(cc.SCRATCH, "bad-data")

    def refused(edit, *needles):
        j = json.loads(json.dumps(good))
        edit(j)
        json.dump(j, open(bad, "w"))
        cc.expect_error(["data", "prepare", "--input", text_path, "--tokenizer", bad, "--out", out], bad, *needles)

    raw = open(tok_path).read()
    open(bad, "w").write(raw[: len(raw) // 2])
    cc.expect_error(["data", "prepare", "--input", text_path, "--tokenizer", bad, "--out", out], bad, "not valid JSON")
    refused(lambda j: j["model"].update(type="Unigram"), "model.type", "'Unigram'")
    refused(lambda j: j.update(pre_tokenizer={"type": "Metaspace", "replacement": "▁"}), "pre_tokenizer.type", "Metaspace")
    refused(lambda j: j["pre_tokenizer"].update(add_prefix_space=True), "pre_tokenizer.add_prefix_space")
    refused(lambda j: j.update(normalizer={"type": "NFC"}), "normalizer", "'NFC'")
    refused(lambda j: j["model"]["merges"].append(["Ġzz", "q"]), "model.merges[", "not in model.vocab")

    # A WordPiece tokenizer.json as `tokenizers` writes one.
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.train_from_iterator([shakespeare()[:50000]], trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"],
                                                                             show_progress=False))
    wp_path = os.path.join(cc.SCRATCH, "wordpiece.json")
    wp.save(wp_path)
    cc.expect_error(["tokenizer", "encode", "--model", wp_path, "--text", "x"], wp_path, "model.type", "'WordPiece'")

    # An import keeps the weights and says why the tokenizer.json stayed behind.
    hf_dir = os.path.join(cc.SCRATCH, "hf-wordpiece")
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1)
    shutil.rmtree(hf_dir, ignore_errors=True)
    GPT2LMHeadModel(GPT2Config(vocab_size=wp.get_vocab_size(), n_positions=cc.SEQ, n_embd=32, n_layer=1,
                               n_head=2, bos_token_id=None, eos_token_id=None)).save_pretrained(hf_dir)
    shutil.copy(wp_path, os.path.join(hf_dir, "tokenizer.json"))
    ckpt = os.path.join(cc.SCRATCH, "imported")
    shutil.rmtree(ckpt, ignore_errors=True)
    said = cc.run(["convert", "--from", "hf", hf_dir, ckpt]).stdout
    assert "no tokenizer:" in said and "model.type" in said and "WordPiece" in said, said
    assert not os.path.exists(os.path.join(ckpt, "tokenizer.json"))
    print("import without its WordPiece tokenizer.json:", said.strip())


CASES = {"bpe-tokenizer": case_tokenizer, "bpe-flow": case_flow, "bpe-bad-input": case_bad_input}

if __name__ == "__main__":
    os.makedirs(cc.SCRATCH, exist_ok=True)
    CASES[cc.CASE]()
    print(f"{cc.CASE}: ok")
