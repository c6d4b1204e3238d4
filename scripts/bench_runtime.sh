#!/usr/bin/env bash
# The runtime benchmark (docs/benchmarks.md): tokens/s at 1 and 2 threads, ms per token (median
# and p90), load time, peak RSS, resident weight bytes and the share of the machine's measured
# read bandwidth, per model x configuration, in interleaved rounds.
#   scripts/bench_runtime.sh                 reference, tiny (when present), 0.1B and 0.4B-shape models, 3 rounds
#   QUICK=1 scripts/bench_runtime.sh         reference, one tiny and the 0.1B-shape model, 2 rounds
#   FORCE=1 ...                              remake the compressed files cached under build/bench/runtime/
#   ROUNDS=N ...                             rounds of the interleaved runs
#   TINY_DIR=DIR ...                         tiny models (default: ../shared/models/tiny-rwkv beside the clone)
#   RWKV_CPP_BENCH=/path/to/driver ...       add rwkv.cpp rows (a driver built outside the repository)
# Results: bench/results/runtime-bench.json and runtime-bench.md (the table, also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
# The same build as everything else: the executables the benchmark runs, and the probe.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
if [ ! -f build/build.ninja ]; then scripts/build.sh >/dev/null; fi
cmake --build build --target rwkvlite rwkvlite-run rwkvlite-bandwidth >/dev/null
args=()
[ -n "${QUICK:-}" ] && args+=(--quick)
[ -n "${FORCE:-}" ] && args+=(--force)
[ -n "${ROUNDS:-}" ] && args+=(--rounds "$ROUNDS")
[ -n "${TINY_DIR:-}" ] && args+=(--tiny-dir "$TINY_DIR")
[ -n "${RWKV_CPP_BENCH:-}" ] && args+=(--rwkv-cpp "$RWKV_CPP_BENCH")
recorded="scripts/bench_runtime.sh"
for v in QUICK FORCE ROUNDS TINY_DIR RWKV_CPP_BENCH; do
  if [ -n "${!v:-}" ]; then recorded="$v=${!v} $recorded"; fi
done
exec python3 bench/runtime_bench.py "${args[@]}" --command "$recorded"
