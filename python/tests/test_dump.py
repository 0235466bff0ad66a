"""spcheck_dump without torch: the file format, placements, names, orders, steps, numpy.

Run from python/: python3 -m unittest
"""

import hashlib
import json
import os
import struct
import tempfile
import unittest

import spcheck_dump as sd
from spcheck_dump import names, placement

from . import reader

try:
    import numpy as np
except ImportError:  # the stdlib-only paths are still tested
    np = None

try:
    import safetensors
except ImportError:
    safetensors = None


def tmpdir(test):
    d = tempfile.TemporaryDirectory()
    test.addCleanup(d.cleanup)
    return d.name


class FileFormatTest(unittest.TestCase):
    def test_layout(self):
        """The bytes follow docs/trace-format.md: length prefix, header padded with spaces to 8,
        tensors contiguous in key order with offsets relative to the data section."""
        out = tmpdir(self)
        d = sd.Dumper(out, producer="test")
        d.act("b", 1.5)
        d.act("a", 7)
        path = d.save()
        self.assertEqual(os.path.basename(path), "rank-00000.safetensors")
        raw = reader.read_bytes(path)
        (n,) = struct.unpack_from("<Q", raw)
        self.assertEqual(n % 8, 0, "header length must be a multiple of 8")
        header = raw[8:8 + n]
        self.assertLess(len(header) - len(header.rstrip(b" ")), 8, "padding is spaces, < 8 of them")
        h = json.loads(header)
        self.assertEqual(h["act/a"], {"data_offsets": [0, 8], "dtype": "I64", "shape": []})
        self.assertEqual(h["act/b"], {"data_offsets": [8, 16], "dtype": "F64", "shape": []})
        self.assertEqual(raw[8 + n:], struct.pack("<q", 7) + struct.pack("<d", 1.5))
        meta = json.loads(h["__metadata__"]["spcheck"])
        self.assertEqual((meta["format"], meta["version"], meta["rank"], meta["world"]),
                         ("spcheck-trace", 1, 0, 1))
        self.assertEqual(meta["tensors"]["act/b"], {"name": "act/b", "kind": "activation",
                                                    "order": 0, "shape": []})

    def test_deterministic(self):
        """Same records give byte-identical files."""
        files = []
        for _ in range(2):
            d = sd.Dumper(tmpdir(self), mesh={"tp": 2}, rank=1, world=2)
            d.grad("w", 2.0)
            d.act("x", 1.0, "tp=partial")
            files.append(reader.read_bytes(d.save()))
        self.assertEqual(files[0], files[1])

    def test_atomic_write_leaves_no_temp_files(self):
        out = tmpdir(self)
        d = sd.Dumper(out)
        d.act("x", 1.0)
        path = d.save()
        self.assertEqual(os.listdir(out), ["rank-00000.safetensors"])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644, "readable by others")


