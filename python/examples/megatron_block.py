#!/usr/bin/env python3
"""A Megatron-style transformer MLP stack in plain torch.distributed, dumped with spcheck_dump.

Every layer is pre-norm: y = x + fc2(gelu(fc1(rmsnorm(x)))), with Megatron's tensor and sequence
parallelism (fc1 column-parallel, fc2 row-parallel; between them the activations live sharded on
the sequence dim: all-gather before fc1, reduce-scatter after fc2; the RMSNorm weight and the fc2
bias are replicated and their grads SUM-all-reduced over TP), and a pipeline of `--pp` stages
(GPipe: all forwards, then all backwards, per micro-batch). The last stage gathers the output and
takes a mean-squared-error loss against a fixed target.

    # the single-device reference, then the 4-process run (tp 2 × pp 2, gloo on CPU)
    python3 python/examples/megatron_block.py --out /tmp/ref
    python3 python/examples/megatron_block.py --tp 2 --pp 2 --out /tmp/cand
    spcheck compare /tmp/ref /tmp/cand

`--bug` switches in one deliberate, real bug:
  no-norm-allreduce  the RMSNorm weight grads are not all-reduced over TP (PaddleFleetX #671,
                     PaddleFleet #1146): each TP rank keeps its partial sum.
  partial-p2p        Paddle's partial send/recv left on under SP (PaddleFleet #589): TP rank t
                     sends flat chunk t of its boundary tensor and the receivers all-gather the
                     chunks, so every receiver holds the same frankentensor.
Several comma-separated bugs (and micro-batch counts) run one after another in the same
processes, each into OUT/<bug>/ (OUT/mb<M>/<bug>/ when several micro-batch counts are given);
this saves the process start-up in tests.

Launch: a world of 1 runs in-process without torch.distributed; a larger world spawns its ranks
with torch.multiprocessing, or, when started by torchrun (RANK and WORLD_SIZE set), joins it.
`--device cuda --backend nccl` runs the same code on GPUs.
"""

import argparse
import contextlib
import os
import socket
import sys
import zlib

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import spcheck_dump as sd  # noqa: E402

BUGS = ("none", "no-norm-allreduce", "partial-p2p")
RMS_EPS = 1e-6

# Where each module's output lives, by framework (stage-local) module name. Between the
# row-parallel fc2 and the next column-parallel fc1 everything is sequence-sharded (dim 0 of
# [seq, batch, hidden]); fc1's output is split on its features across TP.
ACT_PLACE = {r"fc1$": "tp=shard(2)", r".": "tp=shard(0)"}


# ---- tensor-parallel collectives (identity at tp = 1) ---------------------------------------

class Par:
    """This rank's place in the (pp, tp) mesh, and the communication it uses."""

    def __init__(self, args, rank):
        self.tp, self.pp, self.rank = args.tp, args.pp, rank
        self.pp_rank, self.tp_rank = divmod(rank, args.tp)
        self.nccl = args.backend == "nccl"
        self.device = args.device_obj
        self.bug = "none"
        self.tp_group = None
        if self.tp * self.pp > 1:
            for s in range(self.pp):  # every rank creates every group, in the same order
                g = dist.new_group([s * self.tp + t for t in range(self.tp)])
                if s == self.pp_rank:
                    self.tp_group = g

    @property
    def first(self):
        return self.pp_rank == 0

    @property
    def last(self):
        return self.pp_rank == self.pp - 1


def all_gather(x, par):
    if par.tp == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(par.tp)]
    dist.all_gather(parts, x.contiguous(), group=par.tp_group)
    return torch.cat(parts, 0)


def reduce_scatter(x, par):
    if par.tp == 1:
        return x
    if par.nccl:
        out = torch.empty_like(x.chunk(par.tp, 0)[0])
        dist.reduce_scatter(out, [c.contiguous() for c in x.chunk(par.tp, 0)], group=par.tp_group)
        return out
    # gloo has no reduce-scatter: all-reduce and keep this rank's chunk (same sums).
    y = x.contiguous().clone()
    dist.all_reduce(y, group=par.tp_group)
    return y.chunk(par.tp, 0)[par.tp_rank].contiguous()


