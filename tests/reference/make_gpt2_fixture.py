#!/usr/bin/python3
"""Make tests/reference/gpt2_fixture.h5: the PyTorch golden state shardlm's GPT-2 is tested against.

The model is written out in plain torch (float64), with parameters named and shaped exactly as
in src/model/param_layout.h, so the C++ test can load /params straight into its view table
(padding wte to the vocab multiple itself). The file holds one forward/backward on a fixed
batch and ten AdamW steps with two-micro-batch gradient accumulation, global-norm clipping and
the warmup + cosine learning-rate schedule.

Before writing, the script checks its own model against a second formulation built from
torch.nn modules (LayerNorm, MultiheadAttention, GELU, cross_entropy), runs
torch.autograd.gradcheck on a tiny instance, spot-checks the fixture-size gradients with central
differences, and builds the whole fixture twice to confirm it is reproducible.

Run: /usr/bin/python3 tests/reference/make_gpt2_fixture.py [--out PATH]
"""

import argparse
import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import h5py
import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611


@dataclass(frozen=True)
class Config:
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int
    max_seq_len: int
    B: int
    T: int

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


# Awkward on purpose: head_dim 8 with 3 heads, vocab not a multiple of 64, T odd and < max_seq_len.
FIXTURE_CONFIG = Config(n_layer=2, n_head=3, n_embd=24, vocab_size=101, max_seq_len=16, B=3, T=11)
# For gradcheck: small enough that the full numerical Jacobian is cheap.
TINY_CONFIG = Config(n_layer=1, n_head=2, n_embd=4, vocab_size=7, max_seq_len=4, B=2, T=3)


@dataclass(frozen=True)
class TrainHParams:
    max_lr: float = 1e-2
    min_lr: float = 1e-3
    warmup: int = 3
    total_steps: int = 10
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    # Chosen so that clipping triggers on some steps and not on others (checked in main, with a
    # margin (>0.5%, about 1e4 times fp32 drift) so that the C++ run cannot flip a decision).
    grad_clip: float = 0.72
    micro_batches: int = 2


LN_EPS = 1e-5


# ----------------------------------------------------------------------------------------------
# Parameters


def param_shapes(cfg):
    """Name -> shape, in the order of src/model/param_layout.cpp (wte unpadded)."""
    C, H, hd = cfg.n_embd, cfg.n_head, cfg.head_dim
    shapes = OrderedDict()
    shapes["wte"] = (cfg.vocab_size, C)
    shapes["wpe"] = (cfg.max_seq_len, C)
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        shapes[p + "ln_1.weight"] = (C,)
        shapes[p + "ln_1.bias"] = (C,)
        shapes[p + "attn.c_attn.weight"] = (3, H, hd, C)
        shapes[p + "attn.c_attn.bias"] = (3, H, hd)
        shapes[p + "attn.c_proj.weight"] = (C, C)
        shapes[p + "attn.c_proj.bias"] = (C,)
        shapes[p + "ln_2.weight"] = (C,)
        shapes[p + "ln_2.bias"] = (C,)
        shapes[p + "mlp.c_fc.weight"] = (4 * C, C)
        shapes[p + "mlp.c_fc.bias"] = (4 * C,)
        shapes[p + "mlp.c_proj.weight"] = (C, 4 * C)
        shapes[p + "mlp.c_proj.bias"] = (C,)
    shapes["ln_f.weight"] = (C,)
    shapes["ln_f.bias"] = (C,)
    return shapes


def is_decayed(name):
    """AdamW decay: matrices (wte, wpe and the Linear weights), never biases or LayerNorm params.

    Note c_attn.bias is rank 3 in our layout but is a bias: it is not decayed.
    """
    return name in ("wte", "wpe") or name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))


