// The one entry point every CLI uses to read and write dense models, whatever the format.
//
// load_model picks the reader from the file's first bytes, never its extension (a renamed or
// mislabelled file still reads, and a wrong one gets an error saying what it is). save_model
// picks the writer from the extension the user chose.
//
// .pth needs LibTorch, which this library does not link: the LibTorch-linked binaries call
// enable_pth_support() (converters/pth_file.h) at startup, which registers the .pth reader and
// writer here. Without it, a .pth input or output is a clear error, not a link failure.
#pragma once

#include <limits>
#include <string>

#include "converters/dense_dtype.h"
#include "runtime/core/model.h"

namespace rwkvlite {

struct LoadOptions {
  // Group-norm epsilon to use instead of the one the file records or its format implies
  // (.pth files carry none). NaN keeps the file's.
  float ln_x_eps = std::numeric_limits<float>::quiet_NaN();
};

// What a file is, judged from its first bytes.
enum class ModelFileKind { RwkvCpp, Safetensors, PthZip, LegacyTorchPickle, Other };
ModelFileKind detect_model_file(const std::string& path);

// Reads a dense model from an rwkv.cpp, safetensors or (with LibTorch support) .pth file into
// the canonical, validated form. Throws InputError for a file it cannot read, saying what the
// file looks like; UsageError for an invalid option.
Model load_model(const std::string& path, const LoadOptions& options = {});

// Writes a dense model; the format comes from the extension (.bin: rwkv.cpp, .safetensors,
// .pth or .pt), dtype is "fp32", "fp16" or "bf16". Throws UsageError for an unknown extension,
// an unknown dtype or one the format cannot store (rwkv.cpp: fp32 and fp16 only).
void save_model(const Model& model, const std::string& path, const std::string& dtype);

// ---- LibTorch registration hook (see enable_pth_support) ----
using PthReader = Model (*)(const std::string& path);
using PthWriter = void (*)(const Model& model, const std::string& path, DenseDtype dtype);
void register_pth_io(PthReader reader, PthWriter writer);
bool pth_io_available();

}  // namespace rwkvlite
