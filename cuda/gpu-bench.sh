#!/usr/bin/env bash
# gpu-bench.sh STAGE...: issue 16's GPU-machine call (one H200), results under $OUT.
#   check: build, host and kernel tests (fp32, bf16, fp64, generation bit-exact), tp=1 plans
#          verified against the oracle (fp32, bf16, fp64) and against the GPU reference
#          (--ref gpu), and the float64 reference traces of cuda/gputraces (OUT/ref.tgz)
#   speed: spexec forward+backward against PyTorch eager (cuda/bench_torch.py) on the same
#          model shapes, fp32 and bf16, hidden 1024-4096 (OUT/speed.txt)
#   debug: reports of the tp=1 scenarios under OUT/debug
#   size:  issue 16's target, hidden 4096, 8 layers, seq 4096, vocab 32000, bf16, tp=1: emit,
#          executor run, GPU float64 reference, compare of the dumped tensors, each timed
# Run from the repository root with bin/spcheck built here (CGO_ENABLED=0 go build -o
# bin/spcheck ./cmd/spcheck) and carried.
set -uo pipefail
stages="${*:-check}"
has() { [[ " $stages " == *" $1 "* ]]; }
OUT="${OUT:-/tmp/spx-out}"
W=/tmp/spx-bench
rm -rf "$W"
mkdir -p "$OUT" "$W"
exec > >(tee -a "$OUT/bench.txt") 2>&1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # keep multicast off
SP=bin/spcheck
EX=cuda/build/spexec
nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
SECONDS=0
if ! make -C cuda -j16 all > "$OUT/build.log" 2>&1; then
	echo "BUILD FAILED"
	tail -40 "$OUT/build.log"
	exit 1
fi
echo "== build $SECONDS s"

if has check; then
	cuda/build/host_test cuda/tests/testdata | tail -1
	cuda/build/kernel_test cuda/tests/testdata > "$OUT/kernel_test.txt" 2>&1
	echo "kernel_test exit $?: $(grep -c '^ok' "$OUT/kernel_test.txt") ok"
	grep -E 'FAIL|error|generated' "$OUT/kernel_test.txt" | head -20
	M="hidden=16,heads=2,layers=2,ffn=32,vocab=37"
	for pl in "mtp=1,packed=3:2:3,$M,dtype=fp32" "mtp=1,packed=3:2:3,$M,dtype=bf16" "mtp=1,$M,tied=true,dtype=fp64" \
		"mtp=0,hidden=64,heads=4,layers=2,ffn=96,vocab=101,seq=48,batch=2,dtype=bf16"; do
		$SP gpu --plan "$pl" --exec $EX --work "$W/g" --extra "driver=$driver" > "$W/g.txt" 2> "$W/g.log"
		echo "gpu vs oracle rc=$?: $(grep '^spcheck gpu:' "$W/g.txt")"
		grep -m2 -E 'FAILED|error' "$W/g.log"
	done
	$SP gpu --plan "mtp=1,packed=3:2:3,$M,dtype=bf16" --ref gpu --exec $EX --work "$W/gr" --extra "driver=$driver" > "$W/gr.txt" 2> "$W/gr.log"
	echo "gpu vs gpu reference rc=$?: $(grep '^spcheck gpu:' "$W/gr.txt")"
	mkdir -p "$W/ref"
	for sc in "ref_fp64_default dtype=fp64" "ref_fp64_packed_tied packed=3:2:3,tied=true,batch=2,dtype=fp64"; do
		set -- $sc
		$SP plan --plan "$2" --emit "$W/$1/emit" > /dev/null
		$EX --emit "$W/$1/emit" --out "$W/ref/$1" --extra "driver=$driver" --extra "scenario=$1" | tail -1
		$SP oracle --plan "$2" --out "$W/$1/oracle" > /dev/null
		$SP compare "$W/$1/oracle" "$W/ref/$1" > "$W/$1.cmp" 2>&1
		echo "$1 vs oracle rc=$?: $(grep -i -m1 -E 'verified|failed' "$W/$1.cmp")"
	done
	tar -C "$W/ref" -czf "$OUT/ref.tgz" .
fi

# spexec_time PLAN: the best of 3 untraced forward+backward runs of spexec, in ms.
spexec_time() {
	$SP plan --plan "$1" --emit "$W/e" > /dev/null || return
	$EX --emit "$W/e" --out "$W/t" --dump none --repeat 4 > "$W/x.log" 2>&1
	sed -n 's/.*, run \([0-9.]*\) ms (best.*/\1/p' "$W/x.log"
	grep -m1 FAILED "$W/x.log"
}