def init_params(cfg, gen):
    """GPT-2 initialisation, except that biases and LayerNorm params are random (not 0 / 1) so
    that errors in their paths cannot hide."""
    std = 0.02
    residual_std = 0.02 / math.sqrt(2 * cfg.n_layer)

    def normal(shape, s, mean=0.0):
        return mean + s * torch.randn(shape, generator=gen, dtype=torch.float64)

    params = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            t = normal(shape, 0.1, mean=1.0)
        elif name.endswith(("ln_1.bias", "ln_2.bias", "ln_f.bias")):
            t = normal(shape, 0.1)
        elif name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
            t = normal(shape, residual_std)
        else:  # wte, wpe, c_attn.weight, c_fc.weight and the remaining biases
            t = normal(shape, std)
        params[name] = t
    return params


# ----------------------------------------------------------------------------------------------
# The model, written out by hand (this is what the fixture is computed with)


def layer_norm(x, weight, bias):
    # x: [..., C]; biased variance, as torch.nn.LayerNorm
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + LN_EPS) * weight + bias


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def causal_self_attention(x, w_qkv, b_qkv, w_proj, b_proj, cfg):
    # x: [B, T, C]; w_qkv: [3, H, hd, C]; b_qkv: [3, H, hd]; w_proj: [C, C]; b_proj: [C]
    B, T, C = x.shape
    H, hd = cfg.n_head, cfg.head_dim
    # [B, T, 3, H, hd] -> [3, B, H, T, hd]
    qkv = torch.einsum("btc,shdc->btshd", x, w_qkv) + b_qkv
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))  # [B, H, T, T]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float("-inf"))
    scores = scores - scores.max(dim=-1, keepdim=True).values
    probs = scores.exp()
    probs = probs / probs.sum(dim=-1, keepdim=True)
    y = (probs @ v).transpose(1, 2).reshape(B, T, C)  # heads concatenated in head order
    return y @ w_proj.T + b_proj


