"""Renders one rank's trace file: safetensors written by hand (docs/trace-format.md).

    [8 bytes]  N, little-endian uint64: length of the JSON header
    [N bytes]  JSON header, padded with spaces to a multiple of 8
    [rest]     every tensor's raw little-endian bytes, contiguous, in key order

Output is deterministic (keys sorted, compact JSON), like the Go writer's.
"""

import json
import os
import struct
import tempfile

FORMAT = "spcheck-trace"
VERSION = 1
METADATA_KEY = "spcheck"


def file_name(rank):
    """The conventional name of rank's file in a trace directory (as trace.FileName in Go)."""
    return f"rank-{rank:05d}.safetensors"


def prefix(meta, tensors):
    """The length prefix and the padded header. meta: the spcheck metadata document (dict);
    tensors: {key: (dtype, shape, bytes)}; the data section is their bytes in sorted key order."""
    doc = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    header = {"__metadata__": {METADATA_KEY: doc}}
    off = 0
    for key in sorted(tensors):
        dtype, shape, data = tensors[key]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    hdr = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    hdr += b" " * (-len(hdr) % 8)
    return struct.pack("<Q", len(hdr)) + hdr


def render(meta, tensors):
    """The whole file as bytes."""
    return prefix(meta, tensors) + b"".join(tensors[k][2] for k in sorted(tensors))


def write(directory, rank, meta, tensors):
    """Writes the file atomically (a crashed rank never leaves half a file behind) and returns
    its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name(rank))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rank-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a trace is meant to be read by others
        with os.fdopen(fd, "wb") as f:
            f.write(prefix(meta, tensors))
            for key in sorted(tensors):  # one tensor at a time: no second copy of the dump
                f.write(tensors[key][2])
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
