#include "compress/passes/elastic_pass.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "compress/algo/lowrank.h"
#include "compress/algo/svd.h"
#include "compress/algo/held_matrix.h"
#include "compress/analysis/sensitivity_json.h"
#include "compress/pipeline/ordered_rows.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/thread_pool.h"
#include "runtime/format/compact_format.h"
#include "runtime/format/elastic_meta.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"

namespace rwkvlite {
namespace {

constexpr uint64_t kMaxProfileBytes = uint64_t{256} << 20;

// The name a profiled matrix's stored forms are derived from: a LoRA factor is stored as its
// rows ("<factor>.t"), the others under their own name.
std::string stored_name(const std::string& name) {
  return layout::is_lora_factor(name) ? layout::lora_rows(name) : name;
}

// The tensors one choice stores: "<name>@<f>", or the two factors "<base>.lr_a@<f>", "<base>.lr_b@<f>".
std::vector<std::string> form_tensors(const std::string& name, const std::string& fidelity) {
  if (parse_lowrank_fidelity(fidelity)) {
    const std::string base = layout::matrix_base(name);
    return {layout::elastic_variant(layout::lowrank_a(base), fidelity),
            layout::elastic_variant(layout::lowrank_b(base), fidelity)};
  }
  return {layout::elastic_variant(stored_name(name), fidelity)};
}

StoredTensor stored(std::string name, HeldMatrix m) {
  return StoredTensor{.name = std::move(name), .values = std::move(m.values), .encoding = m.encoding,
                      .row_addressable = false, .encoded = std::move(m.encoded)};
}

}  // namespace

ElasticOptions ElasticOptions::read(OptionReader& reader) {
  ElasticOptions o;
  o.profile_path = reader.require_path("profile");
  o.fidelities = reader.get<std::vector<std::string>>("fidelities", {});
  const std::vector<uint8_t> bytes = read_file_bytes(o.profile_path, kMaxProfileBytes);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw InputError("'" + o.profile_path + "' (the elastic pass's profile) is not JSON: " + e.what());
  }
  try {
    o.profile = profile_from_json(j);
  } catch (const InputError& e) {
    throw InputError("'" + o.profile_path + "' (the elastic pass's profile): " + e.what());
  }
  o.profile_xxh64 = format::checksums_to_hex({format::xxh64(bytes.data(), bytes.size())});
  std::set<std::string> seen;
  for (const std::string& f : o.fidelities) {
    if (std::find(o.profile.fidelities.begin(), o.profile.fidelities.end(), f) == o.profile.fidelities.end())
      reader.fail("fidelities", "fidelity '" + f + "' is not in the profile (it has: " + [&] {
        std::string all;
        for (const auto& p : o.profile.fidelities) all += (all.empty() ? "" : ", ") + p;
        return all;
      }() + ")");
    if (!seen.insert(f).second) reader.fail("fidelities", "fidelity '" + f + "' given twice");
  }
  return o;
}

ElasticPass::ElasticPass(ElasticOptions options) : options_(std::move(options)) {
  const SensitivityProfile& p = options_.profile;
  for (const TensorSensitivity& t : p.tensors) {
    std::vector<size_t> forms;
    for (size_t fi = 0; fi < p.fidelities.size(); ++fi) {
      const bool wanted = options_.fidelities.empty() ||
                          std::find(options_.fidelities.begin(), options_.fidelities.end(), p.fidelities[fi]) !=
                              options_.fidelities.end();
      if (wanted && t.costs[fi].available) forms.push_back(fi);
    }
    forms_.push_back(std::move(forms));
  }
}

