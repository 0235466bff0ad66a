"""spcheck_dump with torch tensors and module hooks (skipped where torch is missing; Debian's
python3-torch is at /usr/bin/python3)."""

import struct
import tempfile
import unittest

import spcheck_dump as sd

from . import reader

try:
    import torch
    import torch.nn as nn
except ImportError:
    torch = None


def tmpdir(test):
    d = tempfile.TemporaryDirectory()
    test.addCleanup(d.cleanup)
    return d.name


def le_bytes(t, fmt):
    """t's values packed independently of the code under test."""
    return struct.pack(f"<{t.numel()}{fmt}", *t.reshape(-1).tolist())


@unittest.skipIf(torch is None, "torch not installed")
class TorchTensorTest(unittest.TestCase):
    def test_dtypes(self):
        d = sd.Dumper(tmpdir(self))
        cases = [
            ("f64", torch.tensor([[0.1, -2.0], [3.5, 1e-300]], dtype=torch.float64), "F64", "d"),
            ("f32", torch.tensor([0.1, -2.0], dtype=torch.float32), "F32", "f"),
            ("f16", torch.tensor([0.1, 65504.0], dtype=torch.float16), "F16", "e"),
            ("i64", torch.tensor([-(2**62), 5]), "I64", "q"),
            ("i32", torch.tensor([[-7, 9]], dtype=torch.int32), "I32", "i"),
        ]
        for name, t, _, _ in cases:
            d.act(name, t)
        _, tensors, _, contiguous = reader.read(d.save())
        self.assertTrue(contiguous)
        for name, t, dtype, fmt in cases:
            with self.subTest(reason=name):
                _, got_dtype, shape, raw, _ = tensors["act/" + name]
                self.assertEqual((got_dtype, shape, raw), (dtype, list(t.shape), le_bytes(t, fmt)))

    def test_bf16_bit_exact(self):
        """bf16 is copied as its 16-bit patterns: a subnormal, -0, inf and NaN survive, and the
        int16 view of the same tensor labelled BF16 gives the same bytes."""
        t = torch.tensor([1.0, 3.140625, -0.0, float("inf"), float("nan"), 1e-40, -3e38],
                         dtype=torch.bfloat16)
        bits = t.view(torch.int16)
        d = sd.Dumper(tmpdir(self))
        d.act("bf16", t)
        d.act("bits", bits, as_dtype="BF16")
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(tensors["act/bf16"][1], "BF16")
        self.assertEqual(tensors["act/bf16"][3], le_bytes(bits, "h"))
        self.assertEqual(tensors["act/bits"][1:4], tensors["act/bf16"][1:4])
        vals = tensors["act/bf16"][4]
        self.assertEqual(vals[:4], [1.0, 3.140625, -0.0, float("inf")])
        self.assertEqual(vals[5], t[5].item(), "subnormal kept")

    def test_requires_grad_and_views(self):
        """A tensor that requires grad is dumped detached; a contiguous narrow view dumps just
        its own elements (the storage offset is honoured)."""
        base = torch.arange(12, dtype=torch.float64).reshape(3, 4).requires_grad_()
        d = sd.Dumper(tmpdir(self))
        d.act("row", base[1])
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(tensors["act/row"][4], [4.0, 5.0, 6.0, 7.0])

    def test_refuses(self):
        d = sd.Dumper(tmpdir(self))
        m = torch.zeros(3, 4)
        cases = [
            ("transpose", m.t(), {}, "not contiguous"),
            ("expand", torch.zeros(1, 4).expand(3, 4), {}, "not contiguous"),
            ("bool", torch.zeros(3, dtype=torch.bool), {}, "torch.bool is not supported"),
            ("uint8", torch.zeros(3, dtype=torch.uint8), {}, "torch.uint8 is not supported"),
            ("complex", torch.zeros(3, dtype=torch.complex64), {}, "not supported"),
            ("int16 unlabelled", torch.zeros(3, dtype=torch.int16), {}, "not supported"),
            ("relabel f32", torch.zeros(3), {"as_dtype": "BF16"}, "cannot relabel"),
            ("sparse", torch.zeros(3, 3).to_sparse(), {}, "layout"),
        ]
        for reason, t, kw, msg in cases:
            with self.subTest(reason=reason):
                with self.assertRaisesRegex(sd.DumpError, msg) as cm:
                    d.act("x", t, **kw)
                self.assertIn("act/x", str(cm.exception))


    def test_refuses_tensor_subclasses(self):
        """A tensor subclass's memory need not hold its values: it is never read raw."""

        class Wrapped(torch.Tensor):
            pass

        d = sd.Dumper(tmpdir(self))
        w = torch.arange(4, dtype=torch.float64).as_subclass(Wrapped)
        with self.assertRaisesRegex(sd.DumpError, "act/w.*Wrapped.*subclass") as cm:
            d.act("w", w)
        self.assertIn("act/w", str(cm.exception))
        if hasattr(torch, "empty") and hasattr(torch.Tensor, "is_meta"):
            with self.assertRaisesRegex(sd.DumpError, "act/m.*meta"):
                d.act("m", torch.empty(3, device="meta"))
        p = nn.Parameter(torch.ones(2, dtype=torch.float64))
        d.param("p", p)  # a Parameter holding a plain tensor is fine
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(tensors["param/p"][4], [1.0, 1.0])


class Block(nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3, dtype=torch.float64)
        self.norm = nn.LayerNorm(3, dtype=torch.float64)

    def forward(self, x):
        return self.norm(x + self.fc(x))


class Net(nn.Module if torch else object):
    def __init__(self, n):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList(Block() for _ in range(n))
        self.head = nn.Linear(3, 2, dtype=torch.float64)
        self.head.weight.tensor_model_parallel, self.head.weight.partition_dim = True, 0

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