@unittest.skipIf(np is None, "numpy not installed")
class NumpyRoundTripTest(unittest.TestCase):
    def dump_all(self, out):
        d = sd.Dumper(out, mesh={"pp": 2, "tp": 2}, rank=3, world=4, seed=5, plan="tp=2,pp=2",
                      extra={"device": "cpu"})
        self.arrays = {
            "act/f64": np.arange(6, dtype=np.float64).reshape(2, 3) / 7,
            "act/f32": np.array([[1.5, -2.25]], dtype=np.float32),
            "act/f16": np.array([0.1, 65504], dtype=np.float16),
            "act/i64": np.array([-(2**62), 3], dtype=np.int64),
            "act/i32": np.array([[-7], [9]], dtype=np.int32),
            "act/big": np.array([1.25, -3.5], dtype=">f8"),  # big-endian: converted, same values
        }
        places = {"act/f64": "tp=shard(1)", "act/f32": "tp=partial", "act/i32": "pp=stage,tp=shard(0)"}
        for name, a in self.arrays.items():
            d.record(name, a, "activation", places.get(name, ""))
        # bf16 as Paddle's .numpy() gives it: uint16 bit patterns, labelled.
        self.bf16 = np.array([0x3F80, 0xC040, 0x7F80, 0x0001], dtype=np.uint16)  # 1, -3, inf, tiny
        d.record("act/bf16", self.bf16, "activation", as_dtype="BF16")
        return d.save()

    def test_tiny_reader(self):
        out = tmpdir(self)
        meta, tensors, n, contiguous = reader.read(self.dump_all(out))
        self.assertTrue(contiguous)
        self.assertEqual(meta["mesh"], {"axes": ["pp", "tp"], "shape": [2, 2]})
        self.assertEqual(meta["coord"], {"pp": 1, "tp": 1}, "rank 3 of pp×tp = 2×2, tp fastest")
        self.assertEqual((meta["seed"], meta["plan"], meta["extra"]), (5, "tp=2,pp=2", {"device": "cpu", "step": "0"}),
                         "extra keeps the caller's facts and adds the step")
        for name, a in self.arrays.items():
            tm, dtype, shape, raw, vals = tensors[name]
            self.assertEqual(shape, list(a.shape), name)
            self.assertEqual(vals, [float(v) if a.dtype.kind == "f" else int(v) for v in a.ravel()], name)
            self.assertEqual(raw, a.astype(a.dtype.newbyteorder("<")).tobytes(), name)
        tm, dtype, shape, raw, vals = tensors["act/bf16"]
        self.assertEqual(dtype, "BF16")
        self.assertEqual(raw, self.bf16.tobytes(), "bf16 must be stored bit-exact")
        self.assertEqual(vals[:3], [1.0, -3.0, float("inf")])
        self.assertEqual(hashlib.md5(raw).hexdigest(), hashlib.md5(self.bf16.tobytes()).hexdigest())
        f64 = tensors["act/f64"][0]
        self.assertEqual((f64["place"], f64["shape"]), ("tp=shard(1),pp=stage", [2, 6]))
        self.assertEqual(tensors["act/i32"][0]["place"], "pp=stage,tp=shard(0)")
        self.assertEqual(tensors["act/f32"][0]["shape"], [1, 2], "partial: global = local")

    @unittest.skipIf(safetensors is None, "safetensors (PyPI) not installed")
    def test_safetensors_package_reads_it(self):
        """The real safetensors library accepts the file and gives the same bytes and values."""
        from safetensors import safe_open
        path = self.dump_all(tmpdir(self))
        _, tensors, _, _ = reader.read(path)
        got = dict(safetensors.deserialize(reader.read_bytes(path)))
        self.assertEqual(set(got), set(tensors))
        for key, t in got.items():
            self.assertEqual((t["dtype"], list(t["shape"]), bytes(t["data"])),
                             (tensors[key][1], tensors[key][2], tensors[key][3]), key)
        with safe_open(path, framework="numpy") as f:
            meta = json.loads(f.metadata()["spcheck"])
            self.assertEqual(meta["rank"], 3)
            np.testing.assert_array_equal(f.get_tensor("act/f64"), self.arrays["act/f64"])
            np.testing.assert_array_equal(f.get_tensor("act/big"), self.arrays["act/big"])

    def test_refuses(self):
        d = sd.Dumper(tmpdir(self))
        a = np.zeros((3, 4))
        cases = [
            ("non-contiguous", a.T, {}, "not C-contiguous"),
            ("uint8", np.zeros(3, np.uint8), {}, "not supported"),
            ("bool", np.zeros(3, bool), {}, "not supported"),
            ("complex", np.zeros(3, np.complex128), {}, "not supported"),
            ("uint16 unlabelled", np.zeros(3, np.uint16), {}, "as_dtype='BF16'"),
            ("relabel floats", np.zeros(3, np.float32), {"as_dtype": "BF16"}, "cannot relabel"),
        ]
        for reason, value, kw, msg in cases:
            with self.subTest(reason=reason):
                with self.assertRaisesRegex(sd.DumpError, msg) as cm:
                    d.act("x", value, **kw)
                self.assertIn("act/x", str(cm.exception), "the error names the tensor")


