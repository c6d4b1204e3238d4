#!/usr/bin/env bash
# The compressor benchmark (docs/benchmarks.md): wall time and peak RSS of every stage of
# `rwkvlite compress` (loading, calibration, each pass, writing) on the synthetic 0.1B-shape
# checkpoint, at each config's own calibration size, beside the FP32 model's size.
#   scripts/bench_compress.sh                         all-techniques and default, 2 threads
#   CONFIGS=all-techniques THREADS=1 scripts/bench_compress.sh
# Results: bench/results/compress-bench.json and compress-bench.md (the table, also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
if [ ! -f build/build.ninja ]; then scripts/build.sh >/dev/null; fi
cmake --build build --target rwkvlite >/dev/null
recorded="scripts/bench_compress.sh"
for v in CONFIGS THREADS; do
  if [ -n "${!v:-}" ]; then recorded="$v=${!v} $recorded"; fi
done
exec python3 bench/compress_bench.py --configs "${CONFIGS:-all-techniques,default}" --threads "${THREADS:-2}" \
  --command "$recorded"
