"""The user's side of the Llama examples, with no spcheck in it: a tiny Hugging Face
LlamaForCausalLM (random init from a seed, float64, no download), one batch, one training step.

Every script builds the same model and batch, so the single-process reference and each
parallel run start from the same weights and see the same tokens."""

import argparse
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SEED = 1234
LAYERS = r"^model\.layers\.\d+$"  # the decoder layers, whose inputs the examples record too
BATCH, SEQ = 4, 8


def config():
    return LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                       rms_norm_eps=1e-6, tie_word_embeddings=False, use_cache=False,
                       attn_implementation="sdpa")


def build():
    """The model, initialised from SEED in float64 (the same weights in every process)."""
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config()).to(torch.float64)


def batch():
    """Token ids and labels [BATCH, SEQ], the same in every process."""
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, config().vocab_size, (BATCH, SEQ), generator=g)
    return ids, ids.clone()


def args(bugs=()):
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True, help="trace directory")
    p.add_argument("--bug", default="none", choices=("none",) + tuple(bugs))
    return p.parse_args()


def init_distributed():
    """gloo on CPU, launched by torchrun (RANK, WORLD_SIZE, MASTER_ADDR in the environment)."""
    torch.distributed.init_process_group("gloo")
    return int(os.environ["WORLD_SIZE"])
