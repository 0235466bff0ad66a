#!/usr/bin/env python3
"""Independent PyTorch float64 re-implementation of the spcheck oracle model.

Usage: torchref.py TRACE_DIR [TRACE_DIR ...]

For every oracle trace directory (written by `spcheck oracle --out DIR`, stored in fp64) this
reads the parameters and the inputs from rank-00000.safetensors (with json + struct, no
safetensors package), rebuilds the model of docs/model.md from the plan string in the
metadata, runs forward and backward with torch autograd and compares its losses, its parameter
gradients and the rolled MTP inputs with the trace. Nothing of the oracle's computation is
imported: only param/* and the four input/* tensors feed the model; the rest is the target.

Prints one line per tensor compared with its relative difference max|torch - oracle| /
max(max|oracle|, ABS_FLOOR), then "PASS dir max_rel_diff=X" or "FAIL dir ...". Exit status 0 when every
trace is within TOLERANCE, 1 otherwise, 2 on unreadable input.

Written for torch 1.13 (Debian's python3-torch): no torch.nn.functional.rms_norm, no
scaled_dot_product_attention.
"""

import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

# Every gradient and loss must agree with the oracle to this relative difference: both are
# float64 and compute the same function in different association orders, so the differences
# are rounding (measured ~1e-14 .. 1e-13); 1e-10 flags any difference in the model itself.
TOLERANCE = 1e-10

# Model constants of docs/model.md (not plan keys): Megatron-LM's layernorm_epsilon default,
# rotary base 10000 with the rotate-half pairing, torch's ignore_index.
RMSNORM_EPS = 1e-5
ROPE_BASE = 10000.0
IGNORE_INDEX = -100

# Denominator floor of the relative difference: a tensor whose values are all below it (e.g.
# the q/k weight gradients of a batch whose only scored tokens attend to copies of one token,
# mathematically zero, which the two implementations round to 0 and to ~1e-17) is judged by
# its absolute difference / ABS_FLOOR instead. Gradients of these O(1) losses are ~1e-3..1.
ABS_FLOOR = 1e-6

DTYPES = {"F64": (torch.float64, 8), "I64": (torch.int64, 8)}


class TraceError(Exception):
    pass


def read_safetensors(path):
    """Returns (metadata dict, {key: (dtype string, shape, raw bytes)})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise TraceError(f"{path}: shorter than a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise TraceError(f"{path}: header length {n} exceeds the file")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for key, e in header.items():
        lo, hi = e["data_offsets"]
        tensors[key] = (e["dtype"], e["shape"], data[lo:hi])
    return meta, tensors


def to_torch(dtype, shape, raw, what):
    if dtype not in DTYPES:
        raise TraceError(f"{what} is stored as {dtype}; torchref compares fp64 traces only (dtype=fp64)")
    tdt, size = DTYPES[dtype]
    n = math.prod(shape) if shape else 1
    if len(raw) != n * size:
        raise TraceError(f"{what}: {len(raw)} bytes for shape {shape} of {dtype}")
    if n == 0:
        return torch.zeros(shape, dtype=tdt)
    return torch.frombuffer(bytearray(raw), dtype=tdt).reshape(shape).clone()


def parse_plan(s):
    cfg = {}
    for item in s.split(","):
        if item:
            k, v = item.split("=", 1)
            cfg[k] = v
    m = {k: int(cfg[k]) for k in ("vocab", "hidden", "heads", "layers", "ffn", "seq", "batch", "mtp")}
    m["mtp_lambda"] = float(cfg["mtp_lambda"])
    m["tied"] = cfg["tied"] == "true"
    packed = cfg.get("packed", "")
    m["lens"] = [int(x) for x in packed.split(":")] if packed else [m["seq"]]
    return m


# ----------------------------------------------------------------------------------------
# The model, written with plain torch ops so that autograd provides every gradient.


def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMSNORM_EPS) * w


def rope(x, pos):
    """Rotate-half RoPE of x [B,S,nh,hd] at integer positions pos [S]."""
    hd = x.shape[-1]
    inv = 1.0 / (ROPE_BASE ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos.to(torch.float64)[:, None] * inv[None, :]  # [S, hd/2]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attention(q, k, v, allowed):
    """Softmax attention of q,k,v [B,S,nh,hd] where allowed [S,S] is True for j visible to i."""
    hd = q.shape[-1]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B,nh,S,hd]
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (torch.softmax(scores, -1) @ v).transpose(1, 2)


def layer(x, P, pre, m, pos, allowed):
    B, S, H = x.shape
    nh = m["heads"]
    a = rmsnorm(x, P[pre + "attn_norm.weight"])
    q = (a @ P[pre + "attn.q.weight"].T).reshape(B, S, nh, H // nh)
    k = (a @ P[pre + "attn.k.weight"].T).reshape(B, S, nh, H // nh)
    v = (a @ P[pre + "attn.v.weight"].T).reshape(B, S, nh, H // nh)
    ctx = attention(rope(q, pos), rope(k, pos), v, allowed).reshape(B, S, H)
    h = x + ctx @ P[pre + "attn.o.weight"].T
    n = rmsnorm(h, P[pre + "mlp_norm.weight"])
    g, u = n @ P[pre + "mlp.gate.weight"].T, n @ P[pre + "mlp.up.weight"].T
    return h + (F.silu(g) * u) @ P[pre + "mlp.down.weight"].T


def roll_packed(t, cu):
    """Megatron's _roll_tensor_packed_seq, shifts=-1: roll each sequence left, zero its end."""
    out = t.clone()
    for s, e in zip(cu[:-1], cu[1:]):
        seg = torch.roll(t[:, s:e], shifts=-1, dims=-1)
        seg[:, -1] = 0
        out[:, s:e] = seg
    return out


