// The sensitivity profile on the tiny v5.2 model (vendored): KL costs are never negative and
// fall as the fidelity rises, the proxy reproduces its probe exactly, the result does not
// depend on the thread count, JSON round-trips and rejects broken input, the mixed precision
// chosen from it fits its byte target, and a low-rank fidelity's cost is what the file written
// from the emitted config delivers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "compress/analysis/mixed_precision.h"
#include "compress/analysis/sensitivity_json.h"
#include "compress/analysis/sensitivity_profile.h"
#include "compress/algo/error_aware_quant.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/pipeline.h"
#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/text_metrics.h"
#include "runtime/eval/text_source.h"
#include "runtime/format/codec.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"
#include "runtime/store/compact_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

ProfileText calibration_bytes(size_t n) {
  const std::string text = read_text_range(bundled_text_path(), 0, n);
  ProfileText t;
  for (unsigned char c : text) {
    t.tokens.push_back(c);
    t.token_bytes.push_back(1);
  }
  return t;
}

const Model& tiny_v52() {
  static const Model m = load_model(tiny_model_path("5v2-730K", "FP32"));
  return m;
}

SensitivityOptions direct_options(int threads) {
  SensitivityOptions o;
  o.fidelities = {"i2g64", "i4g64", "i8", "f16"};
  o.direct = true;
  o.threads = threads;
  return o;
}

// One direct profile shared by the cases that only read it (each costs 393 evaluations).
const SensitivityProfile& direct_profile() {
  static const SensitivityProfile p = profile_sensitivity(tiny_v52(), calibration_bytes(250), direct_options(2));
  return p;
}

}  // namespace

TEST_CASE("direct profile of the tiny v5.2 model: KL costs are non-negative and fall with fidelity") {
  const SensitivityProfile& p = direct_profile();
  CHECK(p.mode == "direct");
  CHECK(p.tokens_scored == 249);
  CHECK(p.evaluations == 1 + static_cast<int64_t>(p.tensors.size()) * 4);
  // Every projection of the 12 layers (5 time-mix + 3 channel-mix) plus emb and head.
  REQUIRE(p.tensors.size() == 12 * 8 + 2);
  CHECK(p.fixed_bytes + p.profiled_parameters * 4 == tiny_v52().parameter_count() * 4);
  CHECK(p.dense_fp16_bytes == tiny_v52().parameter_count() * 2);
  for (const auto& t : p.tensors) {
    INFO(t.name);
    for (const auto& c : t.costs) {
      CHECK(c.measured);
      CHECK(c.cost >= 0);
      CHECK(c.bytes == format::encoded_tensor_bytes(c.encoding, t.rows, t.cols));
    }
    // i2 costs more than i8, which costs more than f16 (whose error is ~1e-4 relative).
    CHECK(t.costs[0].cost > t.costs[2].cost);
    CHECK(t.costs[2].cost >= t.costs[3].cost);
    CHECK(t.costs[3].cost < 1e-5);
  }
}

TEST_CASE("the profile does not depend on the thread count") {
  const ProfileText text = calibration_bytes(150);
  SensitivityOptions o = direct_options(1);
  o.fidelities = {"i2g64", "i8"};
  const auto one = profile_to_json(profile_sensitivity(tiny_v52(), text, o));
  o.threads = 2;
  const auto two = profile_to_json(profile_sensitivity(tiny_v52(), text, o));
  auto without_time = [](nlohmann::ordered_json j) {
    j.erase("seconds");
    return j.dump();
  };
  CHECK(without_time(one) == without_time(two));
}

TEST_CASE("proxy mode: the probe is measured, the rest scale by squared error, validation ranks them") {
  SensitivityOptions o;
  o.fidelities = {"i2g64", "i3g64", "i8"};
  o.probe = "i2g64";
  o.validate_proxy = true;
  const SensitivityProfile p = profile_sensitivity(tiny_v52(), calibration_bytes(200), o);
  CHECK(p.mode == "proxy+direct");
  REQUIRE(p.proxy_spearman_all.has_value());
  CHECK(*p.proxy_spearman_all > 0.5);  // measured 0.970 on these 200 bytes
  for (const auto& t : p.tensors) {
    CHECK(*t.costs[0].proxy_cost == *t.costs[0].direct_cost);
    const double ratio = t.costs[1].relative_error / t.costs[0].relative_error;
    CHECK(*t.costs[1].proxy_cost == Approx(*t.costs[0].direct_cost * ratio * ratio).epsilon(1e-12));
  }
}

