"""A tiny trace reader written from docs/trace-format.md with json and struct only, independent
of spcheck_dump's writer, so the round-trip tests check the format and not the code against
itself."""

import json
import struct

# dtype -> (struct code, size); bf16 is read as its 16-bit patterns.
SIZES = {"F64": ("d", 8), "F32": ("f", 4), "I64": ("q", 8), "I32": ("i", 4), "F16": ("e", 2),
         "BF16": ("H", 2)}


def read(path):
    """Returns (meta, {key: (tensor meta, dtype, shape, raw bytes, values)}, header length)."""
    raw = read_bytes(path)
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["spcheck"])
    data = raw[8 + n:]
    tensors, ends = {}, []
    for key, t in header.items():
        b, e = t["data_offsets"]
        fmt, size = SIZES[t["dtype"]]
        vals = list(struct.unpack(f"<{(e - b) // size}{fmt}", data[b:e]))
        if t["dtype"] == "BF16":  # bf16 = the upper half of an fp32
            vals = [struct.unpack("<f", struct.pack("<I", v << 16))[0] for v in vals]
        tensors[key] = (meta["tensors"][key], t["dtype"], t["shape"], data[b:e], vals)
        ends.append((b, e))
    ends.sort()
    contiguous = all(a[1] == b[0] for a, b in zip(ends, ends[1:])) and (not ends or (
        ends[0][0] == 0 and ends[-1][1] == len(data)))
    return meta, tensors, n, contiguous


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
