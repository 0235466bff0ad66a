"""Fingerprints: a stats-only dump that stores, per tensor, what spcheck's verdict needs instead of
its data (docs/trace-format.md, "Fingerprints"): an equality hash keyed by global element index,
non-finite count, Σx, Σx², Σ|x|, max|x|, a sample of elements drawn by the counter RNG on global
indices (the same elements on every rank and in the single-device reference, with no
coordination) and per-block sketches along every dim. numpy implementation of trace.ComputeFingerprint.

    d = Dumper(out, ..., fingerprint=True, dump=["act/layers.3.output"])   # the rest fingerprinted

or apply(meta, tensors, policy) on a rendered step, as Dumper.save() does.
"""

import hashlib
import re

from . import placement as pl
from .errors import DumpError

DEFAULT_SAMPLES = 1024  # trace.DefaultSamples
SKETCH_BLOCKS = 16  # trace.SketchBlocks
FINGERPRINT_VERSION = 2  # trace.FingerprintVersion
_GOLDEN = 0x9E3779B97F4A7C15
_COUNTER = 0xD1B54A32D192ED03  # tensor.RNG's counter multiplier
_LANE1 = 0xD1B54A32D192ED03  # trace.hashLane1
_STAT_FIELDS = 4


def _np():
    try:
        import numpy as np
    except ImportError:
        raise DumpError("fingerprints need numpy (pip install numpy)") from None
    return np


