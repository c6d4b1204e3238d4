// Builds an inference engine from a compact file, reading each tensor once and keeping the big
// matrices in their stored encoding. Every byte of weight memory it holds is registered with
// one ResidencyCounter, whose peak is the "peak resident weight bytes" the runtime reports.
#pragma once

#include <memory>
#include <string>

#include "engine/engine.h"
#include "format/compact_reader.h"
#include "store/residency.h"

namespace rwkvlite {

struct CompactEngine {
  std::unique_ptr<Engine> engine;
  std::shared_ptr<ResidencyCounter> residency;
  format::ReadStats reads;  // what building read from the file
  nlohmann::json metadata;  // the file's metadata (passes, provenance)
};

CompactEngine load_compact_engine(const std::string& path, int threads);

// True if the file starts with the compact format's magic.
bool is_compact_file(const std::string& path);

}  // namespace rwkvlite