def split(x, par):
    return x if par.tp == 1 else x.chunk(par.tp, 0)[par.tp_rank].contiguous()


class GatherFromSP(torch.autograd.Function):
    """Megatron's gather_from_sequence_parallel_region: all-gather; backward reduce-scatter."""

    @staticmethod
    def forward(ctx, x, par):
        ctx.par = par
        return all_gather(x, par)

    @staticmethod
    def backward(ctx, g):
        return reduce_scatter(g, ctx.par), None


class ReduceScatterToSP(torch.autograd.Function):
    """Megatron's reduce_scatter_to_sequence_parallel_region: backward all-gather."""

    @staticmethod
    def forward(ctx, x, par):
        ctx.par = par
        return reduce_scatter(x, par)

    @staticmethod
    def backward(ctx, g):
        return all_gather(g, ctx.par), None


class GatherReplicated(torch.autograd.Function):
    """All-gather whose output every TP rank then uses identically (the loss): backward keeps
    this rank's slice (Megatron's tensor_parallel_output_grad=False)."""

    @staticmethod
    def forward(ctx, x, par):
        ctx.par = par
        return all_gather(x, par)

    @staticmethod
    def backward(ctx, g):
        return split(g, ctx.par), None


# ---- the model ------------------------------------------------------------------------------

def init_global(args, name, shape, scale, shift=0.0):
    """A parameter's full (single-device) value: depends on the seed and its global name only,
    so every layout shards the very same numbers."""
    g = torch.Generator().manual_seed((args.seed * 1_000_003 + zlib.crc32(name.encode())) % 2**62)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale + shift


def shard_param(args, par, global_name, shape, dim, scale, shift=0.0):
    """nn.Parameter holding this rank's shard (dim None = replicated) of a global parameter."""
    full = init_global(args, global_name, shape, scale, shift)
    if dim is not None and par.tp > 1:
        full = full.chunk(par.tp, dim)[par.tp_rank]
    p = nn.Parameter(full.contiguous().to(device=par.device, dtype=args.dtype))
    if dim is not None:
        p.tensor_model_parallel, p.partition_dim = True, dim  # Megatron's attributes
    else:
        p.sequence_parallel = True  # replicated over TP, grads SUM-all-reduced
    return p


class RMSNorm(nn.Module):
    def __init__(self, args, par, gname):
        super().__init__()
        self.weight = shard_param(args, par, gname + ".weight", [args.hidden], None, 0.1, 1.0)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.weight


