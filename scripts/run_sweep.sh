#!/usr/bin/env bash
# A whole sweep in one command: sets up, builds, runs the sweep file (default: the shipped
# configs/sweeps/main-knobs.toml) with the local backend, and plots it. Resumable: rerunning
# skips the runs that finished. Results in sweeps/<name>/: results.csv, summary.json,
# pareto.md, plots/*.png (docs/sweeps.md).
#   scripts/run_sweep.sh [SWEEP.toml] [rwkvlite sweep options...]     JOBS=N (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SWEEP=${1:-configs/sweeps/main-knobs.toml}
[ $# -gt 0 ] && shift
OUT=sweeps/$(basename "$SWEEP" .toml)
scripts/setup.sh
scripts/build.sh
status=0
build/bin/rwkvlite sweep "$SWEEP" -o "$OUT" --jobs "${JOBS:-2}" "$@" || status=$?
/usr/bin/python3 scripts/plot_sweep.py "$OUT" --pareto-md
echo "results: $OUT/results.csv, $OUT/summary.json, $OUT/pareto.md, $OUT/plots/"
exit $status
