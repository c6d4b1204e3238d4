#!/usr/bin/env bash
# The per-width table of the quantize pass's methods (docs/results.md, "Error-aware quantization"):
# for each width (int8, int4, int3, int2) and method (rtn, weighted, gptq), quantizes the
# calibrated projections of the reference model (att receptance/key/value/gate/output, ffn
# receptance/key) and keeps ffn.value, the embedding and the head at f16 for every row, so the rows
# differ only in how those projections are quantized. Reports the input-weighted output error per
# tensor (median over the 42 tensors and per tensor class) and held-out bits per byte.
#   scripts/quant_table.sh                        (the reference model, the whole held-out range)
#   MAX_BYTES=20000 WIDTHS="i4g64" scripts/quant_table.sh
# Calibration: bytes [0, CAL_BYTES) of the bundled text (default 200,000, as configs/default.toml);
# evaluation: bytes [1,000,000, end) (rwkvlite-run's default held-out range), never calibrated on.
# Results: bench/results/quant-table.{json,md}; per-run files under build/bench/quant-table/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/reference/rwkv5-ref-6x256.pth}
MAX_BYTES=${MAX_BYTES:-0}
CAL_BYTES=${CAL_BYTES:-200000}
WIDTHS=${WIDTHS:-"i8 i4g64 i3g64 i2g32"}
METHODS=${METHODS:-"rtn weighted gptq"}
THREADS=${THREADS:-2}
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
work=build/bench/quant-table
mkdir -p "$work" bench/results
name=$(basename "$MODEL"); name=${name%.*}
eps=()
case "$MODEL" in *.pth) eps=(--ln-x-eps 64e-5) ;; esac  # as scripts/bench_ablation.sh

ref=$work/$name-FP32.bin
[ -f "$ref" ] || build/bin/rwkvlite --log-level warn convert "$MODEL" "$ref" --force
dense=$work/dense-$MAX_BYTES.eval.json  # the same for every run on this range: computed once
if [ ! -f "$dense" ]; then
  build/bin/rwkvlite-run "$ref" "${eps[@]}" --max-bytes "$MAX_BYTES" --threads "$THREADS" --log-level warn \
    --json "$dense" >/dev/null
fi

for width in $WIDTHS; do
  for method in $METHODS; do
    run=$work/$width-$method
    cat > "$run.toml" <<EOF
[calibration]
text = "bundled"
offset = 0
bytes = $CAL_BYTES
seed = 1234

[[pass]]
type = "quantize"
output_error = true
[[pass.rules]]
targets = ["blocks.*.att.receptance.weight", "blocks.*.att.key.weight", "blocks.*.att.value.weight",
           "blocks.*.att.gate.weight", "blocks.*.att.output.weight", "blocks.*.ffn.receptance.weight",
           "blocks.*.ffn.key.weight"]
encoding = "$width"
method = "$method"
[[pass.rules]]
targets = ["blocks.*.ffn.value.weight", "emb.weight", "head.weight"]
encoding = "f16"
EOF
    build/bin/rwkvlite --log-level warn compress "$MODEL" -o "$run.rwkvlite" -c "$run.toml" --force \
      --threads "$THREADS" --calibration-cache "$work/calibration-cache"
    build/bin/rwkvlite-run "$run.rwkvlite" "${eps[@]}" --max-bytes "$MAX_BYTES" --threads "$THREADS" --log-level warn \
      --json "$run.eval.json" >/dev/null
    echo "$width $method: $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['bits_per_byte'], 4))" "$run.eval.json") bits/byte" >&2
  done
done
python3 scripts/quant_table.py "$work" "$dense" "$WIDTHS" "$METHODS" "$MODEL" "$MAX_BYTES" "$CAL_BYTES" \
  bench/results/quant-table.json bench/results/quant-table.md
cat bench/results/quant-table.md
