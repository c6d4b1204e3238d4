#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build under ctest, then the non-LibTorch
# tests again under AddressSanitizer and UndefinedBehaviorSanitizer, then a short libFuzzer run of
# every reader (docs/fuzzing.md). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's start is stamped with the minutes since the run began, so a slow CI run says where.
stage() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
stage "setup"
scripts/setup.sh
stage "build (Release)"
scripts/build.sh
# A one-node Slurm cluster for the sweep's Slurm test; the test says why it skips if this fails.
scripts/setup_slurm.sh || echo "== no local Slurm cluster: the Slurm sweep test will be skipped"
stage "tests (Release)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && [ -d tests/python ]; then
  stage "python tests"
  for t in tests/python/test_*.py; do /usr/bin/python3 "$t"; done
fi
stage "build (AddressSanitizer + UndefinedBehaviorSanitizer, without LibTorch)"
BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo SANITIZE=ON TORCH=OFF scripts/build.sh
stage "tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
if command -v clang++ >/dev/null; then
  stage "fuzz (every reader for 15 s; a crash fails the run, its input in build-fuzz/artifacts)"
  BUILD_DIR=build-fuzz scripts/fuzz.sh 15
else
  echo "== no clang++: the fuzz stage is skipped (scripts/setup.sh installs clang)"
fi
stage "all tests passed"
