#include "compress/analysis/sensitivity_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <memory>
#include <set>

#include "compress/algo/error_aware_quant.h"
#include "compress/algo/held_matrix.h"
#include "compress/algo/lowrank.h"
#include "compress/algo/svd.h"
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
    if (!is_quantize_encoding(f) && !parse_lowrank_fidelity(f))
      throw UsageError("sensitivity profile: unknown fidelity '" + f + "' (an encoding, or lr<rank>:<encoding>)");
    if (!seen.insert(f).second) throw UsageError("sensitivity profile: fidelity '" + f + "' given twice");
  }
  if (!o.direct && !seen.count(o.probe))
    throw UsageError("sensitivity profile: the proxy's probe fidelity '" + o.probe + "' is not among the fidelities");
  if (!o.direct && parse_lowrank_fidelity(o.probe))
    throw UsageError("sensitivity profile: the proxy's probe '" + o.probe +
                     "' is low-rank; probe a quantize encoding (low-rank fidelities are always evaluated)");
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

// Whether a low-rank fidelity of this rank applies: block projections only (the head has the
// clustered head instead), and only ranks that shrink the matrix, as the lowrank pass keeps
// any other matrix dense.
bool lowrank_applies(const std::string& name, int64_t rows, int64_t cols, int rank) {
  return layout::is_projection_weight(name) && layout::layer_index(name).has_value() &&
         rank <= max_useful_rank(rows, cols);
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

std::optional<LowRankFidelity> parse_lowrank_fidelity(const std::string& name) {
  if (name.rfind("lr", 0) != 0) return std::nullopt;
  const size_t colon = name.find(':');
  const std::string digits = name.substr(2, colon == std::string::npos ? std::string::npos : colon - 2);
  const bool digits_ok = !digits.empty() && digits.size() <= 6 &&
                         std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (colon == std::string::npos || !digits_ok || std::stoi(digits) < 1 ||
      !is_quantize_encoding(name.substr(colon + 1)))
    throw UsageError("sensitivity profile: low-rank fidelity '" + name +
                     "' is not lr<rank>:<encoding> with rank >= 1 and a quantize encoding (for example lr32:i8)");
  return LowRankFidelity{.rank = std::stoi(digits), .factor_encoding = name.substr(colon + 1)};
}

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
  profile.method = options.input_moments ? "gptq" : "rtn";
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
  std::vector<std::optional<LowRankFidelity>> lowrank;  // per fidelity
  for (const auto& f : options.fidelities) lowrank.push_back(parse_lowrank_fidelity(f));
  const size_t probe_index = static_cast<size_t>(
      std::find(options.fidelities.begin(), options.fidelities.end(), options.probe) - options.fidelities.begin());
  int64_t total = 1;
  for (const std::string& name : names) {
    const Tensor& t = model.tensors.at(name);
    for (size_t fi = 0; fi < lowrank.size(); ++fi) {
      if (lowrank[fi]) total += lowrank_applies(name, t.rows(), t.cols(), lowrank[fi]->rank) ? 1 : 0;
      else if (run_direct || fi == probe_index) ++total;
    }
  }

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
    const int64_t rows = as_stored.rows(), cols = as_stored.cols();
    TensorSensitivity s{.name = name, .rows = rows, .cols = cols, .costs = {}};
    // The input moment when compress would use one (never for a LoRA factor: its input is not
    // recorded).
    const Eigen::MatrixXd* C = nullptr;
    if (options.input_moments && !stored_transposed) {
      const auto it = options.input_moments->find(name);
      if (it != options.input_moments->end() && it->second.trace() > 0) C = &it->second;
    }
    // Which fidelities apply; one SVD at the largest applicable rank serves every low-rank one.
    std::vector<bool> applies(lowrank.size(), true);
    int svd_rank = 0;
    for (size_t fi = 0; fi < lowrank.size(); ++fi) {
      if (!lowrank[fi]) continue;
      applies[fi] = lowrank_applies(name, rows, cols, lowrank[fi]->rank);
      if (applies[fi]) svd_rank = std::max(svd_rank, lowrank[fi]->rank);
    }
    std::optional<TruncatedSvd> svd;
    std::optional<Whitening> whitening;
    if (svd_rank > 0) {
      const Eigen::MatrixXd w = Eigen::Map<const RowMajor>(original.data(), rows, cols).cast<double>();
      if (C) whitening = Whitening::from_second_moment(*C, kDefaultWhiteningDamping);
      svd = truncated_svd(whitening ? whitening->whiten(w) : w, svd_rank, SvdMethod::Auto);
    }
    std::vector<std::vector<float>> values(options.fidelities.size());  // as stored, per fidelity
    for (size_t fi = 0; fi < options.fidelities.size(); ++fi) {
      FidelityCost c;
      c.encoding = options.fidelities[fi];
      c.available = applies[fi];
      if (const auto& lr = lowrank[fi]) {
        if (c.available) {
          c.bytes = format::encoded_tensor_bytes(lr->factor_encoding, lr->rank, cols) +
                    format::encoded_tensor_bytes(lr->factor_encoding, rows, lr->rank);
          values[fi] = hold_lowrank(*svd, whitening ? &*whitening : nullptr, C, *lr).product();
        }
      } else {
        c.bytes = format::encoded_tensor_bytes(c.encoding, rows, cols);
        values[fi] = hold_quantized(as_stored, c.encoding, C).decoded();
      }
      if (c.available) {
        c.relative_error = relative_error(as_stored.data, values[fi]);
        if (C) c.output_error = input_weighted_error(as_stored.data, values[fi], rows, cols, *C);
      }
      s.costs.push_back(c);
    }
    auto measure = [&](size_t fi) {
      FidelityCost& c = s.costs[fi];
      t.data = stored_transposed ? transposed(Tensor{as_stored.shape, values[fi]}).data : values[fi];
      const Measured m = evaluator.measure(work);
      t.data = original;
      c.direct_cost = m.kl_bits_per_byte;
      c.delta_bits_per_byte = m.bits_per_byte - profile.base_bits_per_byte;
      report_progress();
    };
    for (size_t fi = 0; fi < s.costs.size(); ++fi) {
      if (s.costs[fi].available && (run_direct || lowrank[fi])) measure(fi);
    }
    if (run_proxy) {
      FidelityCost& probe = s.costs[probe_index];
      if (!probe.direct_cost) measure(probe_index);
      for (size_t fi = 0; fi < s.costs.size(); ++fi) {
        if (lowrank[fi]) continue;  // evaluated above: not a quantization-noise perturbation
        FidelityCost& c = s.costs[fi];
        // Output errors where the moment gives them (GPTQ trades weight error for output error).
        const double e = c.output_error.value_or(c.relative_error);
        const double e_probe = probe.output_error.value_or(probe.relative_error);
        const double ratio = e_probe > 0 ? e / e_probe : 0.0;
        c.proxy_cost = *probe.direct_cost * ratio * ratio;
      }
    }
    for (FidelityCost& c : s.costs) {
      if (!c.available) continue;
      c.measured = c.direct_cost.has_value();
      c.cost = c.measured ? *c.direct_cost : *c.proxy_cost;
    }
    profile.tensors.push_back(std::move(s));
  }

  if (options.validate_proxy && run_proxy) {
    std::vector<double> proxy_all, direct_all;
    for (size_t fi = 0; fi < options.fidelities.size(); ++fi) {
      if (lowrank[fi]) continue;  // evaluated in both modes: nothing to compare
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
