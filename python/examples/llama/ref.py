"""The single-process reference: the unmodified HF model, one training step."""

import model as m

import spcheck_dump as sd

a = m.args()
net, (ids, labels) = m.build(), m.batch()
d = sd.Dumper(a.out, rank=0, world=1)                     # spcheck 1
d.watch(net, inputs=m.LAYERS)                             # spcheck 2
d.input("ids", ids)                                       # spcheck 3
loss = net(ids, labels=labels).loss
d.loss("main", loss)                                      # spcheck 4
loss.backward()
d.save()                                                  # spcheck 5
