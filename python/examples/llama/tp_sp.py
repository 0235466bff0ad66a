"""PyTorch-native tensor + sequence parallelism on the unmodified HF model (torchtitan's
recipe, with parallelize_module), on a 1-D "tp" DeviceMesh. Run with
torchrun --nproc-per-node 2 tp_sp.py --out DIR [--bug NAME]."""

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (ColwiseParallel, PrepareModuleInput,
                                               RowwiseParallel, SequenceParallel,
                                               parallelize_module)

import model as m

import spcheck_dump as sd

BUGS = {
    "norm-not-sp": "the plan leaves post_attention_layernorm out of SequenceParallel: its weight "
                   "grad is each rank's sum over its own sequence shard, never reduced",
    "embedding-no-allreduce": "the vocab-parallel embedding hands on its partial sums unreduced "
                              "(its output hook monkeypatched to skip the all-reduce)",
}


def plan(bug):
    """The TP+SP plan of one decoder layer and of the model around the layers."""
    layer = {
        "input_layernorm": SequenceParallel(),
        "self_attn": PrepareModuleInput(input_kwarg_layouts={"hidden_states": Shard(1)},
                                        desired_input_kwarg_layouts={"hidden_states": Replicate()}),
        "self_attn.q_proj": ColwiseParallel(),
        "self_attn.k_proj": ColwiseParallel(),
        "self_attn.v_proj": ColwiseParallel(),
        "self_attn.o_proj": RowwiseParallel(output_layouts=Shard(1)),
        "post_attention_layernorm": SequenceParallel(),
        "mlp": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),)),
        "mlp.gate_proj": ColwiseParallel(),
        "mlp.up_proj": ColwiseParallel(),
        "mlp.down_proj": RowwiseParallel(output_layouts=Shard(1)),
    }
    if bug == "norm-not-sp":
        del layer["post_attention_layernorm"]
    embed = RowwiseParallel(input_layouts=Replicate(), output_layouts=Replicate())
    if bug == "embedding-no-allreduce":
        embed._prepare_output_fn = lambda layouts, local, mod, out, mesh: out.to_local()
    top = {
        "model.embed_tokens": embed,
        # The layers run sequence-parallel: the first one's input is split along the sequence
        # (a local slice of the replicated embedding, so positions and masks stay global).
        "model.layers.0": PrepareModuleInput(input_layouts=(Replicate(),), desired_input_layouts=(Shard(1),),
                                             use_local_output=True),
        "model.norm": SequenceParallel(),
        "lm_head": ColwiseParallel(input_layouts=Shard(1), output_layouts=Replicate()),
    }
    return layer, top


a = m.args(BUGS)
tp = m.init_distributed()
mesh = init_device_mesh("cpu", (tp,), mesh_dim_names=("tp",))
net, (ids, labels) = m.build(), m.batch()
layer_plan, top_plan = plan(a.bug)
for block in net.model.layers:
    parallelize_module(block, mesh, layer_plan)
parallelize_module(net, mesh, top_plan)

d = sd.Dumper.from_device_mesh(a.out, mesh)                            # spcheck 1
d.watch(net, plan=[(net, top_plan)] + [(b, layer_plan) for b in net.model.layers],  # spcheck 2
        inputs=m.LAYERS)
d.input("ids", ids)                                                    # spcheck 3
loss = net(ids, labels=labels).loss
d.loss("main", loss)                                                   # spcheck 4
loss.backward()
d.save()                                                               # spcheck 5
torch.distributed.destroy_process_group()
