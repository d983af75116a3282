#!/usr/bin/env python3
"""The PyTorch side of bench/compare_pytorch.sh: the same training step as bench_train_step
on the same shapes and random tokens, given PyTorch's best: scaled_dot_product_attention (its
fused CPU attention), fused AdamW, MKL (PyPI's wheels), and --compile for torch.compile.
Families: GPT-2 (fp32, tied LM head over the padded vocabulary, GELU-tanh, causal attention)
and Llama (RMSNorm, RoPE, grouped-query attention, SwiGLU, untied head unless tied); both clip
the gradient norm at 1.0 and decay matrices only. Prints tokens/s over full optimizer steps
after warm-up (compilation happens there), and "config:" / "result:" key=value lines.

Threads: --threads sets torch.set_num_threads (MKL and the intra-op pool follow it).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.attn_proj = nn.Linear(n_embd, n_embd)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)

    def attention(self, x):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))  # [B,NH,T,hd]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, padded_vocab, max_seq_len):
        super().__init__()
        self.wte = nn.Embedding(padded_vocab, n_embd)
        self.wpe = nn.Embedding(max_seq_len, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        init_weights(self)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def init_weights(model):
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


def rotate(x, cos, sin):
    """RoPE on x [B, heads, T, hd] (rotate-half pairing; the cost is the same either way)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class LlamaBlock(nn.Module):
    def __init__(self, n_embd, n_head, n_kv_head, ffn, eps):
        super().__init__()
        self.n_head, self.n_kv_head, self.hd = n_head, n_kv_head, n_embd // n_head
        self.input_layernorm = nn.RMSNorm(n_embd, eps=eps)
        self.q_proj = nn.Linear(n_embd, n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(n_embd, n_kv_head * self.hd, bias=False)
        self.v_proj = nn.Linear(n_embd, n_kv_head * self.hd, bias=False)
        self.o_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.post_attention_layernorm = nn.RMSNorm(n_embd, eps=eps)
        self.gate_proj = nn.Linear(n_embd, ffn, bias=False)
        self.up_proj = nn.Linear(n_embd, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, n_embd, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.n_kv_head, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.n_kv_head, self.hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.padded_vocab, a.n_embd)
        self.blocks = nn.ModuleList(
            LlamaBlock(a.n_embd, a.n_head, a.n_kv_head, a.intermediate_size, a.norm_eps) for _ in range(a.n_layer))
        self.norm = nn.RMSNorm(a.n_embd, eps=a.norm_eps)
        self.lm_head = None if a.tie_embeddings else nn.Linear(a.n_embd, a.padded_vocab, bias=False)
        hd = a.n_embd // a.n_head
        inv_freq = 1.0 / (a.rope_theta ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(a.max_seq_len).float(), inv_freq)  # [T, hd/2]
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        init_weights(self)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.embed_tokens(tokens)
        cos, sin = self.cos[:T], self.sin[:T]
        for block in self.blocks:
            x = block(x, cos, sin)
        head = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(self.norm(x), head)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["gpt2", "llama"], default="gpt2")
    ap.add_argument("--n-layer", type=int, required=True)
    ap.add_argument("--n-kv-head", type=int, default=0, help="Llama: key/value heads")
    ap.add_argument("--intermediate-size", type=int, default=0, help="Llama: SwiGLU width")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--tie-embeddings", type=int, default=0)
    ap.add_argument("--n-head", type=int, required=True)
    ap.add_argument("--n-embd", type=int, required=True)
    ap.add_argument("--vocab-size", type=int, required=True, help="real vocabulary (targets are drawn from it)")
    ap.add_argument("--padded-vocab", type=int, required=True, help="rows of wte and columns of the logits")
    ap.add_argument("--max-seq-len", type=int, required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--micro-batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--adamw", choices=["fused", "foreach", "for-loop"], default="fused",
                    help="AdamW implementation (fused: one kernel over all parameters)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    ap.add_argument("--profile", action="store_true", help="after timing, profile one step and print the top ops")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = GPT2(a.n_layer, a.n_head, a.n_embd, a.padded_vocab, a.max_seq_len) if a.family == "gpt2" else Llama(a)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, foreach=a.adamw == "foreach" or None,
                            fused=a.adamw == "fused" or None)
    forward = torch.compile(model) if a.compile else model
    pool = 4 * a.micro_batch  # a fixed pool of random sequences, cycled through
    stream = torch.randint(0, a.vocab_size, (pool, a.seq_len + 1))

    def step(i):
        rows = torch.arange(i * a.micro_batch, (i + 1) * a.micro_batch) % pool
        batch = stream[rows]
        tokens, targets = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()
        opt.zero_grad(set_to_none=True)
        loss = forward(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    capability = next((l.split(":")[1].strip() for l in torch.__config__.show().splitlines()
                       if "CPU capability" in l), "?")
    print(f"config: torch={torch.__version__} family={a.family} threads={torch.get_num_threads()} "
          f"mkl={int(torch.backends.mkl.is_available())} cpu_capability={capability} adamw={a.adamw} "
          f"compile={int(a.compile)}", flush=True)
    for i in range(a.warmup_steps):
        step(i)
    times = []
    cpu_start = time.process_time()
    for i in range(a.warmup_steps, a.warmup_steps + a.steps):
        t0 = time.perf_counter()
        loss = step(i)
        times.append(time.perf_counter() - t0)
    cpu_seconds = time.process_time() - cpu_start
    tokens = a.micro_batch * a.seq_len
    mean = sum(times) / len(times)
    # Per CPU-second of `threads` threads, as bench_train_step reports it (see there).
    cpu_tokens_per_s = tokens * a.steps / (cpu_seconds / a.threads)
    print(f"steps: {a.steps} timed after {a.warmup_steps} warm-up, {tokens} tokens each, mean {1e3 * mean:.1f} ms, "
          f"best {1e3 * min(times):.1f} ms, last loss {loss:.4f}")
    print(f"CPU time used: {100 * cpu_seconds / (sum(times) * a.threads):.0f}% of {a.threads} threads x wall; "
          f"tokens per CPU-second x threads {cpu_tokens_per_s:.1f}")
    print(f"result: tokens_per_s={tokens / mean:.2f} best_tokens_per_s={tokens / min(times):.2f} "
          f"cpu_tokens_per_s={cpu_tokens_per_s:.2f} step_ms={1e3 * mean:.2f}", flush=True)
    if a.profile:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step(a.warmup_steps + a.steps)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
