#!/usr/bin/env bash
# torch-nccl.sh OUT: issue 8's GPU check — python/examples/megatron_block.py with --device cuda
# --backend nccl on the visible GPUs (float64), each run dumping its trace with spcheck_dump:
#   ref        the single-device reference (tp 1 × pp 1, one GPU)
#   tp2/mbM/B  tp 2 × pp 1, bugs none and no-norm-allreduce, 1 and 2 micro-batches (2 GPUs)
#   pp2/mbM    tp 1 × pp 2, correct, 1 and 2 micro-batches (2 GPUs)
# tp 2 × pp 2 needs 4 GPUs: NCCL allows one rank per GPU in a communicator. Writes
# OUT/torch-nccl.tgz (the traces and versions.txt: torch, CUDA, NCCL, device, driver) and a
# spcheck compare report per run (bin/spcheck) in OUT/torch-nccl.txt. Run from the repo root.
set -uo pipefail
OUT="$1"
W=/tmp/torch-nccl
rm -rf "$W"
mkdir -p "$W/traces"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # KINDS.md: keep multicast off
sum="$OUT/torch-nccl.txt"
: > "$sum"
gpus=$(nvidia-smi -L | wc -l)
EX=python/examples/megatron_block.py
{
	python3 -c 'import torch; print("torch", torch.__version__); print("cuda", torch.version.cuda); print("nccl", ".".join(map(str, torch.cuda.nccl.version()))); print("device", torch.cuda.get_device_name(0)); print("gpus", torch.cuda.device_count())'
	echo "driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
	echo "python $(python3 -c 'import platform; print(platform.python_version())')"
} > "$W/traces/versions.txt" 2>&1
cat "$W/traces/versions.txt" | tee -a "$sum"

# ex NAME NEED_GPUS ARGS...: one launch of the example, timed.
ex() {
	local name="$1" need="$2"
	shift 2
	if ((gpus < need)); then
		echo "$name: NOT RUN (needs $need GPUs, $gpus visible)" | tee -a "$sum"
		return
	fi
	local t0=$SECONDS
	timeout 300 python3 "$EX" --device cuda --backend nccl --dtype float64 --out "$W/traces/$name" "$@" > "$W/$name.log" 2>&1
	echo "$name: python exit $? in $((SECONDS - t0)) s: $*" | tee -a "$sum"
	grep -iE 'error|warn' "$W/$name.log" | grep -v '^$' | head -5 | tee -a "$sum"
}
ex ref 1 --tp 1 --pp 1
ex tp2 2 --tp 2 --pp 1 --bug none,no-norm-allreduce --microbatches 1,2
ex pp2 2 --tp 1 --pp 2 --microbatches 1,2
echo "tp2pp2: NOT RUN (tp 2 × pp 2 needs 4 GPUs: one NCCL rank per GPU; $gpus visible)" | tee -a "$sum"

for c in tp2/mb1/none tp2/mb1/no-norm-allreduce tp2/mb2/none tp2/mb2/no-norm-allreduce pp2/mb1 pp2/mb2; do
	[ -d "$W/traces/$c" ] || continue
	bin/spcheck compare "$W/traces/ref" "$W/traces/$c" > "$W/cmp.txt" 2>&1
	echo "compare ref $c: exit $? — $(grep -m1 'spcheck compare:' "$W/cmp.txt")" | tee -a "$sum"
	grep -m1 -A1 'first divergence' "$W/cmp.txt" | tee -a "$sum"
done
tar -C "$W/traces" -czf "$OUT/torch-nccl.tgz" .
tar -C "$W" -czf "$OUT/torch-nccl-logs.tgz" --exclude=traces . 2>/dev/null