def masked_ce(logits, labels, mask):
    V = logits.shape[-1]
    tok = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), reduction="none", ignore_index=IGNORE_INDEX)
    w = mask.reshape(-1) * (labels.reshape(-1) != IGNORE_INDEX).to(torch.float64)
    return (w * tok).sum() / torch.clamp(w.sum(), min=1.0)


def forward(m, P, ids, labels, mask):
    """Returns ({loss name: scalar}, {input name: rolled tensor})."""
    cu = [0]
    for n in m["lens"]:
        cu.append(cu[-1] + n)
    seg = torch.cat([torch.full((n,), i) for i, n in enumerate(m["lens"])])
    pos = torch.cat([torch.arange(n) for n in m["lens"]])
    idx = torch.arange(m["seq"])
    allowed = (seg[:, None] == seg[None, :]) & (idx[None, :] <= idx[:, None])
    E = P["embedding.weight"]
    head = E if m["tied"] else P["lm_head.weight"]

    x = E[ids]
    for i in range(m["layers"]):
        x = layer(x, P, f"layers.{i}.", m, pos, allowed)
    hidden = rmsnorm(x, P["final_norm.weight"])
    losses = {"loss/main": masked_ce(hidden @ head.T, labels, mask)}
    rolled = {}
    mtp_sum = 0
    ids_k, lab_k, mask_k = ids, labels, mask
    for k in range(1, m["mtp"] + 1):
        ids_k, lab_k, mask_k = roll_packed(ids_k, cu), roll_packed(lab_k, cu), roll_packed(mask_k, cu)
        rolled.update({f"input/mtp.{k}.ids": ids_k, f"input/mtp.{k}.labels": lab_k, f"input/mtp.{k}.loss_mask": mask_k})
        pre = f"mtp.{k}."
        cat = torch.cat([rmsnorm(E[ids_k], P[pre + "enorm.weight"]), rmsnorm(hidden, P[pre + "hnorm.weight"])], -1)
        u = layer(cat @ P[pre + "eh_proj.weight"].T, P, pre + "layer.", m, pos, allowed)
        hidden = rmsnorm(u, P["final_norm.weight"])
        losses[f"loss/mtp.{k}"] = masked_ce(hidden @ head.T, lab_k, mask_k)
        mtp_sum = mtp_sum + losses[f"loss/mtp.{k}"]
    total = losses["loss/main"]
    if m["mtp"] > 0:
        total = total + m["mtp_lambda"] / m["mtp"] * mtp_sum
    losses["loss/total"] = total
    return losses, rolled


# ----------------------------------------------------------------------------------------


def rel_diff(ours, theirs):
    ours, theirs = ours.detach().to(torch.float64), theirs.to(torch.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    scale = theirs.abs().max().item() if theirs.numel() else 0.0
    diff = (ours - theirs).abs().max().item() if theirs.numel() else 0.0
    return diff / max(scale, ABS_FLOOR)


def check(directory):
    meta_raw, raw = read_safetensors(f"{directory}/rank-00000.safetensors")
    meta = json.loads(meta_raw["spcheck"])
    if meta.get("producer") != "oracle":
        raise TraceError(f"{directory}: producer is {meta.get('producer')!r}, not the oracle")
    m = parse_plan(meta["plan"])
    by_name = {}
    for key, tm in meta["tensors"].items():
        dtype, shape, data = raw[key]
        by_name[tm["name"]] = (tm["kind"], to_torch(dtype, shape, data, tm["name"]))

    P = {n[len("param/"):]: t.clone().requires_grad_(True) for n, (kind, t) in by_name.items() if kind == "param"}
    ids = by_name["input/ids"][1]
    labels = by_name["input/labels"][1]
    mask = by_name["input/loss_mask"][1].to(torch.float64)
    lens = by_name["input/cu_seqlens"][1].diff().tolist()
    if lens != m["lens"]:
        raise TraceError(f"{directory}: input/cu_seqlens gives lengths {lens}, the plan {m['lens']}")

    losses, rolled = forward(m, P, ids, labels, mask)
    losses["loss/total"].backward()

    worst = 0.0
    rows = []
    for name, value in list(losses.items()) + list(rolled.items()):
        if name not in by_name:
            raise TraceError(f"{directory}: the trace has no {name}")
        rows.append((name, rel_diff(value, by_name[name][1])))
    expected = {"grad/" + p for p in P}
    traced = {n for n, (kind, _) in by_name.items() if kind == "param_grad"}
    if expected != traced:
        raise TraceError(f"{directory}: gradients missing from the trace {sorted(expected - traced)}, unexpected {sorted(traced - expected)}")
    for p, t in P.items():
        rows.append(("grad/" + p, rel_diff(t.grad, by_name["grad/" + p][1])))
    for name, d in rows:
        print(f"  {name:45s} rel_diff={d:.3g}")
        worst = max(worst, d)
    ok = worst <= TOLERANCE
    print(f"{'PASS' if ok else 'FAIL'} {directory} max_rel_diff={worst:.3g} tolerance={TOLERANCE:g} ({len(rows)} tensors)")
    return ok


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    torch.set_default_dtype(torch.float64)
    ok = True
    for d in argv[1:]:
        try:
            ok = check(d) and ok
        except (TraceError, OSError, KeyError, ValueError) as e:
            print(f"ERROR {d}: {e}")
            return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
