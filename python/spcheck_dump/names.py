"""Name maps (framework name -> logical name) and execution-order policies."""

import re

# Where a transformer layer index sits in a logical name: "act/layers.3.mlp", "grad/layers.3".
DEFAULT_LAYER_PATTERN = r"(?:^|[/.])layers\.(\d+)(?=[.]|$)"


def compile_rules(rules):
    """rules: a sequence of (regex, replacement) pairs or a dict of them, applied in order with
    re.sub; a replacement is a string (with \\1 references) or a function of the match."""
    items = rules.items() if isinstance(rules, dict) else rules
    return [(re.compile(p), r) for p, r in items]


def apply_rules(rules, name):
    for pattern, repl in rules:
        name = pattern.sub(repl, name)
    return name


def layer_offset(offset, pattern=DEFAULT_LAYER_PATTERN):
    """A rule that adds offset to the layer index captured by pattern's group 1: a pipeline stage
    whose modules are numbered layers.0, layers.1, … locally maps them to the global indices the
    single-device reference uses (Megatron: offset = pp_rank × layers_per_stage)."""

    def shift(m):
        s, (b, e) = m.group(0), (m.start(1) - m.start(0), m.end(1) - m.start(0))
        return s[:b] + str(int(m.group(1)) + offset) + s[e:]

    return (pattern, shift)


BACKWARD_KINDS = ("activation_grad", "param_grad")


class SequenceOrder:
    """order = how many distinct logical names this rank recorded before (a name recorded again,
    e.g. for another micro-batch, keeps its first order). Right for one process holding the whole
    model; a pipeline stage's numbers are local to it."""

    def __init__(self):
        self._orders = {}

    def __call__(self, name, kind):
        return self._orders.setdefault(name, len(self._orders))


class LayerOrder:
    """An order that every pipeline stage computes alike without talking to the others, so a
    PP rank's numbers equal the single-device reference's for the same tensor:

        order = phase·10¹² + slot·10⁶ + (rank of the name within its phase and slot)

    phase is 0 for forward kinds and 1 for gradients; slot is the layer index found by
    layer_pattern (layer L is slot L+1 in the forward, slot 10⁵−L in the backward, which runs
    the layers in reverse); a name without a layer index is slot 0 when the rank has recorded no
    layer tensor of that phase yet (inputs, embeddings) and slot 2·10⁵ after (final norm, loss).
    Stages agree with the reference when each layer records its tensors in the same sequence,
    which holds when the same layer code runs in both."""

    PHASE, SLOT = 10**12, 10**6
    BACKWARD_BASE, AFTER_LAYERS = 10**5, 2 * 10**5

    def __init__(self, layer_pattern=DEFAULT_LAYER_PATTERN):
        self._re = re.compile(layer_pattern)
        self._orders = {}
        self._seen_layer = [False, False]
        self._count = {}

    def __call__(self, name, kind):
        if name in self._orders:
            return self._orders[name]
        phase = 1 if kind in BACKWARD_KINDS else 0
        m = self._re.search(name)
        if m:
            layer = int(m.group(1))
            if layer >= self.BACKWARD_BASE:
                raise ValueError(f"layer index {layer} in {name!r} is too large for LayerOrder")
            slot = layer + 1 if phase == 0 else self.BACKWARD_BASE - layer
            self._seen_layer[phase] = True
        else:
            slot = self.AFTER_LAYERS if self._seen_layer[phase] else 0
        seq = self._count.get((phase, slot), 0)
        self._count[(phase, slot)] = seq + 1
        order = phase * self.PHASE + slot * self.SLOT + seq
        self._orders[name] = order
        return order
