"""PyTorch 2.x adapters: placements read from the framework's own metadata, never typed by hand.

- DTensor: each tensor's placements (parameter, gradient and activation separately) and global
  shape become the trace's (dtensor_local; Dumper.record calls it for every DTensor).
- DeviceMesh: mesh_of / Dumper.from_device_mesh take axes, sizes and this rank's coordinates.
- TP plans: plan_placements reads a torch plan ({fqn: ColwiseParallel(), ...}, as given to
  parallelize_module) or HF's (model.tp_plan, style names) and says where the plain local
  tensors of each planned module lie — output, input, and the gradient of each (watch(plan=)).
- torch.distributed.pipelining: attach_stage records under the micro-batch the schedule runs,
  skips the metadata-inference probe, and records each micro-batch's loss.

torch is imported lazily: importing spcheck_dump never imports it.
"""

import contextlib
import fnmatch
import sys

from . import encode
from .errors import DumpError

_REDUCE_OPS = ("sum", "avg", "max", "min")


def _spec(p, ndim, what):
    """One DTensor placement as a spcheck spec (docs/trace-format.md, "How framework layouts map
    onto it")."""
    cls = type(p).__name__
    if cls == "_StridedShard":
        return f"shard({p.dim % ndim},segments={int(p.split_factor)})"
    if p.is_shard():
        return f"shard({p.dim % ndim})"
    if p.is_replicate():
        return "replicate"
    if p.is_partial() and cls == "Partial" and getattr(p, "reduce_op", "sum") in _REDUCE_OPS:
        op = getattr(p, "reduce_op", "sum")
        return "partial" if op == "sum" else f"partial({op})"
    raise DumpError(f"{what}: DTensor placement {p!r} has no spcheck equivalent (supported: "
                    "Shard, _StridedShard, Replicate, Partial(sum|avg|max|min))")


def placement_string(placements, mesh_dim_names, ndim, what):
    """A DTensor's placements (one per mesh dim, outermost first) as a placement string."""
    if mesh_dim_names is None:
        raise DumpError(f"{what}: its DeviceMesh has no dim names; build it with "
                        "init_device_mesh(..., mesh_dim_names=(...)) naming the dumper's axes")
    return ",".join(f"{axis}={_spec(p, ndim, what)}" for axis, p in zip(mesh_dim_names, placements))


def dtensor_local(what, t):
    """(local tensor, placement string, global shape) of a DTensor."""
    place = placement_string(t.placements, t.device_mesh.mesh_dim_names, t.ndim, what)
    return t.to_local(), place, list(t.shape)


def mesh_of(device_mesh):
    """({axis: size}, {axis: coordinate}) of a DeviceMesh with named dims, outermost first."""
    names = device_mesh.mesh_dim_names
    if names is None:
        raise DumpError("the DeviceMesh has no dim names: build it with "
                        "init_device_mesh(..., mesh_dim_names=(...))")
    coord = device_mesh.get_coordinate()
    if coord is None:
        raise DumpError("this rank is not in the DeviceMesh")
    return dict(zip(names, device_mesh.shape)), dict(zip(names, coord))


# ---- TP plans ---------------------------------------------------------------------------------


class Placed:
    """Where a planned module's plain local tensors lie along the TP axis, as DTensor
    placements (None: not a plain tensor, or untouched by the style): output, what the style
    hands out; input, the first input as the module's own forward sees it; consumes, the
    layouts the style declares for the plain tensors it is given ({position or keyword:
    placement}) — in torch TP a plain local tensor's layout is what its consumer declares."""

    __slots__ = ("output", "input", "consumes")

    def __init__(self, output=None, input=None, consumes=None):
        self.output, self.input, self.consumes = output, input, consumes or {}


def _first(layouts):
    """The first placement of a style's layouts (torch keeps tuples, HF single placements)."""
    if isinstance(layouts, (tuple, list)):
        return layouts[0] if layouts else None
    return layouts


def _style_placed(style):
    """Placed for one ParallelStyle (torch's or HF's: both keep input_layouts,
    output_layouts, desired_*_layouts and use_local_output)."""
    cls = type(style).__name__
    consumes = {}
    given = getattr(style, "input_layouts", None)
    if cls == "SequenceParallel":
        given = _first(getattr(style, "sequence_sharding", None)) or _shard_placement(
            getattr(style, "sequence_dim", 1))
    for i, p in enumerate(given if isinstance(given, (tuple, list)) else [given]):
        if p is not None:
            consumes[i] = p
    consumes.update({k: v for k, v in (getattr(style, "input_kwarg_layouts", None) or {}).items()
                     if v is not None})
    if cls == "PrepareModuleOutput":
        consumes = {}
    if not getattr(style, "use_local_output", True):
        return Placed(consumes=consumes)  # it hands out DTensors: read from the tensors
    out = _first(getattr(style, "desired_output_layouts", None)) or _first(getattr(style, "output_layouts", None))
    if cls == "SequenceParallel":
        out = _first(getattr(style, "sequence_sharding", None))
        if out is None:
            out = _shard_placement(getattr(style, "sequence_dim", 1))
    inp = _first(getattr(style, "desired_input_layouts", None)) or _first(getattr(style, "input_layouts", None))
    if cls == "PackedColwiseParallel":  # HF: each rank's output is its chunk of every segment
        from torch.distributed.tensor.placement_types import _StridedShard
        out = _StridedShard(-1, split_factor=int(getattr(style, "split_factor", 2)))
    if cls in ("PrepareModuleInput",):
        out = None  # the module's own output is untouched by the style
    if cls in ("PrepareModuleOutput",):
        inp = None
    return Placed(output=out, input=inp, consumes=consumes)


