#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, no LibTorch) into BUILD_DIR (default
# build-fuzz) and fuzzes each for SECONDS_PER_TARGET (default 60), one after the other.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     targets: see tests/fuzz/CMakeLists.txt
# Corpora grow in BUILD_DIR/corpus/<target> across runs (gitignored with the build dir); seeds
# come from scripts/fuzz_seeds.sh and tests/fuzz/seeds/. Crashing inputs land in
# BUILD_DIR/artifacts/<target>/ and are minimised to .../minimized/; commit those under
# tests/fuzz/regressions/<target>/ so ctest replays them (docs/fuzzing.md).
# Prints one line per target: executions, seconds, crashes. Exits 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
ALL_TARGETS=(rwkvcpp safetensors compact compress_config sweep torch_pickle zip_directory world_vocab)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL_TARGETS[@]}")
BUILD_DIR=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed (scripts/setup.sh installs it)" >&2
  exit 2
fi
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRWKVLITE_FUZZ=ON -DRWKVLITE_WITH_TORCH=OFF -DBUILD_TESTING=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]/#/fuzz_}"
[ -d "$BUILD_DIR/seeds" ] || OUT_DIR="$BUILD_DIR/seeds" scripts/fuzz_seeds.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
failed=0
for t in "${TARGETS[@]}"; do
  exe="$BUILD_DIR/fuzz/fuzz_$t"
  corpus="$BUILD_DIR/corpus/$t"
  artifacts="$BUILD_DIR/artifacts/$t"
  log="$BUILD_DIR/fuzz-$t.log"
  mkdir -p "$corpus" "$artifacts"
  seeds=("$BUILD_DIR/seeds/$t")
  for d in tests/fuzz/seeds/$t tests/fuzz/regressions/$t; do [ -d "$d" ] && seeds+=("$d"); done
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=("-dict=tests/fuzz/dict/$t.dict")
  before=$(find "$artifacts" -maxdepth 1 -type f | wc -l)
  echo "== fuzz $t for ${SECONDS_PER_TARGET}s (log: $log)"
  # Fork mode keeps fuzzing past a crash (each one is saved), so one run finds several bugs.
  "$exe" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1 || true
  # The fork supervisor's last status line: "#<execs>: cov: ... oom/timeout/crash: o/t/c time: <s>s".
  status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1 || true)
  execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$status")
  secs=$(sed -nE 's/.* time: ([0-9]+)s.*/\1/p' <<<"$status")
  found=$(($(find "$artifacts" -maxdepth 1 -type f | wc -l) - before))
  # Minimise the newest few: in fork mode one bug is usually saved many times over.
  for f in $(ls -t "$artifacts"/{crash,leak,oom,timeout}-* 2>/dev/null | head -n "${MINIMIZE:-3}"); do
    mkdir -p "$artifacts/minimized"
    m="$artifacts/minimized/$(basename "$f")"
    [ -f "$m" ] && continue
    "$exe" -minimize_crash=1 -max_total_time=20 -exact_artifact_path="$m" "$f" >>"$BUILD_DIR/fuzz-$t.minimize.log" 2>&1 || true
    [ -f "$m" ] || cp "$f" "$m"
  done
  ((found == 0)) || failed=1
  summary+=("$(printf '%-16s executions %10s  seconds %5s  crashes %d' "$t" "${execs:-?}" "${secs:-?}" "$found")")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
