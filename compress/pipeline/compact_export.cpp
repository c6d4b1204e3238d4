#include "compress/pipeline/compact_export.h"

#include <algorithm>
#include <cstring>

#include "runtime/format/codec.h"
#include "runtime/format/compact_format.h"
#include "runtime/format/compact_header.h"
#include "runtime/format/compact_writer.h"
#include "runtime/format/encoding.h"
#include "runtime/format/model_json.h"

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

// The header's metadata: the caller's keys and the ones passes added to the model.
nlohmann::json merged_metadata(const CompressedModel& model, const nlohmann::json& metadata) {
  nlohmann::json merged = metadata;
  for (const auto& [key, value] : model.file_metadata.items()) {
    if (merged.contains(key)) throw Error("file metadata key '" + key + "' is set twice", kExitInternal);
    merged[key] = value;
  }
  return merged;
}

uint64_t rows_per_block_of(const StoredTensor& t) {
  return t.row_addressable ? format::kChecksumEveryRow : format::kChecksumDefaultBlocks;
}

// Bytes a pass chose (StoredTensor::encoded) must still be the tensor's values: the right size
// for its shape and encoding, and decoding to its values bit for bit.
void require_encoded_matches_values(const StoredTensor& t, const format::EncodingSpec& spec) {
  const int64_t rows = t.values.rows(), cols = t.values.cols();
  const size_t row_bytes = format::encoded_row_bytes(spec, cols);
  const bool sized = t.encoded.size() == static_cast<size_t>(rows) * row_bytes &&
                     t.values.data.size() == static_cast<size_t>(rows * cols);
  std::vector<float> decoded(static_cast<size_t>(cols));
  for (int64_t r = 0; sized && r < rows; ++r) {
    format::decode_row(t.encoded.data() + static_cast<size_t>(r) * row_bytes, cols, spec, decoded.data());
    if (std::memcmp(decoded.data(), t.values.data.data() + r * cols, static_cast<size_t>(cols) * 4) != 0) {
      throw Error("encoded bytes of '" + t.name + "' no longer decode to its values (row " + std::to_string(r) +
                      "); a pass changed them without clearing StoredTensor::encoded",
                  kExitInternal);
    }
  }
  if (!sized) {
    throw Error("encoded bytes of '" + t.name + "' do not fit its shape in " + t.encoding, kExitInternal);
  }
}

}  // namespace

void write_compact(const CompressedModel& model, const std::string& path, const nlohmann::json& metadata) {
  format::CompactWriter writer(path);
  for (const StoredTensor& t : model.tensors()) {
    const format::EncodingSpec spec = format::parse_encoding(t.encoding);
    if (t.encoded.empty()) {
      writer.add_tensor(t.name, spec, t.values.shape, t.values.data.data(), rows_per_block_of(t));
    } else {
      require_encoded_matches_values(t, spec);
      writer.add_tensor(t.name, spec, t.values.shape, t.encoded.data(), t.encoded.size(), rows_per_block_of(t));
    }
  }
  const nlohmann::json merged = merged_metadata(model, metadata);
  writer.finish(format::arch_to_json(model.arch, model.ln_x_eps), format::dims_to_json(model.dims), merged);
}

CompactFileSize compact_file_size(const CompressedModel& model, const nlohmann::json& metadata) {
  // The writer's layout (compact_writer.cpp): each tensor at the next aligned offset, the data
  // section padded to the alignment, the header after it; checksums are placeholders of the
  // written width, one per block of rows.
  format::CompactHeader header;
  header.arch = format::arch_to_json(model.arch, model.ln_x_eps);
  header.dims = format::dims_to_json(model.dims);
  header.metadata = merged_metadata(model, metadata);
  uint64_t data = 0;
  for (const StoredTensor& t : model.tensors()) {
    format::TensorInfo info;
    info.name = t.name;
    info.encoding = format::parse_encoding(t.encoding);
    info.shape = t.values.shape;
    if (!format::fold_shape(info.shape, &info.rows, &info.cols)) {
      throw Error("planned tensor '" + t.name + "' has an invalid shape", kExitInternal);
    }
    info.row_bytes = format::encoded_row_bytes(info.encoding, info.cols);
    info.nbytes = static_cast<uint64_t>(info.rows) * info.row_bytes;
    const uint64_t rpb = rows_per_block_of(t);
    info.rows_per_block = std::min<uint64_t>(
        rpb == format::kChecksumDefaultBlocks ? format::default_rows_per_block(info.row_bytes) : rpb,
        static_cast<uint64_t>(info.rows));
    info.block_xxh64.assign(info.block_count(), 0);
    data = format::align_up(data, format::kAlignment);
    info.offset = data;
    data += info.nbytes;
    header.tensors.push_back(std::move(info));
  }
  CompactFileSize size;
  size.data_bytes = static_cast<int64_t>(format::align_up(data, format::kAlignment));
  size.header_bytes = static_cast<int64_t>(format::build_header_json(header).size());
  size.file_bytes = format::kPreambleSize + size.data_bytes + size.header_bytes;
  return size;
}

}  // namespace rwkvlite
