// Writes a CompressedModel as one compact file (runtime/format), atomically, and computes the
// size that file will have from a plan (shapes and encodings only), for --dry-run.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "compress/pipeline/compressed_model.h"

namespace rwkvlite {

// `metadata` (passes, provenance, resolved config) is stored in the file header, together with
// the keys of model.file_metadata.
// Layout choices made here for loading parts: the channel-mix value matrix is stored
// transposed (`blocks.{i}.ffn.value.neurons`) only by the neuron_major pass, not here; row-addressable
// tensors get one checksum per row.
void write_compact(const CompressedModel& model, const std::string& path, const nlohmann::json& metadata);

// The sizes write_compact would produce for this model and metadata, computed from names,
// shapes, encodings and flags alone (values are not read): the data section exactly, and the
// header exactly for this metadata (the checksums have a fixed width).
struct CompactFileSize {
  int64_t data_bytes = 0;    // the data section: every tensor, each padded to the alignment
  int64_t header_bytes = 0;  // the JSON header
  int64_t file_bytes = 0;    // preamble + data + header
};
CompactFileSize compact_file_size(const CompressedModel& model, const nlohmann::json& metadata);

}  // namespace rwkvlite
