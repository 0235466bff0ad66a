"""HF's packed tensor parallelism on a fused MLP: Phi-3 keeps gate and up in one gate_up_proj
weight. Its plan is overridden to shard that weight packed (packed_colwise: each rank holds its
half of gate and its half of up, a _StridedShard) with a row-parallel down_proj. Run single
process for the reference, or with 2 ranks (torchrun --nproc-per-node 2) for the candidate:

    python3 hf_packed.py --out ref
    torchrun --nproc-per-node 2 hf_packed.py --out cand
"""

import argparse
import os
import tempfile

import torch
from transformers import Phi3Config, Phi3ForCausalLM

import spcheck_dump as sd

PLAN = {"model.layers.*.mlp.gate_up_proj": "packed_colwise", "model.layers.*.mlp.down_proj": "rowwise"}
BUGS = {"colwise-not-packed": "the fused gate_up weight sharded as plain colwise: rank 0 holds all "
                              "of gate, rank 1 all of up, and each splits its own half in two"}

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--bug", default="none", choices=("none",) + tuple(BUGS))
a = p.parse_args()
cfg = Phi3Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                 use_cache=False, pad_token_id=0, attn_implementation="sdpa")
torch.manual_seed(1234)
net = Phi3ForCausalLM(cfg).to(torch.float64)
ids = torch.randint(0, 64, (4, 8), generator=torch.Generator().manual_seed(1235))
if "WORLD_SIZE" in os.environ:
    from torch.distributed.device_mesh import init_device_mesh
    from transformers.distributed import DistributedConfig
    plan = dict(PLAN)
    if a.bug == "colwise-not-packed":
        plan["model.layers.*.mlp.gate_up_proj"] = "colwise"
    with tempfile.TemporaryDirectory() as saved:
        net.save_pretrained(saved)
        torch.distributed.init_process_group("gloo")
        mesh = init_device_mesh("cpu", (2,), mesh_dim_names=("tp",))
        net = Phi3ForCausalLM.from_pretrained(saved, device_mesh=mesh, dtype=torch.float64,
                                              distributed_config=DistributedConfig(tp_size=2, tp_plan=plan))
    d = sd.Dumper.from_device_mesh(a.out, mesh)  # spcheck 1
    # The activation runs on the gate half of the packed output, a plain chunk no style names.
    d.watch(net, plan=True, act_place={r"activation_fn$": "tp=shard(2)"})  # spcheck 2
else:
    d = sd.Dumper(a.out, rank=0, world=1)       # spcheck 3 (the reference's own two lines)
    d.watch(net)                                # spcheck 4
loss = net(ids, labels=ids).loss
loss.backward()
d.save()                                        # spcheck 5