TEST_CASE("profile JSON round-trips and rejects broken documents with one message") {
  SensitivityOptions o;
  o.fidelities = {"i4g64", "i8"};
  o.probe = "i4g64";
  const SensitivityProfile p = profile_sensitivity(tiny_v52(), calibration_bytes(200), o);
  const auto j = profile_to_json(p);
  CHECK(profile_to_json(profile_from_json(j)).dump() == j.dump());

  auto broken = j;
  broken["schema"] = "something/2";
  CHECK_THROWS_WITH(profile_from_json(broken), Catch::Contains("schema"));
  broken = j;
  broken["tensors"][0]["costs"].erase(1);
  CHECK_THROWS_WITH(profile_from_json(broken), Catch::Contains("$.tensors[0].costs has 1 entries for 2 fidelities"));
  broken = j;
  broken["tensors"][1]["costs"][0]["bytes"] = -5;
  CHECK_THROWS_WITH(profile_from_json(broken), Catch::Contains("$.tensors[1].costs[0].bytes"));
  broken = j;
  broken["tensors"][0]["costs"][1]["encoding"] = "i4g64";
  CHECK_THROWS_AS(profile_from_json(broken), InputError);
  CHECK_THROWS_AS(profile_from_json(nlohmann::ordered_json::array()), InputError);
}

TEST_CASE("bad profile options are usage errors") {
  SensitivityOptions o;
  o.fidelities = {"i4g64", "i5"};
  CHECK_THROWS_WITH(profile_sensitivity(tiny_v52(), calibration_bytes(50), o), Catch::Contains("unknown fidelity 'i5'"));
  o.fidelities = {"i8", "f16"};
  o.probe = "i2g64";
  CHECK_THROWS_WITH(profile_sensitivity(tiny_v52(), calibration_bytes(50), o), Catch::Contains("probe"));
  for (const char* bad : {"lr", "lr:i8", "lr0:i8", "lr8", "lr8:i5", "lr1234567:i8", "lrx:i8"}) {
    o.fidelities = {"i8", bad};
    o.probe = "i8";
    CHECK_THROWS_WITH(profile_sensitivity(tiny_v52(), calibration_bytes(50), o), Catch::Contains("low-rank fidelity"));
  }
  o.fidelities = {"i8", "lr8:i8"};
  o.probe = "lr8:i8";
  CHECK_THROWS_WITH(profile_sensitivity(tiny_v52(), calibration_bytes(50), o), Catch::Contains("is low-rank"));
  o.direct = true;
  CHECK_THROWS_AS(profile_sensitivity(tiny_v52(), calibration_bytes(1), o), UsageError);
}

TEST_CASE("mixed precision from the profile fits its byte target and spends it where KL falls most") {
  const SensitivityProfile& p = direct_profile();
  int64_t smallest = p.fixed_bytes, largest = p.fixed_bytes;
  for (const auto& t : p.tensors) {
    smallest += t.costs[0].bytes;  // i2g64
    largest += t.costs[3].bytes;   // f16
  }
  const int64_t target = (smallest + largest) / 2;
  const MixedPrecisionPlan m = plan_for_bytes(p, target);
  CHECK(m.feasible);
  CHECK(m.weight_bytes <= target);
  CHECK(m.weight_bytes > smallest);
  int64_t sum = p.fixed_bytes;
  double cost = 0;
  for (const auto& c : m.tensors) sum += c.bytes, cost += c.predicted_delta_bits_per_byte;
  CHECK(sum == m.weight_bytes);
  CHECK(cost == Approx(m.predicted_delta_bits_per_byte));
  // Cheaper in predicted cost than the uniform i4g64 assignment of no more bytes.
  int64_t uniform_bytes = p.fixed_bytes;
  double uniform_cost = 0;
  for (const auto& t : p.tensors) uniform_bytes += t.costs[1].bytes, uniform_cost += t.costs[1].cost;
  const MixedPrecisionPlan at_uniform = plan_for_bytes(p, uniform_bytes);
  CHECK(at_uniform.predicted_delta_bits_per_byte <= uniform_cost * (1 + 1e-12));

  CHECK_FALSE(plan_for_bytes(p, smallest - 1).feasible);
  const MixedPrecisionPlan within = plan_for_loss(p, 1.0);
  CHECK(within.predicted_delta_bits_per_byte <= p.base_bits_per_byte * 0.01);
  const std::string toml = mixed_precision_config_toml(within, {"test"});
  CHECK(toml.find("targets = [\"head.weight\"]") != std::string::npos);
}

