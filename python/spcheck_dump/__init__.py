"""spcheck_dump: write spcheck traces (docs/trace-format.md) from PyTorch, Paddle or numpy runs.

Each rank writes its own safetensors file; nothing here talks to other ranks. Depends on the
standard library only; torch or numpy are used when you pass their tensors.

    import spcheck_dump as sd
    d = sd.Dumper("trace/cand", mesh={"pp": 2, "tp": 2}, order="layers",
                  rename=[sd.layer_offset(pp_rank * layers_per_stage)])
    d.watch(model, act_place={r"fc1$": "tp=shard(2)"}, param_place=sd.megatron_param_place())
    ... forward, backward, TP grad all-reduce ...
    d.save()

See docs/dump-your-run.md.
"""

__version__ = "0.2.0"

from .dumper import KINDS, PREFIX, Dumper, active, record
from .errors import DumpError
from .fileformat import file_name
from .names import DEFAULT_LAYER_PATTERN, LayerOrder, SequenceOrder, layer_offset
from .torch_hooks import megatron_param_place, watch

__all__ = [
    "__version__", "DEFAULT_LAYER_PATTERN", "DumpError", "Dumper", "KINDS", "LayerOrder", "PREFIX",
    "SequenceOrder", "active", "file_name", "layer_offset", "megatron_param_place", "record",
    "watch",
]
