#!/usr/bin/env python3
"""Times torchref's model (forward + backward, float64) on random parameters and inputs.

Usage: bench.py PLAN ITERS

PLAN is a full plan string (as plan.Plan.String prints it); the model is torchref.py's, so the
shapes and the arithmetic are the oracle's (docs/model.md), only the values are random. Runs one
warm-up step, then ITERS steps, and prints one line:

    wall_s=W cpu_s=C threads=T blas=B

B is torch's BLAS (BLAS_INFO of its build, e.g. mkl, or generic:openblas-pthread for
Debian's torch on the OpenBLAS that libblas.so.3 points to).

W and C are seconds per step (wall clock and this process's CPU time). The thread count is
torch.get_num_threads(); set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS to choose it (the Go
benchmark oracle.BenchmarkOracleVsTorch does). Exit status 2 on bad arguments.
"""

import os
import re
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchref  # noqa: E402


def torch_blas():
    """torch's BLAS: BLAS_INFO of its build, and for a "generic" one (Debian's, through
    libblas.so.3) the folder of the libblas it loaded, e.g. generic:openblas-pthread."""
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    blas = m.group(1) if m else "unknown"
    if blas == "generic":
        with open("/proc/self/maps") as f:
            libs = [line.split()[-1] for line in f if "/libblas.so" in line]
        blas += ":" + (os.path.basename(os.path.dirname(libs[0])) if libs else "?")
    return blas


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    m = torchref.parse_plan(argv[1])
    iters = int(argv[2])
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    H, F, V, L, D = m["hidden"], m["ffn"], m["vocab"], m["layers"], m["mtp"]
    shapes = {"embedding.weight": (V, H), "final_norm.weight": (H,)}
    if not m["tied"]:
        shapes["lm_head.weight"] = (V, H)

    def layer(pre):
        shapes.update({pre + "attn_norm.weight": (H,), pre + "mlp_norm.weight": (H,)})
        for n in ("q", "k", "v", "o"):
            shapes[f"{pre}attn.{n}.weight"] = (H, H)
        shapes.update({pre + "mlp.gate.weight": (F, H), pre + "mlp.up.weight": (F, H), pre + "mlp.down.weight": (H, F)})

    for i in range(L):
        layer(f"layers.{i}.")
    for k in range(1, D + 1):
        shapes.update({f"mtp.{k}.enorm.weight": (H,), f"mtp.{k}.hnorm.weight": (H,), f"mtp.{k}.eh_proj.weight": (H, 2 * H)})
        layer(f"mtp.{k}.layer.")
    P = {n: (torch.randn(s) * (0.02 if len(s) == 2 else 1.0) + (0 if len(s) == 2 else 1.0)).requires_grad_(True) for n, s in shapes.items()}
    B, S = m["batch"], m["seq"]
    ids = torch.randint(0, V, (B, S))
    labels = torch.randint(0, V, (B, S))
    mask = torch.ones(B, S)

    def step():
        for p in P.values():
            p.grad = None
        losses, _ = torchref.forward(m, P, ids, labels, mask)
        losses["loss/total"].backward()

    step()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    wall, cpu = (time.perf_counter() - w0) / iters, (time.process_time() - c0) / iters
    blas = torch_blas()
    print(f"wall_s={wall:.6f} cpu_s={cpu:.6f} threads={torch.get_num_threads()} blas={blas}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
