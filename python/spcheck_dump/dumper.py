"""Dumper: collects one rank's tensors of one training step and writes its trace file."""

import contextlib
import os
import sys

from . import fileformat, names, placement
from . import fingerprint as fingerprints
from .encode import encode, is_dtensor
from .errors import DumpError

KINDS = ("input", "activation", "activation_grad", "param", "param_grad", "loss", "output")

# The logical-name prefix of each kind (docs/trace-format.md, "Conventions").
PREFIX = {
    "input": "input/",
    "param": "param/",
    "param_grad": "grad/",
    "activation": "act/",
    "activation_grad": "agrad/",
    "loss": "loss/",
    "output": "out/",
}

MB_AXIS = "mb"
_CURRENT = object()  # "the micro-batch of the enclosing microbatch() block"
_ACTIVE = []  # the dumper that record() writes to; a stack so activate() nests


class Dumper:
    """One rank's writer of an spcheck trace.

    mesh: the device mesh as {axis: size} (or (axis, size) pairs), outermost first, e.g.
      {"pp": 2, "tp": 2}; the product must be the world size. coord defaults to this rank's
      row-major position in it (the last axis varies fastest, as Megatron's tp does).
    rank, world: default to torch.distributed's, else $RANK/$WORLD_SIZE, else 0 and 1.
    steps: the training steps to capture (None = all; default step 0, the current step until
      step() is called); one selected step is written straight into out_dir, several into
      out_dir/step-NNNNNN/.
    microbatches: the number of micro-batches; adds the virtual mesh axis "mb" (listed first).
      select_microbatches limits capture to some of them. mb_dim: the dim a micro-batch splits
      (e.g. the batch dim); tensors recorded inside microbatch(j) then get "mb=shard(mb_dim)"
      unless their placement names mb already.
    stage_axis: the pipeline axis; every tensor gets "<stage_axis>=stage" unless its placement
      names the axis, since under PP each stage holds its own layers only.
    rename: name-map rules, see names.compile_rules (e.g. names.layer_offset for stage-local
      layer indices); applied to every logical name.
    order: "sequence" (per-rank recording order), "layers" (names.LayerOrder: equal across
      pipeline stages and the reference), or a callable(name, kind) -> int.
    repeat: what a second record of the same key in one step does: "error", "first", "last".
    fingerprint: the stats-only mode: write each tensor as its fingerprint (hash, norms, a sample
      on global indices, block sketches; docs/trace-format.md) except those named in dump or
      matching dump_regex, kept in full — the bisect workflow's first run (fingerprints
      everywhere) and its targeted re-run (the tensors spcheck compare names, in full).
      samples: the sample size each tensor's fingerprint aims at.
    """

    def __init__(self, out_dir, *, mesh=None, coord=None, rank=None, world=None,
                 producer="torch", plan="", seed=None, extra=None, steps=(0,),
                 microbatches=None, select_microbatches=None, mb_dim=None, stage_axis="pp",
                 rename=(), order="sequence", layer_pattern=names.DEFAULT_LAYER_PATTERN,
                 repeat="error", fingerprint=False, dump=(), dump_regex=None,
                 samples=fingerprints.DEFAULT_SAMPLES):
        if repeat not in ("error", "first", "last"):
            raise DumpError(f"repeat={repeat!r}: want 'error', 'first' or 'last'")
        self.out_dir = os.fspath(out_dir)
        self.rank, self.world = _rank_world(rank, world)
        self.mesh = _mesh(mesh, self.world)
        self.coord = _coord(coord, self.mesh, self.rank)
        if microbatches is not None:
            if MB_AXIS in self.mesh or int(microbatches) < 1:
                raise DumpError(f"microbatches={microbatches!r}: want a count ≥ 1 and no "
                                f"{MB_AXIS!r} axis in the mesh")
            # Outermost: a micro-batch is one pass of the whole pp×tp mesh.
            self.mesh = {MB_AXIS: int(microbatches), **self.mesh}
        self._mb_selected = None if select_microbatches is None else set(select_microbatches)
        self.mb_dim = mb_dim
        self.stage_axis = stage_axis if stage_axis in self.mesh else None
        self.steps = None if steps is None else set(steps)
        self.rules = names.compile_rules(rename)
        self._order_factory = _order_factory(order, layer_pattern)
        self.repeat = repeat
        # Stats-only mode: every tensor but those dump/dump_regex name is written as its
        # fingerprint (spcheck_dump.fingerprint, docs/trace-format.md "Fingerprints").
        self._fingerprint = fingerprints.Policy(dump, dump_regex, samples) if fingerprint else None
        self.meta = {"format": fileformat.FORMAT, "version": fileformat.VERSION,
                     "rank": self.rank, "world": self.world,
                     "mesh": {"axes": list(self.mesh), "shape": list(self.mesh.values())},
                     "producer": producer}
        if self.coord:
            self.meta["coord"] = self.coord
        if plan:
            self.meta["plan"] = plan
        if seed is not None:
            self.meta["seed"] = int(seed)
        if extra:
            self.meta["extra"] = {str(k): str(v) for k, v in extra.items()}
        self._step = 0  # until step() says otherwise
        self._mb = None
        self._paused = 0
        # Activation gradients recorded by watch() are multiplied by this: a pipeline schedule
        # that scales parameter grads by 1/M runs each micro-batch's backward on its own loss,
        # so its activation grads are M times those of the step's loss (see torch.attach_stage).
        self.agrad_scale = 1.0
        self._watched = []  # torch models whose parameter grads save() captures
        self._reset()

    def _reset(self):
        self._tensors = {}  # key -> (dtype, shape, bytes)
        self._metas = {}  # key -> tensor metadata
        self._order = self._order_factory()
        self._params_seen = set()  # ids of modules whose params this step has recorded

    # ---- what is captured --------------------------------------------------------------------

    def step(self, i):
        """Starts training step i (capture happens only in selected steps). Unsaved tensors of
        the previous step are an error: call save() first."""
        if self._tensors:
            raise DumpError(f"step({i}): step {self._step} has unsaved tensors; call save() first")
        self._step = int(i)
        self._reset()
        return self

    @contextlib.contextmanager
    def microbatch(self, j):
        """Tensors recorded inside get coordinate mb=j (the dumper needs microbatches=M)."""
        if MB_AXIS not in self.mesh:
            raise DumpError("microbatch(): construct the Dumper with microbatches=M")
        if not 0 <= j < self.mesh[MB_AXIS]:
            raise DumpError(f"microbatch({j}) outside 0…{self.mesh[MB_AXIS] - 1}")
        prev, self._mb = self._mb, j
        try:
            yield self
        finally:
            self._mb = prev

    @contextlib.contextmanager
    def paused(self):
        """Nothing is recorded inside (e.g. a pipeline schedule's metadata-inference probe)."""
        self._paused += 1
        try:
            yield self
        finally:
            self._paused -= 1

    @property
    def capturing(self):
        """Whether record() keeps tensors now (selected step and micro-batch, not paused)."""
        return self._captures(self._mb)

    def _captures(self, mb):
        if self._paused:
            return False
        if self.steps is not None and self._step not in self.steps:
            return False
        return mb is None or self._mb_selected is None or mb in self._mb_selected

    # ---- recording ---------------------------------------------------------------------------

    def logical(self, name):
        """The logical name that name maps to under the rename rules."""
        return names.apply_rules(self.rules, name)

    def record(self, name, value, kind, place="", shape=None, as_dtype=None, mb=_CURRENT):
        """Records value under logical name (after renaming). kind is one of KINDS; place is a
        placement string (docs/trace-format.md); shape the global shape, inferred for even
        shards when omitted; as_dtype labels 16-bit integer bit patterns as BF16 or F16.
        Returns the tensor key, or None when this step or micro-batch is not captured."""
        if mb is _CURRENT:
            mb = self._mb
        if not self._captures(mb):
            return None
        if kind not in KINDS:
            raise DumpError(f"tensor {name!r}: kind {kind!r} is not one of {KINDS}")
        name = self.logical(name)
        if not name:
            raise DumpError("record(): empty tensor name")
        key = name if mb is None else f"{name}@mb{mb}"
        if key in self._tensors and self.repeat != "last":
            if self.repeat == "first":
                return key
            raise DumpError(f"tensor {key!r} recorded twice in step {self._step} (a module run "
                            "twice, e.g. activation recompute? construct with repeat='first')")
        if is_dtensor(value):
            value, place, shape = self._from_dtensor(key, value, place, shape)
        dtype, local, data = encode(key, value, as_dtype)
        items = self._placement(key, place, mb, local)
        tm = {"name": name, "kind": kind, "order": self._order(name, kind),
              "shape": placement.global_shape(items, self.mesh, local, shape)}
        if items:
            tm["place"] = placement.render(items)
        if mb is not None:
            tm["coord"] = {MB_AXIS: mb}
        self._tensors[key] = (dtype, local, data)
        self._metas[key] = tm
        return key

    def place_again(self, key, place):
        """Sets the placement of an already recorded tensor (e.g. once its consumer has said how
        it is laid out); the automatic mb and stage items are added as by record()."""
        tm = self._metas[key]
        local = self._tensors[key][1]
        items = self._placement(key, place, tm.get("coord", {}).get(MB_AXIS), local)
        tm["shape"] = placement.global_shape(items, self.mesh, local)
        tm.pop("place", None)
        if items:
            tm["place"] = placement.render(items)

    def _from_dtensor(self, key, t, place, shape):
        """A DTensor's local tensor, its own placement (plus the items of place on axes its mesh
        lacks, e.g. pp=stage) and its global shape."""
        from . import torch as sdt
        local, own, gshape = sdt.dtensor_local(f"tensor {key!r}", t)
        if shape is not None and list(shape) != gshape:
            raise DumpError(f"tensor {key!r}: shape={list(shape)}, but the DTensor's global shape "
                            f"is {gshape}")
        mine = placement.parse(own)
        merged = list(mine)
        for a in placement.parse(place):
            same = [m for m in mine if m.axis == a.axis]
            if same and str(same[0]) != str(a):
                raise DumpError(f"tensor {key!r}: place {str(a)!r} contradicts the DTensor's own "
                                f"{str(same[0])!r} (leave place empty: it is read from the tensor)")
            if not same:
                merged.append(a)
        return local, placement.render(merged), gshape

    def _placement(self, key, place, mb, local):
        try:
            items = placement.parse(place)
            if mb is not None and self.mb_dim is not None and not placement.names_axis(items, MB_AXIS):
                items += placement.parse(f"{MB_AXIS}=shard({self.mb_dim})")
            if self.stage_axis and not placement.names_axis(items, self.stage_axis):
                items += placement.parse(f"{self.stage_axis}=stage")
            placement.check(items, self.mesh, local)
        except DumpError as e:
            raise DumpError(f"tensor {key!r}: {e}") from None
        return items

    def input(self, name, value, place="", **kw):
        return self.record(PREFIX["input"] + name, value, "input", place, **kw)

    def param(self, name, value, place="", **kw):
        return self.record(PREFIX["param"] + name, value, "param", place, **kw)

    def grad(self, name, value, place="", **kw):
        return self.record(PREFIX["param_grad"] + name, value, "param_grad", place, **kw)

    def act(self, name, value, place="", **kw):
        return self.record(PREFIX["activation"] + name, value, "activation", place, **kw)

    def agrad(self, name, value, place="", **kw):
        return self.record(PREFIX["activation_grad"] + name, value, "activation_grad", place, **kw)

    def loss(self, name, value, place="", **kw):
        return self.record(PREFIX["loss"] + name, value, "loss", place, **kw)

    def output(self, name, value, place="", **kw):
        return self.record(PREFIX["output"] + name, value, "output", place, **kw)

    @classmethod
    def from_device_mesh(cls, out_dir, device_mesh, **kw):
        """A Dumper whose mesh axes, sizes and this rank's coordinates are the DeviceMesh's (a
        mesh over the whole world, with mesh_dim_names); other arguments as the constructor's."""
        from . import torch as sdt
        mesh, coord = sdt.mesh_of(device_mesh)
        return cls(out_dir, mesh=mesh, coord=coord, **kw)

    def attach_stage(self, stage, schedule=None):
        """Records a torch.distributed.pipelining stage's micro-batches and loss: see
        spcheck_dump.torch.attach_stage."""
        from . import torch as sdt
        return sdt.attach_stage(self, stage, schedule)

    def watch(self, model, **kw):
        """Hooks a torch module: see spcheck_dump.torch_hooks.watch."""
        from .torch_hooks import watch
        return watch(self, model, **kw)

    # ---- writing -----------------------------------------------------------------------------

    def directory(self):
        """Where this step's file goes."""
        if self.steps is not None and len(self.steps) == 1:
            return self.out_dir
        return os.path.join(self.out_dir, f"step-{self._step:06d}")

    def save(self):
        """Captures the grads of watched models, writes this step's file and clears it. Call it
        after the gradient reductions (TP/DP all-reduce) and before the grads are zeroed.
        Returns the path, or None when the step is not captured."""
        if self.steps is not None and self._step not in self.steps:
            return None
        for w in self._watched:
            w.capture_grads()
        # The step, so that `spcheck compare --step N` can check a one-step dump is step N.
        meta = dict(self.meta, tensors=self._metas,
                    extra=dict(self.meta.get("extra", {}), step=str(self._step)))
        tensors = self._tensors
        if self._fingerprint is not None:
            meta, tensors = fingerprints.apply(meta, tensors, self._fingerprint)
        path = fileformat.write(self.directory(), self.rank, meta, tensors)
        self._reset()
        return path

    # ---- the module-level record() -----------------------------------------------------------

    @contextlib.contextmanager
    def activate(self):
        """Makes spcheck_dump.record() (callable from deep inside model code) write here."""
        _ACTIVE.append(self)
        try:
            yield self
        finally:
            _ACTIVE.remove(self)


