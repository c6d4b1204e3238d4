#!/usr/bin/env bash
# Sweeps one rwkvlite-run option over a compressed file, without recompressing: the runtime
# knobs (neuron cache size, clustered-head mass p, cluster caps) trade memory and speed for
# accuracy at load time.
#   scripts/bench_runtime_sweep.sh FILE REFERENCE OPTION "V1 V2 ..." [extra rwkvlite-run flags]
#   e.g. scripts/bench_runtime_sweep.sh build/bench/rwkv5-ref-6x256-sparse-ffn.rwkvlite \
#          build/bench/rwkv5-ref-6x256-FP32.bin --neuron-cache "0.25 0.5 0.75 1" --ln-x-eps 64e-5
# MAX_BYTES (default 20000) of held-out text. Results: bench/results/sweep-<file>-<option>-<value>.json
# and a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 4 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
file=$1 ref=$2 option=$3 values=$4
shift 4
MAX_BYTES=${MAX_BYTES:-20000}
scripts/build.sh >/dev/null
mkdir -p bench/results
stem=$(basename "$file"); stem=${stem%.*}
echo "| $option | bits/byte | top-1 agreement | KL | peak resident weight bytes | FFN / head / embedding peak B | tokens/s | notes |"
echo "|---|---|---|---|---|---|---|---|"
for v in $values; do
  out=bench/results/sweep-$stem-${option#--}-$v.json
  build/bin/rwkvlite-run "$file" --reference "$ref" --max-bytes "$MAX_BYTES" "$option" "$v" "$@" \
    --log-level warn --json "$out" >/dev/null
  python3 - "$v" "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
p = d.get("peak_resident_bytes_by_part") or {}
s, h = d.get("sparse_ffn") or {}, d.get("clustered_head") or {}
notes = []
if s.get("layers"):
    notes.append(f"FFN touched {s['ffn_weight_fraction_touched_per_token']:.2f}, cache hit {s['cache_hit_rate']:.2f}, "
                 f"{s['neurons_read_per_token']:.0f} neurons read/token")
if h.get("clusters"):
    notes.append(f"{h['clusters_kept_per_token']:.2f}/{h['clusters']} clusters, {h['head_rows_read_per_token']:.1f} head rows/token")
parts = " / ".join(f"{p.get(k, 0):,}" for k in ("ffn", "head", "embedding"))
print(f"| {sys.argv[1]} | {d['bits_per_byte']:.4f} | {d['top1_agreement']:.4f} | {d['kl_mean']:.5f} | "
      f"{d['peak_resident_weight_bytes']:,} | {parts} | {d['tokens_per_second']:.0f} | {'; '.join(notes) or '-'} |")
PY
done
