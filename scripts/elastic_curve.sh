#!/usr/bin/env bash
# The elastic runtime's budget curve (docs/elastic.md): compress MODEL once with an elastic
# config (every profiled matrix at each fidelity), then run the one file at each memory budget
# with `rwkvlite eval FILE --memory-budget B --reference MODEL` on held-out text. The planner's
# prediction (summed single-matrix KL on the profile's calibration text) beside the measurement.
#   scripts/elastic_curve.sh                                   (reference v5.2 model)
#   MODEL=models/reference-v7/rwkv7-ref-6x256.pth CONFIG=configs/v7/elastic-reference-v7.toml \
#     NAME=reference-v7 scripts/elastic_curve.sh
#   BUDGETS="20% 10%" MAX_BYTES=0 scripts/elastic_curve.sh     (whole held-out range)
# Results: bench/results/elastic-curve-NAME.{jsonl,md}; the file under build/bench/elastic/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/reference/rwkv5-ref-6x256.pth}
CONFIG=${CONFIG:-configs/elastic-reference.toml}
NAME=${NAME:-reference}
BUDGETS=${BUDGETS:-"100% 50% 30% 25% 20% 17% 15% 12% 10%"}
MAX_BYTES=${MAX_BYTES:-30000}
THREADS=${THREADS:-2}
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
work=build/bench/elastic/$NAME
mkdir -p "$work" bench/results
rw=build/bin/rwkvlite
file=$work/elastic.rwkvlite
if [ ! -f "$file" ] || [ "${FORCE:-0}" = 1 ]; then
  $rw --quiet compress "$MODEL" -c "$CONFIG" -o "$file" --force --threads "$THREADS"
fi
dense=$work/dense-$MAX_BYTES.eval.json
[ -f "$dense" ] || $rw --quiet eval "$MODEL" --max-bytes "$MAX_BYTES" --threads "$THREADS" --json "$dense" >/dev/null
out=bench/results/elastic-curve-$NAME.jsonl
: > "$out"
for b in $BUDGETS; do
  tag=${b%\%}pct
  if ! $rw --quiet eval "$file" --memory-budget "$b" --reference "$MODEL" --max-bytes "$MAX_BYTES" \
    --threads "$THREADS" --json "$work/$tag.eval.json" >/dev/null 2>"$work/$tag.err"; then
    echo "budget $b: $(cat "$work/$tag.err")" >&2
    continue
  fi
  python3 - "$b" "$work/$tag.eval.json" "$dense" >> "$out" <<'PY'
import json, sys
budget, ev, dense = sys.argv[1], *[json.load(open(p)) for p in sys.argv[2:]]
e = ev["elastic"]
print(json.dumps({
    "budget": budget, "budget_bytes": ev["memory_budget_bytes"], "planned_bytes": e["planned_bytes"],
    "peak_resident_weight_bytes": ev["peak_resident_weight_bytes"],
    "x_below_fp16": e["dense_fp16_bytes"] / ev["peak_resident_weight_bytes"],
    "predicted_increase_pct": e["predicted_increase_percent"],
    "bits_per_byte": ev["bits_per_byte"], "dense_bits_per_byte": dense["bits_per_byte"],
    "measured_increase_pct": 100 * (ev["bits_per_byte"] / dense["bits_per_byte"] - 1),
    "top1_agreement": ev["top1_agreement"], "kl_mean": ev["kl_mean"],
    "tokens_per_second": ev["tokens_per_second"], "fidelity_counts": e["fidelity_counts"]}))
PY
  tail -1 "$out" >&2
done
python3 - "$out" "$MODEL" "$CONFIG" "$MAX_BYTES" "$(stat -c %s "$file")" > bench/results/elastic-curve-$NAME.md <<'PY'
import json, sys, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
model, config, max_bytes, file_bytes = sys.argv[2:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Elastic runtime on {model} ({config}, one file of {int(file_bytes):,} bytes): `rwkvlite eval FILE --memory-budget B "
      f"--reference MODEL`; held-out bytes [1,000,000, +{max_bytes if max_bytes != '0' else 'end'}), dense "
      f"{rows[0]['dense_bits_per_byte']:.4f} bits/byte. Machine: {cpu}. Command: scripts/elastic_curve.sh\n")
print("| budget | peak resident weight bytes | vs dense FP16 | predicted Δ (calibration) | measured Δ (held-out) | bits/byte | top-1 agreement | KL (nats) | tokens/s | forms chosen |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    forms = ", ".join(f"{k} {v}" for k, v in sorted(r["fidelity_counts"].items(), key=lambda kv: -kv[1]))
    print(f"| {r['budget']} | {r['peak_resident_weight_bytes']:,} | {r['x_below_fp16']:.2f}x | {r['predicted_increase_pct']:+.2f}% | "
          f"{r['measured_increase_pct']:+.2f}% | {r['bits_per_byte']:.4f} | {r['top1_agreement']:.4f} | {r['kl_mean']:.4f} | "
          f"{r['tokens_per_second']:.0f} | {forms} |")
PY
cat bench/results/elastic-curve-$NAME.md
