#include "compress/passes/quantize_pass.h"

#include "compress/algo/error_aware_quant.h"
#include "runtime/format/codec.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {

const std::vector<std::string>& quantize_encodings() {
  static const std::vector<std::string> kEncodings = {"f32",   "f16",   "bf16",   "i8",    "i4g32", "i4g64", "i4g128",
                                                      "i3g32", "i3g64", "i3g128", "i2g32", "i2g64", "i2g128"};
  return kEncodings;
}

bool is_quantize_encoding(const std::string& encoding) {
  const auto& all = quantize_encodings();
  return std::find(all.begin(), all.end(), encoding) != all.end();
}

double relative_error(const std::vector<float>& w, const std::vector<float>& q) {
  double error = 0, reference = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - static_cast<double>(q[i]);
    error += d * d;
    reference += static_cast<double>(w[i]) * static_cast<double>(w[i]);
  }
  return reference > 0 ? std::sqrt(error / reference) : 0.0;
}

double round_trip_error(const Tensor& values, const std::string& encoding) {
  const format::EncodingSpec spec = format::parse_encoding(encoding);
  const int64_t rows = values.rows(), cols = values.cols();
  const size_t row_bytes = format::encoded_row_bytes(spec, cols);
  std::vector<uint8_t> encoded(row_bytes);
  std::vector<float> decoded(static_cast<size_t>(cols));
  double error = 0, reference = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = values.data.data() + r * cols;
    format::encode_rows_into(w, 1, cols, spec.encoding, spec.params, encoded.data(), r);
    format::decode_row(encoded.data(), cols, spec, decoded.data());
    for (int64_t c = 0; c < cols; ++c) {
      const double d = static_cast<double>(w[c]) - static_cast<double>(decoded[static_cast<size_t>(c)]);
      error += d * d;
      reference += static_cast<double>(w[c]) * static_cast<double>(w[c]);
    }
  }
  return reference > 0 ? std::sqrt(error / reference) : 0.0;
}

const char* quantize_method_name(QuantizeMethod m) {
  switch (m) {
    case QuantizeMethod::RoundToNearest: return "rtn";
    case QuantizeMethod::Weighted: return "weighted";
    case QuantizeMethod::Gptq: return "gptq";
  }
  return "?";
}

namespace {

QuantizeMethod parse_quantize_method(const std::string& name) {
  if (name == "weighted") return QuantizeMethod::Weighted;
  if (name == "gptq") return QuantizeMethod::Gptq;
  return QuantizeMethod::RoundToNearest;
}

// ".lr_a" / ".lr_b" and the base they belong to, or "" for other names.
std::string lowrank_base(const std::string& name, std::string_view suffix) {
  return name.ends_with(suffix) ? name.substr(0, name.size() - suffix.size()) : std::string();
}

// The second moment of the input of tensor `name` as the model stands (see the header): the
// calibrated moment of a projection or of the projection an lr_a belongs to, A C Aᵀ for an lr_b.
std::optional<Eigen::MatrixXd> input_moment(const CompressedModel& model, const CalibrationData& calibration,
                                            const std::string& name) {
  const auto moment_of = [&](const std::string& weight) -> const Eigen::MatrixXd* {
    auto it = calibration.input_second_moment.find(weight);
    return it == calibration.input_second_moment.end() ? nullptr : &it->second;
  };
  if (layout::is_calibrated_projection(name)) {
    if (const Eigen::MatrixXd* C = moment_of(name)) return *C;
    return std::nullopt;
  }
  if (const std::string base = lowrank_base(name, layout::lowrank_a("")); !base.empty()) {
    if (const Eigen::MatrixXd* C = moment_of(layout::matrix_weight(base))) return *C;
    return std::nullopt;
  }
  if (const std::string base = lowrank_base(name, layout::lowrank_b("")); !base.empty()) {
    const Eigen::MatrixXd* C = moment_of(layout::matrix_weight(base));
    if (C == nullptr || !model.has(layout::lowrank_a(base))) return std::nullopt;
    const Tensor& a = model.at(layout::lowrank_a(base)).values;
    if (a.cols() != C->rows()) return std::nullopt;
    Eigen::MatrixXd A(a.rows(), a.cols());
    for (int64_t r = 0; r < a.rows(); ++r) {
      for (int64_t c = 0; c < a.cols(); ++c) A(r, c) = a.data[static_cast<size_t>(r * a.cols() + c)];
    }
    return Eigen::MatrixXd(A * *C * A.transpose());
  }
  return std::nullopt;
}

}  // namespace

