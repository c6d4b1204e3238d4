#include "compress/passes/quantize_pass.h"

#include "runtime/format/encoding.h"

#include <algorithm>

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

int64_t encoded_row_bytes(const std::string& encoding, int64_t cols) {
  // The format library's own size, so plans and reports match the bytes actually written.
  if (!is_quantize_encoding(encoding)) {
    throw Error("encoded_row_bytes: '" + encoding + "' is not a storage encoding of the quantize pass", kExitInternal);
  }
  const format::EncodingSpec spec = format::parse_encoding(encoding);
  return static_cast<int64_t>(format::encoded_row_bytes(spec.encoding, cols, spec.params));
}

int64_t encoded_tensor_bytes(const std::string& encoding, const Tensor& t) {
  return t.rows() * encoded_row_bytes(encoding, t.cols());
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

nlohmann::ordered_json QuantizeOptions::to_json() const {
  nlohmann::ordered_json rules_json = nlohmann::ordered_json::array();
  for (const auto& r : rules) {
    nlohmann::ordered_json j;
    j["targets"] = r.targets;
    j["ignore"] = r.ignore;
    j["encoding"] = r.encoding;
    rules_json.push_back(std::move(j));
  }
  nlohmann::ordered_json out;
  out["rules"] = std::move(rules_json);
  return out;
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

int64_t QuantizePass::planned_bytes_delta(const CompressedModel& model) const {
  int64_t delta = 0;
  for (const StoredTensor& t : model.tensors()) {
    const int rule = rule_for(t.name);
    if (rule < 0 || !is_quantize_encoding(t.encoding)) continue;
    delta += encoded_tensor_bytes(options_.rules[rule].encoding, t.values) - encoded_tensor_bytes(t.encoding, t.values);
  }
  return delta;
}

std::vector<PassReportRow> QuantizePass::run(PassContext& ctx) {
  std::vector<PassReportRow> rows;
  for (const std::string& name : ctx.model.names()) {
    const int rule = rule_for(name);
    if (rule < 0) continue;
    StoredTensor& t = ctx.model.at(name);
    const std::string& encoding = options_.rules[rule].encoding;
    PassReportRow row;
    row.tensor = name;
    row.extra["rule"] = rule + 1;
    if (!is_quantize_encoding(t.encoding)) {
      // Another pass chose an exact representation (bit masks, indices); re-encoding it would
      // change what it means.
      row.action = "keep " + t.encoding + " (set by another pass)";
      row.extra["encoding"] = t.encoding;
    } else {
      row.bytes_before = encoded_tensor_bytes(t.encoding, t.values);
      row.action = (t.encoding == encoding ? "keep " : "encode ") + encoding;
      t.encoding = encoding;
      row.bytes_after = encoded_tensor_bytes(t.encoding, t.values);
      row.extra["encoding"] = encoding;
    }
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace rwkvlite
