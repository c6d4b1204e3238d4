#include "compress/pipeline/calibration.h"

#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>

#include "runtime/core/error.h"
#include "runtime/core/progress.h"
#include "runtime/engine/build_weights.h"
#include "runtime/engine/engine.h"
#include "runtime/eval/text_source.h"
#include "runtime/tokenizer/tokenizer.h"
#include "compress/pipeline/dense_products.h"

namespace rwkvlite {
namespace {

constexpr int64_t kBlock = 1024;  // tokens per eval_block during calibration

// A projection computed straight from the model tensor's memory (no engine copy of the weights,
// so calibration holds the model once) by the compressor's fast product kernels
// (dense_products.h); when `sum` is set it first adds sum x xᵀ (double) of every input.
// Outputs agree with the runtime's DenseProjection to FP32 rounding (one FMA chain per output
// instead of eight partial sums), and are deterministic for any thread count and batch size.
class CalibrationProjection final : public Projection {
 public:
  CalibrationProjection(const float* w, int64_t rows, int64_t cols, double* sum, int64_t* count)
      : w_(w), rows_(rows), cols_(cols), sum_(sum), count_(count) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void apply(const float* x, float* y, ThreadPool& pool) const override { apply_batch(x, 1, y, pool); }
  void apply_batch(const float* x, int64_t n, float* y, ThreadPool& pool) const override {
    if (sum_ != nullptr) {
      accumulate_second_moment(x, n, cols_, sum_, pool);
      *count_ += n;
    }
    multiply_rows_by_transpose(x, n, w_, rows_, cols_, y, rows_, pool);
  }
  int64_t storage_bytes() const override { return rows_ * cols_ * static_cast<int64_t>(sizeof(float)); }

 private:
  const float* w_;
  int64_t rows_, cols_;
  double* sum_;
  int64_t* count_;
};

// The embedding read from the model tensor's memory, likewise without a copy.
class CalibrationEmbedding final : public Embedding {
 public:
  CalibrationEmbedding(const float* table, int64_t vocab, int64_t n_embd) : table_(table), vocab_(vocab), n_embd_(n_embd) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return n_embd_; }
  void lookup(int32_t token, float* out) const override { std::copy_n(table_ + token * n_embd_, n_embd_, out); }
  int64_t storage_bytes() const override { return vocab_ * n_embd_ * static_cast<int64_t>(sizeof(float)); }

 private:
  const float* table_;
  int64_t vocab_, n_embd_;
};

}  // namespace

