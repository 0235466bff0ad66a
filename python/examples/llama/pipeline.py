"""torch.distributed.pipelining on the unmodified HF model: 2 stages (one decoder layer each),
GPipe over 2 micro-batches. Run with torchrun --nproc-per-node 2 pipeline.py --out DIR."""

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

import model as m

import spcheck_dump as sd

MICROBATCHES = 2
BUGS = {
    "unscaled-grads": "the loss is a per-micro-batch mean but the schedule is told not to scale "
                      "the gradients (scale_grads=False): every gradient is summed over the "
                      "micro-batches instead of averaged",
}


class Stage(torch.nn.Module):
    """One stage of the HF model: its own decoder layers; the first embeds the tokens, the last
    applies the final norm and the LM head."""

    def __init__(self, net, stage, stages):
        super().__init__()
        per = len(net.model.layers) // stages
        net.model.layers = net.model.layers[stage * per:(stage + 1) * per]
        self.net, self.first, self.last = net, stage == 0, stage == stages - 1
        if not self.last:
            net.model.norm = torch.nn.Identity()

    def forward(self, x):
        if self.first:
            h = self.net.model(input_ids=x).last_hidden_state
        else:
            h = self.net.model(inputs_embeds=x).last_hidden_state
        return self.net.lm_head(h) if self.last else h


a = m.args(BUGS)
pp = m.init_distributed()
mesh = init_device_mesh("cpu", (pp,), mesh_dim_names=("pp",))
rank = mesh.get_rank()
net, (ids, labels) = m.build(), m.batch()
stage = PipelineStage(Stage(net, rank, pp), rank, pp, torch.device("cpu"))
vocab = net.config.vocab_size
schedule = ScheduleGPipe(stage, MICROBATCHES, loss_fn=lambda logits, y: net.loss_function(logits, y, vocab),
                         scale_grads=a.bug != "unscaled-grads")

d = sd.Dumper.from_device_mesh(a.out, mesh, microbatches=MICROBATCHES, mb_dim=0,    # spcheck 1
                               rename=[sd.layer_offset(rank * len(net.model.layers))])
d.watch(net, exclude=r"^model\.norm$" if rank < pp - 1 else None,                    # spcheck 2
        act_place={r"rotary_emb$": "mb=replicate"},  # cos/sin do not depend on the batch
        inputs=m.LAYERS)  # a layer's input: on stage 1, what it received
d.attach_stage(stage, schedule)                                                      # spcheck 3
if rank == 0:
    d.input("ids", ids)                                                              # spcheck 4
    schedule.step(ids)
else:
    schedule.step(target=labels)
d.save()                                                                             # spcheck 5
torch.distributed.destroy_process_group()