@unittest.skipIf(torch is None, "torch not installed")
class WatchTest(unittest.TestCase):
    def run_net(self, d, net, mbs=1, **watch):
        w = d.watch(net, **watch)
        x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3).requires_grad_()
        outs = []
        for j in range(mbs):
            ctx = d.microbatch(j) if mbs > 1 else _Null()
            with ctx:
                outs.append(net(x[j::mbs]))
        sum(o.pow(2).sum() for o in outs).backward()
        return w, x, outs

    def test_names_values_and_grads(self):
        d = sd.Dumper(tmpdir(self), mesh={"pp": 2}, rank=1, world=2, order="layers",
                      rename=[sd.layer_offset(2)])
        net = Net(2)
        _, x, (out,) = self.run_net(d, net, act_place={r"head$": "pp=stage"},
                                    param_place=sd.megatron_param_place("pp"), inputs=r"^layers\.\d+$")
        _, tensors, _, _ = reader.read(d.save())
        names = {tm["name"] for tm, *_ in tensors.values()}
        for want in ["act/layers.2.input", "act/layers.2.fc", "act/layers.3", "act/head",
                     "agrad/layers.3", "agrad/layers.2.input", "param/layers.2.fc.weight",
                     "param/head.bias", "grad/layers.3.norm.weight", "grad/head.weight"]:
            self.assertIn(want, names)
        self.assertNotIn("act/layers.0.fc", names, "stage-local indices are mapped")
        self.assertEqual(tensors["act/head"][4], out.reshape(-1).tolist())
        self.assertEqual(tensors["agrad/head"][4], (2 * out).reshape(-1).tolist())
        self.assertEqual(tensors["grad/head.weight"][4], net.head.weight.grad.reshape(-1).tolist())
        self.assertEqual(tensors["grad/head.weight"][0]["place"], "pp=shard(0)",
                         "megatron_param_place reads partition_dim")
        self.assertEqual(tensors["grad/head.bias"][0]["place"], "pp=stage", "stage axis added")
        self.assertEqual(tensors["agrad/layers.2.input"][4], x.grad.reshape(-1).tolist())
        order = {tm["name"]: tm["order"] for tm, *_ in tensors.values()}
        self.assertLess(order["act/layers.2.fc"], order["act/layers.3.fc"])
        self.assertLess(order["act/head"], order["agrad/head"])
        self.assertLess(order["agrad/layers.3.fc"], order["agrad/layers.2.fc"], "backward reversed")

    def test_main_grad_preferred(self):
        """Megatron keeps the reduced fp32 grad in main_grad; it is what gets dumped."""
        d = sd.Dumper(tmpdir(self))
        net = Net(1)
        self.run_net(d, net)
        net.head.weight.main_grad = torch.full_like(net.head.weight, 7.0)
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(set(tensors["grad/head.weight"][4]), {7.0})
        self.assertEqual(tensors["grad/head.bias"][4], net.head.bias.grad.tolist())

    def test_microbatches_and_params_once(self):
        d = sd.Dumper(tmpdir(self), microbatches=2, mb_dim=0)
        self.run_net(d, Net(1), mbs=2)
        _, tensors, _, _ = reader.read(d.save())
        self.assertIn("act/head@mb1", tensors)
        self.assertIn("agrad/head@mb1", tensors, "the grad hook keeps its forward's micro-batch")
        self.assertEqual(tensors["act/head@mb1"][0]["coord"], {"mb": 1})
        self.assertEqual(tensors["act/head@mb1"][0]["place"], "mb=shard(0)")
        self.assertIn("param/head.weight", tensors, "params recorded once, without mb")
        self.assertNotIn("param/head.weight@mb1", tensors)

    def test_unselected_step_and_remove(self):
        d = sd.Dumper(tmpdir(self), steps={1})
        net = Net(1)
        w, _, _ = self.run_net(d, net)
        self.assertIsNone(d.save(), "step 0 is not captured")
        w.remove()
        d.step(1)
        x = torch.ones(2, 3, dtype=torch.float64)
        net(x).sum().backward()
        d.act("manual", x)
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(list(tensors), ["act/manual"], "removed hooks record nothing")


@unittest.skipIf(torch is None, "torch not installed")
class AdjointTest(unittest.TestCase):
    def test_adjoint_places(self):
        cases = [
            ("tp=partial", "", "the gradient of a partial sum is the whole gradient on every rank"),
            ("tp=partial,pp=stage", "pp=stage", "other items stay"),
            ("tp=shard(2)", "tp=shard(2)", "a shard's gradient is the same shard"),
            ("", "", "replicated stays replicated (reduced by from_local's backward)"),
            ("tp=partial(avg)", None, "a mean has no placement-only adjoint: not recorded"),
        ]
        from spcheck_dump.torch_hooks import adjoint_place
        for place, want, reason in cases:
            with self.subTest(reason=reason):
                self.assertEqual(adjoint_place(place), want)

    def test_partial_output_grad_is_replicated(self):
        """A row-parallel output recorded before its reduction (tp=partial): its gradient is
        recorded replicated, not partial (which the verifier would sum: a false ×tp)."""
        d = sd.Dumper(tmpdir(self), mesh={"tp": 2}, rank=0, world=2)
        net = Net(1)
        x = torch.ones(2, 3, dtype=torch.float64)
        d.watch(net, act_place={r"fc$": "tp=partial"})
        net(x).sum().backward()
        _, tensors, _, _ = reader.read(d.save())
        self.assertEqual(tensors["act/layers.0.fc"][0]["place"], "tp=partial")
        self.assertNotIn("place", tensors["agrad/layers.0.fc"][0])


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


if __name__ == "__main__":
    unittest.main()
