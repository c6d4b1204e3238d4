#include "compress/analysis/sensitivity_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <memory>
#include <set>

#include "compress/passes/quantize_pass.h"
#include "runtime/core/error.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/text_metrics.h"
#include "runtime/format/codec.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"

namespace rwkvlite {
namespace {

void check_options(const SensitivityOptions& o, const ProfileText& text) {
  if (o.fidelities.empty()) throw UsageError("sensitivity profile: no fidelities given");
  std::set<std::string> seen;
  for (const auto& f : o.fidelities) {
    if (!is_quantize_encoding(f)) throw UsageError("sensitivity profile: unknown fidelity '" + f + "'");
    if (!seen.insert(f).second) throw UsageError("sensitivity profile: fidelity '" + f + "' given twice");
  }
  if (!o.direct && !seen.count(o.probe))
    throw UsageError("sensitivity profile: the proxy's probe fidelity '" + o.probe + "' is not among the fidelities");
  if (text.tokens.size() < 2) throw UsageError("sensitivity profile: the calibration text has fewer than 2 tokens");
  if (text.token_bytes.size() != text.tokens.size())
    throw UsageError("sensitivity profile: token_bytes and tokens differ in length");
  if (o.threads < 1) throw UsageError("sensitivity profile: threads must be >= 1");
}

// Ranks 1..n, ties sharing their average rank.
std::vector<double> ranks_of(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = average;
    i = j + 1;
  }
  return ranks;
}

// The dense model's logits at every position, replayed as the reference of each evaluation so
// that the dense model runs once, not once per evaluation.
class RecordedLogits : public TokenPredictor {
 public:
  RecordedLogits(TokenPredictor& model, const std::vector<int32_t>& tokens) : vocab_(model.vocab_size()) {
    logits_.resize(tokens.size() * static_cast<size_t>(vocab_));
    model.reset();
    for (size_t i = 0; i < tokens.size(); ++i) model.feed(tokens[i], logits_.data() + i * static_cast<size_t>(vocab_));
  }
  int64_t vocab_size() const override { return vocab_; }
  void reset() override { position_ = 0; }
  void feed(int32_t, float* logits) override {
    if (logits) std::copy_n(logits_.data() + position_ * static_cast<size_t>(vocab_), vocab_, logits);
    ++position_;
  }

 private:
  int64_t vocab_;
  std::vector<float> logits_;
  size_t position_ = 0;
};

// Replaying costs tokens x vocab floats; past this (a World-vocabulary model on a long text)
// the dense model runs beside each evaluation instead.
constexpr size_t kMaxRecordedLogits = size_t{64} << 20;  // 256 MiB

struct Measured {
  double kl_bits_per_byte = 0;
  double bits_per_byte = 0;
};

// Evaluates the model as it is now (one tensor swapped by the caller) against the dense model.
class Evaluator {
 public:
  Evaluator(const Model& dense, const ProfileText& text, int threads) : text_(text), threads_(threads) {
    dense_ = make_dense_predictor(dense, threads);
    if (text.tokens.size() * static_cast<size_t>(dense_->vocab_size()) <= kMaxRecordedLogits) {
      reference_ = std::make_unique<RecordedLogits>(*dense_, text.tokens);
      dense_.reset();
    }
  }
  Measured measure(const Model& model) {
    auto predictor = make_dense_predictor(model, threads_);
    ++evaluations_;
    TokenPredictor& reference = reference_ ? *reference_ : *dense_;
    const TextMetrics m = evaluate_text(*predictor, text_.tokens, text_.token_bytes, &reference);
    const double kl_bits = m.kl_mean * static_cast<double>(m.tokens_scored) / std::log(2.0);
    return {kl_bits / static_cast<double>(m.bytes_scored), m.bits_per_byte};
  }
  int64_t evaluations() const { return evaluations_; }

 private:
  const ProfileText& text_;
  int threads_;
  std::unique_ptr<TokenPredictor> dense_;
  std::unique_ptr<TokenPredictor> reference_;
  int64_t evaluations_ = 0;
};

}  // namespace

bool is_profiled_tensor(const std::string& name) {
  return layout::is_projection_weight(name) || layout::is_lora_factor(name) || name == "emb.weight";
}

double spearman_rank_correlation(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> ra = ranks_of(a), rb = ranks_of(b);
  const double n = static_cast<double>(a.size()), mean = (n + 1.0) / 2.0;
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  if (va == 0 || vb == 0) return std::numeric_limits<double>::quiet_NaN();
  return cov / std::sqrt(va * vb);
}

