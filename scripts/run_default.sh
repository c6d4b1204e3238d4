#!/usr/bin/env bash
# Sets up, builds and runs the main job on the bundled default model (tiny RWKV v7) and the
# held-out part of the bundled text, printing its report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
MODEL=third_party/tiny-rwkv/tiny-rwkv-7v0-834K-FP32.bin
build/bin/rwkvlite inspect "$MODEL"
echo
build/bin/rwkvlite eval "$MODEL" --max-bytes 20000
