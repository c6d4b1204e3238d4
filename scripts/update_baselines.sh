#!/usr/bin/env bash
# Regenerates the regression baselines of the bundled reference model, one pair per shipped
# config, under configs/regression/baselines/reference/:
#   <config>.eval.json      `rwkvlite eval --json` on 8000 held-out bytes against the dense
#                           model (the report schema of rwkvlite-run --json; rwkvlite eval because
#                           the dense reference is a .pth, which rwkvlite-run, without LibTorch,
#                           does not read)
#   <config>.compress.json  the compress report (per-tensor measured errors, for the blame)
# configs/default.toml is compressed exactly as shipped; every other config with
# --set calibration.bytes=20000 (a tenth of the default calibration), so that the CI gate
# (tests/tools/test_torch_regression_gate.cpp) can re-run them all in a few minutes. Those
# baselines therefore describe the 20000-byte variant, not the config as shipped.
#
# Paths are normalised to file names and the run-to-run varying fields (times, speeds, peak
# RSS) are dropped, so the files depend only on the code and the inputs: regenerating without
# a code change leaves them byte-identical, and `git diff` shows exactly what a change moved.
# `rwkvlite check` compares neither paths nor those fields.
#
#   scripts/update_baselines.sh [CONFIG ...]    (default: every configs/*.toml; needs a LibTorch build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
MODEL=models/reference/rwkv5-ref-6x256.pth
OUT_DIR=configs/regression/baselines/reference
FAST_CALIBRATION_BYTES=20000
EVAL_BYTES=8000
PYTHON=${PYTHON:-/usr/bin/python3}

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  for f in configs/*.toml; do configs+=("$(basename "$f" .toml)"); done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT_DIR"

# normalise KIND IN OUT: file names instead of paths, no timings (see above).
normalise() {
  "$PYTHON" - "$@" <<'PY'
import json, os, sys
kind, src, dst = sys.argv[1:4]
with open(src) as f:
    j = json.load(f)
if kind == "eval":
    for key in ("model", "reference", "text"):
        if j.get(key):
            j[key] = os.path.basename(j[key])
    for key in ("tokens_per_second", "load_seconds", "peak_rss_bytes"):
        j.pop(key, None)
else:
    j["output"] = os.path.basename(j["output"])
    for key in ("seconds", "peak_rss_bytes"):
        j.pop(key, None)
    for row in j["tensors"]:
        row.pop("seconds", None)
with open(dst, "w") as f:
    json.dump(j, f, indent=2, ensure_ascii=False)
    f.write("\n")
PY
}

for name in "${configs[@]}"; do
  config=configs/$name.toml
  [ -f "$config" ] || { echo "no config $config" >&2; exit 2; }
  overrides=()
  [ "$name" = default ] || overrides=(--set "calibration.bytes=$FAST_CALIBRATION_BYTES")
  out=$work/$name.rwkvlite
  start=$(date +%s)
  "$BIN/rwkvlite" --quiet compress "$MODEL" -o "$out" -c "$config" "${overrides[@]}"
  "$BIN/rwkvlite" --quiet eval "$out" --reference "$MODEL" --max-bytes "$EVAL_BYTES" --json "$work/$name.eval.json" >/dev/null
  normalise eval "$work/$name.eval.json" "$OUT_DIR/$name.eval.json"
  normalise compress "$out.report.json" "$OUT_DIR/$name.compress.json"
  summary=$("$PYTHON" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(", ".join(f"{k} {j[k]}" for k in ("bits_per_byte", "top1_agreement", "kl_mean", "peak_resident_weight_bytes", "file_bytes")))' "$OUT_DIR/$name.eval.json")
  echo "$name: $(($(date +%s) - start)) s, $summary"
done