SensitivityProfile profile_sensitivity(const Model& model, const ProfileText& text, const SensitivityOptions& options) {
  check_options(options, text);
  const auto start = std::chrono::steady_clock::now();
  const bool run_proxy = !options.direct;
  const bool run_direct = options.direct || options.validate_proxy;

  SensitivityProfile profile;
  profile.mode = options.direct ? "direct" : (options.validate_proxy ? "proxy+direct" : "proxy");
  profile.fidelities = options.fidelities;
  profile.probe = run_proxy ? options.probe : "";
  profile.tokens_scored = static_cast<int64_t>(text.tokens.size()) - 1;
  profile.dense_fp16_bytes = model.parameter_count() * 2;

  std::vector<std::string> names;
  for (const auto& [name, t] : model.tensors) {
    if (is_profiled_tensor(name) && t.rank() == 2) {
      names.push_back(name);
      profile.profiled_parameters += t.numel();
    } else {
      profile.fixed_bytes += t.numel() * 4;
    }
  }
  const size_t probe_index = static_cast<size_t>(
      std::find(options.fidelities.begin(), options.fidelities.end(), options.probe) - options.fidelities.begin());
  const int64_t per_tensor = run_direct ? static_cast<int64_t>(options.fidelities.size()) : 1;
  const int64_t total = 1 + static_cast<int64_t>(names.size()) * per_tensor;

  Model work = model;  // one tensor at a time is swapped for its round trip and restored
  Evaluator evaluator(model, text, options.threads);
  auto report_progress = [&] {
    if (options.progress) options.progress(evaluator.evaluations(), total);
  };
  profile.base_bits_per_byte = evaluator.measure(work).bits_per_byte;
  report_progress();

  for (const std::string& name : names) {
    Tensor& t = work.at(name);
    const std::vector<float> original = t.data;
    // Round trips run on the matrix as the file would store it: a LoRA factor transposed
    // (layout::lora_rows), so its codec groups run along the same axis as in the file.
    const bool stored_transposed = layout::is_lora_factor(name);
    const Tensor stored = stored_transposed ? transposed(t) : Tensor();
    const Tensor& as_stored = stored_transposed ? stored : t;
    TensorSensitivity s{.name = name, .rows = as_stored.rows(), .cols = as_stored.cols(), .costs = {}};
    for (const std::string& f : options.fidelities) {
      FidelityCost c;
      c.encoding = f;
      c.bytes = format::encoded_tensor_bytes(f, as_stored.rows(), as_stored.cols());
      c.relative_error = round_trip_error(as_stored, f);
      s.costs.push_back(c);
    }
    auto measure = [&](FidelityCost& c) {
      Tensor trip{as_stored.shape, format::round_trip_rows(as_stored.data.data(), as_stored.rows(), as_stored.cols(),
                                                           format::parse_encoding(c.encoding))};
      t.data = stored_transposed ? transposed(trip).data : std::move(trip.data);
      const Measured m = evaluator.measure(work);
      t.data = original;
      c.direct_cost = m.kl_bits_per_byte;
      c.delta_bits_per_byte = m.bits_per_byte - profile.base_bits_per_byte;
      report_progress();
    };
    if (run_direct) {
      for (FidelityCost& c : s.costs) measure(c);
    }
    if (run_proxy) {
      FidelityCost& probe = s.costs[probe_index];
      if (!probe.direct_cost) measure(probe);
      for (FidelityCost& c : s.costs) {
        const double ratio = probe.relative_error > 0 ? c.relative_error / probe.relative_error : 0.0;
        c.proxy_cost = *probe.direct_cost * ratio * ratio;
      }
    }
    for (FidelityCost& c : s.costs) {
      c.measured = c.direct_cost.has_value();
      c.cost = c.measured ? *c.direct_cost : *c.proxy_cost;
    }
    profile.tensors.push_back(std::move(s));
  }

  if (options.validate_proxy && run_proxy) {
    std::vector<double> proxy_all, direct_all;
    for (size_t fi = 0; fi < options.fidelities.size(); ++fi) {
      std::vector<double> proxy_f, direct_f;
      for (const auto& s : profile.tensors) {
        proxy_f.push_back(*s.costs[fi].proxy_cost);
        direct_f.push_back(*s.costs[fi].direct_cost);
      }
      profile.proxy_spearman_per_fidelity.emplace_back(options.fidelities[fi],
                                                       spearman_rank_correlation(proxy_f, direct_f));
      if (fi == probe_index) continue;  // identical by construction
      proxy_all.insert(proxy_all.end(), proxy_f.begin(), proxy_f.end());
      direct_all.insert(direct_all.end(), direct_f.begin(), direct_f.end());
    }
    profile.proxy_spearman_all = spearman_rank_correlation(proxy_all, direct_all);
  }
  profile.evaluations = evaluator.evaluations();
  profile.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return profile;
}

}  // namespace rwkvlite