class ColumnParallelLinear(nn.Module):
    """y = all_gather_seq(x) · Wᵀ + b with W, b split on the output features (n_in, n_out are
    the global sizes)."""

    def __init__(self, args, par, gname, n_in, n_out):
        super().__init__()
        self.par = par
        self.weight = shard_param(args, par, gname + ".weight", [n_out, n_in], 0, n_in ** -0.5)
        self.bias = shard_param(args, par, gname + ".bias", [n_out], 0, 0.1)

    def forward(self, x):
        return F.linear(GatherFromSP.apply(x, self.par), self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """y = reduce_scatter_seq(x · Wᵀ) + b with W split on the input features, b replicated."""

    def __init__(self, args, par, name, gname, n_in, n_out):
        super().__init__()
        self.par, self.name = par, name
        self.weight = shard_param(args, par, gname + ".weight", [n_out, n_in], 1, n_in ** -0.5)
        self.bias = shard_param(args, par, gname + ".bias", [n_out], None, 0.1)

    def forward(self, x):
        partial = F.linear(x, self.weight)
        sd.record(f"act/{self.name}.partial", partial, "activation", "tp=partial")
        return ReduceScatterToSP.apply(partial, self.par) + self.bias


class MLP(nn.Module):
    def __init__(self, args, par, name, gname):
        super().__init__()
        self.fc1 = ColumnParallelLinear(args, par, gname + ".fc1", args.hidden, args.ffn)
        self.fc2 = RowParallelLinear(args, par, name + ".fc2", gname + ".fc2", args.ffn, args.hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, args, par, name, gname):
        super().__init__()
        self.norm = RMSNorm(args, par, gname + ".norm")
        self.mlp = MLP(args, par, name + ".mlp", gname + ".mlp")

    def forward(self, x):
        return x + self.mlp(self.norm(x))


class Stage(nn.Module):
    """One pipeline stage: its layers, numbered locally from 0 as Megatron numbers them, and on
    the last stage the final norm."""

    def __init__(self, args, par):
        super().__init__()
        per = args.layers // par.pp
        self.layers = nn.ModuleList(
            Layer(args, par, f"layers.{i}", f"layers.{par.pp_rank * per + i}") for i in range(per))
        self.final_norm = RMSNorm(args, par, "final_norm") if par.last else None

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.final_norm(x) if self.final_norm is not None else x


# ---- pipeline hand-off -------------------------------------------------------------------------

def partial_p2p(t, par):
    """Whether this P2P goes Paddle's partial way (the bug): only when it is switched on and the
    tensor divides into tp flat chunks (Paddle falls back to a full send otherwise)."""
    return par.bug == "partial-p2p" and par.tp > 1 and t.numel() % par.tp == 0


def send(t, par, dst):
    t = t.detach().contiguous()
    if partial_p2p(t, par):
        t = t.reshape(-1).chunk(par.tp)[par.tp_rank].contiguous()  # flat chunk tp_rank
    dist.send(t, dst)


def recv(shape, par, src, args):
    buf = torch.empty(shape, dtype=args.dtype, device=par.device)
    if not partial_p2p(buf, par):
        dist.recv(buf, src)
        return buf
    chunk = torch.empty(buf.numel() // par.tp, dtype=args.dtype, device=par.device)
    dist.recv(chunk, src)
    parts = [torch.empty_like(chunk) for _ in range(par.tp)]
    dist.all_gather(parts, chunk, group=par.tp_group)  # the receivers rebuild "the" tensor
    return torch.cat(parts).view(shape)


# ---- one training step ----------------------------------------------------------------------

def global_inputs(args):
    x = init_global(args, "input/x", [args.seq, args.batch, args.hidden], 1.0)
    target = init_global(args, "input/target", [args.seq, args.batch, args.hidden], 1.0)
    return x.to(args.dtype), target.to(args.dtype)


def train_step(args, par, model, dumper, m):
    """GPipe over m micro-batches: all forwards, then all backwards; then the TP all-reduce of
    the replicated (sequence-parallel) parameters' grads."""
    x, target = global_inputs(args)
    mb = args.batch // m
    boundary = [args.seq // par.tp, mb, args.hidden]
    prev, nxt = par.rank - par.tp, par.rank + par.tp
    inputs, outputs = [], []
    for j in range(m):
        ctx = dumper.microbatch(j) if m > 1 else contextlib.nullcontext()
        with ctx:
            if par.first:
                inp = split(x[:, j * mb:(j + 1) * mb].contiguous(), par).to(par.device)
                dumper.input("x", inp, "tp=shard(0)")
            else:
                inp = recv(boundary, par, prev, args).requires_grad_()
            out = model(inp)
            if par.last:
                full = GatherReplicated.apply(out, par)
                dumper.act("output", full)
                tgt = target[:, j * mb:(j + 1) * mb].contiguous().to(par.device)
                dumper.input("target", tgt)
                out = F.mse_loss(full, tgt) / m  # the batch mean is the mean of the mb means
                dumper.loss("main", out, "mb=partial" if m > 1 else "")
            else:
                send(out, par, nxt)
        inputs.append(inp)
        outputs.append(out)
    for j in range(m):
        if par.last:
            outputs[j].backward()
        else:
            outputs[j].backward(recv(boundary, par, nxt, args))
        if not par.first:
            send(inputs[j].grad, par, prev)
    finalize_grads(model, par)


def finalize_grads(model, par):
    """Megatron's _allreduce_non_tensor_model_parallel_grads: SUM over TP for the replicated
    parameters that see only this rank's sequence shard."""
    if par.tp == 1:
        return
    for name, p in model.named_parameters():
        if not getattr(p, "sequence_parallel", False):
            continue
        if par.bug == "no-norm-allreduce" and name.endswith("norm.weight"):
            continue  # the bug: the norm weights were never marked/hooked
        dist.all_reduce(p.grad, group=par.tp_group)


def run(args, par, bug, m, out_dir):
    par.bug = bug
    per = args.layers // par.pp
    model = Stage(args, par)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    dumper = sd.Dumper(
        out_dir, mesh={"pp": par.pp, "tp": par.tp}, rank=par.rank, world=par.pp * par.tp,
        producer="torch", seed=args.seed, steps={args.dump_step},
        microbatches=m if m > 1 else None, mb_dim=1,
        rename=[sd.layer_offset(par.pp_rank * per)], order="layers",
        extra={"example": "python/examples/megatron_block.py", "bug": bug, "torch": torch.__version__,
               "backend": args.backend if par.pp * par.tp > 1 else "none", "device": str(par.device),
               "shape": f"seq={args.seq},batch={args.batch},hidden={args.hidden},ffn={args.ffn},"
                        f"layers={args.layers},microbatches={m},dtype={args.dtype}"})
    dumper.watch(model, act_place=ACT_PLACE, param_place=sd.megatron_param_place("tp"),
                 inputs=r"^layers\.\d+$")
    with dumper.activate():
        for step in range(args.steps):
            dumper.step(step)
            opt.zero_grad(set_to_none=True)
            train_step(args, par, model, dumper, m)
            dumper.save()  # after the grad all-reduce, before the update
            opt.step()


def worker(rank, args, init_method):
    world = args.tp * args.pp
    if world > 1:
        dist.init_process_group(args.backend, init_method=init_method, rank=rank, world_size=world)
    if args.device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        args.device_obj = torch.device("cuda", local)
    else:
        args.device_obj = torch.device("cpu")
    par = Par(args, rank)
    for m in args.microbatches:
        for bug in args.bugs:
            out = args.out
            if len(args.microbatches) > 1:
                out = os.path.join(out, f"mb{m}")
            if len(args.bugs) > 1:
                out = os.path.join(out, bug)
            run(args, par, bug, m, out)
            if world > 1:
                dist.barrier()
    if world > 1:
        dist.destroy_process_group()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="trace directory to write")
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--bug", default="none", help=f"one of {', '.join(BUGS)}, or several, comma-separated")
    p.add_argument("--microbatches", default="1", help="micro-batches per step (GPipe), or several, comma-separated")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--seq", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--ffn", type=int, default=16)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=1, help="training steps to run (SGD)")
    p.add_argument("--dump-step", type=int, default=0, help="the step whose tensors are dumped")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backend", choices=("gloo", "nccl"), help="default: gloo on cpu, nccl on cuda")
    args = p.parse_args(argv)
    args.bugs = args.bug.split(",")
    try:
        args.microbatches = [int(m) for m in args.microbatches.split(",")]
    except ValueError:
        p.error(f"--microbatches {args.microbatches!r}: want integers")
    for b in args.bugs:
        if b not in BUGS:
            p.error(f"--bug {b!r}: want one of {', '.join(BUGS)}")
    args.backend = args.backend or ("nccl" if args.device == "cuda" else "gloo")
    args.dtype = getattr(torch, args.dtype)
    if (args.layers % args.pp or args.ffn % args.tp or args.seq % args.tp
            or any(m < 1 or args.batch % m for m in args.microbatches)):
        p.error("layers must divide by pp, ffn and seq by tp, batch by microbatches")
    if not 0 <= args.dump_step < args.steps:
        p.error("--dump-step must be one of the --steps")
    return args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    args = parse_args(argv)
    world = args.tp * args.pp
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        if int(os.environ["WORLD_SIZE"]) != world:
            sys.exit(f"torchrun started {os.environ['WORLD_SIZE']} ranks, but tp×pp is {world}")
        worker(int(os.environ["RANK"]), args, "env://")
    elif world == 1:
        worker(0, args, None)
    else:
        mp.spawn(worker, args=(args, f"tcp://127.0.0.1:{free_port()}"), nprocs=world, join=True)


if __name__ == "__main__":
    main()