def gpt2_forward(params, cfg, tokens, targets):
    """tokens, targets: [B, T] int64. Returns logits [B, T, V] and the mean cross-entropy."""
    B, T = tokens.shape
    x = params["wte"][tokens] + params["wpe"][:T]
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        h = layer_norm(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"])
        x = x + causal_self_attention(h, params[p + "attn.c_attn.weight"], params[p + "attn.c_attn.bias"],
                                      params[p + "attn.c_proj.weight"], params[p + "attn.c_proj.bias"], cfg)
        h = layer_norm(x, params[p + "ln_2.weight"], params[p + "ln_2.bias"])
        h = gelu_tanh(h @ params[p + "mlp.c_fc.weight"].T + params[p + "mlp.c_fc.bias"])
        x = x + h @ params[p + "mlp.c_proj.weight"].T + params[p + "mlp.c_proj.bias"]
    x = layer_norm(x, params["ln_f.weight"], params["ln_f.bias"])
    logits = x @ params["wte"].T  # tied LM head
    log_z = torch.logsumexp(logits, dim=-1)
    target_logit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    loss = (log_z - target_logit).mean()
    return logits, loss


# ----------------------------------------------------------------------------------------------
# A second, independent formulation from torch.nn building blocks (used only as a check)


def gpt2_forward_nn(params, cfg, tokens, targets):
    B, T = tokens.shape
    C, H = cfg.n_embd, cfg.n_head
    x = F.embedding(tokens, params["wte"]) + F.embedding(torch.arange(T), params["wpe"])
    causal_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        h = F.layer_norm(x, (C,), params[p + "ln_1.weight"], params[p + "ln_1.bias"], LN_EPS)
        # multi_head_attention_forward takes [T, B, C] and the packed [3C, C] in-projection:
        # the flattening of our [3, H, hd, C] layout.
        hT = h.transpose(0, 1)
        attn, _ = F.multi_head_attention_forward(
            hT, hT, hT, C, H,
            in_proj_weight=params[p + "attn.c_attn.weight"].reshape(3 * C, C),
            in_proj_bias=params[p + "attn.c_attn.bias"].reshape(3 * C),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=params[p + "attn.c_proj.weight"], out_proj_bias=params[p + "attn.c_proj.bias"],
            training=False, need_weights=False, attn_mask=causal_mask)
        x = x + attn.transpose(0, 1)
        h = F.layer_norm(x, (C,), params[p + "ln_2.weight"], params[p + "ln_2.bias"], LN_EPS)
        h = F.gelu(F.linear(h, params[p + "mlp.c_fc.weight"], params[p + "mlp.c_fc.bias"]), approximate="tanh")
        x = x + F.linear(h, params[p + "mlp.c_proj.weight"], params[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), params["ln_f.weight"], params["ln_f.bias"], LN_EPS)
    logits = F.linear(x, params["wte"])
    loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
    return logits, loss


# ----------------------------------------------------------------------------------------------
# Training


def lr_at(step, hp):
    if step < hp.warmup:
        return hp.max_lr * (step + 1) / hp.warmup
    ratio = (step - hp.warmup) / (hp.total_steps - hp.warmup)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return hp.min_lr + coeff * (hp.max_lr - hp.min_lr)


def random_tokens(cfg, gen, shape):
    return torch.randint(0, cfg.vocab_size, shape, generator=gen, dtype=torch.int64)


def train(initial_params, cfg, hp, tokens, targets):
    """AdamW from initial_params (in their dtype); tokens, targets: [steps, micro_batches, B, T]."""
    params = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in initial_params.items())
    decay = [t for n, t in params.items() if is_decayed(n)]
    no_decay = [t for n, t in params.items() if not is_decayed(n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=hp.max_lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)

    losses, grad_norms, lrs, clipped = [], [], [], []
    for step in range(hp.total_steps):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for micro in range(hp.micro_batches):
            _, loss = gpt2_forward(params, cfg, tokens[step, micro], targets[step, micro])
            (loss / hp.micro_batches).backward()  # gradient = mean of the micro-batch gradients
            step_loss += loss.item() / hp.micro_batches
        # Pre-clip global norm over every parameter (wte once); scales by clip/(norm + 1e-6)
        # when norm > clip.
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), hp.grad_clip).item()
        lr = lr_at(step, hp)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        losses.append(step_loss)
        grad_norms.append(norm)
        lrs.append(lr)
        clipped.append(int(norm > hp.grad_clip))
    params_after = OrderedDict((n, t.detach().clone()) for n, t in params.items())
    return {
        "losses": losses, "grad_norms": grad_norms,
        "lrs": lrs, "clipped": clipped, "params_after": params_after,
    }


# ----------------------------------------------------------------------------------------------
# The fixture


def build_fixture(cfg, hp):
    gen = torch.Generator().manual_seed(SEED)
    params = init_params(cfg, gen)

    tokens = random_tokens(cfg, gen, (cfg.B, cfg.T))
    targets = random_tokens(cfg, gen, (cfg.B, cfg.T))
    # The vocabulary's edges must be exercised: the last real row sits next to shardlm's padding.
    targets[0, 0] = cfg.vocab_size - 1
    targets[1, cfg.T - 1] = cfg.vocab_size - 1
    targets[2, 4] = 0
    tokens[1, 2] = cfg.vocab_size - 1
    tokens[2, 0] = 0

    leaf = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in params.items())
    logits, loss = gpt2_forward(leaf, cfg, tokens, targets)
    loss.backward()
    grads = OrderedDict((n, t.grad.detach().clone()) for n, t in leaf.items())

    shape = (hp.total_steps, hp.micro_batches, cfg.B, cfg.T)
    train_tokens = random_tokens(cfg, gen, shape)
    train_targets = random_tokens(cfg, gen, shape)
    trained = train(params, cfg, hp, train_tokens, train_targets)
    trained.update(tokens=train_tokens, targets=train_targets)

    return {
        "params": params, "tokens": tokens, "targets": targets,
        "logits": logits.detach(), "loss": loss.detach(), "grads": grads, "train": trained,
    }