class PlacementTest(unittest.TestCase):
    def test_grammar(self):
        cases = [
            ("", "", "empty is replicated everywhere"),
            ("tp=shard(0)", "tp=shard(0)", "plain shard"),
            ("dp=shard(0),tp=shard(0,block=6)", "dp=shard(0),tp=shard(0,block=6)", "padded shard"),
            (" tp = partial , pp=stage", "tp=partial,pp=stage", "spaces are ignored"),
            ("dp=replicate", "dp=replicate", "explicit replicate"),
            ("tp=partial(avg)", "tp=partial(avg)", "a mean (DTensor Partial('avg'))"),
            ("tp=partial(sum)", "tp=partial", "partial(sum) is the plain partial"),
            ("dp=shard(0,segments=2),tp=shard(0)", "dp=shard(0,segments=2),tp=shard(0)",
             "strided (FSDP2+TP)"),
            ("tp=shard(0,segments=8:4:4)", "tp=shard(0,segments=8:4:4)", "fused QKV segments"),
        ]
        for place, want, reason in cases:
            with self.subTest(reason=reason):
                self.assertEqual(placement.render(placement.parse(place)), want)

    def test_bad(self):
        cases = [
            ("tp", "not axis=spec", "no spec"),
            ("tp=shard(0),tp=partial", "given twice", "axis twice"),
            ("tp=split(0)", "unknown spec", "unknown spec"),
            ("tp=shard(0,block=0)", "unknown spec", "zero block"),
            ("TP=partial", "not axis=spec", "upper-case axis"),
            ("tp=partial(mean)", "unknown spec", "unknown reduction"),
            ("tp=shard(0,segments=4:0)", "unknown spec", "empty segment"),
            ("tp=partial(max),dp=partial", "combines partial", "max beside another partial axis"),
        ]
        for place, msg, reason in cases:
            with self.subTest(reason=reason):
                with self.assertRaisesRegex(sd.DumpError, msg):
                    placement.parse(place)

    def test_against_mesh_and_shape(self):
        d = sd.Dumper(tmpdir(self), mesh={"tp": 2}, rank=0, world=2)
        with self.assertRaisesRegex(sd.DumpError, "names axis 'pp'"):
            d.act("a", _Fake([2]), "pp=stage")
        with self.assertRaisesRegex(sd.DumpError, "shards dim 1 of a rank-1"):
            d.act("b", _Fake([2]), "tp=shard(1)")
        with self.assertRaisesRegex(sd.DumpError, "pass the global shape"):
            d.act("c", _Fake([2]), "tp=shard(0,block=2)")
        with self.assertRaisesRegex(sd.DumpError, "holds at most 2"):
            d.act("d", _Fake([3]), "tp=shard(0)", shape=[3])
        self.assertIsNotNone(d.act("e", _Fake([2]), "tp=shard(0,block=2)", shape=[3]))

    def test_global_shape(self):
        mesh = {"dp": 2, "tp": 4}
        items = placement.parse("dp=shard(0),tp=shard(0)")
        self.assertEqual(placement.global_shape(items, mesh, [3, 5]), [24, 5], "two axes on one dim")
        self.assertEqual(placement.global_shape(placement.parse("tp=partial"), mesh, [3]), [3])


class _Fake:
    """A stand-in array (numpy's interface) so placement tests run without numpy."""

    def __init__(self, shape):
        import array
        self.shape = tuple(shape)
        n = 1
        for s in shape:
            n *= s
        self._data = array.array("d", [0.0] * n)
        self.__array_interface__ = {}
        self.dtype = _FakeDType()
        self.flags = {"C_CONTIGUOUS": True}
        self.strides = ()

    def tobytes(self):
        return self._data.tobytes()


class _FakeDType:
    kind, itemsize, byteorder, name = "f", 8, "=", "float64"


