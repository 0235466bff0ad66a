"""The placement grammar of docs/trace-format.md, checked on the Python side so that a bad
annotation fails at the line that made it, not later in the verifier.

    placement := "" | item ("," item)*
    item      := axis "=" ("replicate" | "partial" | "stage" | "shard(" dim [",block=" n] ")")
"""

import re

from .errors import DumpError

_AXIS_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SHARD_RE = re.compile(r"^shard\((\d+)(?:,block=(\d+))?\)$")


class AxisPlace:
    """The layout of a tensor along one mesh axis."""

    __slots__ = ("axis", "kind", "dim", "block")

    def __init__(self, axis, kind, dim=None, block=None):
        self.axis, self.kind, self.dim, self.block = axis, kind, dim, block

    def __str__(self):
        if self.kind != "shard":
            return f"{self.axis}={self.kind}"
        if self.block:
            return f"{self.axis}=shard({self.dim},block={self.block})"
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
    if spec in ("replicate", "partial", "stage"):
        return AxisPlace(axis, spec)
    m = _SHARD_RE.match(spec)
    if not m or int(m.group(1)) > 64 or (m.group(2) is not None and int(m.group(2)) <= 0):
        raise DumpError(
            f"placement {place!r}: axis {axis}: unknown spec {spec!r} "
            "(want replicate, partial, stage, shard(d) or shard(d,block=n))")
    return AxisPlace(axis, "shard", int(m.group(1)), int(m.group(2)) if m.group(2) else None)


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
    for a in items:
        if a.kind == "shard":
            parts[a.dim] *= mesh[a.axis]
            block[a.dim] = a.block
    if given is None:
        if any(b is not None for b in block):
            raise DumpError(f"placement {render(items)!r} has padded (block) shards: pass the "
                            "global shape= explicitly")
        return [n * p for n, p in zip(local_shape, parts)]
    given = [int(g) for g in given]
    if len(given) != len(local_shape):
        raise DumpError(f"global shape {given} and local shape {list(local_shape)} differ in rank")
    for d, g in enumerate(given):
        most = block[d] if block[d] else -(-g // parts[d])
        if g < 0 or local_shape[d] > most or (parts[d] == 1 and local_shape[d] != g):
            raise DumpError(f"local dim {d} is {local_shape[d]}, but global {given} split "
                            f"{parts[d]} ways holds at most {most}")
    return given
