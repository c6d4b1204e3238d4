// The JSON header of the compact file: building it (writer) and parsing + validating it
// against the preamble (reader). Schema in docs/compact-format.md, "Header".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/format/compact_format.h"

namespace rwkvlite::format {

struct CompactHeader {
  nlohmann::json arch = nlohmann::json::object();      // opaque to the format
  nlohmann::json dims = nlohmann::json::object();      // opaque to the format
  nlohmann::json metadata = nlohmann::json::object();  // passes, provenance: opaque to the format
  std::vector<TensorInfo> tensors;                     // in header order (the writer's order)
};

// Serialises the header: compact JSON, object keys sorted (nlohmann's std::map), so identical
// content gives identical bytes. Throws UsageError if arch/dims/metadata are not objects or
// hold strings that are not valid UTF-8.
std::string build_header_json(const CompactHeader& header, uint16_t major = kFormatMajor, uint16_t minor = kFormatMinor);

// Parses and validates header bytes against the preamble: JSON well-formed and within the
// size/depth/value limits, no duplicate keys, schema (types, required fields, no unknown
// fields unless the file's minor version is newer than this reader's), version agreeing with
// the preamble, every tensor's encoding, shape, row_bytes, nbytes, checksum count, offset
// alignment and bounds, unique names, and the tensors exactly tiling the data section (each
// at the 64-byte alignment after the previous one, no overlaps, no holes).
// Throws InputError with one message naming the problem (without the file name).
CompactHeader parse_header_json(const char* data, size_t size, const Preamble& preamble);

}  // namespace rwkvlite::format
