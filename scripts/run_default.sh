#!/usr/bin/env bash
# The main job on the bundled default model: sets up, builds, compresses the shipped reference
# model (byte-level RWKV v5.2, 6 x 256, models/reference) with configs/default.toml, and runs the
# compact file with the bundled runtime on held-out text against the dense model, printing the
# accuracy and memory report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
MODEL=models/reference/rwkv5-ref-6x256.pth
OUT=build/default-run
mkdir -p "$OUT"
# rwkvlite-run does not link LibTorch, so it takes the dense reference as an rwkv.cpp file.
build/bin/rwkvlite convert "$MODEL" "$OUT/reference-FP32.bin" --force
build/bin/rwkvlite compress "$MODEL" -o "$OUT/default.rwkvlite" -c configs/default.toml --force
build/bin/rwkvlite verify "$OUT/default.rwkvlite"
build/bin/rwkvlite-run "$OUT/default.rwkvlite" --reference "$OUT/reference-FP32.bin" --ln-x-eps 64e-5 \
  --max-bytes "${MAX_BYTES:-30000}" --json "$OUT/report.json"
echo "report: $OUT/report.json"
