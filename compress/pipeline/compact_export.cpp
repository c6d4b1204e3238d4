#include "compress/pipeline/compact_export.h"

#include "runtime/format/compact_format.h"
#include "runtime/format/compact_writer.h"
#include "runtime/format/encoding.h"
#include "runtime/format/model_json.h"

#include "runtime/core/error.h"

namespace rwkvlite {

void write_compact(const CompressedModel& model, const std::string& path, const nlohmann::json& metadata) {
  format::CompactWriter writer(path);
  for (const StoredTensor& t : model.tensors()) {
    const format::EncodingSpec spec = format::parse_encoding(t.encoding);
    const uint64_t rows_per_block = t.row_addressable ? format::kChecksumEveryRow : format::kChecksumDefaultBlocks;
    writer.add_tensor(t.name, spec, t.values.shape, t.values.data.data(), rows_per_block);
  }
  nlohmann::json merged = metadata;
  for (const auto& [key, value] : model.file_metadata.items()) {
    if (merged.contains(key)) throw Error("file metadata key '" + key + "' is set twice", kExitInternal);
    merged[key] = value;
  }
  writer.finish(format::arch_to_json(model.arch, model.ln_x_eps), format::dims_to_json(model.dims), merged);
}

int64_t stored_tensor_bytes(const StoredTensor& t) {
  const format::EncodingSpec spec = format::parse_encoding(t.encoding);
  return static_cast<int64_t>(format::encoded_row_bytes(spec.encoding, t.values.cols(), spec.params)) * t.values.rows();
}

int64_t planned_compact_bytes(const CompressedModel& model) {
  int64_t total = 0;
  for (const StoredTensor& t : model.tensors()) {
    total += (stored_tensor_bytes(t) + 63) / 64 * 64;
  }
  return total;
}

}  // namespace rwkvlite
