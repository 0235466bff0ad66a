"""bench_torch.py: PyTorch eager forward+backward of the spcheck model (docs/model.md: pre-norm
GPT, RMSNorm, rotate-half RoPE, causal attention, SwiGLU MLP, untied LM head, masked-mean
cross-entropy; no MTP depth, one sequence per row), the yardstick for spexec's speed (issue 16).

    python3 cuda/bench_torch.py --hidden 4096 --heads 32 --layers 8 --ffn 11008 --vocab 32000 \
        --seq 4096 --batch 1 --dtype bf16 [--attn math|sdpa|both] [--iters 5]

Prints one line per attention variant: "torch <attn> <dtype> fwd+bwd median_ms min_ms". math
materialises the probabilities as spexec does (fp32 softmax); sdpa is
torch.nn.functional.scaled_dot_product_attention (flash attention where it applies). fp32 runs
without TF32, as spexec's fp32 does. Times are CUDA events around forward+backward after two
warm-up steps; parameter grads are set to None between steps.
"""

import argparse
import math

import torch
import torch.nn.functional as F


def rmsnorm(x, w, eps=1e-5):
    xf = x.float()
    r = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (xf * r).to(x.dtype) * w


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(q, k, v, attn):
    # q, k, v: [B, S, nh, hd] -> [B, nh, S, hd]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    if attn == "sdpa":
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
        S = s.shape[-1]
        mask = torch.ones(S, S, dtype=torch.bool, device=s.device).triu(1)
        p = torch.softmax(s.float().masked_fill(mask, float("-inf")), dim=-1).to(q.dtype)
        o = p @ v
    return o.transpose(1, 2)


def main():
    ap = argparse.ArgumentParser()
    for k, v in dict(hidden=1024, heads=16, layers=4, ffn=4096, vocab=32000, seq=512, batch=2, iters=5).items():
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--attn", default="both", choices=["math", "sdpa", "both"])
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(1)
    H, nh, hd = a.hidden, a.heads, a.hidden // a.heads

    def w(*shape, norm=False):
        if norm:
            t = 1 + 0.1 * torch.randn(*shape, generator=g, device=dev)
        else:
            t = torch.randn(*shape, generator=g, device=dev) / math.sqrt(shape[-1])
        return t.to(dt).requires_grad_()

    params = {"emb": w(a.vocab, H), "final_norm": w(H, norm=True), "head": w(a.vocab, H)}
    for i in range(a.layers):
        for n in ("q", "k", "v", "o"):
            params[f"{i}.{n}"] = w(H, H)
        params[f"{i}.an"], params[f"{i}.mn"] = w(H, norm=True), w(H, norm=True)
        params[f"{i}.gate"], params[f"{i}.up"], params[f"{i}.down"] = w(a.ffn, H), w(a.ffn, H), w(H, a.ffn)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g, device=dev)
    labels = torch.roll(ids, -1, dims=1)
    labels[:, -1] = -100
    pos = torch.arange(a.seq, device=dev, dtype=torch.float64)
    theta = 10000.0 ** (-torch.arange(0, hd // 2, device=dev, dtype=torch.float64) * 2 / hd)
    ang = pos[:, None] * theta[None, :]
    cos, sin = ang.cos().to(dt)[None, :, None, :], ang.sin().to(dt)[None, :, None, :]

    def step(attn):
        p = params
        x = F.embedding(ids, p["emb"])
        B, S = ids.shape
        for i in range(a.layers):
            h = rmsnorm(x, p[f"{i}.an"])
            q = F.linear(h, p[f"{i}.q"]).view(B, S, nh, hd)
            k = F.linear(h, p[f"{i}.k"]).view(B, S, nh, hd)
            v = F.linear(h, p[f"{i}.v"]).view(B, S, nh, hd)
            c = attention(rope(q, cos, sin), rope(k, cos, sin), v, attn).reshape(B, S, H)
            x = x + F.linear(c, p[f"{i}.o"])
            n = rmsnorm(x, p[f"{i}.mn"])
            x = x + F.linear(F.silu(F.linear(n, p[f"{i}.gate"])) * F.linear(n, p[f"{i}.up"]), p[f"{i}.down"])
        z = F.linear(rmsnorm(x, p["final_norm"]), p["head"])
        loss = F.cross_entropy(z.float().view(-1, a.vocab), labels.view(-1), ignore_index=-100)
        loss.backward()
        for t in p.values():
            t.grad = None

    for attn in (["math", "sdpa"] if a.attn == "both" else [a.attn]):
        for _ in range(2):
            step(attn)
        times = []
        for _ in range(a.iters):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            step(attn)
            e1.record()
            torch.cuda.synchronize()
            times.append(e0.elapsed_time(e1))
        times.sort()
        print(f"torch {attn} {a.dtype} fwd+bwd median_ms {times[len(times) // 2]:.2f} min_ms {times[0]:.2f} "
              f"peak_GiB {torch.cuda.max_memory_allocated() / 2**30:.1f}", flush=True)
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
