#include "converters/model_io.h"

#include <atomic>
#include <cmath>
#include <cstring>

#include "converters/rwkvcpp_file.h"
#include "converters/safetensors_file.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"

namespace rwkvlite {
namespace {

// Set once at startup by enable_pth_support(); atomics so that a late registration is still
// seen consistently by reader threads.
std::atomic<PthReader> g_pth_reader{nullptr};
std::atomic<PthWriter> g_pth_writer{nullptr};

const char* const kConvertHint =
    "convert it first with `rwkvlite convert` (built with LibTorch) to .safetensors or rwkv.cpp .bin";

}  // namespace

void register_pth_io(PthReader reader, PthWriter writer) {
  g_pth_reader.store(reader);
  g_pth_writer.store(writer);
}

bool pth_io_available() { return g_pth_reader.load() != nullptr && g_pth_writer.load() != nullptr; }

ModelFileKind detect_model_file(const std::string& path) {
  InputFile file(path);
  uint8_t b[16] = {};
  const uint64_t n = std::min<uint64_t>(file.size(), sizeof b);
  if (n) file.read_at(0, b, n, "the first bytes");
  auto starts = [&](const char* s, size_t len) { return n >= len && std::memcmp(b, s, len) == 0; };
  if (starts("fmgg", 4)) return ModelFileKind::RwkvCpp;  // 'ggmf' stored as a little-endian u32
  // torch.save writes a zip (local file header first; an empty archive starts at its end record).
  if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4)) return ModelFileKind::PthZip;
  // Before torch 1.6, torch.save wrote bare pickles: protocol opcode 0x80, then the version.
  if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) return ModelFileKind::LegacyTorchPickle;
  // safetensors: a u64 header length, then the JSON header's '{'. Requiring the length to fit in
  // 32 bits keeps text that happens to have '{' at byte 8 out.
  if (n >= 9 && b[8] == '{') {
    uint64_t header_length = 0;
    std::memcpy(&header_length, b, 8);
    if (header_length >> 32 == 0) return ModelFileKind::Safetensors;
  }
  return ModelFileKind::Other;
}

Model load_model(const std::string& path, const LoadOptions& options) {
  if (!std::isnan(options.ln_x_eps) && !plausible_ln_x_eps(options.ln_x_eps)) {
    throw UsageError("the group-norm epsilon must be in (0, " + std::to_string(kMaxLnXEps) + "], not " +
                     std::to_string(options.ln_x_eps));
  }
  Model model;
  const ModelFileKind kind = detect_model_file(path);
  switch (kind) {
    case ModelFileKind::RwkvCpp:
      model = read_rwkvcpp(path);
      break;
    case ModelFileKind::Safetensors:
      model = read_safetensors(path);
      break;
    case ModelFileKind::PthZip:
    case ModelFileKind::LegacyTorchPickle: {
      const PthReader reader = g_pth_reader.load();
      if (!reader) {
        // A legacy pickle needs re-saving with a newer torch before even `convert` reads it.
        const std::string resave = kind == ModelFileKind::LegacyTorchPickle
                                       ? "re-save it with torch >= 1.6 (torch.save(torch.load(old), new)), then "
                                       : "";
        throw InputError("'" + path + "' is a PyTorch checkpoint (" + describe_file_contents(path) +
                         "), which this program cannot read without LibTorch support: " + resave + kConvertHint);
      }
      model = reader(path);  // also explains legacy pickles
      break;
    }
    case ModelFileKind::Other:
      throw InputError("'" + path + "' is not a model file rwkvlite reads: it looks like " +
                       describe_file_contents(path));
  }
  if (!std::isnan(options.ln_x_eps)) model.ln_x_eps = options.ln_x_eps;
  return model;
}

void save_model(const Model& model, const std::string& path, const std::string& dtype_name) {
  const std::string ext = file_extension(path);
  if (ext != ".bin" && ext != ".safetensors" && ext != ".pth" && ext != ".pt") {
    throw UsageError("cannot tell the output format from '" + path +
                     "': use the extension .bin (rwkv.cpp), .safetensors, or .pth/.pt (PyTorch)");
  }
  const DenseDtype dtype = parse_dense_dtype(dtype_name);
  if (ext == ".bin") {
    if (dtype == DenseDtype::BF16) {
      throw UsageError("rwkv.cpp files store fp32 or fp16, not bf16: choose one of those, or write .safetensors");
    }
    write_rwkvcpp(model, path, dtype == DenseDtype::F32 ? RwkvCppType::FP32 : RwkvCppType::FP16);
  } else if (ext == ".safetensors") {
    write_safetensors(model, path, dtype);
  } else {
    const PthWriter writer = g_pth_writer.load();
    if (!writer) {
      throw UsageError("writing '" + path + "' needs LibTorch support, which this program was built without: write "
                       ".safetensors instead");
    }
    writer(model, path, dtype);
  }
}

}  // namespace rwkvlite
