"""One call that instruments a torch module tree: module outputs (and chosen inputs) with their
gradients, parameter values at first use, and parameter grads when the step is saved."""

import re
import weakref

from .dumper import PREFIX


def watch(dumper, model, *, prefix="", act_place=None, param_place=None, inputs=None,
          include=None, exclude=None, act_grads=True, params=True, grads=True,
          grad_attrs=("main_grad", "grad"), plan=None, tp_axis="tp"):
    """Hooks every submodule of model into dumper and returns a Watch (call .remove() to undo).

    Names: a submodule "layers.0.fc1" of a model watched with prefix "" records
      act/layers.0.fc1         its output (tuple outputs: .0, .1, …),
      agrad/layers.0.fc1       the gradient of that output,
      act/layers.0.input       its first positional input, if the name matches `inputs`,
      param/layers.0.fc1.weight at the module's first forward of the step,
      grad/layers.0.fc1.weight  at dumper.save() (from p.main_grad, else p.grad),
    each then mapped by the dumper's rename rules (e.g. stage-local -> global layer index).
    The root module's output is not recorded: record the model's outputs and loss yourself.

    act_place, param_place: the placement of each tensor, given as one string, a dict
      {regex: placement} searched in order against the framework name (e.g. "layers.0.fc1"), or a
      callable(framework_name, tensor) -> placement. megatron_param_place() reads Megatron's
      own parameter attributes.
    DTensors (parameters, their grads, activations, activation grads) carry their own
      placement: it is read from each tensor (the dumper's mesh must name the DeviceMesh's dims).
    plan: a torch TP plan ({fqn: ColwiseParallel(), ...}, as given to parallelize_module), or
      True for an HF model's own model.tp_plan: the plain local tensors of the modules it names
      get the placement on tp_axis that the plan's style gives them (output, and the first input
      of modules matching `inputs`). Call watch() after parallelize_module / from_pretrained, so
      that these hooks see what the styles' hooks hand out.
    An activation's gradient gets the adjoint of its placement: the gradient of a partial sum
      (a row-parallel output before its reduction) is replicated, a shard's the same shard.
    inputs, include, exclude: regexes on framework module names.
    """
    w = Watch(dumper, model, prefix, _resolver(act_place), _resolver(param_place), grad_attrs)
    if plan is not None:
        from . import torch as sdt
        w.planned = sdt.plan_placements(model, None if plan is True else plan)
        w.tp_axis = tp_axis
        for mname, mod in model.named_modules():
            if w.planned.get(mname) is not None and w.planned[mname].consumes:
                # Before the style's own hook converts what the module is given.
                w.handles.append(mod.register_forward_pre_hook(
                    w.consumer_hook(mname), prepend=True, with_kwargs=True))
    inputs_re = re.compile(inputs) if inputs else None
    include_re = re.compile(include) if include else None
    exclude_re = re.compile(exclude) if exclude else None
    for mname, mod in model.named_modules():
        if include_re and not include_re.search(mname) or exclude_re and exclude_re.search(mname):
            continue
        if params:
            w.handles.append(mod.register_forward_pre_hook(w.params_hook(mname)))
        if inputs_re and inputs_re.search(mname):
            w.handles.append(mod.register_forward_pre_hook(w.input_hook(mname, act_grads)))
        if mname:
            w.handles.append(mod.register_forward_hook(w.output_hook(mname, act_grads)))
    if grads:
        dumper._watched.append(w)
    return w


