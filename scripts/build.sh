#!/usr/bin/env bash
# Configures and builds rwkvlite into build/ (executables in build/bin/).
#   scripts/build.sh                 Release build with LibTorch parts
#   BUILD_DIR=build-asan SANITIZE=ON TORCH=OFF scripts/build.sh   sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
SANITIZE=${SANITIZE:-OFF}
TORCH=${TORCH:-ON}
JOBS=${JOBS:-$(nproc)}
# Lets ccache reuse objects across clones at different paths (CI builds a fresh clone).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DRWKVLITE_SANITIZE="$SANITIZE" -DRWKVLITE_WITH_TORCH="$TORCH" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