bool has_input_statistics(const std::string& name) {
  if (layout::is_calibrated_projection(name)) return true;
  for (std::string_view suffix : {std::string_view(".lr_a"), std::string_view(".lr_b")}) {
    const std::string base = lowrank_base(name, suffix);
    if (!base.empty() && layout::is_calibrated_projection(layout::matrix_weight(base))) return true;
  }
  return false;
}

// ---- Options ------------------------------------------------------------------------------

QuantizeOptions QuantizeOptions::read(OptionReader& r) {
  QuantizeOptions o;
  const std::string where = r.where();
  if (!r.has("rules")) r.fail_missing("rules", " = [ { targets = [...], encoding = \"i8\" }, ... ]");
  std::vector<OptionReader> readers =
      r.get_tables("rules", [&](size_t i) { return "rules #" + std::to_string(i + 1) + " of " + where; });
  if (readers.empty()) r.fail("rules", "'rules' of " + where + " is empty; give at least one rule");
  nlohmann::ordered_json resolved = nlohmann::ordered_json::array();
  for (OptionReader& rr : readers) {
    QuantizeRule rule;
    if (!rr.has("targets")) rr.fail_missing("targets", " (an array of tensor patterns)");
    rule.targets = rr.get_patterns("targets", {});
    if (rule.targets.empty()) rr.fail("targets", "'targets' of " + rr.where() + " is empty");
    rule.ignore = rr.get_patterns("ignore", {});
    if (!rr.has("encoding")) rr.fail_missing("encoding", " (one of f32, f16, bf16, i8, i4g32, i4g64, i4g128, i3g32, i3g64, i3g128, i2g32, i2g64, i2g128)");
    rule.encoding = rr.get_choice("encoding", "", quantize_encodings());
    // method and damping are recorded only when given, so configs without them resolve (and
    // hash) as before.
    if (rr.has("method")) {
      rule.method = parse_quantize_method(rr.get_choice("method", "rtn", {"rtn", "weighted", "gptq"}));
      if (rule.method != QuantizeMethod::RoundToNearest && !has_chosen_scales(format::parse_encoding(rule.encoding))) {
        rr.fail("method", "method \"" + std::string(quantize_method_name(rule.method)) + "\" of " + rr.where() +
                              " needs an integer encoding (i8, i4g*, i3g*, i2g*), not '" + rule.encoding + "'");
      }
    }
    if (rr.has("damping")) {
      if (rule.method != QuantizeMethod::Gptq) {
        rr.fail("damping", "'damping' of " + rr.where() + " applies to method = \"gptq\" only");
      }
      rule.damping = rr.get_double("damping", kDefaultGptqDamping, 0.0, 1.0);
    }
    rr.finish();
    resolved.push_back(rr.resolved());
    o.rules.push_back(std::move(rule));
  }
  r.record("rules", std::move(resolved));
  if (r.has("output_error")) o.output_error = r.get<bool>("output_error", false);
  return o;
}

void QuantizeOptions::check() const {
  if (rules.empty()) throw UsageError("quantize: no rules");
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].targets.empty()) throw UsageError("quantize: rule " + std::to_string(i + 1) + " has no targets");
    if (!is_quantize_encoding(rules[i].encoding)) {
      throw UsageError("quantize: rule " + std::to_string(i + 1) + " has unknown encoding '" + rules[i].encoding + "'");
    }
    if (rules[i].method != QuantizeMethod::RoundToNearest &&
        !has_chosen_scales(format::parse_encoding(rules[i].encoding))) {
      throw UsageError("quantize: rule " + std::to_string(i + 1) + " has method " +
                       quantize_method_name(rules[i].method) + ", which needs an integer encoding");
    }
    if (!(rules[i].damping >= 0 && rules[i].damping <= 1)) {
      throw UsageError("quantize: rule " + std::to_string(i + 1) + " has damping outside [0, 1]");
    }
    (void)TensorSelector(rules[i].targets, rules[i].ignore);
  }
}