class Watch:
    """The hooks of one watched model."""

    def __init__(self, dumper, model, prefix, act_place, param_place, grad_attrs):
        self.dumper, self.model, self.prefix = dumper, model, prefix
        self.act_place, self.param_place, self.grad_attrs = act_place, param_place, grad_attrs
        self.planned, self.tp_axis = {}, None  # module name -> torch.Placed, from a TP plan
        self._places = {}  # id(tensor) -> (weakref, placement or None, keys recorded under)
        self._settled = {}  # key -> placement settled after recording
        self.handles = []

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []
        if self in self.dumper._watched:
            self.dumper._watched.remove(self)

    def name(self, mname):
        return f"{self.prefix}.{mname}" if self.prefix and mname else (self.prefix or mname)

    def params_hook(self, mname):
        def hook(mod, args):
            d = self.dumper
            if not d.capturing or id(mod) in d._params_seen:
                return
            d._params_seen.add(id(mod))
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                d.record(PREFIX["param"] + self.name(full), p, "param",
                         "" if _is_dtensor(p) else self.param_place(full, p), mb=None)
        return hook

    def input_hook(self, mname, with_grad):
        def hook(mod, args):
            if args and _is_tensor(args[0]):
                self._tensor(mname + ".input", mname, args[0], with_grad, _INPUT)
        return hook

    def output_hook(self, mname, with_grad):
        def hook(mod, args, out):
            if self.planned and args and _is_tensor(args[0]) and not _is_dtensor(args[0]):
                layout = getattr(self.planned.get(mname), "input", None)
                if layout is not None:  # the input as the plan's style handed it to the module
                    self._settle(args[0], self._plan_place(layout, args[0]))
            x = args[0] if args and _is_tensor(args[0]) else None
            if _is_tensor(out):
                self._tensor(mname, mname, out, with_grad, x=x)
            elif isinstance(out, (tuple, list)):
                for i, o in enumerate(out):
                    if _is_tensor(o):
                        self._tensor(f"{mname}.{i}", mname, o, with_grad, x=x)
        return hook

    def _tensor(self, tname, mname, t, with_grad, role=None, x=None):
        d = self.dumper
        if not d.capturing:
            return
        name, mb = self.name(tname), d._mb
        place = "" if _is_dtensor(t) else self.place_of(mname, t, role, x)
        key = d.record(PREFIX["activation"] + name, _dense(t), "activation", place or "")
        if self.planned and not _is_dtensor(t):
            self._remember(t, place, key)
        if with_grad and t.requires_grad:
            def grad_hook(g):  # runs in the backward, outside the forward's microbatch() block
                gp = adjoint_place(self._settled.get(key, place) or "")
                if gp is None:
                    return
                if d.agrad_scale != 1:
                    g = g * d.agrad_scale
                d.record(PREFIX["activation_grad"] + name, _dense(g), "activation_grad",
                         "" if _is_dtensor(g) else gp, mb=mb)
            t.register_hook(grad_hook)

    def consumer_hook(self, mname):
        """A pre-hook settling the placement of the plain tensors a planned module is given:
        what its style declares (input_layouts, input_kwarg_layouts) is what they are."""
        consumes = self.planned[mname].consumes

        def hook(mod, args, kwargs):
            for where, layout in consumes.items():
                t = args[where] if isinstance(where, int) and where < len(args) else kwargs.get(where)
                if _is_tensor(t) and not _is_dtensor(t):
                    self._settle(t, self._plan_place(layout, t))
        return hook

    def _settle(self, t, place):
        """t's placement is now known: update what was recorded of it with an unknown one."""
        ref, old, keys = self._places.get(id(t), (None, None, ()))
        if ref is None or ref() is not t:
            self._places[id(t)] = (weakref.ref(t), place, [])
            return
        if old is None:
            for key in keys:
                if key is not None:
                    self.dumper.place_again(key, place)
                    self._settled[key] = place
            self._places[id(t)] = (ref, place, keys)

    def place_of(self, mname, t, role=None, x=None):
        """The placement of plain tensor t, an output (or, role _INPUT, the input) of module
        mname: act_place's when it gives one; else, with a plan, the plan's style's for the
        modules it names; else the placement of the same tensor object seen before (a module
        returning a planned child's output, e.g. an MLP returning its down projection's);
        else, when t has the shape of the module's input x, x's (element-wise modules and
        residual blocks keep their input's layout); else None: unknown until a planned module
        that consumes t declares its layout (replicated if none does by save())."""
        own = self.act_place(mname, t)
        if own or not self.planned:
            return own
        p = self.planned.get(mname)
        layout = None if p is None else (p.input if role == _INPUT else p.output)
        if layout is not None:
            return self._plan_place(layout, t)
        seen = self._known(t)
        if seen is None and role != _INPUT and x is not None and tuple(x.shape) == tuple(t.shape):
            seen = self._known(x)
        return seen

    def _plan_place(self, layout, t):
        from . import torch as sdt
        spec = sdt.spec_string(layout, t.dim())
        return "" if spec == "replicate" else f"{self.tp_axis}={spec}"

    def _remember(self, t, place, key=None):
        """Notes t's placement (None: unknown yet) and the key it was recorded under."""
        ref, old, keys = self._places.get(id(t), (None, None, []))
        if ref is None or ref() is not t:
            ref, old, keys = weakref.ref(t), None, []
        self._places[id(t)] = (ref, place if place is not None else old, keys + [key])

    def _known(self, t):
        ref, place, _ = self._places.get(id(t), (None, None, ()))
        return place if ref is not None and ref() is t else None

    def capture_grads(self):
        d = self.dumper
        self._places, self._settled = {}, {}  # tensors of this step only
        for pname, p in self.model.named_parameters():
            g = next((getattr(p, a) for a in self.grad_attrs if getattr(p, a, None) is not None), None)
            if g is not None:
                d.record(PREFIX["param_grad"] + self.name(pname), _dense(g), "param_grad",
                         "" if _is_dtensor(g) else self.param_place(pname, p), mb=None)


def megatron_param_place(tp_axis="tp"):
    """A param_place that reads Megatron-LM's parameter attributes: tensor_model_parallel with
    partition_dim -> "<tp_axis>=shard(partition_dim)"; anything else (norms, SP biases) is
    replicated across TP."""

    def place(name, p):
        if getattr(p, "tensor_model_parallel", False):
            return f"{tp_axis}=shard({int(p.partition_dim)})"
        return ""

    return place


_INPUT = "input"  # Watch.place_of's role for a module's input


def adjoint_place(place):
    """The placement of the gradient arriving at a tensor laid out as place: partial sums become
    replicated (the adjoint of a sum hands every summand the whole gradient), every other item
    stays; None when an item has no placement-only adjoint (partial avg, max, min)."""
    from . import placement
    out = []
    for a in placement.parse(place):
        if a.kind == "partial":
            if a.op != "sum":
                return None
            continue
        out.append(a)
    return placement.render(out)


def _dense(t):
    """A plain tensor made contiguous (autograd hands out expanded gradients, modules return
    views: their values are what is meant); a DTensor as it is (record converts it)."""
    return t if _is_dtensor(t) else t.contiguous()


def _is_dtensor(t):
    from .encode import is_dtensor
    return is_dtensor(t)


def _resolver(spec):
    if spec is None:
        return lambda name, t: ""
    if isinstance(spec, str):
        return lambda name, t: spec
    if isinstance(spec, dict):
        rules = [(re.compile(p), v) for p, v in spec.items()]

        def by_regex(name, t):
            for pat, v in rules:
                if pat.search(name):
                    return v(name, t) if callable(v) else v
            return ""
        return by_regex
    if callable(spec):
        return spec
    raise TypeError(f"placement spec must be a string, a dict or a callable, not {type(spec).__name__}")


def _is_tensor(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "requires_grad")
