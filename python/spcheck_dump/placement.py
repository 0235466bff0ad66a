"""The placement grammar of docs/trace-format.md, checked on the Python side so that a bad
annotation fails at the line that made it, not later in the verifier.

    placement := "" | item ("," item)*
    item      := axis "=" spec
    spec      := "replicate" | "stage" | "partial" ["(" op ")"]
               | "shard(" dim [",block=" n] ")" | "shard(" dim ",segments=" n (":" n)* ")"
    op        := "sum" | "avg" | "max" | "min"
"""

import re

from .errors import DumpError

_AXIS_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SHARD_RE = re.compile(r"^shard\((\d+)(?:,block=(\d+)|,segments=(\d+(?::\d+)*))?\)$")
_PARTIAL_RE = re.compile(r"^partial(?:\((sum|avg|max|min)\))?$")
MAX_SEGMENTS = 64  # as trace.maxSegments


class AxisPlace:
    """The layout of a tensor along one mesh axis. op: a partial axis's reduction ("sum",
    "avg", "max", "min"); segments: a shard's segment count (one value) or lengths."""

    __slots__ = ("axis", "kind", "dim", "block", "op", "segments")

    def __init__(self, axis, kind, dim=None, block=None, op="sum", segments=None):
        self.axis, self.kind, self.dim, self.block = axis, kind, dim, block
        self.op, self.segments = op, segments

    def __str__(self):
        if self.kind == "partial" and self.op != "sum":
            return f"{self.axis}=partial({self.op})"
        if self.kind != "shard":
            return f"{self.axis}={self.kind}"
        if self.block:
            return f"{self.axis}=shard({self.dim},block={self.block})"
        if self.segments:
            return f"{self.axis}=shard({self.dim},segments={':'.join(map(str, self.segments))})"
        return f"{self.axis}=shard({self.dim})"


def parse(place):
    """Parses a placement string into a list of AxisPlace (outermost split first)."""
    s = (place or "").replace(" ", "")
    if not s:
        return []
    items, seen = [], set()
    for item in _split_items(s):
        axis, eq, spec = item.partition("=")
        if not eq or not _AXIS_RE.match(axis):
            raise DumpError(f"placement {place!r}: item {item!r} is not axis=spec")
        if axis in seen:
            raise DumpError(f"placement {place!r}: axis {axis!r} given twice")
        seen.add(axis)
        items.append(_parse_spec(place, axis, spec))
    partial = [a for a in items if a.kind == "partial"]
    if len(partial) > 1 and any(a.op in ("max", "min") for a in partial):
        raise DumpError(f"placement {place!r} combines partial(max|min) with another partial "
                        "axis (a max or min reduction must be the only one)")
    return items


def _split_items(s):
    """Splits on commas outside parentheses."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(s[start:i])
            start = i + 1
    out.append(s[start:])
    return out


def _parse_spec(place, axis, spec):
    if spec in ("replicate", "stage"):
        return AxisPlace(axis, spec)
    p = _PARTIAL_RE.match(spec)
    if p:
        return AxisPlace(axis, "partial", op=p.group(1) or "sum")
    m = _SHARD_RE.match(spec)
    segs = [int(n) for n in m.group(3).split(":")] if m and m.group(3) else None
    if (not m or int(m.group(1)) > 64 or (m.group(2) is not None and int(m.group(2)) <= 0)
            or (segs and (0 in segs or len(segs) > MAX_SEGMENTS))):
        raise DumpError(
            f"placement {place!r}: axis {axis}: unknown spec {spec!r} (want replicate, partial, "
            "partial(sum|avg|max|min), stage, shard(d), shard(d,block=n) or "
            "shard(d,segments=n[:n…]))")
    return AxisPlace(axis, "shard", int(m.group(1)), int(m.group(2)) if m.group(2) else None,
                     segments=segs)


def render(items):
    """Prints parsed items back in the grammar."""
    return ",".join(str(a) for a in items)


def names_axis(items, axis):
    return any(a.axis == axis for a in items)


def check(items, mesh, local_shape):
    """Checks the items against the mesh (dict axis -> size) and the local shape."""
    for a in items:
        if a.axis not in mesh:
            raise DumpError(f"placement {render(items)!r} names axis {a.axis!r} that the mesh "
                            f"{list(mesh)} lacks")
        if a.kind == "shard" and a.dim >= len(local_shape):
            raise DumpError(f"placement {render(items)!r} shards dim {a.dim} of a "
                            f"rank-{len(local_shape)} tensor of shape {list(local_shape)}")


def global_shape(items, mesh, local_shape, given=None):
    """Returns the global shape: `given` after checking it against the local shape, or else the
    local shape multiplied by the number of shards on each dim. The inference assumes even
    shards (which Megatron's TP and SP require); padded (block) shards need `given`."""
    parts = [1] * len(local_shape)
    block = [None] * len(local_shape)
    segmented = [False] * len(local_shape)
    for a in items:
        if a.kind == "shard":
            parts[a.dim] *= mesh[a.axis]
            block[a.dim] = a.block
            segmented[a.dim] = segmented[a.dim] or bool(a.segments)
    if given is None:
        if any(b is not None for b in block):
            raise DumpError(f"placement {render(items)!r} has padded (block) shards: pass the "
                            "global shape= explicitly")
        return [n * p for n, p in zip(local_shape, parts)]
    given = [int(g) for g in given]
    if len(given) != len(local_shape):
        raise DumpError(f"global shape {given} and local shape {list(local_shape)} differ in rank")
    for d, g in enumerate(given):
        most = block[d] if block[d] else g if segmented[d] else -(-g // parts[d])
        if g < 0 or local_shape[d] > most or (parts[d] == 1 and local_shape[d] != g):
            raise DumpError(f"local dim {d} is {local_shape[d]}, but global {given} split "
                            f"{parts[d]} ways holds at most {most}")
    return given