def active():
    """The innermost activated Dumper, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def record(name, value, kind, place="", **kw):
    """Dumper.record on the active dumper; does nothing (returns None) when none is active, so
    instrumented model code runs unchanged without one."""
    d = active()
    return d.record(name, value, kind, place, **kw) if d else None


def _rank_world(rank, world):
    if rank is not None and world is not None:
        rank, world = int(rank), int(world)
    else:
        dist = _torch_distributed()
        if dist is not None:
            r, w = dist.get_rank(), dist.get_world_size()
        else:
            r, w = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        rank = r if rank is None else int(rank)
        world = w if world is None else int(world)
    if world < 1 or not 0 <= rank < world:
        raise DumpError(f"rank {rank} is outside world {world}")
    return rank, world


def _torch_distributed():
    """torch.distributed when the caller has initialised it (torch is never imported here)."""
    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None) if torch else None
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


def _mesh(mesh, world):
    items = list((mesh or {}).items()) if isinstance(mesh, dict) or mesh is None else list(mesh)
    out = {}
    for axis, size in items:
        if placement._AXIS_RE.match(str(axis)) is None or axis in out or int(size) < 1:
            raise DumpError(f"mesh {mesh!r}: axis {axis!r} is not a valid, unique name with size ≥ 1")
        out[axis] = int(size)
    product = 1
    for s in out.values():
        product *= s
    if product != world:
        raise DumpError(f"mesh {out} has {product} coordinates but the world has {world} ranks")
    return out


def _coord(coord, mesh, rank):
    if coord is None:
        coord, rest = {}, rank
        for axis in reversed(list(mesh)):
            coord[axis], rest = rest % mesh[axis], rest // mesh[axis]
        return {a: coord[a] for a in mesh}
    coord = {str(a): int(c) for a, c in coord.items()}
    for axis, c in coord.items():
        if axis not in mesh or not 0 <= c < mesh[axis]:
            raise DumpError(f"coord {coord}: {axis}={c} is not a coordinate of mesh {mesh}")
    return coord


def _order_factory(order, layer_pattern):
    if order == "sequence":
        return names.SequenceOrder
    if order == "layers":
        return lambda: names.LayerOrder(layer_pattern)
    if callable(order):
        return lambda: order
    raise DumpError(f"order={order!r}: want 'sequence', 'layers' or a callable(name, kind)")
