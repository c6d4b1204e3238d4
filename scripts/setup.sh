#!/usr/bin/env bash
# Installs every build, test and script dependency from Debian packages.
# Idempotent and non-interactive: packages already present are skipped quickly.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  clang libclang-rt-14-dev     # libFuzzer and the sanitizer runtimes for scripts/fuzz.sh
  libtorch-dev                 # .pth reader/writer, predictor and cluster-head training (compress/ only)
  libeigen3-dev libspectra-dev # SVD (exact BDCSVD and partial Spectra)
  libcli11-dev libspdlog-dev libfmt-dev
  catch2                       # Debian ships Catch2 v2.13 (single header)
  libtomlplusplus-dev          # TOML configs
  nlohmann-json3-dev           # JSON reports and the compact-format header
  libxxhash-dev                # block checksums in the compact format
  libopenblas0-pthread         # makes LibTorch/numpy use a fast BLAS instead of the reference one
  python3-torch python3-numpy  # scripts/train_reference.py and the torch.save cross-check test
  python3-matplotlib           # scripts/plot_sweep.py
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present" >&2
fi
