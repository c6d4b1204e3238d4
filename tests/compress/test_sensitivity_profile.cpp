// The sensitivity profile on the tiny v5.2 model (vendored): KL costs are never negative and
// fall as the fidelity rises, the proxy reproduces its probe exactly, the result does not
// depend on the thread count, JSON round-trips and rejects broken input, and the mixed
// precision chosen from it fits its byte target.
#include <catch2/catch.hpp>

#include <cmath>

#include "compress/analysis/mixed_precision.h"
#include "compress/analysis/sensitivity_json.h"
#include "compress/analysis/sensitivity_profile.h"
#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/eval/text_source.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"
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
