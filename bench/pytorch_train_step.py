#!/usr/bin/python3
"""The PyTorch side of bench/compare_pytorch.sh: the same GPT-2 training step as
bench_train_step (fp32, tied LM head over the padded vocabulary, GELU-tanh, causal attention,
clip_grad_norm_ 1.0, AdamW with decay on matrices only) on the same shapes and random tokens.
Prints tokens/s over full optimizer steps after warm-up, and "config:" / "result:" key=value
lines for the script.

Threads: --threads sets torch.set_num_threads; the BLAS's own pool (OpenBLAS's pthreads) follows
OPENBLAS_NUM_THREADS, which compare_pytorch.sh sets to the same number. The BLAS PyTorch calls
for fp32 matmuls is whatever libblas.so.3 resolves to (Debian's python3-torch links it, not
MKL); the script reports which library was loaded and, for OpenBLAS, the kernels it chose.
"""
import argparse
import ctypes
import math
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

    def attention(self, x, mask):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))  # [B,NH,T,hd]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = F.softmax(att.masked_fill(mask[:T, :T], float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.attn_proj(y)

    def forward(self, x, mask):
        x = x + self.attention(self.ln_1(x), mask)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, padded_vocab, max_seq_len):
        super().__init__()
        self.wte = nn.Embedding(padded_vocab, n_embd)
        self.wpe = nn.Embedding(max_seq_len, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        causal = torch.ones(max_seq_len, max_seq_len, dtype=torch.bool).triu(1)
        self.register_buffer("mask", causal, persistent=False)  # True above the diagonal
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x, self.mask)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def loaded_blas():
    """The BLAS shared library this process mapped, and OpenBLAS's kernel choice if it is one."""
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1]})
    core = ""
    for lib in libs:
        try:
            get_corename = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        get_corename.restype = ctypes.c_char_p
        core = get_corename().decode()
    return ",".join(libs) or "none", core


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-layer", type=int, required=True)
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
    ap.add_argument("--adamw", choices=["foreach", "for-loop"], default="foreach",
                    help="AdamW implementation (foreach: one multi-tensor kernel per op)")
    ap.add_argument("--profile", action="store_true", help="after timing, profile one step and print the top ops")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = GPT2(a.n_layer, a.n_head, a.n_embd, a.padded_vocab, a.max_seq_len)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, foreach=a.adamw == "foreach")
    pool = 4 * a.micro_batch  # a fixed pool of random sequences, cycled through
    stream = torch.randint(0, a.vocab_size, (pool, a.seq_len + 1))

    def step(i):
        rows = torch.arange(i * a.micro_batch, (i + 1) * a.micro_batch) % pool
        batch = stream[rows]
        tokens, targets = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    blas, core = loaded_blas()
    capability = next((l.split(":")[1].strip() for l in torch.__config__.show().splitlines()
                       if "CPU capability" in l), "?")
    print(f"config: torch={torch.__version__} threads={torch.get_num_threads()} blas={blas} "
          f"openblas_core={core or '-'} cpu_capability={capability} adamw={a.adamw}", flush=True)
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
