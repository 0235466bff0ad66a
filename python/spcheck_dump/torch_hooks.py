"""One call that instruments a torch module tree: module outputs (and chosen inputs) with their
gradients, parameter values at first use, and parameter grads when the step is saved."""

import re

from .dumper import PREFIX


def watch(dumper, model, *, prefix="", act_place=None, param_place=None, inputs=None,
          include=None, exclude=None, act_grads=True, params=True, grads=True,
          grad_attrs=("main_grad", "grad")):
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
    inputs, include, exclude: regexes on framework module names.
    """
    w = Watch(dumper, model, prefix, _resolver(act_place), _resolver(param_place), grad_attrs)
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
                d.record(PREFIX["param"] + self.name(full), p, "param", self.param_place(full, p),
                         mb=None)
        return hook

    def input_hook(self, mname, with_grad):
        def hook(mod, args):
            if args and _is_tensor(args[0]):
                self._tensor(mname + ".input", mname, args[0], with_grad)
        return hook

    def output_hook(self, mname, with_grad):
        def hook(mod, args, out):
            if _is_tensor(out):
                self._tensor(mname, mname, out, with_grad)
            elif isinstance(out, (tuple, list)):
                for i, o in enumerate(out):
                    if _is_tensor(o):
                        self._tensor(f"{mname}.{i}", mname, o, with_grad)
        return hook

    def _tensor(self, tname, mname, t, with_grad):
        d = self.dumper
        if not d.capturing:
            return
        name, place, mb = self.name(tname), self.act_place(mname, t), d._mb
        d.record(PREFIX["activation"] + name, t, "activation", place)
        if with_grad and t.requires_grad:
            def grad_hook(g):  # runs in the backward, outside the forward's microbatch() block
                d.record(PREFIX["activation_grad"] + name, g, "activation_grad", place, mb=mb)
            t.register_hook(grad_hook)

    def capture_grads(self):
        d = self.dumper
        for pname, p in self.model.named_parameters():
            g = next((getattr(p, a) for a in self.grad_attrs if getattr(p, a, None) is not None), None)
            if g is not None:
                d.record(PREFIX["param_grad"] + self.name(pname), g, "param_grad",
                         self.param_place(pname, p), mb=None)


def megatron_param_place(tp_axis="tp"):
    """A param_place that reads Megatron-LM's parameter attributes: tensor_model_parallel with
    partition_dim -> "<tp_axis>=shard(partition_dim)"; anything else (norms, SP biases) is
    replicated across TP."""

    def place(name, p):
        if getattr(p, "tensor_model_parallel", False):
            return f"{tp_axis}=shard({int(p.partition_dim)})"
        return ""

    return place


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