def write_fixture(path, cfg, hp, fx):
    def f64(t):
        return np.asarray(t.numpy() if torch.is_tensor(t) else t, dtype="<f8")

    def i32(t):
        return np.asarray(t.numpy() if torch.is_tensor(t) else t, dtype="<i4")

    # track_times=False (h5py's default, made explicit) keeps the bytes reproducible.
    with h5py.File(path, "w", libver="earliest") as f:
        for key in ("n_layer", "n_head", "n_embd", "vocab_size", "max_seq_len", "B", "T"):
            f.attrs[key] = np.int32(getattr(cfg, key))
        for name, t in fx["params"].items():
            d = f.create_dataset(f"params/{name}", data=f64(t), track_times=False)
            d.attrs["weight_decay"] = np.int32(is_decayed(name))
        f.create_dataset("inputs/tokens", data=i32(fx["tokens"]), track_times=False)
        f.create_dataset("inputs/targets", data=i32(fx["targets"]), track_times=False)
        f.create_dataset("forward/logits", data=f64(fx["logits"]), track_times=False)
        f.create_dataset("forward/loss", data=f64(fx["loss"]).reshape(1), track_times=False)
        for name, g in fx["grads"].items():
            f.create_dataset(f"grads/{name}", data=f64(g), track_times=False)
        tr = fx["train"]
        f.create_dataset("train/tokens", data=i32(tr["tokens"]), track_times=False)
        f.create_dataset("train/targets", data=i32(tr["targets"]), track_times=False)
        f.create_dataset("train/losses", data=f64(tr["losses"]), track_times=False)
        f.create_dataset("train/grad_norms", data=f64(tr["grad_norms"]), track_times=False)
        f.create_dataset("train/lrs", data=f64(tr["lrs"]), track_times=False)
        f.create_dataset("train/clipped", data=i32(tr["clipped"]), track_times=False)
        for name, t in tr["params_after"].items():
            f.create_dataset(f"train/params_after/{name}", data=f64(t), track_times=False)
        hparams = f.create_group("train/hparams")
        for key in ("max_lr", "min_lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip"):
            hparams.attrs[key] = np.float64(getattr(hp, key))
        for key in ("warmup", "total_steps", "micro_batches"):
            hparams.attrs[key] = np.int32(getattr(hp, key))


# ----------------------------------------------------------------------------------------------
# Self-checks


def max_abs_diff(a, b):
    return (a - b).abs().max().item()


def check_against_nn_formulation(cfg, fx):
    leaf = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in fx["params"].items())
    logits, loss = gpt2_forward_nn(leaf, cfg, fx["tokens"], fx["targets"])
    loss.backward()
    d_logits = max_abs_diff(logits.detach(), fx["logits"])
    d_loss = abs(loss.item() - fx["loss"].item())
    d_grad = max(max_abs_diff(t.grad, fx["grads"][n]) for n, t in leaf.items())
    print(f"vs torch.nn formulation: max|d logits| {d_logits:.3e}  |d loss| {d_loss:.3e}  "
          f"max|d grad| {d_grad:.3e}")
    assert d_logits < 1e-12 and d_loss < 1e-12 and d_grad < 1e-12


def check_gradcheck_tiny():
    cfg = TINY_CONFIG
    gen = torch.Generator().manual_seed(SEED + 1)
    params = init_params(cfg, gen)
    # Larger weights than the GPT-2 init so that every path carries a visible signal.
    params = OrderedDict((n, (t * 5.0 if t.dim() >= 2 else t).requires_grad_(True)) for n, t in params.items())
    tokens = random_tokens(cfg, gen, (cfg.B, cfg.T))
    targets = random_tokens(cfg, gen, (cfg.B, cfg.T))
    names = list(params)

    def loss_of(*tensors):
        return gpt2_forward(OrderedDict(zip(names, tensors)), cfg, tokens, targets)[1]

    inputs = tuple(params.values())
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    analytic = torch.autograd.grad(loss_of(*inputs), inputs)
    worst = central_difference_worst(loss_of, inputs, analytic, coords_per_tensor=None)
    print(f"gradcheck on tiny instance ({sum(t.numel() for t in inputs)} params): passed, "
          f"max|analytic - central difference| {worst:.3e}")


