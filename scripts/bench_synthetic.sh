#!/usr/bin/env bash
# Head and embedding memory and speed on a real-shape vocabulary: writes the synthetic 0.1B-shape
# RWKV v5.2 checkpoint (12 layers, D = 768, vocabulary 65,536, seeded random weights), then
# runs it with a dense head and embedding and with the two-level head and on-demand embedding.
#   scripts/bench_synthetic.sh            (MAX_BYTES=3000 of held-out text, K=256 clusters)
# Random weights carry no accuracy: this measures bytes and tokens per second only.
# Results: bench/results/synthetic-0.1b-<variant>.json and a summary table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
MAX_BYTES=${MAX_BYTES:-3000}
K=${K:-256}
work=build/bench/synthetic
mkdir -p "$work" bench/results
ckpt=$work/rwkv5-synthetic-12x768-v65536.pth
[ -f "$ckpt" ] || build/bin/rwkvlite synthesize --arch v5.2 --layers 12 --embd 768 --vocab 65536 --seed 1 -o "$ckpt"
# Compressed files are reused when present (FORCE=1 rewrites them): the clustered one takes
# about 15 minutes, mostly calibration through the dense 0.1B engine.
# Dense: every weight FP32 in the compact format, embedding and head fully resident.
if [ -n "${FORCE:-}" ] || [ ! -f "$work/dense.rwkvlite" ]; then
  build/bin/rwkvlite --log-level warn compress "$ckpt" -o "$work/dense.rwkvlite" -c configs/dense-fp32.toml --force
fi
# Clustered head and folded embedding; a short calibration (the cluster head learns from
# it) and k-means limited to 20 iterations keep the compression to about a quarter hour.
if [ -n "${FORCE:-}" ] || [ ! -f "$work/clustered.rwkvlite" ]; then
  build/bin/rwkvlite --log-level warn compress "$ckpt" -o "$work/clustered.rwkvlite" -c configs/clustered-head.toml --force \
    --set calibration.bytes=20000 --set calibration.samples=2048 --set pass.1.k="$K" --set pass.1.max_clusters="$K" \
    --set pass.1.max_iterations=20 --set pass.1.epochs=10 --set pass.0.cache_rows=4096
fi
# Variants: name, file, extra rwkvlite-run flags. Random weights give a nearly flat next-token
# distribution, so p = 0.95 keeps most clusters; the capped variants show what the two-level
# head costs when a trained model's distribution is peaked (the reference model keeps 1.9 of 16).
variants=(
  "dense|dense|"
  "clustered-p0.95|clustered|"
  "clustered-max16|clustered|--head-max-clusters 16 --head-cache-rows 16384"
  "clustered-max4|clustered|--head-max-clusters 4 --head-cache-rows 4096"
)
echo "| variant | head resident peak B | embedding resident peak B | all weights resident peak B | tokens/s | two-level head |"
echo "|---|---|---|---|---|---|"
for entry in "${variants[@]}"; do
  IFS='|' read -r v file flags <<< "$entry"
  read -r -a extra <<< "$flags"
  build/bin/rwkvlite-run "$work/$file.rwkvlite" --max-bytes "$MAX_BYTES" --log-level warn "${extra[@]}" \
    --json bench/results/synthetic-0.1b-$v.json >/dev/null
  python3 - "$v" bench/results/synthetic-0.1b-$v.json <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
p = d["peak_resident_bytes_by_part"]
h = d.get("clustered_head") or {}
extra = f"clusters kept {h['clusters_kept_per_token']:.1f}/{h['clusters']}, head rows/token {h['head_rows_read_per_token']:.0f}" if h.get("clusters") else "-"
print(f"| {sys.argv[1]} | {p['head']:,} | {p['embedding']:,} | {d['peak_resident_weight_bytes']:,} | {d['tokens_per_second']:.1f} | {extra} |")
PY
done
