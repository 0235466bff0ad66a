#!/usr/bin/env bash
# toolchain.sh finds a CUDA compiler, cuBLAS and NCCL and prints them as make variables
# (NVCC, CUDA_INC, CUDA_LIB, NCCL_INC, NCCL_LIB, TOOLCHAIN). The Makefile includes its output.
#
# Search order, first hit wins:
#   1. variables already set: NVCC, CUDA_HOME, NCCL_HOME;
#   2. a system install: nvcc on PATH or under /usr/local/cuda, NCCL at /usr/include/nccl.h or
#      inside the CUDA tree (the GPU machine);
#   3. NVIDIA's PyPI wheels in a Python environment: $CUDA_VENV (default /tmp/cudavenv), then the
#      python3 on PATH (the GPU machine's PyTorch venv carries nvidia-nccl-cu13). The wheels lay
#      out site-packages/nvidia/cu13/{bin,include,lib} and site-packages/nvidia/nccl/{include,lib}.
# With --check it exits 1 and names what is missing instead of printing variables.
set -u

venv="${CUDA_VENV:-/tmp/cudavenv}"

# site_packages lists the site-packages folders of the candidate Python environments.
site_packages() {
	local py
	for py in "$venv/bin/python3" "$(command -v python3 2>/dev/null)"; do
		[ -x "$py" ] || continue
		"$py" -c 'import site, sys; print("\n".join(site.getsitepackages()))' 2>/dev/null
	done
}

find_cuda() {
	if [ -n "${NVCC:-}" ] && [ -x "$NVCC" ]; then
		nvcc="$NVCC"
	elif [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
		nvcc="$CUDA_HOME/bin/nvcc"
	elif command -v nvcc >/dev/null 2>&1; then
		nvcc="$(command -v nvcc)"
	elif [ -x /usr/local/cuda/bin/nvcc ]; then
		nvcc=/usr/local/cuda/bin/nvcc
	else
		local sp
		for sp in $(site_packages); do
			if [ -x "$sp/nvidia/cu13/bin/nvcc" ]; then
				nvcc="$sp/nvidia/cu13/bin/nvcc"
				break
			fi
		done
	fi
	[ -n "${nvcc:-}" ] || return 1
	nvcc="$(readlink -f "$nvcc")"
	local top
	top="$(dirname "$(dirname "$nvcc")")"
	cuda_inc="$top/include"
	for d in "$top/lib64" "$top/targets/x86_64-linux/lib" "$top/lib"; do
		if ls "$d"/libcublas.so* >/dev/null 2>&1; then
			cuda_lib="$d"
			break
		fi
	done
	[ -n "${cuda_lib:-}" ] || return 1
}

find_nccl() {
	local cands=()
	[ -n "${NCCL_HOME:-}" ] && cands+=("$NCCL_HOME")
	cands+=("$(dirname "$cuda_inc")" /usr /usr/local)
	local sp
	for sp in $(site_packages); do cands+=("$sp/nvidia/nccl"); done
	local c l
	for c in "${cands[@]}"; do
		[ -f "$c/include/nccl.h" ] || continue
		for l in "$c/lib" "$c/lib64" "$c/lib/x86_64-linux-gnu" /usr/lib/x86_64-linux-gnu; do
			if [ -e "$l/libnccl.so.2" ]; then
				nccl_inc="$c/include"
				nccl_lib="$l"
				return 0
			fi
		done
	done
	return 1
}

missing=""
find_cuda || missing="nvcc/cuBLAS (set NVCC or CUDA_HOME, or pip install nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cublas nvidia-cuda-cccl into \$CUDA_VENV)"
if [ -z "$missing" ]; then
	find_nccl || missing="NCCL (set NCCL_HOME, or pip install nvidia-nccl-cu13 into \$CUDA_VENV)"
fi
if [ "${1:-}" = --check ]; then
	if [ -n "$missing" ]; then
		echo "toolchain.sh: no $missing" >&2
		exit 1
	fi
	echo "nvcc $nvcc; cuda $cuda_inc $cuda_lib; nccl $nccl_inc $nccl_lib"
	exit 0
fi
if [ -n "$missing" ]; then
	echo "TOOLCHAIN_MISSING := $missing"
	exit 0
fi
echo "NVCC := $nvcc"
echo "CUDA_INC := $cuda_inc"
echo "CUDA_LIB := $cuda_lib"
echo "NCCL_INC := $nccl_inc"
echo "NCCL_LIB := $nccl_lib"
# Link by the versioned file name where the unversioned development link is absent (wheels).
if [ -e "$cuda_lib/libcublas.so" ]; then
	echo "CUBLAS_LINK := -lcublas"
else
	echo "CUBLAS_LINK := -l:$(basename "$(ls "$cuda_lib"/libcublas.so.* | sort | head -1)")"
fi
if [ -e "$nccl_lib/libnccl.so" ]; then echo "NCCL_LINK := -lnccl"; else echo "NCCL_LINK := -l:libnccl.so.2"; fi
