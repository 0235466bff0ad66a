#!/usr/bin/env bash
# run-scenarios.sh OUT: every GPU scenario of issue 7 that the visible GPUs allow, each run with
# `spcheck gpu` (emit → spexec → oracle → compare); traces under OUT/traces/NAME, one summary
# line per scenario in OUT/summary.txt. Run from the repository root after make -C cuda and
# with bin/spcheck built (CGO_ENABLED=0 go build -o bin/spcheck ./cmd/spcheck).
set -uo pipefail
OUT="$1"
only="${2:-}"  # "bugs": only the bug scenarios
SP=bin/spcheck
EX=cuda/build/spexec
W=/tmp/spx-work
rm -rf "$W"
mkdir -p "$W" "$OUT/traces"
export NCCL_NVLS_ENABLE=0
gpus=$(nvidia-smi -L | wc -l)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
summary="$OUT/summary.txt"
: > "$summary"

# scenario NAME NEED_GPUS PLAN [--tol T]
scenario() {
	local name="$1" need="$2" plan="$3"
	shift 3
	if ((gpus < need)); then
		echo "$name: NOT RUN (needs $need GPUs, $gpus visible) --plan '$plan'" | tee -a "$summary"
		return
	fi
	local t0=$SECONDS
	$SP gpu --plan "$plan" --exec "$EX" --work "$W/$name" --timeout 60 --extra "driver=$driver" --extra "scenario=$name" "$@" \
		> "$W/$name.report" 2> "$W/$name.log"
	local rc=$?
	{
		echo "$name: rc=$rc $(grep '^spcheck gpu:' "$W/$name.report") [$((SECONDS - t0)) s with oracle+compare]"
		grep '^spexec: \(ok\|FAILED\)' "$W/$name.log"
		grep 'FAILED:' "$W/$name.log" | head -3
	} | tee -a "$summary"
	[ -d "$W/$name/cuda" ] && cp -r "$W/$name/cuda" "$OUT/traces/$name"
	cp "$W/$name.report" "$OUT/traces/$name.report.txt" 2>/dev/null
	cp "$W/$name.log" "$OUT/traces/$name.spexec.log" 2>/dev/null  # a run error's only record
}

M="hidden=16,heads=2,layers=2,ffn=32,vocab=37"
for dt in fp32 bf16; do
	[ "$only" = bugs ] && break
	scenario "vllm_tp2_$dt" 2 "tp=2,sp=vllm,mtp=0,$M,dtype=$dt"
	scenario "vllm_tp4_$dt" 4 "tp=4,sp=vllm,mtp=0,$M,dtype=$dt"
	scenario "ppsp_tp2pp2_$dt" 2 "tp=2,pp=2,sp=vllm,mtp=0,$M,dtype=$dt"
	scenario "partialp2p_tp2pp2_spoff_$dt" 2 "tp=2,pp=2,sp=off,partial_p2p=true,mtp=0,$M,dtype=$dt"
	scenario "full_tp2pp2_$dt" 2 "tp=2,pp=2,sp=megatron,mtp=1,packed=3:2:3,microbatches=2,$M,dtype=$dt"
done

# Bug variants (the catalogue, simulate.RegisterVariant): one line each in cuda/bug-scenarios.txt,
# "NAME NEED_GPUS PLAN" (the plan with its bug=… key); absent or unknown variants are reported.
if [ -f cuda/bug-scenarios.txt ]; then
	while read -r name need plan; do
		[ -z "$name" ] || [ "${name#\#}" != "$name" ] && continue
		scenario "$name" "$need" "$plan"
	done < cuda/bug-scenarios.txt
fi

if [ "$only" != bugs ]; then
echo "== one process per rank (ids through files)" | tee -a "$summary"
scenario procs_tp2_fp32 2 "tp=2,sp=megatron,mtp=1,packed=3:2:3,$M,dtype=fp32" --exec cuda/run-procs.sh

echo "== mismatched programs: rank 1 stops before its first collective" | tee -a "$summary"
P="tp=2,sp=megatron,mtp=0,$M,dtype=fp32"
$SP plan --plan "$P" --emit "$W/hang/emit" > /dev/null
python3 - "$W/hang/emit/programs/rank-00001.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
cut = next(i for i, o in enumerate(p["ops"]) if o["op"] in ("all_reduce", "all_gather", "reduce_scatter"))
p["ops"] = p["ops"][:cut]
json.dump(p, open(sys.argv[1], "w"))
PY
t0=$SECONDS
$EX --emit "$W/hang/emit" --out "$W/hang/cuda" > "$W/hang1.log" 2>&1
echo "precheck: exit $? after $((SECONDS - t0)) s: $(grep -m1 'schedule' "$W/hang1.log")" | tee -a "$summary"
t0=$SECONDS
timeout 120 $EX --emit "$W/hang/emit" --out "$W/hang/cuda" --no-precheck --timeout 5 > "$W/hang2.log" 2>&1
echo "watchdog: exit $? after $((SECONDS - t0)) s:" | tee -a "$summary"
grep 'FAILED' "$W/hang2.log" | cut -c1-400 | tee -a "$summary"
fi

tar -C "$OUT" -czf "$OUT/traces.tgz" traces && rm -rf "$OUT/traces"
tar -C "$W" -czf "$OUT/logs.tgz" --exclude='*.safetensors' --exclude='emit' . 2>/dev/null
echo "== summary"
cat "$summary"
