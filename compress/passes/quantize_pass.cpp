#include "compress/passes/quantize_pass.h"

#include "runtime/format/codec.h"
#include "runtime/format/encoding.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {

const std::vector<std::string>& quantize_encodings() {
  static const std::vector<std::string> kEncodings = {"f32", "f16", "bf16", "i8", "i4g32", "i4g64", "i4g128"};
  return kEncodings;
}

bool is_quantize_encoding(const std::string& encoding) {
  const auto& all = quantize_encodings();
  return std::find(all.begin(), all.end(), encoding) != all.end();
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
    if (!rr.has("encoding")) rr.fail_missing("encoding", " (one of f32, f16, bf16, i8, i4g32, i4g64, i4g128)");
    rule.encoding = rr.get_choice("encoding", "", quantize_encodings());
    rr.finish();
    resolved.push_back(rr.resolved());
    o.rules.push_back(std::move(rule));
  }
  r.record("rules", std::move(resolved));
  return o;
}

void QuantizeOptions::check() const {
  if (rules.empty()) throw UsageError("quantize: no rules");
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].targets.empty()) throw UsageError("quantize: rule " + std::to_string(i + 1) + " has no targets");
    if (!is_quantize_encoding(rules[i].encoding)) {
      throw UsageError("quantize: rule " + std::to_string(i + 1) + " has unknown encoding '" + rules[i].encoding + "'");
    }
    (void)TensorSelector(rules[i].targets, rules[i].ignore);
  }
}

// ---- Pass ---------------------------------------------------------------------------------

QuantizePass::QuantizePass(QuantizeOptions options) : options_(std::move(options)) {
  options_.check();
  for (const auto& r : options_.rules) selectors_.emplace_back(r.targets, r.ignore);
}

int QuantizePass::rule_for(const std::string& name) const {
  for (size_t i = 0; i < selectors_.size(); ++i) {
    if (selectors_[i].matches(name)) return static_cast<int>(i);
  }
  return -1;
}

std::vector<int> QuantizePass::unmatched_rules(const CompressedModel& model) const {
  std::vector<int> out;
  const std::vector<std::string> names = model.names();
  for (size_t i = 0; i < selectors_.size(); ++i) {
    if (selectors_[i].select(names).empty()) out.push_back(static_cast<int>(i + 1));
  }
  return out;
}

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
    StoredTensor& t = plan.model.at(name);
    if (rule >= 0 && is_quantize_encoding(t.encoding)) t.encoding = options_.rules[static_cast<size_t>(rule)].encoding;
  }
}

std::vector<PassReportRow> QuantizePass::run(PassContext& ctx) {
  std::vector<std::string> matched;
  for (const std::string& name : ctx.model.names()) {
    if (rule_for(name) >= 0) matched.push_back(name);
  }
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(matched.size()));
  std::vector<PassReportRow> rows;
  for (const std::string& name : matched) {
    const auto t0 = std::chrono::steady_clock::now();
    const int rule = rule_for(name);
    StoredTensor& t = ctx.model.at(name);
    const std::string& encoding = options_.rules[rule].encoding;
    PassReportRow row;
    row.tensor = name;
    row.shape = t.values.shape;
    row.encoding_before = t.encoding;
    row.extra["rule"] = rule + 1;
    if (!is_quantize_encoding(t.encoding)) {
      // Another pass chose an exact representation (bit masks, indices); re-encoding it would
      // change what it means.
      row.action = "keep " + t.encoding + " (set by another pass)";
      row.encoding_after = t.encoding;
      row.extra["encoding"] = t.encoding;
    } else {
      row.bytes_before = t.stored_bytes();
      row.action = (t.encoding == encoding ? "keep " : "encode ") + encoding;
      t.encoding = encoding;
      row.encoding_after = encoding;
      row.bytes_after = t.stored_bytes();
      row.metric = "rel_err";
      row.value = round_trip_error(t.values, encoding);
      row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      row.extra["encoding"] = encoding;
    }
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace rwkvlite
