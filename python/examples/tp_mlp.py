"""A tensor-parallel MLP written by hand, Megatron style: a column-parallel fc1, a row-parallel
fc2 whose output is recorded before its all-reduce (tp=partial), and the all-reduce as its own
module. The gradient arriving at fc2's output is the whole gradient on every rank: spcheck_dump
records it replicated (the adjoint of a partial sum), so the correct run verifies — no false
×2. The bug: the all-reduce done with torch.distributed.nn.functional.all_reduce, whose
backward all-reduces the gradient again (×tp).

    python3 tp_mlp.py --out ref                                # single process
    torchrun --nproc-per-node 2 tp_mlp.py --out cand [--bug allreduce-backward]
"""

import argparse
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

import spcheck_dump as sd

HIDDEN, FFN, BATCH = 6, 8, 4


class AllReduce(torch.autograd.Function):
    """Sum over TP ranks in the forward; the adjoint of a sum is a copy: identity backward."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g


class Reduce(torch.nn.Module):
    def __init__(self, tp, bug):
        super().__init__()
        self.tp, self.bug = tp, bug

    def forward(self, x):
        if self.tp == 1:
            return x
        if self.bug == "allreduce-backward":
            import torch.distributed.nn.functional as dnf
            return dnf.all_reduce(x)
        return AllReduce.apply(x)


class MLP(torch.nn.Module):
    def __init__(self, tp, rank, bug):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        w1 = torch.randn(FFN, HIDDEN, generator=g, dtype=torch.float64)
        b1 = torch.randn(FFN, generator=g, dtype=torch.float64)
        w2 = torch.randn(HIDDEN, FFN, generator=g, dtype=torch.float64)
        n = FFN // tp
        self.fc1 = torch.nn.Linear(HIDDEN, n, dtype=torch.float64)
        self.fc2 = torch.nn.Linear(n, HIDDEN, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.fc1.weight.copy_(w1[rank * n:(rank + 1) * n])
            self.fc1.bias.copy_(b1[rank * n:(rank + 1) * n])
            self.fc2.weight.copy_(w2[:, rank * n:(rank + 1) * n])
        self.reduce = Reduce(tp, bug)

    def forward(self, x):
        return self.reduce(self.fc2(F.gelu(self.fc1(x))))


p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--bug", default="none", choices=("none", "allreduce-backward"))
a = p.parse_args()
tp = int(os.environ.get("WORLD_SIZE", 1))
if tp > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if tp > 1 else 0
mlp = MLP(tp, rank, a.bug)
x = torch.linspace(-1, 1, BATCH * HIDDEN, dtype=torch.float64).reshape(BATCH, HIDDEN)

d = sd.Dumper(a.out, mesh={"tp": tp}, rank=rank, world=tp)                    # spcheck 1
d.watch(mlp, act_place={r"fc1$": "tp=shard(1)", r"fc2$": "tp=partial"},      # spcheck 2
        param_place={r"fc1": "tp=shard(0)", r"fc2": "tp=shard(1)"})
y = mlp(x)
d.loss("main", (y ** 2).sum())                                                # spcheck 3
(y ** 2).sum().backward()
d.save()                                                                      # spcheck 4
if tp > 1:
    dist.destroy_process_group()