void ElasticPass::validate(const CompressedModel& model) const {
  const SensitivityProfile& p = options_.profile;
  const std::string what = "elastic pass: the profile '" + options_.profile_path + "'";
  int64_t parameters = 0;
  for (const StoredTensor& t : model.tensors()) parameters += t.values.numel();
  if (parameters * 2 != p.dense_fp16_bytes) {
    throw UsageError(what + " is of a model with " + std::to_string(p.dense_fp16_bytes / 2) + " parameters; this one has " +
                     std::to_string(parameters) + " (another model, or passes before the elastic pass changed it)");
  }
  for (const TensorSensitivity& t : p.tensors) {
    if (!model.has(t.name)) throw UsageError(what + " profiles '" + t.name + "', which the model lacks");
    const StoredTensor& m = model.at(t.name);
    const bool transposed = layout::is_lora_factor(t.name);
    const int64_t rows = transposed ? m.values.cols() : m.values.rows(), cols = transposed ? m.values.rows() : m.values.cols();
    if (m.values.rank() != 2 || rows != t.rows || cols != t.cols)
      throw UsageError(what + " profiles '" + t.name + "' as " + std::to_string(t.rows) + " x " + std::to_string(t.cols) +
                       " (as stored); the model's is " + std::to_string(rows) + " x " + std::to_string(cols));
    if (m.encoding != "f32")
      throw UsageError(what + ": '" + t.name + "' is already " + m.encoding + "; put the elastic pass before passes that encode it");
  }
}

namespace {

layout::ElasticMeta elastic_meta(const ElasticOptions& o, const std::vector<std::vector<size_t>>& forms) {
  const SensitivityProfile& p = o.profile;
  layout::ElasticMeta meta{.method = p.method,
                           .base_bits_per_byte = p.base_bits_per_byte,
                           .dense_fp16_bytes = p.dense_fp16_bytes,
                           .tokens_scored = p.tokens_scored,
                           .profile_xxh64 = o.profile_xxh64,
                           .items = {}};
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    if (forms[i].empty()) continue;
    layout::ElasticItem item{.name = p.tensors[i].name, .choices = {}};
    for (size_t fi : forms[i]) {
      const FidelityCost& c = p.tensors[i].costs[fi];
      item.choices.push_back({.fidelity = c.encoding, .bytes = c.bytes, .cost = c.cost,
                              .tensors = form_tensors(p.tensors[i].name, c.encoding)});
    }
    meta.items.push_back(std::move(item));
  }
  return meta;
}

}  // namespace

void ElasticPass::plan(CompressPlan& plan) const {
  validate(plan.model);
  const SensitivityProfile& p = options_.profile;
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    if (forms_[i].empty()) continue;
    const TensorSensitivity& t = p.tensors[i];
    std::string after = t.name;
    for (size_t fi : forms_[i]) {
      const std::string& f = p.fidelities[fi];
      const std::vector<std::string> names = form_tensors(t.name, f);
      if (const auto lr = parse_lowrank_fidelity(f)) {
        plan.model.put({.name = names[0], .values = CompressedModel::shape_only({lr->rank, t.cols}), .encoding = lr->factor_encoding}, after);
        plan.model.put({.name = names[1], .values = CompressedModel::shape_only({t.rows, lr->rank}), .encoding = lr->factor_encoding}, names[0]);
      } else {
        plan.model.put({.name = names[0], .values = CompressedModel::shape_only({t.rows, t.cols}), .encoding = f}, after);
      }
      after = names.back();
    }
    plan.model.remove(t.name);
  }
  plan.model.file_metadata[layout::ElasticMeta::kKey] = elastic_meta(options_, forms_).to_json();
}

