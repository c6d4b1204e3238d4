#!/usr/bin/env bash
# Mixed precision from the sensitivity profile at several weight-memory budgets
# (docs/mixed-precision.md): for each budget, `rwkvlite plan PROFILE --memory-budget B
# --method METHOD --emit-config`, compress with that config, and evaluate on held-out text
# against the dense model. Predicted (calibration text, summed single-tensor KL) beside measured.
#   scripts/mixed_precision_curve.sh                         (reference model, shipped profile)
#   BUDGETS="20% 15%" MAX_BYTES=0 scripts/mixed_precision_curve.sh   (whole held-out range)
#   MODEL=m.pth PROFILE=new scripts/mixed_precision_curve.sh         (profile MODEL first)
# Results: bench/results/mixed-precision-curve.{jsonl,md}; per-run files under
# build/bench/mixed-precision/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/reference/rwkv5-ref-6x256.pth}
PROFILE=${PROFILE:-models/reference/sensitivity-profile.json}
BUDGETS=${BUDGETS:-"40% 30% 25% 20% 17% 15% 12%"}
METHOD=${METHOD:-gptq}
MAX_BYTES=${MAX_BYTES:-30000}
THREADS=${THREADS:-2}
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
work=build/bench/mixed-precision
mkdir -p "$work" bench/results
rw=build/bin/rwkvlite
if [ "$PROFILE" = new ]; then
  PROFILE=$work/profile.json
  echo "profiling $MODEL (calibration bytes [0, 2000) of the bundled text)" >&2
  $rw --quiet profile "$MODEL" --max-bytes 2000 --threads "$THREADS" --json "$PROFILE" >/dev/null
fi
dense=$work/dense-$MAX_BYTES.eval.json
[ -f "$dense" ] || $rw --quiet eval "$MODEL" --max-bytes "$MAX_BYTES" --threads "$THREADS" --json "$dense" >/dev/null
out=bench/results/mixed-precision-curve.jsonl
: > "$out"
for b in $BUDGETS; do
  tag=${b%\%}pct
  if ! $rw --quiet plan "$PROFILE" --memory-budget "$b" --method "$METHOD" --emit-config "$work/$tag.toml" \
    --json "$work/$tag.plan.json" >/dev/null; then
    echo "budget $b: below the smallest profiled encodings, skipped" >&2
    continue
  fi
  $rw --quiet compress "$MODEL" -c "$work/$tag.toml" -o "$work/$tag.rwkvlite" --force --threads "$THREADS" \
    --calibration-cache "$work/cache"
  $rw --quiet eval "$work/$tag.rwkvlite" --reference "$MODEL" --max-bytes "$MAX_BYTES" --threads "$THREADS" \
    --json "$work/$tag.eval.json" >/dev/null
  python3 - "$b" "$work/$tag.plan.json" "$work/$tag.eval.json" "$dense" >> "$out" <<'PY'
import json, sys
budget, plan, ev, dense = sys.argv[1], *[json.load(open(p)) for p in sys.argv[2:]]
fp16 = plan["dense_fp16_bytes"]
print(json.dumps({
    "budget": budget, "planned_weight_bytes": plan["weight_bytes"],
    "peak_resident_weight_bytes": ev["peak_resident_weight_bytes"],
    "x_below_fp16": fp16 / ev["peak_resident_weight_bytes"],
    "predicted_increase_pct": plan["predicted_increase_pct"],
    "bits_per_byte": ev["bits_per_byte"], "dense_bits_per_byte": dense["bits_per_byte"],
    "measured_increase_pct": 100 * (ev["bits_per_byte"] / dense["bits_per_byte"] - 1),
    "top1_agreement": ev["top1_agreement"], "kl_mean": ev["kl_mean"],
    "tokens_per_second": ev["tokens_per_second"]}))
PY
  tail -1 "$out" >&2
done
python3 - "$out" "$MODEL" "$PROFILE" "$METHOD" "$MAX_BYTES" > bench/results/mixed-precision-curve.md <<'PY'
import json, sys, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
model, profile, method, max_bytes = sys.argv[2:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Mixed precision on {model}: `rwkvlite plan {profile} --memory-budget B --method {method}`; held-out bytes "
      f"[1,000,000, +{max_bytes or 'end'}), dense {rows[0]['dense_bits_per_byte']:.4f} bits/byte. Machine: {cpu}. "
      f"Command: scripts/mixed_precision_curve.sh\n")
print("| budget | peak resident weight bytes | vs dense FP16 | predicted Δ (calibration) | measured Δ (held-out) | bits/byte | top-1 agreement | tokens/s |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['budget']} | {r['peak_resident_weight_bytes']:,} | {r['x_below_fp16']:.2f}x | {r['predicted_increase_pct']:+.2f}% | "
          f"{r['measured_increase_pct']:+.2f}% | {r['bits_per_byte']:.4f} | {r['top1_agreement']:.4f} | {r['tokens_per_second']:.0f} |")
PY
cat bench/results/mixed-precision-curve.md