class MeshAndStepsTest(unittest.TestCase):
    def test_mesh_and_coord(self):
        cases = [
            ({"pp": 2, "tp": 2}, 0, {"pp": 0, "tp": 0}, "rank 0"),
            ({"pp": 2, "tp": 2}, 1, {"pp": 0, "tp": 1}, "tp varies fastest"),
            ({"pp": 2, "dp": 3, "tp": 2}, 7, {"pp": 1, "dp": 0, "tp": 1}, "three axes"),
        ]
        for mesh, rank, want, reason in cases:
            with self.subTest(reason=reason):
                n = 1
                for s in mesh.values():
                    n *= s
                self.assertEqual(sd.Dumper(tmpdir(self), mesh=mesh, rank=rank, world=n).coord, want)
        with self.assertRaisesRegex(sd.DumpError, "4 coordinates but the world has 8"):
            sd.Dumper(tmpdir(self), mesh={"pp": 2, "tp": 2}, rank=0, world=8)
        with self.assertRaisesRegex(sd.DumpError, "outside world"):
            sd.Dumper(tmpdir(self), rank=4, world=4, mesh={"tp": 4})
        with self.assertRaisesRegex(sd.DumpError, "not a coordinate"):
            sd.Dumper(tmpdir(self), mesh={"tp": 2}, rank=0, world=2, coord={"tp": 2})

    def test_rank_from_environment(self):
        old = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE")}
        self.addCleanup(lambda: [os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                                 for k, v in old.items()])
        os.environ.update(RANK="2", WORLD_SIZE="4")
        d = sd.Dumper(tmpdir(self), mesh={"tp": 4})
        self.assertEqual((d.rank, d.world, d.coord), (2, 4, {"tp": 2}))

    def test_step_selection(self):
        out = tmpdir(self)
        d = sd.Dumper(out, steps={1, 3})
        written = []
        for step in range(4):
            d.step(step)
            d.act("x", float(step))
            self.assertEqual(d.capturing, step in (1, 3))
            written.append(d.save())
        self.assertEqual([p is not None for p in written], [False, True, False, True])
        self.assertEqual(sorted(os.listdir(out)), ["step-000001", "step-000003"])
        _, tensors, _, _ = reader.read(written[3])
        self.assertEqual(tensors["act/x"][4], [3.0])

    def test_single_step_goes_to_out_dir(self):
        out = tmpdir(self)
        d = sd.Dumper(out, steps={2})
        d.step(2)
        d.act("x", 1.0)
        self.assertEqual(os.path.dirname(d.save()), out)

    def test_unsaved_step_is_an_error(self):
        d = sd.Dumper(tmpdir(self), steps=None)
        d.act("x", 1.0)
        with self.assertRaisesRegex(sd.DumpError, "unsaved tensors"):
            d.step(1)

    def test_microbatches(self):
        d = sd.Dumper(tmpdir(self), mesh={"tp": 2}, rank=1, world=2, microbatches=3,
                      select_microbatches={0, 2}, mb_dim=0)
        for j in range(3):
            with d.microbatch(j):
                d.act("h", _Fake([2, 4]))
        d.loss("main", 0.5)
        meta, tensors, _, _ = reader.read(d.save())
        self.assertEqual(meta["mesh"], {"axes": ["mb", "tp"], "shape": [3, 2]}, "mb outermost")
        self.assertEqual(meta["coord"], {"tp": 1}, "mb is per tensor, not per rank")
        self.assertEqual(sorted(tensors), ["act/h@mb0", "act/h@mb2", "loss/main"])
        tm = tensors["act/h@mb2"][0]
        self.assertEqual(tm, {"name": "act/h", "kind": "activation", "order": 0,
                              "place": "mb=shard(0)", "shape": [6, 4], "coord": {"mb": 2}})
        with self.assertRaisesRegex(sd.DumpError, "outside"):
            with d.microbatch(3):
                pass

    def test_repeat(self):
        cases = [("error", None, "error is the default"), ("first", 1.0, "keep the first"),
                 ("last", 2.0, "keep the last")]
        for policy, want, reason in cases:
            with self.subTest(reason=reason):
                d = sd.Dumper(tmpdir(self), repeat=policy)
                d.act("x", 1.0)
                if want is None:
                    with self.assertRaisesRegex(sd.DumpError, "recorded twice"):
                        d.act("x", 2.0)
                    continue
                d.act("x", 2.0)
                _, tensors, _, _ = reader.read(d.save())
                self.assertEqual(tensors["act/x"][4], [want])

    def test_module_level_record(self):
        self.assertIsNone(sd.record("act/x", 1.0, "activation"), "no active dumper: a no-op")
        d = sd.Dumper(tmpdir(self))
        with d.activate():
            self.assertIs(sd.active(), d)
            self.assertEqual(sd.record("act/x", 1.0, "activation"), "act/x")
        self.assertIsNone(sd.active())
        with self.assertRaisesRegex(sd.DumpError, "kind 'activations'"):
            d.record("act/y", 1.0, "activations")


class NamesTest(unittest.TestCase):
    def test_layer_offset(self):
        rules = names.compile_rules([sd.layer_offset(6)])
        cases = [
            ("act/layers.0.mlp.fc1", "act/layers.6.mlp.fc1", "activation"),
            ("grad/decoder.layers.11.norm.weight", "grad/decoder.layers.17.norm.weight", "nested"),
            ("act/layers.2", "act/layers.8", "name ends with the index"),
            ("act/sublayers.2.x", "act/sublayers.2.x", "not a layers component"),
            ("act/final_norm", "act/final_norm", "no layer"),
        ]
        for name, want, reason in cases:
            with self.subTest(reason=reason):
                self.assertEqual(names.apply_rules(rules, name), want)

    def test_rules_in_order(self):
        d = sd.Dumper(tmpdir(self), rename={r"^act/module\.": "act/", r"\.self_attention\.": ".attn."})
        self.assertEqual(d.logical("act/module.layers.0.self_attention.q"), "act/layers.0.attn.q")

    def test_layer_order_equal_across_stages(self):
        """Two pipeline stages computing orders alone agree with one rank holding every layer."""
        def layer(i):
            return [(f"param/layers.{i}.w", "param"), (f"act/layers.{i}", "activation")]

        def backward(i):
            return [(f"agrad/layers.{i}", "activation_grad"), (f"grad/layers.{i}.w", "param_grad")]
        whole = ([("input/x", "input")] + layer(0) + layer(1) + [("loss/main", "loss")]
                 + backward(1) + backward(0))
        stage0 = [("input/x", "input")] + layer(0) + backward(0)
        stage1 = layer(1) + [("loss/main", "loss")] + backward(1)
        ref, s0, s1 = names.LayerOrder(), names.LayerOrder(), names.LayerOrder()
        want = {n: ref(n, k) for n, k in whole}
        got = {n: s0(n, k) for n, k in stage0}
        got.update({n: s1(n, k) for n, k in stage1})
        self.assertEqual(got, want)
        self.assertEqual(sorted(want, key=want.get), [n for n, _ in whole], "execution order kept")


if __name__ == "__main__":
    unittest.main()
