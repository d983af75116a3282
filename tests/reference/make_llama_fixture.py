#!/usr/bin/env python3
"""Make tests/reference/llama_fixture*.h5: Hugging Face transformers' own LlamaForCausalLM as
the golden state shardlm's Llama family is tested against (tests/unit/test_reference.cpp).

The model is transformers' implementation, in float64. Its weights are written under shardlm's
names and layouts (src/model/llama/family.h): q/k/v rows regrouped into [KV, g+2, hd, C] (each
key/value head's g query heads, then its key, then its value), gate and up stacked into
[2, F, C]; vocabulary tables unpadded (the C++ test pads them). The file holds one
forward/backward on a fixed batch (logits, loss, every gradient) and ten AdamW steps with
2-way gradient accumulation, warm-up + cosine, global-norm clipping and weight decay on
matrices and embeddings only, as shardlm's optimizer does.

Needs transformers next to torch and h5py: 4.43 or later for the rope_scaling fixture
(Llama 3.1's "llama3" rope_type; 4.44.2 used), and any 4.3x for the others (4.36.2 made them):
    /usr/bin/python3 -m venv --system-site-packages V && V/bin/pip install transformers==4.44.2
    V/bin/python tests/reference/make_llama_fixture.py [FIXTURE.h5 ...]
"""

import argparse
import math
import os
from collections import OrderedDict

import h5py
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

SEED = 20261201

# Awkward on purpose: 6 query heads over 2 kv heads of head_dim 6 (not a power of two), vocab
# not a multiple of 64, T odd and below max_seq_len, B > 1.
FIXTURES = {
    "llama_fixture.h5": dict(n_layer=2, n_head=6, n_kv_head=2, n_embd=36, intermediate_size=40,
                             vocab_size=101, max_seq_len=16, rope_theta=10000.0, norm_eps=1e-5,
                             tie_embeddings=0, B=3, T=11),
    # Multi-query attention and a tied head.
    "llama_fixture_mqa_tied.h5": dict(n_layer=2, n_head=4, n_kv_head=1, n_embd=24,
                                      intermediate_size=20, vocab_size=97, max_seq_len=12,
                                      rope_theta=500000.0, norm_eps=1e-6, tie_embeddings=1, B=2,
                                      T=7),
    # Llama 3.1's rope_scaling over sequences longer than its original context (64): head_dim 8
    # gives wavelengths 6.3 (below 64/4: unscaled), 63 (between: interpolated), 628 and 6283
    # (above 64/1: divided by the factor), so every branch of the rescale is exercised.
    "llama_fixture_rope_scaling.h5": dict(n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                                          intermediate_size=24, vocab_size=53, max_seq_len=96,
                                          rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=0,
                                          B=2, T=80,
                                          rope_scaling=dict(rope_type="llama3", factor=4.0,
                                                            low_freq_factor=1.0,
                                                            high_freq_factor=4.0,
                                                            original_max_position_embeddings=64),
                                          # longer rows average to smaller gradient norms
                                          grad_clip=0.43),
}
HPARAMS = dict(max_lr=1e-2, min_lr=1e-3, warmup=3, total_steps=10, beta1=0.9, beta2=0.95,
               eps=1e-8, weight_decay=0.1, grad_clip=1.4, micro_batches=2)


def hf_model(c):
    cfg = LlamaConfig(vocab_size=c["vocab_size"], hidden_size=c["n_embd"],
                      intermediate_size=c["intermediate_size"], num_hidden_layers=c["n_layer"],
                      num_attention_heads=c["n_head"], num_key_value_heads=c["n_kv_head"],
                      max_position_embeddings=c["max_seq_len"], rope_theta=c["rope_theta"],
                      rms_norm_eps=c["norm_eps"], tie_word_embeddings=bool(c["tie_embeddings"]),
                      attention_bias=False, hidden_act="silu", initializer_range=0.02,
                      rope_scaling=c.get("rope_scaling"))
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(cfg).double()
    with torch.no_grad():  # norms away from 1 so that their gradients and weights matter
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return model


