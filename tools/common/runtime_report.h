// The report of a compact file's on-demand parts, as rwkvlite-run and rwkvlite eval write it:
// peak_resident_bytes_by_part {ffn, head, embedding, other}; sparse_ffn (per-layer and total
// selection, reads, cache hits, and with --audit-sparsity recall and true sparsity);
// clustered_head; embedding. Keys are documented in docs/runtime.md.
#pragma once

#include <nlohmann/json.hpp>

#include "runtime/store/runtime_stats.h"

namespace rwkvlite::tools {

// Adds the keys above to `report` (sparse_ffn, clustered_head and embedding only for the
// parts the file has).
void add_runtime_stats(const RuntimeStats& stats, nlohmann::ordered_json& report);

}  // namespace rwkvlite::tools
