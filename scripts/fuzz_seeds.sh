#!/usr/bin/env bash
# Writes the fuzz seed corpora into OUT_DIR/<target>/ (default build-fuzz/seeds): small valid
# files of every format, made at run time so no large binary is committed.
#   - the shipped configs and sweep files, and a reduced World vocabulary (every single-byte
#     token plus the first multi-byte ones) from the vendored vocabulary;
#   - the first 4 KB of each real tiny model (header and first tensor records);
#   - with a normal build's rwkvlite (RWKVLITE=..., default build/bin/rwkvlite): tiny synthetic
#     v5.2 and v7 models as .bin (fp32, fp16), .safetensors (f32, bf16), compact files from a
#     few configs, and, when that build has LibTorch, a whole small .pth and its data.pkl.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-build-fuzz/seeds}
RWKVLITE=${RWKVLITE:-build/bin/rwkvlite}
mkdir -p "$OUT_DIR"/{rwkvcpp,safetensors,compact,compress_config,sweep,torch_pickle,zip_directory,world_vocab}

cp configs/*.toml configs/regression/*.toml "$OUT_DIR/compress_config/"
cp configs/sweeps/*.toml "$OUT_DIR/sweep/"
vocab=third_party/rwkv-world-vocab/rwkv_vocab_v20230424.txt
awk '$NF == 1' "$vocab" > "$OUT_DIR/world_vocab/single-bytes.txt"
awk '$NF == 1 || ($NF > 1 && n++ < 200)' "$vocab" > "$OUT_DIR/world_vocab/single-bytes-and-200.txt"
for m in third_party/tiny-rwkv/*.bin ../shared/models/tiny-rwkv/tiny-rwkv-*.bin; do
  [ -f "$m" ] || continue
  case $m in *expected-logits*) continue ;; esac
  head -c 4096 "$m" > "$OUT_DIR/rwkvcpp/head4k-$(basename "$m")"
done

if [ ! -x "$RWKVLITE" ]; then
  echo "fuzz_seeds: no $RWKVLITE (build it with scripts/build.sh): only configs, vocabularies and model headers" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in v5.2 v7; do
  common=(synthesize --arch "$arch" --layers 1 --embd 16 --vocab 16 --ffn 32 --head-size 8 --seed 7 --force)
  "$RWKVLITE" "${common[@]}" --dtype fp32 -o "$OUT_DIR/rwkvcpp/synth-$arch-fp32.bin" >/dev/null 2>&1
  "$RWKVLITE" "${common[@]}" --dtype fp16 -o "$OUT_DIR/rwkvcpp/synth-$arch-fp16.bin" >/dev/null 2>&1
  "$RWKVLITE" "${common[@]}" --dtype fp32 -o "$OUT_DIR/safetensors/synth-$arch-f32.safetensors" >/dev/null 2>&1
  "$RWKVLITE" "${common[@]}" --dtype bf16 -o "$OUT_DIR/safetensors/synth-$arch-bf16.safetensors" >/dev/null 2>&1
  for c in dense-fp32 int8 lowrank-int8; do
    "$RWKVLITE" compress "$OUT_DIR/rwkvcpp/synth-$arch-fp32.bin" -c "configs/$c.toml" \
      -o "$OUT_DIR/compact/synth-$arch-$c.rwkvlite" --report "$tmp/r.json" --force >/dev/null 2>&1 ||
      echo "fuzz_seeds: compress $arch with $c failed (seed skipped)" >&2
  done
  if "$RWKVLITE" "${common[@]}" --dtype fp32 -o "$tmp/m.pth" >/dev/null 2>&1; then
    cp "$tmp/m.pth" "$OUT_DIR/zip_directory/synth-$arch.pth"
    python3 - "$tmp/m.pth" "$OUT_DIR/torch_pickle/synth-$arch.pkl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    open(sys.argv[2], "wb").write(z.read(name))
PY
  fi
done
# Pickles as Python writes them at other protocols (plain data the reader must describe, not run).
if command -v python3 >/dev/null; then
  python3 - "$OUT_DIR/torch_pickle" <<'PY'
import collections, pickle, sys
for proto in (0, 2, 4):
    for name, obj in (("dict", {"a": 1, "b": [1.5, None, True]}), ("ordered", collections.OrderedDict(x=(1, 2)))):
        open(f"{sys.argv[1]}/py-{name}-p{proto}.pkl", "wb").write(pickle.dumps(obj, protocol=proto))
PY
fi
echo "fuzz_seeds: seeds in $OUT_DIR" >&2
