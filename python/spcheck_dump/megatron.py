"""Megatron-core adapters: the mesh from parallel_state, parameter placements from Megatron's
own attributes, layer offsets, and the fused QKV weight split into q, k and v.

Written from megatron-core's source (parallel_state's get_*_world_size / get_*_rank,
tensor_model_parallel / partition_dim / sequence_parallel parameter attributes,
get_transformer_layer_offset, Attention.get_query_key_value_tensors' grouped layout). It is
unit-tested here with stand-ins only: a real megatron-core run needs CUDA (its fused kernels and
NCCL), so it is exercised on the GPU machine.

    from spcheck_dump import megatron as sm
    d = sm.dumper("trace/cand", config)                 # mesh, coord, layer offset
    d.watch(model, param_place=sm.param_place(), act_place=sm.act_place(model, config))
    ... forward, backward, finalize_model_grads ...
    sm.record_qkv(d, model)                             # q/k/v views of every fused weight's grad
    d.save()
"""

import importlib

from . import names
from .dumper import Dumper
from .errors import DumpError
from .torch_hooks import megatron_param_place


def _ps():
    try:
        return importlib.import_module("megatron.core.parallel_state")
    except ImportError as e:
        raise DumpError(f"megatron.core is not importable: {e}") from None


def mesh_of(ps=None):
    """({axis: size}, {axis: coordinate}) from megatron.core.parallel_state: axes pp, dp, cp,
    tp (outermost first; cp only when context parallelism is on). Coordinates are given
    explicitly, so Megatron's rank order (tp fastest by default) needs no matching."""
    ps = ps or _ps()
    axes = [("pp", ps.get_pipeline_model_parallel_world_size(), ps.get_pipeline_model_parallel_rank()),
            ("dp", ps.get_data_parallel_world_size(), ps.get_data_parallel_rank())]
    if ps.get_context_parallel_world_size() > 1:
        axes.append(("cp", ps.get_context_parallel_world_size(), ps.get_context_parallel_rank()))
    axes.append(("tp", ps.get_tensor_model_parallel_world_size(), ps.get_tensor_model_parallel_rank()))
    return {a: n for a, n, _ in axes}, {a: c for a, _, c in axes}


def layer_offset(config):
    """The global index of this pipeline stage's first layer (Megatron numbers a stage's layers
    from 0): megatron.core.transformer.transformer_layer.get_transformer_layer_offset, which
    also handles uneven first/last stages and virtual stages."""
    tl = importlib.import_module("megatron.core.transformer.transformer_layer")
    return int(tl.get_transformer_layer_offset(config))


def dumper(out_dir, config, ps=None, offset=None, **kw):
    """A Dumper on Megatron's mesh, mapping stage-local layer indices (decoder.layers.i) to
    global ones, with the "layers" order (equal on every stage and in the reference)."""
    mesh, coord = mesh_of(ps)
    if offset is None:
        offset = layer_offset(config)
    kw.setdefault("order", "layers")
    rules = [names.layer_offset(offset)] + list(kw.pop("rename", []))
    return Dumper(out_dir, mesh=mesh, coord=coord, rename=rules, producer="megatron", **kw)


def param_place(tp_axis="tp"):
    """Parameters (and their grads after finalize_model_grads): tensor_model_parallel ones are
    tp=shard(partition_dim); the others — norms, row-parallel biases, sequence-parallel
    parameters, whose grads finalize_model_grads all-reduces over TP — are replicated."""
    return megatron_param_place(tp_axis)


def grad_place_before_finalize(tp_axis="tp"):
    """Grads captured before finalize_model_grads: a sequence_parallel parameter's grad is then
    still each TP rank's partial sum over its sequence shard (tp=partial)."""
    shard = megatron_param_place(tp_axis)

    def place(name, p):
        if getattr(p, "sequence_parallel", False):
            return f"{tp_axis}=partial"
        return shard(name, p)
    return place


def act_place(model, config, tp_axis="tp"):
    """Activation placements by module type, for Megatron's [s, b, h] activations: a
    column-parallel linear's output is tp=shard(2) (unless it gathers its output); a
    row-parallel linear's is reduced: tp=shard(0) under sequence parallelism (reduce-scatter),
    else replicated; any other module's output (norms, dropout, the layer) is on the residual
    stream: tp=shard(0) under sequence parallelism, else replicated. Tuple outputs (output,
    bias): the bias entry is replicated."""
    sp = bool(getattr(config, "sequence_parallel", False))
    residual = f"{tp_axis}=shard(0)" if sp else ""
    kinds = {}  # column-parallel outputs; row-parallel ones are reduced onto the residual stream
    for name, mod in model.named_modules():
        cls = type(mod).__name__
        if "ColumnParallelLinear" in cls and not getattr(mod, "gather_output", False):
            kinds[name] = f"{tp_axis}=shard(2)"

    def place(name, t):
        if t.dim() < 3:
            return ""  # a bias or a scalar riding along in a tuple output
        return kinds.get(name, residual)
    return place


def split_qkv(w, config, tp=1):
    """(q, k, v) views of a rank's piece of Megatron's fused QKV weight (or its grad).

    linear_qkv.weight is [ng·(np/ng + 2)·hn, h]: for each query group, its np/ng query heads,
    then its key head, then its value head (hn rows each). Tensor parallelism gives every rank
    whole groups (ng/tp of them), so each rank's q, k and v are row shards of the unfused
    weights: record them as tp=shard(0)."""
    ng = int(getattr(config, "num_query_groups", None) or config.num_attention_heads)
    heads, hn = int(config.num_attention_heads), int(config.kv_channels)
    if ng % tp or heads % ng:
        raise DumpError(f"fused QKV: {ng} query groups, {heads} heads over tp={tp} do not divide")
    local = ng // tp
    per = heads // ng
    g = w.reshape(local, (per + 2) * hn, *w.shape[1:])
    q = g[:, :per * hn].reshape(local * per * hn, *w.shape[1:])
    k = g[:, per * hn:(per + 1) * hn].reshape(local * hn, *w.shape[1:])
    v = g[:, (per + 1) * hn:].reshape(local * hn, *w.shape[1:])
    return q.contiguous(), k.contiguous(), v.contiguous()


def record_qkv(d, model, config, tp_axis="tp", grads=True):
    """Records every linear_qkv weight of model (and its grad) as three unfused logical tensors,
    …linear_q.weight, …linear_k.weight, …linear_v.weight, each tp=shard(0), to compare with a
    reference that keeps q, k and v apart."""
    tp = d.mesh.get(tp_axis, 1)
    for name, p in model.named_parameters():
        if not name.endswith("linear_qkv.weight"):
            continue
        base = name[: -len("linear_qkv.weight")]
        grad = getattr(p, "main_grad", None)
        for kind, value in (("param", p), ("param_grad", p.grad if grad is None else grad)):
            if value is None or (kind == "param_grad" and not grads):
                continue
            prefix = "param/" if kind == "param" else "grad/"
            for part, t in zip("qkv", split_qkv(value.detach(), config, tp)):
                d.record(f"{prefix}{base}linear_{part}.weight", t, kind, f"{tp_axis}=shard(0)", mb=None)
