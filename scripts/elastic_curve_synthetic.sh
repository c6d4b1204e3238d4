#!/usr/bin/env bash
# The elastic budget curve (scripts/elastic_curve.sh) at the 0.1B shape: the synthetic v5.2
# checkpoint of scripts/bench_synthetic.sh (12 layers, D = 768, vocabulary 65,536, seeded random
# weights), profiled with round to nearest on a short calibration text, stored as one elastic
# file, run at each budget. Random weights carry no accuracy: this measures that each budget
# runs within its bytes, what it reads per token, and predicted against measured speed.
#   scripts/elastic_curve_synthetic.sh
# Results: bench/results/elastic-curve-synthetic-0.1b.{jsonl,md}, docs/img/elastic-curve-synthetic-0.1b.png.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_BUILD:-0}" = 1 ] || scripts/build.sh >/dev/null
rw=build/bin/rwkvlite
work=build/bench/elastic/synthetic-0.1b
mkdir -p "$work"
ckpt=build/bench/synthetic/rwkv5-synthetic-12x768-v65536.pth
if [ ! -f "$ckpt" ]; then
  mkdir -p "$(dirname "$ckpt")"
  $rw synthesize --arch v5.2 --layers 12 --embd 768 --vocab 65536 --seed 1 -o "$ckpt"
fi
# 400 calibration bytes (about 100 World tokens) per evaluation: one evaluation per matrix.
if [ ! -f "$work/profile.json" ] || [ "${FORCE:-0}" = 1 ]; then
  $rw profile "$ckpt" --max-bytes "${PROFILE_BYTES:-400}" --json "$work/profile.json"
fi
printf '[[pass]]\ntype = "elastic"\nprofile = "profile.json"\n' > "$work/elastic.toml"
MODEL=$ckpt CONFIG=$work/elastic.toml NAME=synthetic-0.1b SKIP_BUILD=1 \
  BUDGETS=${BUDGETS:-"100% 50% 30% 20% 10% 5% 3% 2%"} PIPE_BUDGETS=${PIPE_BUDGETS:-"10%"} \
  MAX_BYTES=${MAX_BYTES:-1000} PIPE_MAX_BYTES=${PIPE_MAX_BYTES:-300} scripts/elastic_curve.sh
