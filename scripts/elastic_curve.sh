#!/usr/bin/env bash
# The elastic runtime's budget curve (docs/elastic.md): compress MODEL once with an elastic
# config (every profiled matrix at each fidelity), then run the one file at each memory budget
# with `rwkvlite eval FILE --memory-budget B --reference MODEL` on held-out text. The planner's
# prediction (summed single-matrix KL on the profile's calibration text) beside the measurement.
# Budgets below what holding every matrix needs stream layers; at PIPE_BUDGETS the streamed run
# is repeated with reads throttled to IO_MBS MB/s, pipelined and sequential (load, then compute).
#   scripts/elastic_curve.sh                                   (reference v5.2 model)
#   MODEL=models/reference-v7/rwkv7-ref-6x256.pth CONFIG=configs/elastic/reference-v7.toml \
#     NAME=reference-v7 scripts/elastic_curve.sh
#   BUDGETS="20% 10%" MAX_BYTES=0 scripts/elastic_curve.sh     (whole held-out range)
#   EVAL_OPTS=--interleave-zeros ...                            (options for every eval: the tiny v6 model)
# Results: bench/results/elastic-curve-NAME.{jsonl,md}; the file under build/bench/elastic/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/reference/rwkv5-ref-6x256.pth}
CONFIG=${CONFIG:-configs/elastic/reference.toml}
NAME=${NAME:-reference}
BUDGETS=${BUDGETS:-"100% 50% 30% 25% 20% 15% 12% 10% 8% 5% 3% 2%"}
PIPE_BUDGETS=${PIPE_BUDGETS:-"10% 5%"}
IO_MBS=${IO_MBS:-200}
PIPE_MAX_BYTES=${PIPE_MAX_BYTES:-3000}  # throttled runs read MBs per token: fewer bytes
SPEED_MAX_BYTES=${SPEED_MAX_BYTES:-1500}  # tokens/s: rwkvlite-run over the first held-out bytes
SPEED_RUNS=${SPEED_RUNS:-3}
MAX_BYTES=${MAX_BYTES:-30000}
THREADS=${THREADS:-2}
EVAL_OPTS=${EVAL_OPTS:-}
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
work=build/bench/elastic/$NAME
mkdir -p "$work" bench/results
rw=build/bin/rwkvlite
file=$work/elastic.rwkvlite
if [ ! -f "$file" ] || [ "${FORCE:-0}" = 1 ]; then
  $rw --quiet compress "$MODEL" -c "$CONFIG" -o "$file" --force --threads "$THREADS"
fi
out=bench/results/elastic-curve-$NAME.jsonl
: > "$out"
# run TAG BUDGET MODE BYTES [options]: one eval, one JSON line in $out (MODE names the run).
run() {
  local tag=$1 b=$2 mode=$3 bytes=$4
  shift 4
  if ! $rw --quiet eval "$file" --memory-budget "$b" --reference "$MODEL" --max-bytes "$bytes" \
    --threads "$THREADS" --json "$work/$tag.eval.json" $EVAL_OPTS "$@" >/dev/null 2>"$work/$tag.err"; then
    echo "budget $b ($mode): $(cat "$work/$tag.err")" >&2
    # A budget below the smallest forms is a row too: the planner's own refusal, verbatim.
    python3 -c 'import json, sys; print(json.dumps({"budget": sys.argv[1], "mode": sys.argv[2], "error": sys.argv[3].strip()}))' \
      "$b" "$mode" "$(cat "$work/$tag.err")" >> "$out"
    return 0
  fi
  # Speed by itself: eval times only the model's own feeds, but the reference model's feeds in
  # between give a pipelined loader free time to read ahead, so tokens/s comes from rwkvlite-run,
  # which runs the one model alone, with the same plan (and predicts the same way).
  # SPEED_RUNS processes, each predicting and measuring: the row keeps the medians (a shared
  # machine's noise hits a single run).
  local i
  rm -f "$work/$tag".run*.json
  for i in $(seq "$SPEED_RUNS"); do
    build/bin/rwkvlite-run "$file" --memory-budget "$b" --max-bytes "$SPEED_MAX_BYTES" --threads "$THREADS" \
      --json "$work/$tag.run$i.json" $EVAL_OPTS "$@" >/dev/null 2>>"$work/$tag.err"
  done
  local ref=$work/dense-$bytes.eval.json
  [ -f "$ref" ] || $rw --quiet eval "$MODEL" --max-bytes "$bytes" --threads "$THREADS" --json "$ref" $EVAL_OPTS >/dev/null
  python3 - "$b" "$mode" "$bytes" "$work/$tag.eval.json" "$ref" "$work/$tag".run[0-9]*.json >> "$out" <<'PY'
import json, statistics, sys
budget, mode, text_bytes = sys.argv[1:4]
ev, dense = [json.load(open(p)) for p in sys.argv[4:6]]
runs = [json.load(open(p)) for p in sys.argv[6:]]
e = ev["elastic"]
med = lambda f: statistics.median(f(r) for r in runs)
streams = [r["stream"] for r in runs if r.get("stream")]
print(json.dumps({
    "budget": budget, "mode": mode, "text_bytes": ev["text_bytes"], "budget_bytes": ev["memory_budget_bytes"], "planned_bytes": e["planned_bytes"],
    "peak_resident_weight_bytes": ev["peak_resident_weight_bytes"],
    "x_below_fp16": e["dense_fp16_bytes"] / ev["peak_resident_weight_bytes"],
    "predicted_increase_pct": e["predicted_increase_percent"],
    "bits_per_byte": ev["bits_per_byte"], "dense_bits_per_byte": dense["bits_per_byte"],
    "measured_increase_pct": 100 * (ev["bits_per_byte"] / dense["bits_per_byte"] - 1),
    "top1_agreement": ev["top1_agreement"], "kl_mean": ev["kl_mean"],
    "fidelity_counts": e["fidelity_counts"], "speed_text_bytes": runs[0]["text_bytes"], "speed_runs": len(runs),
    "tokens_per_second": med(lambda r: r["tokens_per_second"]), "eval_tokens_per_second": ev["tokens_per_second"],
    "tokens_per_second_range": [min(r["tokens_per_second"] for r in runs), max(r["tokens_per_second"] for r in runs)],
    "predicted_tokens_per_second": med(lambda r: r["elastic"]["predicted_speed"]["tokens_per_second"]),
    "predicted_tokens_per_second_range": [min(r["elastic"]["predicted_speed"]["tokens_per_second"] for r in runs),
                                          max(r["elastic"]["predicted_speed"]["tokens_per_second"] for r in runs)],
    "predicted_stall_fraction": med(lambda r: r["elastic"]["predicted_speed"]["stall_fraction"]),
    "first_streamed_layer": e["streaming"]["first_streamed_layer"] if e["streaming"] else None,
    "stall_fraction": statistics.median(s["stall_fraction"] for s in streams) if streams else 0.0,
    "bytes_read_per_token": ev["stream"]["bytes_read_per_token"] if ev.get("stream") else 0.0}))
PY
  tail -1 "$out" >&2
}
for b in $BUDGETS; do
  run "${b%\%}pct" "$b" resident-or-streamed "$MAX_BYTES"
