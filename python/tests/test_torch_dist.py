"""spcheck_dump with PyTorch 2.x distributed tensors, on 2 gloo processes: DTensors are dumped
with their own placements (never their raw memory), async collective tensors are waited for,
a DeviceMesh gives the dumper its axes. Skipped where torch has no DTensor (Debian's 1.13)."""

import os
import tempfile
import unittest

import spcheck_dump as sd
import spcheck_dump.encode

from . import reader

try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard, distribute_tensor
    from torch.distributed.tensor.placement_types import _StridedShard
    import torch.distributed._functional_collectives as funcol
except ImportError:
    torch = None

WORLD = 2


def full():
    return torch.arange(24, dtype=torch.float64).reshape(8, 3)


def _worker(rank, out, store_path):
    dist.init_process_group("gloo", store=dist.FileStore(store_path, WORLD), rank=rank,
                            world_size=WORLD)
    try:
        mesh = init_device_mesh("cpu", (WORLD,), mesh_dim_names=("tp",))
        d = sd.Dumper.from_device_mesh(out, mesh)
        g = full()
        d.param("shard", distribute_tensor(g, mesh, [Shard(0)]))
        d.param("strided", distribute_tensor(g, mesh, [_StridedShard(0, split_factor=2)]))
        d.param("repl", distribute_tensor(g, mesh, [Replicate()]))
        # A partial-sum DTensor: rank r holds (r + 1) · g, so the logical tensor is 3 · g.
        d.act("partial", DTensor.from_local(g * (rank + 1), mesh, [Partial()], run_check=False))
        d.act("avg", DTensor.from_local(g * (rank + 1), mesh, [Partial("avg")], run_check=False))
        d.act("staged", distribute_tensor(g, mesh, [Shard(1)]), "tp=shard(1)")
        # An async all-reduce: its memory holds the pre-reduction bytes until waited for.
        acc = funcol.all_reduce(g * (rank + 1), "sum", mesh)
        d.act("async", acc)
        # redistribute(async_op=True).to_local(), as RowwiseParallel's output hands it out.
        pend = DTensor.from_local(g * (rank + 1), mesh, [Partial()], run_check=False)
        d.act("rowwise", pend.redistribute(mesh, [Replicate()], async_op=True).to_local())
        errors = []
        for what, call in [
            ("raw encode", lambda: sd.encode.encode("act/dt", distribute_tensor(g, mesh, [Shard(0)]))),
            ("contradiction", lambda: d.act("bad", distribute_tensor(g, mesh, [Shard(0)]), "tp=shard(1)")),
        ]:
            try:
                call()
                errors.append(f"{what}: no error")
            except sd.DumpError as e:
                errors.append(f"{what}: {e}")
        with open(os.path.join(os.path.dirname(out), f"errors-{rank}.txt"), "w") as f:
            f.write("\n".join(errors))
        d.save()
    finally:
        dist.destroy_process_group()


@unittest.skipIf(torch is None, "torch without DTensor")
class DistributedTensorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "trace")
        mp.spawn(_worker, args=(cls.out, os.path.join(cls.tmp.name, "store")), nprocs=WORLD)
        cls.ranks = [reader.read(os.path.join(cls.out, sd.file_name(r)))[1] for r in range(WORLD)]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tensor(self, rank, key):
        tm, _, shape, _, vals = self.ranks[rank][key]
        return tm, torch.tensor(vals, dtype=torch.float64).reshape(shape)

    def test_placements_read_from_each_tensor(self):
        g = full()
        cases = [
            ("param/shard", "tp=shard(0)", lambda r: g[4 * r:4 * r + 4], "Shard(0)"),
            ("param/strided", "tp=shard(0,segments=2)",
             lambda r: torch.cat([g[2 * r:2 * r + 2], g[4 + 2 * r:6 + 2 * r]]), "_StridedShard(0, 2)"),
            ("param/repl", "tp=replicate", lambda r: g, "Replicate"),
            ("act/partial", "tp=partial", lambda r: g * (r + 1), "Partial"),
            ("act/avg", "tp=partial(avg)", lambda r: g * (r + 1), "Partial(avg)"),
            ("act/staged", "tp=shard(1)", lambda r: g[:, 2 * r:2 * r + 2].contiguous(), "an agreeing place"),
        ]
        for key, place, local, reason in cases:
            for r in range(WORLD):
                with self.subTest(reason=reason, rank=r):
                    tm, got = self.tensor(r, key)
                    self.assertEqual(tm["place"], place)
                    self.assertEqual(tm["shape"], [8, 3], "the DTensor's global shape")
                    self.assertTrue(torch.equal(got, local(r)))

    def test_async_collectives_are_waited_for(self):
        want = full() * 3  # (1 + 2) · g, never the pre-reduction (r + 1) · g
        for key in ("act/async", "act/rowwise"):
            for r in range(WORLD):
                with self.subTest(key=key, rank=r):
                    self.assertTrue(torch.equal(self.tensor(r, key)[1], want))

    def test_mesh_from_device_mesh(self):
        for r in range(WORLD):
            meta, _, _, _ = reader.read(os.path.join(self.out, sd.file_name(r)))
            self.assertEqual(meta["mesh"], {"axes": ["tp"], "shape": [WORLD]})
            self.assertEqual(meta["coord"], {"tp": r})

    def test_refusals_name_the_tensor(self):
        with open(os.path.join(self.tmp.name, "errors-0.txt")) as f:
            errors = f.read().splitlines()
        self.assertRegex(errors[0], r"raw encode: tensor 'act/dt': is a DTensor")
        self.assertRegex(errors[1], r"contradiction: tensor 'act/bad': place 'tp=shard\(1\)' "
                                    r"contradicts the DTensor's own 'tp=shard\(0\)'")


if __name__ == "__main__":
    unittest.main()
