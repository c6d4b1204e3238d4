#!/usr/bin/env bash
# The elastic budget curve (scripts/elastic_curve.sh) on each tiny rwkv.cpp model: profile the
# model (round to nearest, its calibration bytes [0, 2000); the v6 model on zero-interleaved
# text), store every matrix at each profiled fidelity in one elastic file, then run that file at
# each budget. The tiny models are barely trained (../shared/models/tiny-rwkv/README.md): their
# curves show that every budget runs within its bytes and how speed follows, not that accuracy
# holds on real models; the reference model's curve is the accuracy evidence.
#   scripts/elastic_curve_tiny.sh
#   STEMS="5v2-730K" BUDGETS="50% 10%" scripts/elastic_curve_tiny.sh
# Results: bench/results/elastic-curve-tiny-STEM.{jsonl,md} per model, a summary in
# bench/results/elastic-curve-tiny.md, plots in docs/img/elastic-curve-tiny-STEM.png.
set -euo pipefail
cd "$(dirname "$0")/.."
TINY_DIR=${TINY_DIR:-../shared/models/tiny-rwkv}
STEMS=${STEMS:-"4v0-660K 5v1-730K 5v2-730K 6v0-1m 7v0-834K"}
export BUDGETS=${BUDGETS:-"100% 50% 30% 20% 15% 10% 5% 3% 2%"}
export PIPE_BUDGETS=${PIPE_BUDGETS:-"10%"}
export MAX_BYTES=${MAX_BYTES:-20000}
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
rw=build/bin/rwkvlite
done_stems=()
for stem in $STEMS; do
  model=$TINY_DIR/tiny-rwkv-$stem-FP32.bin
  # Only the v5.2 model is vendored; the others come with ../shared.
  [ -f "$model" ] || model=third_party/tiny-rwkv/tiny-rwkv-$stem-FP32.bin
  if [ ! -f "$model" ]; then
    echo "tiny-$stem: no $TINY_DIR/tiny-rwkv-$stem-FP32.bin, skipped" >&2
    continue
  fi
  work=build/bench/elastic/tiny-$stem
  mkdir -p "$work"
  zeros=""
  [ "$stem" = 6v0-1m ] && zeros=--interleave-zeros
  if [ ! -f "$work/profile.json" ] || [ "${FORCE:-0}" = 1 ]; then
    $rw --quiet profile "$model" --max-bytes 2000 $zeros --json "$work/profile.json"
  fi
  printf '[[pass]]\ntype = "elastic"\nprofile = "profile.json"\n' > "$work/elastic.toml"
  MODEL=$model CONFIG=$work/elastic.toml NAME=tiny-$stem EVAL_OPTS=$zeros SKIP_BUILD=1 scripts/elastic_curve.sh >/dev/null
  done_stems+=("$stem")
done
[ ${#done_stems[@]} -gt 0 ] || { echo "no tiny model found under $TINY_DIR" >&2; exit 1; }
python3 - "${done_stems[@]}" > bench/results/elastic-curve-tiny.md <<'PY'
import json, sys, platform
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Elastic runtime on the tiny rwkv.cpp models (barely trained: correctness and memory, not accuracy). "
      f"Machine: {cpu}. Command: scripts/elastic_curve_tiny.sh; one table per model in bench/results/elastic-curve-tiny-STEM.md.\n")
print("| model | budget | run | budget bytes | peak resident weight bytes | within budget | measured Δ bits/byte | tokens/s | predicted tokens/s |")
print("|---|---|---|---|---|---|---|---|---|")
for stem in sys.argv[1:]:
    for r in (json.loads(l) for l in open(f"bench/results/elastic-curve-tiny-{stem}.jsonl")):
        if "error" in r:
            print(f"| {stem} | {r['budget']} | does not fit | | | | | | |")
            continue
        mode = "resident" if r["first_streamed_layer"] is None else ("streamed" if r["mode"] == "resident-or-streamed" else r["mode"])
        fits = "yes" if r["peak_resident_weight_bytes"] <= r["budget_bytes"] else "**no**"
        print(f"| {stem} | {r['budget']} | {mode} | {r['budget_bytes']:,} | {r['peak_resident_weight_bytes']:,} | {fits} | "
              f"{r['measured_increase_pct']:+.2f}% | {r['tokens_per_second']:.0f} | {r['predicted_tokens_per_second']:.0f} |")
PY
cat bench/results/elastic-curve-tiny.md