if has debug; then
	mkdir -p "$OUT/debug"
	M="mtp=0,hidden=64,heads=4,layers=2,ffn=96,vocab=101,seq=48,batch=2"
	for dt in bf16 fp32; do
		$SP gpu --plan "$M,dtype=$dt" --exec $EX --work "$W/d$dt" > "$OUT/debug/$dt.txt" 2>&1
		echo "debug $dt rc=$?: $(grep '^spcheck gpu:' "$OUT/debug/$dt.txt")"
	done
	echo "== issue 16's first measurement (hidden 1024, ffn 4096, 4 layers, seq 512, batch 2, fp32), every tensor traced"
	P="hidden=1024,heads=16,layers=4,ffn=4096,seq=512,batch=2,vocab=32000,mtp=0,dtype=fp32"
	/usr/bin/time -f "emit: %e s, %M KB max RSS" $SP plan --plan "$P" --emit "$W/b/emit" > /dev/null
	echo "emitted: $(du -sh "$W/b/emit" | cut -f1)"
	/usr/bin/time -f "spexec: %e s wall, %M KB max RSS" $EX --emit "$W/b/emit" --out "$W/b/cuda" --extra "driver=$driver" | grep -v '^spexec: 1 ranks'
	echo "trace: $(du -sh "$W/b/cuda" | cut -f1)"
fi

if has speed; then
	echo "== speed: forward+backward, ms (spexec best of 3 untraced runs; torch median of 5)"
	printf "%-44s %-5s %10s %10s %10s %8s\n" config dtype spexec torch_math torch_sdpa ratio | tee -a "$OUT/speed.txt"
	for cfg in "hidden=1024,heads=16,layers=4,ffn=4096,seq=512,batch=2" "hidden=1024,heads=16,layers=4,ffn=4096,seq=2048,batch=1" \
		"hidden=2048,heads=16,layers=4,ffn=5632,seq=2048,batch=1" "hidden=4096,heads=32,layers=8,ffn=11008,seq=4096,batch=1"; do
		for dt in bf16 fp32; do
			pl="$cfg,vocab=32000,mtp=0,dtype=$dt"
			ex=$(spexec_time "$pl")
			args=$(echo "$cfg" | sed 's/\([a-z]*\)=/--\1 /g; s/,/ /g')
			tm=$(python3 cuda/bench_torch.py $args --vocab 32000 --dtype $dt 2>&1)
			math=$(echo "$tm" | sed -n 's/^torch math .*median_ms \([0-9.]*\).*/\1/p')
			sdpa=$(echo "$tm" | sed -n 's/^torch sdpa .*median_ms \([0-9.]*\).*/\1/p')
			ratio=$(awk -v a="$ex" -v b="$sdpa" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
			printf "%-44s %-5s %10s %10s %10s %8s\n" "$cfg" $dt "$ex" "$math" "$sdpa" "$ratio" | tee -a "$OUT/speed.txt"
			echo "$tm" | grep -v '^torch' | tail -3
		done
	done
fi

if has size; then
	P="hidden=4096,heads=32,layers=8,ffn=11008,seq=4096,batch=1,vocab=32000,mtp=0,tp=1"
	D=(--dump 'loss/*' --dump 'grad/*norm.weight' --dump 'grad/layers.7.*')
	echo "== size: $P"
	t0=$(date +%s.%N)
	/usr/bin/time -f "%e s, %M KB max RSS" $SP plan --plan "$P,dtype=bf16" --emit "$W/sz/emit" > /dev/null
	t1=$(date +%s.%N)
	echo "emit bf16: $(du -sh "$W/sz/emit" | cut -f1) on disk"
	/usr/bin/time -f "spexec bf16: %e s wall, %M KB max RSS" $EX --emit "$W/sz/emit" --out "$W/sz/cuda" "${D[@]}" --extra "driver=$driver"
	t2=$(date +%s.%N)
	/usr/bin/time -f "%e s, %M KB max RSS" $SP plan --plan "$P,dtype=fp64" --emit "$W/sz/ref-emit" > /dev/null
	/usr/bin/time -f "spexec fp64 reference: %e s wall, %M KB max RSS" $EX --emit "$W/sz/ref-emit" --out "$W/sz/ref" "${D[@]}" --extra "driver=$driver"
	t3=$(date +%s.%N)
	$SP compare "$W/sz/ref" "$W/sz/cuda" > "$W/sz/cmp.txt" 2>&1
	echo "compare rc=$?: $(head -1 "$W/sz/cmp.txt")"
	t4=$(date +%s.%N)
	du -sh "$W/sz/cuda" "$W/sz/ref"
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" 'BEGIN { printf "pipeline: emit %.1f s, bf16 run %.1f s, fp64 reference (emit+run) %.1f s, compare %.1f s, total %.1f s\n", b-a, c-b, d-c, e-d, e-a }'
	grep -E 'loss/main' "$W/sz/cmp.txt" | head -2
	echo "untraced runs (not part of the pipeline):"
	$EX --emit "$W/sz/emit" --out "$W/sz/c2" --dump none --repeat 3 | grep 'rank 0'
	$EX --emit "$W/sz/ref-emit" --out "$W/sz/ref2" --dump none --repeat 2 | grep 'rank 0'
	for e in emit ref-emit; do  # GPU time per op kind (CUDA events around every op)
		$EX --emit "$W/sz/$e" --out "$W/sz/p" --dump none --repeat 2 --profile > "$OUT/profile-$e.txt" 2>&1
		grep -A12 'per op kind' "$OUT/profile-$e.txt"
	done
	cp "$W/sz/cmp.txt" "$OUT/size-compare.txt"
fi
echo "== done in $SECONDS s"
