#!/usr/bin/env bash
# device-run.sh STAGE...: everything one GPU-machine call does, logs and results under $OUT.
#   smoke: toolchain, build, host tests, kernel tests, communicator tests (2 GPUs)
#   all:   smoke, then every scenario of run-scenarios.sh, each verified with spcheck
#   bugs:  build, host and kernel tests, then only the bug scenarios (cuda/bug-scenarios.txt)
#   torch: python/examples/megatron_block.py on NCCL GPUs (cuda/torch-nccl.sh; needs no build)
# Stages combine: `bash cuda/device-run.sh bugs torch`. Run from the repository root, with
# bin/spcheck built (CGO_ENABLED=0 go build -o bin/spcheck ./cmd/spcheck).
set -uo pipefail
stages="${*:-smoke}"
has() { [[ " $stages " == *" $1 "* ]]; }
OUT="${OUT:-/tmp/spx-out}"
mkdir -p "$OUT"
log="$OUT/log.txt"
exec > >(tee -a "$log") 2>&1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # KINDS.md: keep multicast off

echo "== machine"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
nvidia-smi topo -m 2>/dev/null | head -8
nproc
if has smoke || has all || has bugs; then
	echo "== toolchain"
	cuda/toolchain.sh --check || exit 1
	nvcc_path="$(cuda/toolchain.sh | sed -n 's/^NVCC := //p')"
	"$nvcc_path" --version | tail -2
	echo "== build"
	SECONDS=0
	if ! make -C cuda -j16 all > "$OUT/build.log" 2>&1; then
		echo "BUILD FAILED"
		tail -40 "$OUT/build.log"
		exit 1
	fi
	grep -E 'warning|error' "$OUT/build.log" | head -20
	echo "build took $SECONDS s"
	echo "== host tests"
	cuda/build/host_test cuda/tests/testdata | tail -3
	echo "== kernel tests"
	cuda/build/kernel_test cuda/tests/testdata
fi
if has smoke || has all; then
	echo "== communicator tests"
	timeout 300 cuda/build/comm_test
	echo "comm_test exit $?"
fi
if has all; then
	echo "== scenarios"
	bash cuda/run-scenarios.sh "$OUT"
elif has bugs; then
	echo "== bug scenarios"
	bash cuda/run-scenarios.sh "$OUT" bugs
fi
if has torch; then
	echo "== torch.distributed on NCCL"
	SECONDS=0
	bash cuda/torch-nccl.sh "$OUT"
	echo "torch runs took $SECONDS s"
fi