def central_difference_worst(loss_of, inputs, analytic, coords_per_tensor, gen=None, h=1e-6):
    """Largest |analytic - (f(x+h) - f(x-h)) / 2h| over all coordinates (or a random sample)."""
    worst = 0.0
    with torch.no_grad():
        for i, t in enumerate(inputs):
            flat = t.view(-1)
            if coords_per_tensor is None:
                coords = range(flat.numel())
            else:
                coords = torch.randint(0, flat.numel(), (coords_per_tensor,), generator=gen).tolist()
            for j in coords:
                saved = flat[j].item()
                flat[j] = saved + h
                up = loss_of(*inputs).item()
                flat[j] = saved - h
                down = loss_of(*inputs).item()
                flat[j] = saved
                worst = max(worst, abs((up - down) / (2 * h) - analytic[i].reshape(-1)[j].item()))
    return worst


def check_fixture_gradients(cfg, fx):
    names = list(fx["params"])
    inputs = tuple(t.clone() for t in fx["params"].values())

    def loss_of(*tensors):
        return gpt2_forward(OrderedDict(zip(names, tensors)), cfg, fx["tokens"], fx["targets"])[1]

    analytic = tuple(fx["grads"][n] for n in names)
    gen = torch.Generator().manual_seed(SEED + 2)
    worst = central_difference_worst(loss_of, inputs, analytic, coords_per_tensor=8, gen=gen)
    scale = max(g.abs().max().item() for g in analytic)
    print(f"fixture gradients vs central differences (8 coords per tensor): max abs dev {worst:.3e} "
          f"(largest gradient {scale:.3e})")
    assert worst < 1e-8 * max(1.0, scale)


def check_training_by_hand(cfg, hp, fx):
    """Redoes the ten steps with the update written out, pinning down the semantics the C++
    optimizer must match (torch.optim.AdamW's decoupled decay, eps added after the bias-corrected
    square root, clip scale clip / (norm + 1e-6))."""
    tr = fx["train"]
    params = OrderedDict((n, t.clone()) for n, t in fx["params"].items())
    m = {n: torch.zeros_like(t) for n, t in params.items()}
    v = {n: torch.zeros_like(t) for n, t in params.items()}
    for step in range(hp.total_steps):
        grads = {n: torch.zeros_like(t) for n, t in params.items()}
        for micro in range(hp.micro_batches):
            leaf = OrderedDict((n, t.clone().requires_grad_(True)) for n, t in params.items())
            gpt2_forward(leaf, cfg, tr["tokens"][step, micro], tr["targets"][step, micro])[1].backward()
            for n, t in leaf.items():
                grads[n] += t.grad / hp.micro_batches
        norm = math.sqrt(sum((g**2).sum().item() for g in grads.values()))
        scale = hp.grad_clip / (norm + 1e-6) if norm > hp.grad_clip else 1.0
        lr, t = lr_at(step, hp), step + 1
        for n, p in params.items():
            g = grads[n] * scale
            if is_decayed(n):
                p.mul_(1.0 - lr * hp.weight_decay)
            m[n] = hp.beta1 * m[n] + (1 - hp.beta1) * g
            v[n] = hp.beta2 * v[n] + (1 - hp.beta2) * g * g
            m_hat, v_hat = m[n] / (1 - hp.beta1**t), v[n] / (1 - hp.beta2**t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + hp.eps))
    d_after = max(max_abs_diff(params[n], tr["params_after"][n]) for n in params)
    print(f"hand-written AdamW + clipping vs torch.optim.AdamW: params_after max abs dev {d_after:.3e}")
    assert d_after < 1e-12