done
for b in $PIPE_BUDGETS; do
  run "${b%\%}pct-pipelined" "$b" "pipelined ${IO_MBS} MB/s" "$PIPE_MAX_BYTES" --stream --io-bandwidth "$IO_MBS"
  run "${b%\%}pct-sequential" "$b" "sequential ${IO_MBS} MB/s" "$PIPE_MAX_BYTES" --stream --sequential --io-bandwidth "$IO_MBS"
done
command="NAME=$NAME MODEL=$MODEL CONFIG=$CONFIG BUDGETS=\"$BUDGETS\" PIPE_BUDGETS=\"$PIPE_BUDGETS\" IO_MBS=$IO_MBS MAX_BYTES=$MAX_BYTES scripts/elastic_curve.sh"
python3 - "$out" "$MODEL" "$CONFIG" "$MAX_BYTES" "$(stat -c %s "$file")" "$THREADS" "$command" > bench/results/elastic-curve-$NAME.md <<'PY'
import json, sys, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
model, config, max_bytes, file_bytes, threads, command = sys.argv[2:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
first = next(r for r in rows if "error" not in r)
print(f"Elastic runtime on {model} ({config}, one file of {int(file_bytes):,} bytes): `rwkvlite eval FILE --memory-budget B "
      f"--reference MODEL --threads {threads}`; held-out bytes [1,000,000, +{max_bytes if max_bytes != '0' else 'end'}) "
      f"(the throttled runs fewer: their text bytes column); tokens/s and stall: medians of {first.get('speed_runs', 1)} processes of `rwkvlite-run FILE --memory-budget B` alone "
      f"over the first {first.get('speed_text_bytes', 0):,} held-out bytes, dense {first['dense_bits_per_byte']:.4f} bits/byte. "
      f"Machine: {cpu}, {__import__('os').cpu_count()} cores. Command: `{command}`\n")
print("| budget | run | text bytes | peak resident weight bytes | vs dense FP16 | predicted Δ (calibration) | measured Δ (held-out) | bits/byte | top-1 agreement | KL (nats) | tokens/s | predicted tokens/s | streamed from layer | MB read/token | stall fraction | predicted stall | forms chosen |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if "error" in r:
        print(f"| {r['budget']} | does not fit | | | | | | | | | | | | | | | {r['error']} |")
        continue
    forms = ", ".join(f"{k} {v}" for k, v in sorted(r["fidelity_counts"].items(), key=lambda kv: -kv[1]))
    layer = "-" if r["first_streamed_layer"] is None else str(r["first_streamed_layer"])
    mode = "resident" if r["first_streamed_layer"] is None else ("streamed" if r["mode"] == "resident-or-streamed" else r["mode"])
    print(f"| {r['budget']} | {mode} | {r['text_bytes']:,} | {r['peak_resident_weight_bytes']:,} | {r['x_below_fp16']:.2f}x | {r['predicted_increase_pct']:+.2f}% | "
          f"{r['measured_increase_pct']:+.2f}% | {r['bits_per_byte']:.4f} | {r['top1_agreement']:.4f} | {r['kl_mean']:.4f} | "
          f"{r['tokens_per_second']:.0f} | {r['predicted_tokens_per_second']:.0f} | {layer} | {r['bytes_read_per_token'] / 1e6:.2f} | "
          f"{r['stall_fraction']:.2f} | {r['predicted_stall_fraction']:.2f} | {forms} |")
PY
cat bench/results/elastic-curve-$NAME.md
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  /usr/bin/python3 scripts/plot_elastic_curve.py "$out" "docs/img/elastic-curve-$NAME.png" "$NAME"
else
  echo "matplotlib missing (scripts/setup.sh installs python3-matplotlib): no plot" >&2
fi
