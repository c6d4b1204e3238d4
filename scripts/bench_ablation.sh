#!/usr/bin/env bash
# Reproduces the ablation tables of docs/results.md: for each model, compresses with each config and runs
# the compact file on the whole held-out range against the dense model.
#   scripts/bench_ablation.sh [MODEL ...]     (default: the reference model and the tiny models)
# Results: bench/results/ablation-<model>-<config>.json and a summary table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
CONFIGS=${CONFIGS:-"dense-fp32 dense-fp16 lowrank-svd lowrank-aware lowrank-int8 int8 default"}
MAX_BYTES=${MAX_BYTES:-0}
# Extra rwkvlite-run flags, e.g. RUN_FLAGS=--audit-sparsity to measure the predictors' recall.
read -r -a RUN_FLAGS <<< "${RUN_FLAGS:-}"
# Extra compress flags for a variant of a config, e.g. SETS="--set pass.1.k=8" TAG=k8: results
# are then named <model>-<config>-<TAG>.
read -r -a SETS <<< "${SETS:-}"
TAG=${TAG:+-$TAG}
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then
  MODELS=(models/reference/rwkv5-ref-6x256.pth)
  for s in 4v0-660K 5v1-730K 5v2-730K 6v0-1m 7v0-834K; do
    f=../shared/models/tiny-rwkv/tiny-rwkv-$s-FP32.bin
    [ -f "$f" ] || f=third_party/tiny-rwkv/tiny-rwkv-$s-FP32.bin
    [ -f "$f" ] && MODELS+=("$f")
  done
fi
mkdir -p bench/results build/bench
for model in "${MODELS[@]}"; do
  name=$(basename "$model"); name=${name%.*}
  ref=build/bench/$name-FP32.bin
  build/bin/rwkvlite --log-level warn convert "$model" "$ref" --force
  extra=(); calib=()
  # rwkv.cpp's tiny v6 was trained on bytes interleaved with 0x00: evaluate and calibrate so.
  case "$name" in *6v0*) extra=(--interleave-zeros); calib=(--set calibration.interleave_zeros=true) ;; esac
  eps=()
  case "$model" in *.pth) eps=(--ln-x-eps 64e-5) ;; esac
  for cfg in $CONFIGS; do
    out=build/bench/$name-$cfg$TAG.rwkvlite
    result=bench/results/ablation-$name-$cfg$TAG.json
    build/bin/rwkvlite --log-level warn compress "$model" -o "$out" -c configs/$cfg.toml --force "${calib[@]}" "${SETS[@]}"
    build/bin/rwkvlite-run "$out" --reference "$ref" "${eps[@]}" "${extra[@]}" --max-bytes "$MAX_BYTES" "${RUN_FLAGS[@]}" \
      --log-level warn --json "$result" >/dev/null
    python3 - "$name" "$cfg$TAG" "$result" <<'PY'
import json, sys
sys.path.insert(0, "scripts")
from ablation_tables import notes_of  # the same sparse FFN / head notes as the docs/results.md tables
d = json.load(open(sys.argv[3]))
print(f"| {sys.argv[1]} | {sys.argv[2]} | {d['bits_per_byte']:.4f} | {d['top1_agreement']:.4f} | {d['kl_mean']:.5f} | "
      f"{d['file_bytes']:,} | {d['peak_resident_weight_bytes']:,} | {notes_of(d)} |")
PY
  done
done
