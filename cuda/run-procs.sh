#!/usr/bin/env bash
# run-procs.sh SPEXEC_FLAGS…: the one-process-per-rank launch mode without MPI. Takes spexec's
# flags (--emit DIR --out TRACE …), starts one spexec per rank in the background with --rank R
# and an --id-file through which rank 0 shares the NCCL id, and waits for all of them. So
# `spcheck gpu --exec cuda/run-procs.sh` runs a plan this way. Under mpirun or srun use spexec
# directly: mpirun -np WORLD cuda/build/spexec --emit DIR --out TRACE --id-file /shared/path
# (rank from OMPI_COMM_WORLD_RANK / PMI_RANK / SLURM_PROCID, device from the local rank).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
emit=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[ "${args[i]}" = --emit ] && emit="${args[i + 1]:-}"
done
[ -n "$emit" ] || { echo "run-procs.sh: --emit DIR is required" >&2; exit 2; }
world=$(ls "$emit"/programs/rank-*.json 2>/dev/null | wc -l)
((world > 0)) || { echo "run-procs.sh: no programs in $emit/programs" >&2; exit 2; }
id="$(mktemp -u /tmp/spexec-id.XXXXXX)"
export NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}"  # keep NVLink multicast off (the device README)
pids=()
for ((r = 0; r < world; r++)); do
	"$here/build/spexec" "$@" --id-file "$id" --rank "$r" &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
	wait "$p" || rc=1
done
rm -f "$id".*
exit $rc
