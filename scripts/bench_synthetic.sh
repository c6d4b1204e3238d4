#!/usr/bin/env bash
# Head and embedding memory and speed on a real-shape vocabulary: writes the synthetic 0.1B-shape
# RWKV v5.2 checkpoint (12 layers, D = 768, vocabulary 65,536, seeded random weights), then
# runs it with a dense head and embedding and with the two-level head and on-demand embedding.
#   scripts/bench_synthetic.sh            (MAX_BYTES=1000 of held-out text, K=256 clusters)
# Random weights carry no accuracy: this measures bytes and tokens per second only.
# Results: bench/results/synthetic-0.1b-{dense,clustered}.json and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
MAX_BYTES=${MAX_BYTES:-1000}
K=${K:-256}
work=build/bench/synthetic
mkdir -p "$work" bench/results
ckpt=$work/rwkv5-synthetic-12x768-v65536.pth
[ -f "$ckpt" ] || build/bin/rwkvlite synthesize --arch v5.2 --layers 12 --embd 768 --vocab 65536 --seed 1 -o "$ckpt"
# Dense: every weight FP32 in the compact format, embedding and head fully resident.
build/bin/rwkvlite --log-level warn compress "$ckpt" -o "$work/dense.rwkvlite" -c configs/dense-fp32.toml --force
# Clustered head and folded embedding; a short calibration (the cluster head learns from
# it) and k-means limited to 20 iterations keep the run to minutes on 2 cores.
build/bin/rwkvlite --log-level warn compress "$ckpt" -o "$work/clustered.rwkvlite" -c configs/clustered-head.toml --force \
  --set calibration.bytes=20000 --set calibration.samples=2048 --set pass.1.k="$K" --set pass.1.max_clusters="$K" \
  --set pass.1.max_iterations=20 --set pass.1.epochs=10 --set pass.0.cache_rows=4096
for v in dense clustered; do
  build/bin/rwkvlite-run "$work/$v.rwkvlite" --max-bytes "$MAX_BYTES" --log-level warn \
    --json bench/results/synthetic-0.1b-$v.json >/dev/null
  python3 - "$v" bench/results/synthetic-0.1b-$v.json <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
p = d["peak_resident_bytes_by_part"]
h = d.get("clustered_head") or {}
e = d.get("embedding") or {}
extra = f"clusters kept {h['clusters_kept_per_token']:.1f}/{h['clusters']}, head rows/token {h['head_rows_read_per_token']:.0f}" if h.get("clusters") else "-"
print(f"| {sys.argv[1]} | {p['head']:,} | {p['embedding']:,} | {d['peak_resident_weight_bytes']:,} | {d['tokens_per_second']:.1f} | {extra} |")
PY
done