def report_fp32_drift(cfg, hp, fx):
    """Replays the fixture in float32 (as shardlm's CPU backend computes) and prints how far it
    lands from the float64 values: a guide for the C++ test's tolerances. The one place where
    fp32 noise is amplified: the k slice of c_attn.bias has an exactly zero gradient (softmax is
    shift-invariant), so AdamW turns fp32 rounding noise g into updates of lr * g / (|g| + eps)."""
    leaf = OrderedDict((n, t.float().requires_grad_(True)) for n, t in fx["params"].items())
    logits, loss = gpt2_forward(leaf, cfg, fx["tokens"], fx["targets"])
    loss.backward()
    d_logits = max_abs_diff(logits.detach().double(), fx["logits"]) / fx["logits"].abs().max().item()
    d_grad = max(max_abs_diff(t.grad.double(), fx["grads"][n]) for n, t in leaf.items())
    tr = fx["train"]
    fp32 = train(OrderedDict((n, t.float()) for n, t in fx["params"].items()), cfg, hp, tr["tokens"], tr["targets"])
    d_loss = max(abs(a - b) / b for a, b in zip(fp32["losses"], tr["losses"]))
    d_after = {n: max_abs_diff(t.double(), tr["params_after"][n]) for n, t in fp32["params_after"].items()}
    worst = max(d_after, key=d_after.get)
    worst_other = max(v for n, v in d_after.items() if not n.endswith("c_attn.bias"))
    print(f"fp32 replay: logits max rel {d_logits:.2e}, grads max abs {d_grad:.2e}, train losses max rel "
          f"{d_loss:.2e}, params_after max abs {d_after[worst]:.2e} ({worst}), "
          f"{worst_other:.2e} excluding c_attn.bias")
    assert fp32["clipped"] == tr["clipped"], "fp32 replay clips on different steps"


def assert_identical(a, b, what):
    if torch.is_tensor(a):
        assert torch.equal(a, b), what
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            assert_identical(a[k], b[k], f"{what}/{k}")
    else:
        assert a == b, what


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt2_fixture.h5"))
    args = parser.parse_args()

    torch.set_num_threads(1)  # fixed reduction order
    cfg, hp = FIXTURE_CONFIG, TrainHParams()

    fx = build_fixture(cfg, hp)
    assert_identical(fx, build_fixture(cfg, hp), "fixture")
    print("reproducible: a second build gives identical values")

    check_against_nn_formulation(cfg, fx)
    check_gradcheck_tiny()
    check_fixture_gradients(cfg, fx)
    check_training_by_hand(cfg, hp, fx)
    report_fp32_drift(cfg, hp, fx)

    tr = fx["train"]
    assert 0 < sum(tr["clipped"]) < hp.total_steps, f"grad_clip {hp.grad_clip} must clip some steps, not all"
    margin = min(abs(n - hp.grad_clip) / hp.grad_clip for n in tr["grad_norms"])
    assert margin > 0.005, f"a grad norm is within {margin:.2%} of grad_clip: fp32 could flip the decision"
    moved = max(max_abs_diff(tr["params_after"][n], fx["params"][n]) for n in fx["params"])
    assert moved > 1e-2, "10 steps should move the weights measurably"

    print(f"loss {fx['loss'].item():.10f} (ln V = {math.log(cfg.vocab_size):.4f})")
    for s in range(hp.total_steps):
        print(f"step {s}: lr {tr['lrs'][s]:.6e}  loss {tr['losses'][s]:.10f}  "
              f"grad_norm {tr['grad_norms'][s]:.6f}  clipped {tr['clipped'][s]}")
    print(f"largest weight change over training {moved:.3e}")

    write_fixture(args.out, cfg, hp, fx)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