TEST_CASE("the v7 profile costs its LoRA factors as the file stores them, transposed") {
  const std::string path = tiny_model_path("7v0-834K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model m = load_model(path);
  SensitivityOptions o;
  o.fidelities = {"i2g32", "i8", "f16"};
  o.probe = "i2g32";
  const SensitivityProfile p = profile_sensitivity(m, calibration_bytes(100), o);
  CHECK(p.fixed_bytes + p.profiled_parameters * 4 == m.parameter_count() * 4);
  int64_t factors = 0;
  for (const auto& t : p.tensors) {
    if (!layout::is_lora_factor(t.name)) continue;
    ++factors;
    INFO(t.name);
    const Tensor& canonical = m.at(t.name);
    CHECK(t.rows == canonical.cols());
    CHECK(t.cols == canonical.rows());
    CHECK(t.costs[0].cost > t.costs[1].cost);
    CHECK(t.costs[1].bytes == format::encoded_tensor_bytes("i8", t.rows, t.cols));
  }
  CHECK(factors == 8 * m.dims.n_layer - 2);  // layer 0 has no value-residual LoRA
}

namespace {

// KL(dense || file) in bits per byte on `text`, the profile's cost measure, of a compact file.
double file_kl_bits_per_byte(const std::string& path, const Model& dense_model, const ProfileText& text) {
  CompactEngine ce = load_compact_engine(path, 2);
  auto compressed = make_engine_predictor(std::move(ce.engine));
  auto dense = make_dense_predictor(dense_model, 2);
  const TextMetrics m = evaluate_text(*compressed, text.tokens, text.token_bytes, dense.get());
  return m.kl_mean * static_cast<double>(m.tokens_scored) / std::log(2.0) / static_cast<double>(m.bytes_scored);
}

// Compresses the tiny v5.2 model with the config a plan holding only `tensor` at `encoding` emits.
std::string compress_one(const std::string& tensor, const FidelityCost& cost, bool gptq, const std::string& tag) {
  MixedPrecisionPlan one;
  one.tensors = {{tensor, cost.encoding, cost.bytes, cost.cost}};
  const std::string cfg = scratch_dir() + "/" + tag + ".toml";
  write_file_atomically(cfg, mixed_precision_config_toml(one, {tag}, gptq));
  CompressOptions c;
  c.model_path = tiny_model_path("5v2-730K", "FP32");
  c.config_path = cfg;
  c.output_path = scratch_dir() + "/" + tag + ".rwkvlite";
  c.force = true;
  c.threads = 2;
  REQUIRE(run_compress(c, builtin_passes()) == 0);
  return c.output_path;
}

}  // namespace

TEST_CASE("low-rank fidelities: block projections only, and the cost is what the emitted config's file delivers",
          "[lowrank]") {
  const Model& model = tiny_v52();
  const ProfileText text = calibration_bytes(120);
  SensitivityOptions o;
  o.fidelities = {"i4g64", "f16", "lr8:i8", "lr16:f16"};
  o.probe = "i4g64";
  const SensitivityProfile p = profile_sensitivity(model, text, o);
  int64_t block_projections = 0, rank16_cheaper = 0;
  for (const auto& t : p.tensors) {
    INFO(t.name);
    const bool block_projection = layout::is_projection_weight(t.name) && layout::layer_index(t.name).has_value();
    CHECK(t.costs[2].available == block_projection);
    CHECK(t.costs[3].available == block_projection);
    CHECK(t.costs[0].available);
    if (!block_projection) continue;
    ++block_projections;
    for (int k : {2, 3}) {
      const FidelityCost& c = t.costs[static_cast<size_t>(k)];
      const int rank = k == 2 ? 8 : 16;
      const std::string factor = k == 2 ? "i8" : "f16";
      CHECK(c.measured);  // evaluated even in proxy mode
      CHECK_FALSE(c.proxy_cost);
      CHECK(c.cost >= 0);
      CHECK(c.bytes == format::encoded_tensor_bytes(factor, rank, t.cols) + format::encoded_tensor_bytes(factor, t.rows, rank));
      CHECK(c.relative_error > t.costs[1].relative_error);  // a rank-8/16 matrix is further off than f16
    }
    rank16_cheaper += t.costs[3].cost < t.costs[2].cost ? 1 : 0;
  }
  CHECK(block_projections == 8 * model.dims.n_layer);  // att receptance/key/value/gate/output, ffn key/value/receptance
  CHECK(rank16_cheaper * 10 >= block_projections * 9);  // more rank, less KL, for nearly every matrix

  // Read back with the same availability; unavailable entries keep no numbers.
  const SensitivityProfile back = profile_from_json(profile_to_json(p));
  for (size_t i = 0; i < p.tensors.size(); ++i)
    for (size_t k = 0; k < p.fidelities.size(); ++k) CHECK(back.tensors[i].costs[k].available == p.tensors[i].costs[k].available);

  // A plan with one matrix at lr16:f16 becomes a lowrank pass and a quantize rule for its
  // factors; the file that config writes scores the profile's KL on the same text.
  const std::string target = "blocks.1.att.key.weight";
  const auto it = std::find_if(p.tensors.begin(), p.tensors.end(), [&](const auto& t) { return t.name == target; });
  REQUIRE(it != p.tensors.end());
  const std::string toml = mixed_precision_config_toml({.tensors = {{target, "lr16:f16", 0, 0}}}, {"one matrix"});
  INFO(toml);
  CHECK(toml.find("type = \"lowrank\"\ntargets = [\"blocks.1.att.key.weight\"]\nrank = 16\n") != std::string::npos);
  CHECK(toml.find("targets = [\"blocks.1.att.key.lr_a\", \"blocks.1.att.key.lr_b\"]\nencoding = \"f16\"") !=
        std::string::npos);
  CHECK(file_kl_bits_per_byte(compress_one(target, it->costs[3], false, "one-lowrank"), model, text) ==
        Approx(*it->costs[3].direct_cost).epsilon(1e-3));
}


TEST_CASE("gptq profile: matrices held as a gptq config holds them, proxied by output error", "[lowrank][gptq]") {
  const Model& model = tiny_v52();
  CalibrationRequest request;
  request.text = read_calibration_text(mixed_precision_calibration()).text;
  for (const auto& [name, t] : model.tensors)
    if (layout::is_calibrated_projection(name)) request.projections.insert(name);
  request.max_samples = 1;
  request.threads = 2;
  const CalibrationData calibration = run_calibration(model, request);

  const ProfileText text = calibration_bytes(120);
  SensitivityOptions o;
  o.fidelities = {"i3g64", "i8", "lr16:i8"};
  o.probe = "i3g64";
  o.input_moments = &calibration.input_second_moment;
  const SensitivityProfile p = profile_sensitivity(model, text, o);
  CHECK(p.method == "gptq");
  int64_t calibrated = 0, gptq_lower = 0;
  for (const auto& t : p.tensors) {
    INFO(t.name);
    const bool has_moment = calibration.input_second_moment.count(t.name) > 0;
    CHECK(t.costs[0].output_error.has_value() == has_moment);
    if (!has_moment) continue;
    ++calibrated;
    // GPTQ's output error is below round to nearest's (measured through the same moment).
    const Tensor& w = model.at(t.name);
    const std::vector<float> rtn = format::round_trip_rows(w.data.data(), w.rows(), w.cols(), format::parse_encoding("i3g64"));
    const double rtn_error = *input_weighted_error(w.data, rtn, w.rows(), w.cols(), calibration.input_second_moment.at(t.name));
    gptq_lower += *t.costs[0].output_error < rtn_error ? 1 : 0;
    // The proxy scales the probe by squared output errors.
    const double ratio = *t.costs[1].output_error / *t.costs[0].output_error;
    CHECK(*t.costs[1].proxy_cost == Approx(*t.costs[0].direct_cost * ratio * ratio));
  }
  CHECK(calibrated == 7 * model.dims.n_layer);  // att r/k/v/g/o, ffn r/k
  CHECK(gptq_lower == calibrated);
  CHECK(profile_from_json(profile_to_json(p)).method == "gptq");

  // The gptq config of a one-matrix plan writes a file whose KL is the profile's: GPTQ i3 from
  // the same moments, and whitened rank-16 factors with GPTQ int8.
  const std::string target = "blocks.2.att.receptance.weight";
  const auto it = std::find_if(p.tensors.begin(), p.tensors.end(), [&](const auto& t) { return t.name == target; });
  REQUIRE(it != p.tensors.end());
  CHECK(file_kl_bits_per_byte(compress_one(target, it->costs[0], true, "gptq-i3"), model, text) ==
        Approx(*it->costs[0].direct_cost).epsilon(1e-3));
  CHECK(file_kl_bits_per_byte(compress_one(target, it->costs[2], true, "gptq-lr16"), model, text) ==
        Approx(*it->costs[2].direct_cost).epsilon(1e-3));
}
