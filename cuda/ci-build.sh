#!/usr/bin/env bash
# ci-build.sh: build and test cuda/ on a machine without a GPU (CI). Runs the GPU-free host
# tests with plain g++, then compiles and links the whole executor and the GPU test binaries
# with NVIDIA's PyPI wheels (nvcc, cudart, cuBLAS, NCCL, CCCL), installed into a venv at
# $CUDA_VENV (default /tmp/cudavenv) when it is not there yet (~1.4 GB download). Nothing is
# run on a GPU here; cuda/device-run.sh does that on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")"
venv="${CUDA_VENV:-/tmp/cudavenv}"
export CUDA_VENV="$venv"

make -j"$(nproc)" test

if ! ./toolchain.sh --check >/dev/null 2>&1; then
	echo "ci-build: installing NVIDIA's CUDA wheels into $venv"
	python3 -m venv "$venv"
	"$venv/bin/python3" -m pip install -q --disable-pip-version-check \
		nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20 \
		nvidia-nccl-cu13==2.32.3 nvidia-cuda-cccl==13.3.5.0.6
fi
./toolchain.sh --check
rm -f build/toolchain.mk  # re-detect: the venv may be new
make -j"$(nproc)" all
echo "ci-build: built $(ls build/spexec build/kernel_test build/comm_test | tr '\n' ' ')"
