#include "tools/common/runtime_report.h"

#include <algorithm>

namespace rwkvlite::tools {
namespace {

using nlohmann::ordered_json;

double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

ordered_json peak_bytes_by_part(const RuntimeStats& s) {
  ordered_json by_part;
  by_part["ffn"] = s.residency.ffn->peak();
  by_part["head"] = s.residency.head->peak();
  by_part["embedding"] = s.residency.embedding->peak();
  by_part["other"] = s.residency.other->peak();
  return by_part;
}

ordered_json ffn_layer_entry(const SparseFfnLayerStats& l) {
  ordered_json e;
  e["layer"] = l.layer;
  e["width"] = l.width;
  e["cache_rows"] = l.cache_rows;
  e["has_predictor"] = l.has_predictor;
  e["selected_fraction"] = ratio(l.neurons_selected, l.tokens * l.width);
  e["neurons_read_per_token"] = ratio(l.rows_read, l.tokens);
  e["cache_hit_rate"] = ratio(l.cache_hits, l.cache_hits + l.cache_misses);
  e["peak_resident_bytes"] = l.resident_peak_bytes;
  // Recall and true sparsity need the exact activations, computed only with --audit-sparsity.
  if (l.audit_tokens > 0) {
    e["recall"] = ratio(l.active_and_selected, l.active);
    e["true_sparsity"] = 1.0 - ratio(l.active, l.audit_tokens * l.width);
  } else {
    e["recall"] = nullptr;
    e["true_sparsity"] = nullptr;
  }
  return e;
}

ordered_json sparse_ffn_report(const RuntimeStats& s) {
  ordered_json layers = ordered_json::array();
  int64_t tokens = 0, selected = 0, width = 0, read = 0, hits = 0, visits = 0, active = 0, active_sel = 0, audited = 0;
  for (const auto& l : s.ffn_layers) {
    layers.push_back(ffn_layer_entry(*l));
    tokens = std::max(tokens, l->tokens);
    selected += l->neurons_selected;
    width += l->width;
    read += l->rows_read;
    hits += l->cache_hits;
    visits += l->cache_hits + l->cache_misses;
    active += l->active;
    active_sel += l->active_and_selected;
    audited += l->audit_tokens * l->width;
  }
  ordered_json ffn;
  ffn["layers"] = layers;
  // Neurons computed (key and value rows touched) per token over all layers, as a fraction
  // of all channel-mix neurons: the share of channel-mix weight bytes one token needs.
  ffn["ffn_weight_fraction_touched_per_token"] = ratio(selected, tokens * width);
  ffn["neurons_read_per_token"] = ratio(read, tokens);
  ffn["cache_hit_rate"] = ratio(hits, visits);
  ffn["recall"] = audited > 0 ? ordered_json(ratio(active_sel, active)) : ordered_json(nullptr);
  ffn["true_sparsity"] = audited > 0 ? ordered_json(1.0 - ratio(active, audited)) : ordered_json(nullptr);
  return ffn;
}

ordered_json clustered_head_report(const ClusteredHeadStats& h) {
  ordered_json j;
  j["clusters"] = h.clusters;
  j["clusters_kept_per_token"] = ratio(h.clusters_kept, h.calls);
  j["head_rows_read_per_token"] = ratio(h.rows_scored, h.calls);
  j["head_rows_read_from_file"] = h.rows_read;
  j["cache_rows"] = h.cache_rows;
  return j;
}

ordered_json embedding_report(const RowEmbeddingStats& e) {
  ordered_json j;
  j["folded"] = e.folded;
  j["lookups"] = e.lookups;
  j["rows_read"] = e.rows_read;
  j["cache_rows"] = e.cache_rows;
  return j;
}

ordered_json stream_report(const StreamStats& s) {
  return {{"first_streamed_layer", s.first_streamed_layer},
          {"streamed_layers", s.streamed_layers},
          {"slot_bytes", s.slot_bytes},
          {"slots", s.slots},
          {"pipelined", s.pipelined},
          {"io_bandwidth_bytes_per_second",
           s.io_bandwidth_bytes_per_second ? ordered_json(*s.io_bandwidth_bytes_per_second) : ordered_json(nullptr)},
          {"layer_loads", s.layer_loads},
          {"bytes_read", s.bytes_read},
          {"read_seconds", s.read_seconds},
          {"stall_seconds", s.stall_seconds}};
}

}  // namespace

void add_runtime_stats(const RuntimeStats& s, ordered_json& report) {
  report["peak_resident_bytes_by_part"] = peak_bytes_by_part(s);
  if (!s.ffn_layers.empty()) report["sparse_ffn"] = sparse_ffn_report(s);
  if (s.head) report["clustered_head"] = clustered_head_report(*s.head);
  if (s.embedding) report["embedding"] = embedding_report(*s.embedding);
  if (s.stream) report["stream"] = stream_report(*s.stream);
}

}  // namespace rwkvlite::tools