std::vector<PassReportRow> ElasticPass::run(PassContext& ctx) {
  validate(ctx.model);
  const SensitivityProfile& p = options_.profile;
  const size_t n = p.tensors.size();
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(n));
  const bool gptq = p.method == "gptq";
  if (gptq && !ctx.calibration) throw Error("elastic pass: a gptq profile needs calibration, and none ran", kExitInternal);

  std::vector<std::vector<StoredTensor>> forms(n);
  OrderedRows rows(n, ctx.on_row);
  ThreadPool pool(std::max(1, std::min<int>(ctx.threads, static_cast<int>(n))), 1);
  pool.parallel_for(0, static_cast<int64_t>(n), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const size_t i = static_cast<size_t>(job);
      const auto start = std::chrono::steady_clock::now();
      const TensorSensitivity& t = p.tensors[i];
      const Tensor& canonical = ctx.model.at(t.name).values;
      const bool lora = layout::is_lora_factor(t.name);
      const Tensor as_stored = lora ? transposed(canonical) : canonical;
      // The input moment where a gptq config would use one (never for a LoRA factor), as the profile.
      const Eigen::MatrixXd* C = nullptr;
      if (gptq && !lora) {
        const auto it = ctx.calibration->input_second_moment.find(t.name);
        if (it != ctx.calibration->input_second_moment.end() && it->second.trace() > 0) C = &it->second;
      }
      // One SVD at the profile's largest applicable rank serves every low-rank form, as the
      // profile took it (a partial SVD's leading vectors depend on the rank asked for).
      int svd_rank = 0;
      for (size_t fi = 0; fi < p.fidelities.size(); ++fi)
        if (const auto lr = parse_lowrank_fidelity(p.fidelities[fi]); lr && t.costs[fi].available) svd_rank = std::max(svd_rank, lr->rank);
      std::optional<TruncatedSvd> svd;
      std::optional<Whitening> whitening;
      PassReportRow row;
      row.tensor = t.name;
      row.shape = as_stored.shape;
      row.encoding_before = "f32";
      row.bytes_before = as_stored.numel() * 4;
      row.extra["forms"] = nlohmann::ordered_json::object();
      for (size_t fi : forms_[i]) {
        const FidelityCost& c = t.costs[fi];
        const std::vector<std::string> names = form_tensors(t.name, c.encoding);
        if (const auto lr = parse_lowrank_fidelity(c.encoding)) {
          if (!svd) {
            const Eigen::MatrixXd w =
                Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                    as_stored.data.data(), t.rows, t.cols).cast<double>();
            if (C) whitening = Whitening::from_second_moment(*C, kDefaultWhiteningDamping);
            svd = truncated_svd(whitening ? whitening->whiten(w) : w, svd_rank, SvdMethod::Auto);
          }
          HeldFactors f = hold_lowrank(*svd, whitening ? &*whitening : nullptr, C, *lr);
          forms[i].push_back(stored(names[0], std::move(f.a)));
          forms[i].push_back(stored(names[1], std::move(f.b)));
        } else {
          forms[i].push_back(stored(names[0], hold_quantized(as_stored, c.encoding, C)));
        }
        row.extra["forms"][c.encoding] = {{"bytes", c.bytes}, {"cost", c.cost},
                                          {"output_error", c.output_error ? nlohmann::ordered_json(*c.output_error) : nlohmann::ordered_json()}};
        row.bytes_after += c.bytes;
      }
      row.action = forms_[i].empty() ? "keep (no form of the chosen fidelities applies)"
                                     : "elastic " + std::to_string(forms_[i].size()) + " forms";
      row.encoding_after = forms_[i].empty() ? "f32" : "";
      if (forms_[i].empty()) row.bytes_after = row.bytes_before;
      row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rows.finish(i, std::move(row));
    }
  });

  // The forms replace the matrices, in profile order; each choice's bytes must be the profile's.
  for (size_t i = 0; i < n; ++i) {
    if (forms_[i].empty()) continue;
    const TensorSensitivity& t = p.tensors[i];
    std::string after = t.name;
    for (StoredTensor& s : forms[i]) {
      const std::string name = s.name;
      ctx.model.put(std::move(s), after);
      after = name;
    }
    ctx.model.remove(t.name);
  }
  const layout::ElasticMeta meta = elastic_meta(options_, forms_);
  for (const layout::ElasticItem& item : meta.items) {
    for (const layout::ElasticChoice& c : item.choices) {
      int64_t bytes = 0;
      for (const std::string& name : c.tensors) bytes += ctx.model.at(name).stored_bytes();
      if (bytes != c.bytes)
        throw Error("elastic pass: '" + item.name + "' at " + c.fidelity + " stores " + std::to_string(bytes) +
                    " bytes, the profile priced " + std::to_string(c.bytes), kExitInternal);
    }
  }
  ctx.model.file_metadata[layout::ElasticMeta::kKey] = meta.to_json();
  return rows.take();
}

}  // namespace rwkvlite
