"""Hugging Face's own tensor parallelism: from_pretrained with the model's tp_plan on a 1-D
"tp" DeviceMesh. The random model is saved to a local directory first (no download). Run with
torchrun --nproc-per-node 2 hf_tp.py --out DIR [--bug NAME]."""

import tempfile

import torch
from torch.distributed.device_mesh import init_device_mesh
from transformers import LlamaForCausalLM

import model as m

import spcheck_dump as sd

BUGS = {
    "loss-over-tp": "the loss is divided by the TP world size, a data-parallel habit: TP ranks "
                    "hold replicas of one loss, not shards of a batch, so every gradient is halved",
}

a = m.args(BUGS)
with tempfile.TemporaryDirectory() as saved:  # each process saves the same seeded weights
    m.build().save_pretrained(saved)
    tp = m.init_distributed()
    mesh = init_device_mesh("cpu", (tp,), mesh_dim_names=("tp",))
    net = LlamaForCausalLM.from_pretrained(saved, tp_plan="auto", device_mesh=mesh, dtype=torch.float64)
ids, labels = m.batch()

d = sd.Dumper.from_device_mesh(a.out, mesh)     # spcheck 1
d.watch(net, plan=True, inputs=m.LAYERS)         # spcheck 2: HF's own model.tp_plan
d.input("ids", ids)                              # spcheck 3
loss = net(ids, labels=labels).loss
d.loss("main", loss)                             # spcheck 4
if a.bug == "loss-over-tp":
    loss = loss / tp
loss.backward()
d.save()                                         # spcheck 5
torch.distributed.destroy_process_group()
