#!/usr/bin/env python3
"""`shardlm convert` streams: its peak resident memory stays near the largest tensor, not the
model (CTest convert_memory, label convert).

    check_memory.py memory SHARDLM_BIN SCRATCH_DIR

A GPT-2 of 12 layers, width 512 and a vocabulary of 16384 (46 M parameters: 185 MB in f32; its
largest tensor, wte, is 32 MiB) made by transformers is imported (`--from hf`), and the import
exported again to Hugging Face and to GGUF. Each command's peak RSS (getrusage of the child)
must stay below the same command's peak on a 2-layer, width-64 model (what the binary, its
libraries and fixed buffers take) plus the largest tensor plus 32 MiB: holding the model's
185 MB, as the import once did, cannot pass. The import is also checked to be the same model
(logits against transformers).
"""
import os
import resource
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_convert as cc  # noqa: E402  (the same CASE SHARDLM SCRATCH arguments)

MIB = 1 << 20
SLACK = 32 * MIB


def peak_rss(args):
    """Runs shardlm with args in a fresh Python child; returns the shardlm process's peak RSS."""
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, cc.SHARDLM] + args, env=cc.ENV, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux


def tokenizer(vocab):
    """A byte-level BPE tokenizer.json of about `vocab` ids (tokenizers on Tiny Shakespeare)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    with open(os.path.join(cc.REPO, "data", "tinyshakespeare.txt")) as f:
        tok.train_from_iterator([f.read()], trainers.BpeTrainer(
            vocab_size=vocab, special_tokens=["<|endoftext|>"], show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def gpt2(out, n_layer, n_embd, vocab):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    tok = tokenizer(vocab)
    vocab = tok.get_vocab_size()
    torch.manual_seed(5)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=cc.SEQ, n_embd=n_embd, n_layer=n_layer,
                                       n_head=8, bos_token_id=None, eos_token_id=None))
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    tok.save(os.path.join(out, "tokenizer.json"))  # carried by the import: GGUF needs it
    n_params = sum(p.numel() for p in model.parameters())
    return model.eval(), n_params * 4, vocab * n_embd * 4


def conversions(tag, n_layer, n_embd, vocab):
    """Peak RSS of the import and of both exports of one model."""
    hf_dir, ckpt = os.path.join(cc.SCRATCH, tag + "-hf"), os.path.join(cc.SCRATCH, tag + "-ckpt")
    model, model_bytes, largest = gpt2(hf_dir, n_layer, n_embd, vocab)
    for d in (ckpt, ckpt + "-export"):
        shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(ckpt + ".gguf"):
        os.remove(ckpt + ".gguf")
    peaks = {"import": peak_rss(["convert", "--from", "hf", hf_dir, ckpt]),
             "export hf": peak_rss(["convert", "--to", "hf", ckpt, ckpt + "-export"]),
             "export gguf": peak_rss(["convert", "--to", "gguf", ckpt, ckpt + ".gguf"])}
    return model, model_bytes, largest, peaks, ckpt


def case_memory():
    small = conversions("small", 2, 64, 512)[3]
    model, model_bytes, largest, peaks, ckpt = conversions("big", 12, 512, 16384)
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, size=24).tolist()
    err = float(np.abs(cc.hf_logits(model, ids) - cc.shardlm_logits(ckpt, ids)).max())
    assert err <= 1e-4, err
    for what, peak in peaks.items():
        bound = small[what] + largest + SLACK
        print(f"{what}: peak RSS {peak / MIB:.0f} MiB (bound {bound / MIB:.0f}: the small model's "
              f"{small[what] / MIB:.0f} + largest tensor {largest / MIB:.0f} + {SLACK // MIB}; "
              f"model {model_bytes / MIB:.0f} MiB)")
        assert peak <= bound, (what, peak, bound)


if __name__ == "__main__":
    os.makedirs(cc.SCRATCH, exist_ok=True)
    case_memory()
    print(f"{cc.CASE}: ok")
