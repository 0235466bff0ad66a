"""spcheck_dump.fingerprint: the numpy producer of fingerprints agrees with Go's
(trace.ComputeFingerprint) and its shards combine into the whole tensor's fingerprint.

Run from python/: python3 -m unittest
"""

import json
import os
import struct
import tempfile
import unittest

try:
    import numpy as np
except ImportError:
    np = None

import spcheck_dump as sd
from spcheck_dump import fingerprint as fpr
from spcheck_dump import placement

# trace/fingerprint_test.go's goldenHash and goldenFirst.
GOLDEN_HASH = "fc42eccdac623f6e3549499258a24c7b"
GOLDEN_FIRST = [39, 73, 90, 95, 116]


def golden_tensor():
    x = (np.arange(64 * 40, dtype=np.float32).reshape(64, 40) / 7).astype(np.float32)
    x[3, 5] = np.nan
    return x


def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header.pop("__metadata__")["spcheck"])
    return meta, header, raw[8 + n:]


@unittest.skipIf(np is None, "numpy is not installed")
class FingerprintTest(unittest.TestCase):
    def test_golden(self):
        """The same hash and sample as the Go implementation for the same tensor."""
        meta, rec = fpr.compute("act/z", "F32", golden_tensor().tobytes(), [64, 40], [64, 40],
                                [[(0, 64)], [(0, 40)]], 64)
        self.assertEqual(meta["hash"], GOLDEN_HASH)
        self.assertEqual([int(g) for g in rec[4:9]], GOLDEN_FIRST)
        self.assertEqual(meta["nonfinite"], 1)

    def test_shards_combine(self):
        """Each rank fingerprints its shard alone; the hash lanes add up (mod 2^64) and the
        samples unite into the whole tensor's, for column shards, padded blocks and segments."""
        x = golden_tensor()
        whole, wrec = fpr.compute("act/z", "F32", x.tobytes(), [64, 40], [64, 40], [[(0, 64)], [(0, 40)]], 64)
        for place, mesh in [("tp=shard(1)", {"tp": 2}), ("tp=shard(0,block=24)", {"tp": 3}),
                            ("tp=shard(0,segments=24:40)", {"tp": 2})]:
            items = placement.parse(place)
            lanes, idx = [0, 0], []
            for r in range(mesh["tp"]):
                runs = fpr.spans(items, mesh, {"tp": r}, [64, 40])
                piece = x[np.concatenate([np.arange(a, b) for a, b in runs[0]])][:, np.concatenate([np.arange(a, b) for a, b in runs[1]])]
                meta, rec = fpr.compute("act/z", "F32", np.ascontiguousarray(piece).tobytes(), list(piece.shape),
                                        [64, 40], runs, 64)
                lanes[0] = (lanes[0] + int(meta["hash"][:16], 16)) % (1 << 64)
                lanes[1] = (lanes[1] + int(meta["hash"][16:], 16)) % (1 << 64)
                idx += [int(g) for g in rec[4:4 + meta["samples"]]]
            self.assertEqual(f"{lanes[0]:016x}{lanes[1]:016x}", whole["hash"], place)
            self.assertEqual(sorted(idx), [int(g) for g in wrec[4:4 + whole["samples"]]], place)

    def test_dumper_stats_only(self):
        """Dumper(fingerprint=True) writes version-2 files whose tensors are fingerprint
        records, except the names it is told to dump in full and the partial sums."""
        out = tempfile.mkdtemp()
        x = golden_tensor()
        for r in range(2):
            d = sd.Dumper(out, mesh={"tp": 2}, rank=r, world=2, producer="test", fingerprint=True,
                          dump=["act/full"], samples=64)
            d.act("x", np.ascontiguousarray(x[:, 20 * r:20 * r + 20]), place="tp=shard(1)")
            d.act("full", x)
            d.act("partial", x, place="tp=partial")
            d.save()
        meta, header, _ = read(os.path.join(out, "rank-00001.safetensors"))
        self.assertEqual(meta["version"], 2)
        fm = meta["tensors"]["act/x"]["fingerprint"]
        self.assertEqual((fm["dtype"], fm["shape"], header["act/x"]["dtype"]), ("F32", [64, 20], "F64"))
        self.assertNotIn("md5", fm)  # a shard's MD5 is not the tensor's
        for key in ("act/full", "act/partial"):
            self.assertNotIn("fingerprint", meta["tensors"][key])
            self.assertEqual(header[key]["dtype"], "F32")


if __name__ == "__main__":
    unittest.main()