def splitmix64(z):
    """tensor.SplitMix64 on a numpy uint64 array (wrapping arithmetic)."""
    np = _np()
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sample_key(name):
    """tensor.NewRNG(0, name)'s key: FNV-1a-64 of the name."""
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def sample_threshold(n, samples):
    """⌊S·2⁶⁴/n⌋ (every element when n ≤ S), as trace.SampleThreshold."""
    if n <= samples:
        return (1 << 64) - 1
    return max(0, (samples << 64) // n)


class Policy:
    """Which tensors a fingerprint dump keeps in full: those named, or matching regex."""

    def __init__(self, dump=(), dump_regex=None, samples=DEFAULT_SAMPLES):
        self.dump = set(dump)
        self.regex = re.compile(dump_regex) if dump_regex else None
        if int(samples) < 1:
            raise DumpError(f"samples={samples!r}: want at least 1")
        self.samples = int(samples)

    def full(self, name):
        return name in self.dump or (self.regex is not None and self.regex.search(name) is not None)


def _segment_lengths(a, n):
    if not a.segments:
        return [n]
    if len(a.segments) == 1:
        k = a.segments[0]
        c = -(-n // k)
        return [max(0, min((j + 1) * c, n) - min(j * c, n)) for j in range(k)]
    if sum(a.segments) != n:
        raise DumpError(f"{a}: the segments add up to {sum(a.segments)} rows, but the dim has {n}")
    return list(a.segments)


def _cut(region, lo, hi, out):
    off = 0
    for s_lo, s_hi in region:
        a, b = max(lo, off), min(hi, off + s_hi - s_lo)
        if a < b:
            if out and out[-1][1] == s_lo + a - off:
                out[-1] = (out[-1][0], s_lo + b - off)
            else:
                out.append((s_lo + a - off, s_lo + b - off))
        off += s_hi - s_lo
    return out


def spans(items, mesh, coord, global_shape):
    """Per dim, the global runs [lo, hi) whose concatenation this rank's piece stores (outer
    splits first), as trace.PieceSpans. coord maps every sharding axis to this piece's index."""
    out = []
    for d, g in enumerate(global_shape):
        runs = [(0, g)]
        for a in items:
            if a.kind != "shard" or a.dim != d:
                continue
            parts, i = mesh[a.axis], coord[a.axis]
            n = sum(hi - lo for lo, hi in runs)
            segs = _segment_lengths(a, n)
            if len(segs) == 1:
                c = a.block or -(-n // parts)
                runs = _cut(runs, min(i * c, n), min((i + 1) * c, n), [])
            else:
                new, off = [], 0
                for m in segs:
                    c = -(-m // parts)
                    new = _cut(runs, off + min(i * c, m), off + min((i + 1) * c, m), new)
                    off += m
                runs = new
        out.append(runs)
    return out


_BITS = {"F64": ("<u8", 8), "F32": ("<u4", 4), "BF16": ("<u2", 2), "F16": ("<u2", 2), "I64": ("<u8", 8), "I32": ("<u4", 4)}


def _values(np, dtype, bits):
    if dtype == "F64":
        return bits.view("<f8").astype(np.float64)
    if dtype == "F32":
        return bits.view("<f4").astype(np.float64)
    if dtype == "F16":
        return bits.view("<f2").astype(np.float64)
    if dtype == "BF16":
        return (bits.astype(np.uint32) << np.uint32(16)).view("<f4").astype(np.float64)
    if dtype == "I64":
        return bits.view("<i8").astype(np.float64)
    return bits.view("<i4").astype(np.float64)


def compute(name, dtype, data, local_shape, global_shape, runs, samples=DEFAULT_SAMPLES):
    """Fingerprints one piece of logical tensor name: data, its canonical bytes in dtype, of
    local shape local_shape (padding rows included); runs as spans() gives them. Returns
    (fingerprint metadata dict without shape, record as a float64 numpy array)."""
    np = _np()
    code, size = _BITS[dtype]
    local = [int(x) for x in local_shape]
    glob = [int(x) for x in global_shape]
    scalar = not glob
    if scalar:
        local, glob, runs = [1], [1], [[(0, 1)]]
    raw = np.frombuffer(data, dtype=code).reshape(local) if local else np.frombuffer(data, dtype=code)
    rows = [np.concatenate([np.arange(lo, hi) for lo, hi in r]) if r else np.zeros(0, np.int64) for r in runs]
    box = tuple(len(r) for r in rows)
    bits = raw[tuple(slice(0, b) for b in box)].astype(np.uint64)
    gstrides = [int(np.prod(glob[d + 1:])) for d in range(len(glob))]
    g = np.zeros(box, dtype=np.uint64)
    for d, r in enumerate(rows):
        shape = [1] * len(box)
        shape[d] = len(r)
        g = g + (r.astype(np.uint64) * np.uint64(gstrides[d])).reshape(shape)
    bits, g = bits.reshape(-1), g.reshape(-1)
    with np.errstate(over="ignore"):
        h0 = splitmix64(bits ^ splitmix64(g))
        h1 = splitmix64(h0 ^ np.uint64(_LANE1))
        lanes = [int(h0.sum(dtype=np.uint64)), int(h1.sum(dtype=np.uint64))]
        key = np.uint64(sample_key(name))
        u = splitmix64(key + g * np.uint64(_COUNTER))
    n = int(np.prod(glob))
    v = _values(np, dtype, bits.astype(code))
    sel = u < np.uint64(min(sample_threshold(n, samples), (1 << 64) - 1))
    order = np.argsort(g[sel], kind="stable")
    idx, vals = g[sel][order], v[sel][order]
    finite = np.isfinite(v)
    fv = np.where(finite, v, 0.0)
    blocks = [min(gd, SKETCH_BLOCKS) for gd in glob]
    sketch = []
    fvb = fv.reshape(box)
    for d, r in enumerate(rows):
        b = blocks[d]
        k = (r.astype(np.int64) * b) // glob[d]
        axes = tuple(a for a in range(len(box)) if a != d)
        s = np.bincount(k, weights=fvb.sum(axis=axes), minlength=b) if len(r) else np.zeros(b)
        q = np.bincount(k, weights=(fvb * fvb).sum(axis=axes), minlength=b) if len(r) else np.zeros(b)
        sketch += [s, q]
    stats = [fv.sum(), (fv * fv).sum(), np.abs(fv).sum(), np.abs(fv).max() if fv.size else 0.0]
    if scalar:
        blocks, sketch = [], []
    record = np.concatenate([np.array(stats, np.float64), idx.astype(np.float64), vals] + sketch)
    hash_hex = f"{lanes[0]:016x}{lanes[1]:016x}"
    meta = {"dtype": dtype, "hash": hash_hex, "nonfinite": int((~finite).sum()),
            "samples": int(idx.size), "blocks": blocks}
    return meta, record


def _rank_coord(meta):
    """The rank's row-major coordinate on every mesh axis (docs/trace-format.md: used where the
    file gives none and the mesh sizes multiply to the world size)."""
    axes, sizes = meta["mesh"]["axes"], meta["mesh"]["shape"]
    prod = 1
    for s in sizes:
        prod *= s
    if prod != meta["world"]:
        return {}
    out, rest = {}, meta["rank"]
    for a, s in reversed(list(zip(axes, sizes))):
        out[a], rest = rest % s, rest // s
    return out


def _worth(global_shape, dtype, samples):
    """trace.worthFingerprint: the tensor is larger than its record."""
    n = 1
    for g in global_shape:
        n *= g
    rec = _STAT_FIELDS + 2 * min(n, samples) + sum(2 * min(g, SKETCH_BLOCKS) for g in global_shape)
    return n * _BITS[dtype][1] > rec * 8


def apply(meta, tensors, policy):
    """Turns a rendered step (meta: the spcheck document; tensors: {key: (dtype, shape, bytes)})
    into its fingerprint dump, in place of the tensors policy does not keep in full. Partial
    sums, tensors without a global shape and tensors no larger than their fingerprint stay in
    full. Returns (meta, tensors)."""
    mesh = dict(zip(meta["mesh"]["axes"], meta["mesh"]["shape"]))
    out_t, metas, any_fp = {}, dict(meta["tensors"]), False
    for key, (dtype, shape, data) in tensors.items():
        tm = dict(metas[key])
        items = pl.parse(tm.get("place", ""))
        gshape = tm.get("shape")
        if (policy.full(tm["name"]) or gshape is None or any(a.kind == "partial" for a in items)
                or not _worth(gshape, dtype, policy.samples)):
            out_t[key] = (dtype, shape, data)
            continue
        coord = {**_rank_coord(meta), **meta.get("coord", {}), **tm.get("coord", {})}
        fm, record = compute(tm["name"], dtype, data, shape, gshape, spans(items, mesh, coord, gshape), policy.samples)
        if not any(a.kind == "shard" for a in items):
            fm["md5"] = hashlib.md5(data).hexdigest()
        fm["shape"] = list(shape)
        tm["fingerprint"] = fm
        metas[key] = tm
        out_t[key] = ("F64", [int(record.size)], record.astype("<f8").tobytes())
        any_fp = True
    meta = dict(meta, tensors=metas)
    if any_fp:
        meta["version"] = FINGERPRINT_VERSION
    return meta, out_t