// ---- Pass ---------------------------------------------------------------------------------

namespace {

std::vector<double> diagonal_of(const Eigen::MatrixXd& C) {
  std::vector<double> d(static_cast<size_t>(C.rows()));
  for (int64_t i = 0; i < C.rows(); ++i) d[static_cast<size_t>(i)] = C(i, i);
  return d;
}

nlohmann::ordered_json json_or_null(const std::optional<double>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

QuantizePass::QuantizePass(QuantizeOptions options) : options_(std::move(options)) {
  options_.check();
  for (const auto& r : options_.rules) selectors_.emplace_back(r.targets, r.ignore);
}

int QuantizePass::rule_for(const std::string& name) const {
  // A LoRA factor an earlier quantize pass stored transposed is still its factor to the rules.
  const std::string target = layout::lora_factor_of(name);
  for (size_t i = 0; i < selectors_.size(); ++i) {
    if (selectors_[i].matches(target)) return static_cast<int>(i);
  }
  return -1;
}

std::vector<int> QuantizePass::unmatched_rules(const CompressedModel& model) const {
  std::vector<int> out;
  std::vector<std::string> names = model.names();
  for (std::string& name : names) name = layout::lora_factor_of(name);
  for (size_t i = 0; i < selectors_.size(); ++i) {
    if (selectors_[i].select(names).empty()) out.push_back(static_cast<int>(i + 1));
  }
  return out;
}

bool QuantizePass::needs_calibration() const {
  if (options_.output_error) return true;
  return std::any_of(options_.rules.begin(), options_.rules.end(),
                     [](const QuantizeRule& r) { return r.method != QuantizeMethod::RoundToNearest; });
}

namespace {

// The tensor that will hold `name` in `encoding`. The codecs encode rows of a y = W x matrix, and
// BlinkDL applies a LoRA factor as x @ A: a factor leaving f32 is replaced by its transpose
// "<factor>.t" (layout::lora_rows), which the runtime reads as a projection. Works on a plan's
// value-less tensors too (the shape is swapped).
StoredTensor& tensor_for_encoding(CompressedModel& model, const std::string& name, const std::string& encoding) {
  if (!layout::is_lora_factor(name) || encoding == "f32") return model.at(name);
  const StoredTensor& factor = model.at(name);
  StoredTensor rows{.name = layout::lora_rows(name), .values = transposed(factor.values), .encoding = factor.encoding,
                    .row_addressable = false, .encoded = {}};
  model.put(std::move(rows), name);
  model.remove(name);
  return model.at(layout::lora_rows(name));
}

}  // namespace

void QuantizePass::plan(CompressPlan& plan) const {
  for (int rule : unmatched_rules(plan.model)) {
    std::string targets;
    for (const std::string& t : options_.rules[static_cast<size_t>(rule - 1)].targets) {
      targets += (targets.empty() ? "" : ", ") + t;
    }
    plan.warnings.push_back("quantize: rule " + std::to_string(rule) + " (targets [" + targets +
                            "]) matches no tensor of the model as the passes before it leave it");
  }
  for (const std::string& name : plan.model.names()) {
    const int rule = rule_for(name);
    if (rule < 0 || !is_quantize_encoding(plan.model.at(name).encoding)) continue;
    const QuantizeRule& r = options_.rules[static_cast<size_t>(rule)];
    if (r.method != QuantizeMethod::RoundToNearest && !has_input_statistics(name)) {
      throw UsageError("quantize: rule " + std::to_string(rule + 1) + " (method \"" + quantize_method_name(r.method) +
                       "\") matches '" + name +
                       "', whose input statistics calibration does not record (it records them for the att "
                       "receptance, key, value, gate and output and the ffn receptance and key weights, and "
                       "their lr_a and lr_b factors); add it to the rule's ignore or give it a rule with method = \"rtn\"");
    }
    tensor_for_encoding(plan.model, name, r.encoding).encoding = r.encoding;
  }
}

namespace {

// Applies `rule` to tensor `t` (whose encoding is one of this pass's) and fills the row's
// encoding, bytes, rel_err and, when measured, output_error and method.
void quantize_tensor(const QuantizeRule& rule, bool measure, const std::optional<Eigen::MatrixXd>& C, StoredTensor& t,
                     PassReportRow& row) {
  const std::string& encoding = rule.encoding;
  row.bytes_before = t.stored_bytes();
  row.action = (t.encoding == encoding ? "keep " : "encode ") + encoding;
  t.encoding = encoding;
  t.encoded.clear();  // bytes an earlier quantize pass chose are not this rule's
  const format::EncodingSpec spec = format::parse_encoding(encoding);
  std::optional<double> output_error;
  if (rule.method == QuantizeMethod::RoundToNearest) {
    // The values stay as they are; the writer encodes them.
    row.value = round_trip_error(t.values, encoding);
    if (C) output_error = input_weighted_error(t.values.data, format::round_trip_rows(t.values.data.data(), t.values.rows(), t.values.cols(), spec), t.values.rows(), t.values.cols(), *C);
  } else {
    std::vector<float> original = std::move(t.values.data);
    const Tensor w{t.values.shape, std::move(original)};
    QuantizedRows q = rule.method == QuantizeMethod::Weighted ? quantize_weighted(w, spec, diagonal_of(*C))
                                                              : quantize_gptq(w, spec, *C, rule.damping);
    t.encoded = std::move(q.encoded);
    t.values.data = std::move(q.values);
    row.value = relative_error(w.data, t.values.data);
    output_error = input_weighted_error(w.data, t.values.data, t.values.rows(), t.values.cols(), *C);
  }
  row.encoding_after = encoding;
  row.bytes_after = t.stored_bytes();
  row.metric = "rel_err";
  row.extra["encoding"] = encoding;
  if (measure) {
    row.extra["method"] = quantize_method_name(rule.method);
    row.extra["output_error"] = json_or_null(output_error);
  }
}

}  // namespace

std::vector<PassReportRow> QuantizePass::run(PassContext& ctx) {
  std::vector<std::string> matched;
  for (const std::string& name : ctx.model.names()) {
    if (rule_for(name) >= 0) matched.push_back(name);
  }
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(matched.size()));
  std::vector<PassReportRow> rows;
  for (const std::string& name : matched) {
    const auto t0 = std::chrono::steady_clock::now();
    const int index = rule_for(name);
    const QuantizeRule& rule = options_.rules[static_cast<size_t>(index)];
    PassReportRow row;
    row.tensor = name;
    row.shape = ctx.model.at(name).values.shape;
    row.encoding_before = ctx.model.at(name).encoding;
    row.extra["rule"] = index + 1;
    const bool ours = is_quantize_encoding(row.encoding_before);
    StoredTensor& t = ours ? tensor_for_encoding(ctx.model, name, rule.encoding) : ctx.model.at(name);
    if (t.name != name) row.extra["stored_as"] = t.name;
    if (!ours) {
      // Another pass chose an exact representation (bit masks, indices); re-encoding it would
      // change what it means.
      row.action = "keep " + t.encoding + " (set by another pass)";
      row.encoding_after = t.encoding;
      row.extra["encoding"] = t.encoding;
    } else {
      const bool measure = rule.method != QuantizeMethod::RoundToNearest || options_.output_error;
      std::optional<Eigen::MatrixXd> C;
      if (measure) {
        if (ctx.calibration == nullptr) {
          throw Error("quantize: rule " + std::to_string(index + 1) + " needs calibration, which did not run",
                      kExitInternal);
        }
        // The moment as the model stands: an lr_b's depends on the lr_a quantized before it.
        C = input_moment(ctx.model, *ctx.calibration, name);
        if (!C && rule.method != QuantizeMethod::RoundToNearest) {
          throw Error("quantize: no input second moment for '" + name + "'", kExitInternal);
        }
      }
      quantize_tensor(rule, measure, C, t, row);
      row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace rwkvlite