def to_shardlm(model, c, tensors):
    """transformers' tensors (parameters or gradients, by HF name) under shardlm's names."""
    H, KV, C = c["n_head"], c["n_kv_head"], c["n_embd"]
    hd, g = C // H, H // KV
    out = OrderedDict()
    out["embed_tokens"] = tensors["model.embed_tokens.weight"]
    for l in range(c["n_layer"]):
        p, q = f"model.layers.{l}.", f"h.{l}."
        out[q + "input_norm.weight"] = tensors[p + "input_layernorm.weight"]
        qw = tensors[p + "self_attn.q_proj.weight"].reshape(KV, g, hd, C)
        kw = tensors[p + "self_attn.k_proj.weight"].reshape(KV, 1, hd, C)
        vw = tensors[p + "self_attn.v_proj.weight"].reshape(KV, 1, hd, C)
        out[q + "attn.qkv.weight"] = torch.cat([qw, kw, vw], dim=1)
        out[q + "attn.o_proj.weight"] = tensors[p + "self_attn.o_proj.weight"]
        out[q + "post_attn_norm.weight"] = tensors[p + "post_attention_layernorm.weight"]
        out[q + "mlp.gate_up.weight"] = torch.stack(
            [tensors[p + "mlp.gate_proj.weight"], tensors[p + "mlp.up_proj.weight"]])
        out[q + "mlp.down.weight"] = tensors[p + "mlp.down_proj.weight"]
    out["norm.weight"] = tensors["model.norm.weight"]
    if not c["tie_embeddings"]:
        out["lm_head"] = tensors["lm_head.weight"]
    return out


def is_decayed(name):
    return name.endswith("weight") and "norm" not in name or name in ("embed_tokens", "lm_head")


def forward(model, tokens, targets):
    logits = model(input_ids=tokens).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             targets.reshape(-1))
    return logits, loss