def _shard_placement(dim):
    from torch.distributed.tensor import Shard
    return Shard(dim)


def _hf_styles():
    for mod in ("transformers.distributed.tensor_parallel", "transformers.integrations.tensor_parallel"):
        styles = getattr(sys.modules.get(mod) or _try_import(mod), "ALL_PARALLEL_STYLES", None)
        if styles is not None:
            return styles
    raise DumpError("an HF tp_plan names styles by string, but transformers' ALL_PARALLEL_STYLES "
                    "cannot be imported")


def _try_import(mod):
    try:
        __import__(mod)
    except ImportError:
        return None
    return sys.modules[mod]


def _matches(pattern, name):
    """torch's plan matching: fnmatch atom by atom ("layers.*.mlp" matches "layers.3.mlp")."""
    pa, na = pattern.split("."), name.split(".")
    return len(pa) == len(na) and all(fnmatch.fnmatchcase(n, p) for p, n in zip(pa, na))


def plan_of(model, plan=None):
    """The plan to read: plan itself, or an HF model's own (model.tp_plan)."""
    if plan is not None:
        return plan
    hf = getattr(model, "tp_plan", None) or getattr(model, "_tp_plan", None)
    if not hf:
        raise DumpError("watch(plan=...): no plan given and the model has no tp_plan")
    return hf


def plan_placements(model, plan=None):
    """{module name: Placed} for every module of model that plan names. plan: {fqn pattern:
    ParallelStyle} as given to parallelize_module(model, mesh, plan), a list of (module, plan)
    pairs as given to several parallelize_module calls on submodules, or HF's {pattern: style
    name}; None reads model.tp_plan."""
    plan = plan_of(model, plan)
    if isinstance(plan, (list, tuple)):
        where = {id(mod): name for name, mod in model.named_modules()}
        out = {}
        for mod, sub in plan:
            if id(mod) not in where:
                raise DumpError(f"watch(plan=...): a {type(mod).__name__} given with a plan is not "
                                "a submodule of the watched model")
            root = where[id(mod)]
            for name, placed in plan_placements(mod, sub).items():
                out[f"{root}.{name}" if root and name else root or name] = placed
        return out
    out = {}
    names = [n for n, _ in model.named_modules()]
    for pattern, style in plan.items():
        if isinstance(style, str):
            style = _hf_styles()[style]
        placed = _style_placed(style)
        hits = [n for n in names if _matches(pattern, n)]
        # HF plans name modules relative to the base model or to the top model.
        if not hits:
            hits = [n for n in names if any(_matches(pattern, n.split(".", k)[-1]) for k in (1,))]
        for n in hits:
            out[n] = placed
    return out


def spec_string(p, ndim):
    """A DTensor placement object (from a plan) as a spec for a tensor of ndim dims."""
    return _spec(p, ndim, "plan") if p is not None else None


# ---- torch.distributed.pipelining -------------------------------------------------------------


def attach_stage(dumper, stage, schedule=None):
    """Records a PipelineStage's forward under the micro-batch the schedule runs (the dumper
    needs microbatches=M) and skips the schedule's metadata-inference probe. With the schedule,
    also records each micro-batch's loss as loss/main (mb=partial(avg): the step's loss is their
    mean) and, when the schedule scales grads by 1/M (scale_grads, the default), records
    activation gradients scaled alike, so they are those of the step's loss. Returns a handle
    with .remove()."""
    handles = []
    last = {"mb": None, "probe": False}  # the stage's latest forward: the loss follows it
    if hasattr(stage, "register_forward_context"):
        @contextlib.contextmanager
        def context(info):
            last.update(mb=info.microbatch_index, probe=info.is_metadata_inference)
            if info.is_metadata_inference:
                with dumper.paused():
                    yield
            else:
                with dumper.microbatch(info.microbatch_index):
                    yield
        handles.append(stage.register_forward_context(context))
    else:  # older torch: wrap the stage's own per-chunk forward
        orig = stage.forward_one_chunk

        def forward_one_chunk(fwd_chunk_id, *args, **kwargs):
            last.update(mb=fwd_chunk_id, probe=False)
            with dumper.microbatch(fwd_chunk_id):
                return orig(fwd_chunk_id, *args, **kwargs)
        stage.forward_one_chunk = forward_one_chunk
        handles.append(_Restore(stage, "forward_one_chunk"))
    if schedule is not None:
        m = dumper.mesh.get("mb")
        if getattr(schedule, "scale_grads", False) and m:
            dumper.agrad_scale = 1.0 / m
        loss_fn = schedule._loss_fn

        def recording_loss(*args, **kwargs):
            # Schedules compute a micro-batch's loss right after its forward on the last stage.
            loss = loss_fn(*args, **kwargs)
            if not last["probe"] and last["mb"] is not None:
                dumper.loss("main", loss, "mb=partial(avg)", mb=last["mb"])
            return loss
        schedule._loss_fn = recording_loss
        handles.append(_Restore(schedule, "_loss_fn", loss_fn))
    return _Handles(handles)


class _Restore:
    def __init__(self, obj, attr, value=None):
        self.obj, self.attr, self.value = obj, attr, value

    def remove(self):
        if self.value is None:
            self.obj.__dict__.pop(self.attr, None)
        else:
            setattr(self.obj, self.attr, self.value)


class _Handles:
    def __init__(self, handles):
        self.handles = handles

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def is_dtensor(t):
    return encode.is_dtensor(t)