CalibrationData run_calibration(const Model& model, const CalibrationRequest& request) {
  const auto t0 = std::chrono::steady_clock::now();
  CalibrationData data;
  std::map<std::string, int64_t> counts;
  std::set<std::string> found;
  WeightProviders providers;
  providers.matrix = [&](const std::string& name, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    const Tensor& t = model.at(name);
    if (t.numel() != rows * cols) return nullptr;  // the builder reports the shape error
    double* sum = nullptr;
    int64_t* count = nullptr;
    if (request.projections.count(name)) {
      auto& m = data.input_second_moment[name];
      m = Eigen::MatrixXd::Zero(cols, cols);
      sum = m.data();
      count = &counts[name];
      found.insert(name);
    }
    return std::make_unique<CalibrationProjection>(t.data.data(), rows, cols, sum, count);
  };
  providers.embedding = [&]() -> std::unique_ptr<Embedding> {
    const Tensor& t = model.at("emb.weight");
    if (t.numel() != model.dims.n_vocab * model.dims.n_embd) {
      throw InputError("tensor 'emb.weight' has shape " + shape_to_string(t.shape) + ", expected [" +
                       std::to_string(model.dims.n_vocab) + ", " + std::to_string(model.dims.n_embd) + "]");
    }
    return std::make_unique<CalibrationEmbedding>(t.data.data(), model.dims.n_vocab, model.dims.n_embd);
  };
  EngineWeights weights = build_weights(model, std::move(providers));
  for (const auto& name : request.projections) {
    if (!found.count(name)) throw UsageError("calibration: the model has no projection named '" + name + "'");
  }
  EngineOptions options;
  options.threads = request.threads;
  // Long blocks: every call reads each weight matrix and adds into each D x D second moment
  // once, so a block of 1024 tokens moves 16x less memory than the default 64 (the scratch is
  // about 20 x D floats per token: 60 MiB at D = 768). Results do not depend on it.
  options.max_block = kBlock;
  Engine engine(std::move(weights), options);
  const auto tokenizer = tokenizer_for(model.dims.n_vocab, "");
  const std::vector<int32_t> tokens = tokenizer->encode(request.text);
  if (tokens.empty()) throw InputError("the calibration text is empty");
  // Sampled positions: every stride-th token, so the samples spread over the whole text.
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  data.sample_stride = calibration_sample_stride(n_tokens, request.max_samples);
  const int64_t n_samples = (n_tokens + data.sample_stride - 1) / data.sample_stride;
  const int64_t D = model.dims.n_embd, L = model.dims.n_layer;
  data.ffn_key_inputs.assign(static_cast<size_t>(L), CalibrationData::Rows(n_samples, D));
  data.head_inputs.resize(n_samples, D);
  std::vector<int64_t> active(static_cast<size_t>(L), 0);
  int64_t ffn_size = 0;
  // Copies the sampled rows of a block [first, first + n) of n x D rows into dst.
  auto keep_samples = [&](int64_t first, int64_t n, const float* rows, CalibrationData::Rows& dst) {
    for (int64_t p = (first + data.sample_stride - 1) / data.sample_stride * data.sample_stride; p < first + n;
         p += data.sample_stride) {
      std::copy_n(rows + (p - first) * D, D, dst.row(p / data.sample_stride).data());
    }
  };
  int64_t chunk_start = 0;  // observers see positions relative to the current eval_sequence call
  const ChannelMixObserver on_ffn = [&](const ChannelMixActivations& a) {
    keep_samples(chunk_start + a.first_position, a.n_tokens, a.key_input, data.ffn_key_inputs[static_cast<size_t>(a.layer)]);
    ffn_size = a.ffn_size;
    int64_t on = 0;
    for (int64_t i = 0; i < a.n_tokens * a.ffn_size; ++i) on += a.key_preact[i] > 0.0f;
    active[static_cast<size_t>(a.layer)] += on;
  };
  const HiddenObserver on_hidden = [&](const HiddenStates& h) {
    keep_samples(chunk_start + h.first_position, h.n_tokens, h.normed, data.head_inputs);
  };
  State state = engine.new_state();
  // Sequence mode: projections see blocks of tokens (apply_batch), in token order. Chunks are a
  // multiple of the engine's block size, so chunking changes nothing but the progress line.
  constexpr int64_t kChunk = 4 * kBlock;
  ProgressLine progress("calibration", n_tokens);
  for (chunk_start = 0; chunk_start < n_tokens; chunk_start += kChunk) {
    const int64_t len = std::min(kChunk, n_tokens - chunk_start);
    engine.eval_sequence(tokens.data() + chunk_start, static_cast<size_t>(len), state, nullptr, on_ffn, on_hidden);
    progress.update(chunk_start + len, "tokens");
  }
  progress.clear();
  data.tokens = n_tokens;
  for (int64_t l = 0; l < L; ++l) {
    data.ffn_active_fraction.push_back(static_cast<double>(active[static_cast<size_t>(l)]) /
                                       static_cast<double>(std::max<int64_t>(1, n_tokens * ffn_size)));
  }
  for (auto& [name, m] : data.input_second_moment) {
    // accumulate_second_moment filled the row-major lower triangle: the upper one of m.
    m.triangularView<Eigen::StrictlyLower>() = m.transpose();
    m /= static_cast<double>(std::max<int64_t>(1, counts[name]));
  }
  spdlog::info("calibration: {} tokens, {} projections, {} sampled positions recorded in {:.2f} s", data.tokens,
               found.size(), n_samples,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return data;
}

CalibrationText read_calibration_text(const CalibrationConfig& c) {
  CalibrationText out;
  out.path = c.text_path == "bundled" ? bundled_text_path() : c.text_path;
  out.text = read_text_range(out.path, static_cast<uint64_t>(c.offset), static_cast<uint64_t>(c.bytes));
  if (c.interleave_zeros) out.text = interleave_zero_bytes(out.text);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH64(out.text.data(), out.text.size(), 0)));
  out.xxh64 = hex;
  return out;
}

int64_t calibration_token_count(const Model& model, const std::string& text) {
  return static_cast<int64_t>(tokenizer_for(model.dims.n_vocab, "")->encode(text).size());
}

CalibrationTokens calibration_tokens(const Model& model, const std::string& text) {
  const std::vector<int32_t> ids = tokenizer_for(model.dims.n_vocab, "")->encode(text);
  CalibrationTokens out;
  out.count = static_cast<int64_t>(ids.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH64(ids.data(), ids.size() * sizeof(int32_t), 0)));
  out.xxh64 = hex;
  return out;
}

int64_t calibration_sample_stride(int64_t n_tokens, int64_t max_samples) {
  const int64_t m = std::max<int64_t>(1, max_samples);
  return std::max<int64_t>(1, (n_tokens + m - 1) / m);
}

int64_t estimate_calibration_bytes(const Model& model, const std::set<std::string>& projections,
                                   const CalibrationConfig& config) {
  int64_t bytes = 0;
  for (const std::string& name : projections) bytes += model.at(name).cols() * model.at(name).cols() * 8;
  const int64_t samples = std::min(config.samples, config.bytes);
  return bytes + samples * (model.dims.n_layer + 1) * model.dims.n_embd * 4;
}

}  // namespace rwkvlite