def lr_at(step, hp):
    if step < hp["warmup"]:
        return hp["max_lr"] * (step + 1) / hp["warmup"]
    ratio = (step - hp["warmup"]) / (hp["total_steps"] - hp["warmup"])
    return hp["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (hp["max_lr"] - hp["min_lr"])


def train(model, hp, tokens, targets):
    """AdamW on the HF model; tokens, targets: [steps, micro_batches, B, T]."""
    named = OrderedDict(model.named_parameters())  # tied: lm_head is embed_tokens, listed once
    decay = [p for n, p in named.items() if p.dim() >= 2]
    no_decay = [p for n, p in named.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["max_lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    out = {"losses": [], "grad_norms": [], "lrs": [], "clipped": []}
    for step in range(hp["total_steps"]):
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for m in range(hp["micro_batches"]):
            _, loss = forward(model, tokens[step, m], targets[step, m])
            (loss / hp["micro_batches"]).backward()
            step_loss += loss.item() / hp["micro_batches"]
        norm = torch.nn.utils.clip_grad_norm_(list(named.values()), hp["grad_clip"]).item()
        lr = lr_at(step, hp)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        out["losses"].append(step_loss)
        out["grad_norms"].append(norm)
        out["lrs"].append(lr)
        out["clipped"].append(int(norm > hp["grad_clip"]))
    return out


def build(c, hp):
    model = hf_model(c)
    gen = torch.Generator().manual_seed(SEED + 1)
    V, B, T = c["vocab_size"], c["B"], c["T"]
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[0, 0] = V - 1  # the last real id sits next to shardlm's padding
    tokens[1, 2] = V - 1
    params = to_shardlm(model, c, OrderedDict((n, p.detach().clone())
                                              for n, p in model.state_dict().items()))
    logits, loss = forward(model, tokens, targets)
    loss.backward()
    hf_grads = OrderedDict((n, p.grad.detach().clone()) for n, p in model.named_parameters())
    if c["tie_embeddings"]:
        hf_grads["lm_head.weight"] = hf_grads["model.embed_tokens.weight"]
    grads = to_shardlm(model, c, hf_grads)
    model.zero_grad(set_to_none=True)
    shape = (hp["total_steps"], hp["micro_batches"], B, T)
    train_tokens = torch.randint(0, V, shape, generator=gen)
    train_targets = torch.randint(0, V, shape, generator=gen)
    trained = train(model, hp, train_tokens, train_targets)
    after = to_shardlm(model, c, OrderedDict((n, p.detach().clone())
                                             for n, p in model.state_dict().items()))
    return dict(params=params, tokens=tokens, targets=targets, logits=logits.detach(),
                loss=loss.detach(), grads=grads, train=trained, train_tokens=train_tokens,
                train_targets=train_targets, params_after=after)


def write(path, c, hp, fx):
    f64 = lambda t: np.asarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t, np.float64)
    i32 = lambda t: np.asarray(t.cpu().numpy(), np.int32)
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["family"] = "llama"
        for key in ("n_layer", "n_head", "n_kv_head", "n_embd", "intermediate_size", "vocab_size",
                    "max_seq_len", "tie_embeddings", "B", "T"):
            f.attrs[key] = np.int32(c[key])
        f.attrs["rope_theta"] = np.float64(c["rope_theta"])
        f.attrs["norm_eps"] = np.float64(c["norm_eps"])
        if "rope_scaling" in c:  # the [model] keys rope_scaling, rope_scaling_<field>
            for key, value in c["rope_scaling"].items():
                name = "rope_scaling" if key == "rope_type" else "rope_scaling_" + key
                f.attrs[name] = value if isinstance(value, str) else np.float64(value)
        for name, t in fx["params"].items():
            f.create_dataset(f"params/{name}", data=f64(t), track_times=False)
        f.create_dataset("inputs/tokens", data=i32(fx["tokens"]), track_times=False)
        f.create_dataset("inputs/targets", data=i32(fx["targets"]), track_times=False)
        f.create_dataset("forward/logits", data=f64(fx["logits"]), track_times=False)
        f.create_dataset("forward/loss", data=f64(fx["loss"]).reshape(1), track_times=False)
        for name, t in fx["grads"].items():
            f.create_dataset(f"grads/{name}", data=f64(t), track_times=False)
        f.create_dataset("train/tokens", data=i32(fx["train_tokens"]), track_times=False)
        f.create_dataset("train/targets", data=i32(fx["train_targets"]), track_times=False)
        for key in ("losses", "grad_norms", "lrs"):
            f.create_dataset(f"train/{key}", data=f64(fx["train"][key]), track_times=False)
        f.create_dataset("train/clipped", data=np.asarray(fx["train"]["clipped"], np.int32),
                         track_times=False)
        for name, t in fx["params_after"].items():
            f.create_dataset(f"train/params_after/{name}", data=f64(t), track_times=False)
        hparams = f.create_group("train/hparams")
        for key, value in hp.items():
            hparams.attrs[key] = np.int32(value) if isinstance(value, int) else np.float64(value)


def check_scaling_matters(c, fx):
    """The rope_scaling fixture's logits must differ from the same weights without scaling."""
    unscaled = hf_model({k: v for k, v in c.items() if k != "rope_scaling"})
    with torch.no_grad():
        logits = unscaled(input_ids=fx["tokens"]).logits
    diff = (logits - fx["logits"]).abs().max().item()
    # 100 times test_reference's logits tolerance (1e-5 relative): an unscaled RoPE fails it
    assert diff > 1e-3 * fx["logits"].abs().max().item(), f"rope_scaling changes logits by {diff}"
    print(f"  rope_scaling moves the logits by up to {diff:.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("fixtures", nargs="*", choices=[[]] + list(FIXTURES),
                    help="which to make (default: all)")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)  # transformers builds its masks in the default dtype
    for name in args.fixtures or FIXTURES:
        c = FIXTURES[name]
        hp = dict(HPARAMS, grad_clip=c.get("grad_clip", HPARAMS["grad_clip"]))
        a, b = build(c, hp), build(c, hp)
        assert torch.equal(a["logits"], b["logits"]), "fixture is not reproducible"
        assert 0 < sum(a["train"]["clipped"]) < hp["total_steps"], a["train"]["grad_norms"]
        margin = min(abs(n / hp["grad_clip"] - 1) for n in a["train"]["grad_norms"])
        print(f"  the nearest grad norm is {margin:.1%} from grad_clip {hp['grad_clip']}")
        if "rope_scaling" in c:
            check_scaling_matters(c, a)
        write(os.path.join(args.out_dir, name), c, hp, a)
        print(f"wrote {name}: loss {a['loss'].item():.6f}, clipped {a['train']['clipped']}")


if __name__ == "__main__":
    main()
