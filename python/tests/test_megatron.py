"""spcheck_dump.megatron with stand-ins for megatron-core (which needs CUDA): the mesh from
parallel_state, placements by parameter attributes and module type, and the fused QKV split
checked against the grouped layout built independently here."""

import types
import unittest

import spcheck_dump as sd
from spcheck_dump import megatron as sm

try:
    import torch
    import torch.nn as nn
except ImportError:
    torch = None


def fake_parallel_state(pp=(2, 1), dp=(1, 0), cp=(1, 0), tp=(2, 1)):
    f = types.SimpleNamespace()
    for axis, (n, r) in {"pipeline_model": pp, "data": dp, "context": cp, "tensor_model": tp}.items():
        setattr(f, f"get_{axis}_parallel_world_size", lambda n=n: n)
        setattr(f, f"get_{axis}_parallel_rank", lambda r=r: r)
    return f


class MeshTest(unittest.TestCase):
    def test_mesh_from_parallel_state(self):
        mesh, coord = sm.mesh_of(fake_parallel_state())
        self.assertEqual(mesh, {"pp": 2, "dp": 1, "tp": 2})
        self.assertEqual(coord, {"pp": 1, "dp": 0, "tp": 1})
        mesh, coord = sm.mesh_of(fake_parallel_state(cp=(2, 1)))
        self.assertEqual(list(mesh), ["pp", "dp", "cp", "tp"], "cp listed when it is on")

    def test_dumper_maps_stage_local_layers(self):
        d = sm.dumper("/nonexistent", types.SimpleNamespace(), ps=fake_parallel_state(), offset=2,
                      rank=3, world=4)
        self.assertEqual(d.logical("act/decoder.layers.0.mlp"), "act/decoder.layers.2.mlp")
        self.assertEqual(d.coord, {"pp": 1, "dp": 0, "tp": 1})


class ColumnParallelLinear(torch.nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 8))
        self.weight.tensor_model_parallel, self.weight.partition_dim = True, 0


@unittest.skipIf(torch is None, "torch not installed")
class PlacementTest(unittest.TestCase):
    def test_params_and_activations(self):
        m = nn.Module()
        m.fc1 = ColumnParallelLinear()
        m.norm = nn.LayerNorm(8)
        m.norm.weight.sequence_parallel = True
        place = sm.param_place()
        self.assertEqual(place("fc1.weight", m.fc1.weight), "tp=shard(0)")
        self.assertEqual(place("norm.weight", m.norm.weight), "", "reduced by finalize_model_grads")
        before = sm.grad_place_before_finalize()
        self.assertEqual(before("norm.weight", m.norm.weight), "tp=partial")
        act = sm.act_place(m, types.SimpleNamespace(sequence_parallel=True))
        x = torch.zeros(4, 2, 8)
        self.assertEqual(act("fc1", x), "tp=shard(2)")
        self.assertEqual(act("norm", x), "tp=shard(0)", "the residual stream under SP")
        self.assertEqual(act("fc1", torch.zeros(4)), "", "a bias riding in a tuple output")
        act = sm.act_place(m, types.SimpleNamespace(sequence_parallel=False))
        self.assertEqual(act("norm", x), "")

    def test_split_qkv_against_the_grouped_layout(self):
        """4 heads in 2 query groups (GQA), head size 3, hidden 5, tp 2: the fused weight holds
        per group its 2 q heads, its k head, its v head; each rank holds one whole group."""
        heads, groups, hn, h, tp = 4, 2, 3, 5, 2
        cfg = types.SimpleNamespace(num_attention_heads=heads, num_query_groups=groups, kv_channels=hn)
        q = torch.arange(heads * hn * h, dtype=torch.float64).reshape(heads * hn, h)
        k = 1000 + torch.arange(groups * hn * h, dtype=torch.float64).reshape(groups * hn, h)
        v = 2000 + torch.arange(groups * hn * h, dtype=torch.float64).reshape(groups * hn, h)
        per = heads // groups
        fused = torch.cat([torch.cat([q[g * per * hn:(g + 1) * per * hn], k[g * hn:(g + 1) * hn],
                                      v[g * hn:(g + 1) * hn]]) for g in range(groups)])
        rows = fused.shape[0] // tp
        for r in range(tp):
            got = sm.split_qkv(fused[r * rows:(r + 1) * rows], cfg, tp)
            for part, full in zip(got, (q, k, v)):
                n = full.shape[0] // tp
                self.assertTrue(torch.equal(part, full[r * n:(r + 1) * n]), f"rank {r}")
        with self.assertRaisesRegex(sd.DumpError, "do not divide"):
            sm.split_qkv(fused, types.SimpleNamespace(num_attention_heads=4, num_query_groups=3,
                                                      kv_channels=hn), 2)


if __name__ == "__main__":
    unittest.main()
