// Writes compact files in the runtime's row-addressable forms (docs/compact-format.md,
// section 6) straight from a canonical FP32 model, so the runtime tests do not depend on the
// compression passes: neuron-major channel mix with optional predictors, clustered head,
// folded embedding. Every tensor is stored f32, so the only differences between variants of
// one model are the layouts under test.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/model.h"
#include "runtime/engine/kernels.h"
#include "runtime/eval/text_source.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_writer.h"
#include "runtime/format/layout.h"
#include "runtime/format/model_json.h"
#include "tests/support/test_support.h"

namespace rwkvlite::test {

struct RuntimeFileSpec {
  bool neuron_major = false;   // ffn.value.neurons instead of ffn.value.weight
  bool mlp_predictor = false;  // random MLP predictor (rank mlp_rank)
  int64_t mlp_rank = 16;
  float mlp_threshold = 0.0f;
  bool sign_predictor = false;  // b1 copy of the key with sign_top_k
  int64_t sign_top_k = 0;
  bool clustered_head = false;  // token t in cluster t % head_clusters
  int64_t head_clusters = 16;
  bool folded_embedding = false;  // emb.folded, and ln0 dropped
  nlohmann::json metadata = nlohmann::json::object();
};

// Deterministic pseudo-random values in [-scale, scale) without relying on a library's
// distribution algorithms.
inline std::vector<float> pseudo_random(size_t n, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * (static_cast<float>(g() >> 8) / 8388608.0f - 1.0f);
  return v;
}

// The predictor tensors as the file stores them, for tests that recompute selections.
struct TestPredictor {
  std::vector<float> down, up;  // r x D, F x r
  int64_t rank = 0;
};
inline TestPredictor test_predictor(const ModelDims& dims, int64_t layer, int64_t rank) {
  TestPredictor p;
  p.rank = rank;
  const float s = 1.0f / std::sqrt(static_cast<float>(dims.n_embd));
  p.down = pseudo_random(static_cast<size_t>(rank * dims.n_embd), 1000 + static_cast<uint32_t>(layer), 3 * s);
  p.up = pseudo_random(static_cast<size_t>(dims.ffn_size * rank), 2000 + static_cast<uint32_t>(layer), 1.0f);
  return p;
}

inline std::string write_runtime_file(const Model& m, const RuntimeFileSpec& spec, const std::string& name) {
  using namespace format;
  const std::string path = scratch_dir() + "/" + name;
  const int64_t D = m.dims.n_embd, F = m.dims.ffn_size, V = m.dims.n_vocab;
  CompactWriter w(path);
  nlohmann::json meta = spec.metadata;
  nlohmann::json layers = nlohmann::json::array();
  auto add_f32 = [&](const std::string& n, const std::vector<int64_t>& shape, const float* data, bool rows) {
    w.add_tensor(n, Encoding::F32, {}, shape, data, rows ? kChecksumEveryRow : kChecksumDefaultBlocks);
  };
  for (const auto& [n, t] : m.tensors) {
    if (spec.folded_embedding && (n == layout::kLn0Weight || n == layout::kLn0Bias)) continue;
    if (n == layout::kEmbedding && spec.folded_embedding) {
      std::vector<float> folded(t.data.size());
      const Tensor& lw = m.tensors.at(layout::kLn0Weight);
      const Tensor& lb = m.tensors.at(layout::kLn0Bias);
      kernels::layer_norm_rows(t.data.data(), V, D, lw.data.data(), lb.data.data(), kernels::kLayerNormEps, folded.data());
      add_f32(layout::kFoldedEmbedding, {V, D}, folded.data(), true);
      continue;
    }
    if (n == layout::kHead && spec.clustered_head) {
      const int64_t K = spec.head_clusters;
      std::vector<float> rows;
      std::vector<int32_t> row_token, offsets{0};
      std::vector<float> cw(static_cast<size_t>(K * D), 0.0f), cb(static_cast<size_t>(K));
      for (int64_t c = 0; c < K; ++c) {
        int64_t size = 0;
        for (int64_t tok = c; tok < V; tok += K) {
          row_token.push_back(static_cast<int32_t>(tok));
          rows.insert(rows.end(), t.data.begin() + tok * D, t.data.begin() + (tok + 1) * D);
          for (int64_t i = 0; i < D; ++i) cw[static_cast<size_t>(c * D + i)] += t.data[static_cast<size_t>(tok * D + i)];
          ++size;
        }
        // Mean row, plus log |c|: a crude log-sum-exp of the members' logits.
        for (int64_t i = 0; i < D; ++i) cw[static_cast<size_t>(c * D + i)] /= static_cast<float>(size);
        cb[static_cast<size_t>(c)] = std::log(static_cast<float>(size));
        offsets.push_back(static_cast<int32_t>(row_token.size()));
      }
      add_f32(layout::kClusteredHead, {V, D}, rows.data(), true);
      const auto rt = encode_rows_i32(row_token.data(), 1, V);
      w.add_tensor(layout::kHeadRowToken, parse_encoding("i32"), {V}, rt.data(), rt.size(), kChecksumDefaultBlocks);
      const auto off = encode_rows_i32(offsets.data(), 1, K + 1);
      w.add_tensor(layout::kHeadClusterOffsets, parse_encoding("i32"), {K + 1}, off.data(), off.size(), kChecksumDefaultBlocks);
      add_f32(layout::kHeadClusterWeight, {K, D}, cw.data(), false);
      add_f32(layout::kHeadClusterBias, {K}, cb.data(), false);
      continue;
    }
    const std::optional<int64_t> layer = layout::layer_index(n);
    const bool ffn_key = layer && n == layout::ffn_key_weight(*layer);
    const bool ffn_value = layer && n == layout::ffn_value_weight(*layer);
    if (spec.neuron_major && ffn_value) {
      std::vector<float> neurons(static_cast<size_t>(F * D));
      for (int64_t i = 0; i < D; ++i) {
        for (int64_t j = 0; j < F; ++j) neurons[static_cast<size_t>(j * D + i)] = t.data[static_cast<size_t>(i * F + j)];
      }
      add_f32(layout::ffn_value_neurons(*layer), {F, D}, neurons.data(), true);
      continue;
    }
    add_f32(n, t.shape, t.data.data(), spec.neuron_major && ffn_key);
    if (spec.neuron_major && ffn_key) {
      layout::SparseFfnLayerMeta settings{*layer, std::nullopt, std::nullopt};
      if (spec.mlp_predictor) {
        const TestPredictor p = test_predictor(m.dims, *layer, spec.mlp_rank);
        add_f32(layout::ffn_predictor_down(*layer), {p.rank, D}, p.down.data(), false);
        add_f32(layout::ffn_predictor_up(*layer), {F, p.rank}, p.up.data(), false);
        settings.mlp_threshold = spec.mlp_threshold;
      }
      if (spec.sign_predictor) {
        w.add_tensor(layout::ffn_key_sign(*layer), Encoding::B1, {}, {F, D}, t.data.data(), kChecksumDefaultBlocks);
        settings.sign_top_k = spec.sign_top_k;
      }
      layers.push_back(nlohmann::json::parse(settings.to_json().dump()));
    }
  }
  if (spec.neuron_major) {
    if (!meta.contains(layout::SparseFfnMeta::kKey)) meta[layout::SparseFfnMeta::kKey] = nlohmann::json::object();
    meta[layout::SparseFfnMeta::kKey]["layers"] = layers;
  }
  w.finish(arch_to_json(m.arch, m.ln_x_eps), dims_to_json(m.dims), meta);
  return path;
}

// The first n bytes of the held-out text as byte tokens (never calibration bytes).
inline std::vector<int32_t> held_out_tokens(size_t n) {
  const std::string text = read_text_range(bundled_text_path(), 1000000, n);
  std::vector<int32_t> tokens;
  for (unsigned char c : text) tokens.push_back(c);
  return tokens;
}

}  // namespace rwkvlite::test
