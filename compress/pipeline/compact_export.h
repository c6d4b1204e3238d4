// Writes a CompressedModel as one compact file (runtime/format), atomically.
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

// Bytes one tensor occupies in the file in its chosen encoding (without alignment padding).
int64_t stored_tensor_bytes(const StoredTensor& tensor);

// Bytes the tensors will occupy in the file (without header), for --dry-run.
int64_t planned_compact_bytes(const CompressedModel& model);

}  // namespace rwkvlite
