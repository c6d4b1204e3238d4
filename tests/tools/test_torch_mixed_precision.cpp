// Mixed precision from the sensitivity profile, end to end on the trained reference models
// (.pth, so LibTorch): the shipped configs/mixed-5x-reference.toml (v5.2) and
// configs/v7/mixed-5x-reference-v7.toml (v7), each made by `rwkvlite plan
// models/<dir>/sensitivity-profile.json --memory-budget 20% --method gptq --emit-config`, hold at
// most a fifth of the dense FP16 weight bytes at run time, within 1% of dense bits per byte on
// the first 30,000 held-out bytes (whole held-out range: docs/mixed-precision.md).
// And the front doors of profile and plan: what they refuse, and that plans fit their budget.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using nlohmann::json;
using namespace rwkvlite::test;

const std::string kModel = "models/reference/rwkv5-ref-6x256.pth";
const std::string kProfile = "models/reference/sensitivity-profile.json";
constexpr int64_t kDenseFp16Bytes = 5265408 * 2;  // parameters x 2
constexpr int64_t kDenseFp16BytesV7 = 5354752 * 2;

json eval_report(const std::string& model, const std::string& path) {
  const Result e = run("rwkvlite", "--quiet eval '" + model + "' --max-bytes 30000 --json '" + path + "'");
  INFO("eval stderr: " << e.err);
  REQUIRE(e.exit_code == 0);
  return json::parse(read_all(path));
}

// Compresses `model` with `config` and checks 5x below dense FP16 within 1% bits per byte.
void check_five_times_within_one_percent(const std::string& model, const std::string& config, int64_t dense_fp16_bytes,
                                         const std::string& name) {
  const std::string dir = case_dir(name);
  const Result c = run("rwkvlite", "--quiet compress " + model + " -o '" + dir + "/m.rwkvlite' -c " + config);
  INFO("compress stderr: " << c.err);
  REQUIRE(c.exit_code == 0);
  const json dense = eval_report(model, dir + "/dense.json");
  const json mixed = eval_report(dir + "/m.rwkvlite", dir + "/mixed.json");
  REQUIRE(dense["peak_resident_weight_bytes"].get<int64_t>() == dense_fp16_bytes * 2);  // FP32 as read
  const int64_t resident = mixed["peak_resident_weight_bytes"].get<int64_t>();
  const double dense_bpb = dense["bits_per_byte"].get<double>(), mixed_bpb = mixed["bits_per_byte"].get<double>();
  INFO("resident " << resident << " bytes (" << double(dense_fp16_bytes) / resident << "x below FP16), bits/byte "
                   << mixed_bpb << " vs dense " << dense_bpb);
  CHECK(resident * 5 <= dense_fp16_bytes);
  CHECK(mixed_bpb <= dense_bpb * 1.01);
}

}  // namespace

TEST_CASE("configs/mixed-5x-reference.toml: 5x below dense FP16 within 1% bits per byte", "[mixed]") {
  check_five_times_within_one_percent(kModel, "configs/mixed-5x-reference.toml", kDenseFp16Bytes, "mixed-5x");
}

TEST_CASE("configs/v7/mixed-5x-reference-v7.toml: 5x below dense FP16 within 1% bits per byte on v7", "[mixed]") {
  check_five_times_within_one_percent("models/reference-v7/rwkv7-ref-6x256.pth", "configs/v7/mixed-5x-reference-v7.toml",
                                      kDenseFp16BytesV7, "mixed-5x-v7");
}

TEST_CASE("rwkvlite plan fits its budget and says when it cannot", "[mixed]") {
  const Result r = run("rwkvlite", "plan " + kProfile + " --memory-budget 25% --json -");
  const json j = parse_stdout(r);
  CHECK(r.exit_code == 0);
  CHECK(j["weight_bytes"].get<int64_t>() <= kDenseFp16Bytes / 4);
  CHECK(j["feasible"] == true);
  int64_t sum = j["fixed_bytes"].get<int64_t>();
  for (const auto& t : j["tensors"]) sum += t["bytes"].get<int64_t>();
  CHECK(sum == j["weight_bytes"].get<int64_t>());

  const Result loss = run("rwkvlite", "plan " + kProfile + " --max-bpb-increase 0.5 --json -");
  const json l = parse_stdout(loss);
  CHECK(l["predicted_increase_pct"].get<double>() <= 0.5);

  const std::string dir = case_dir("plan-fit");
  const Result tiny = run("rwkvlite", "plan " + kProfile + " --memory-budget 100000 --emit-config '" + dir + "/c.toml'");
  CHECK(tiny.exit_code == 2);
  CHECK_THAT(tiny.err, Catch::Contains("below the smallest encodings"));
  CHECK_FALSE(exists(dir + "/c.toml"));
  const Result neither = run("rwkvlite", "plan " + kProfile);
  CHECK(neither.exit_code == 2);
  const Result unit = run("rwkvlite", "plan " + kProfile + " --memory-budget 3parsecs");
  check_fails(unit, 2);
  CHECK_THAT(unit.err, Catch::Contains("unknown unit 'parsecs'"));
}

TEST_CASE("rwkvlite plan rejects a broken profile, profile refuses the held-out range", "[mixed]") {
  const std::string dir = case_dir("plan-bad");
  write_file(dir + "/not.json", "{\"schema\": \"rwkvlite.sensitivity/1\", \"mode\": 3}");
  const Result bad = run("rwkvlite", "plan '" + dir + "/not.json' --memory-budget 20%");
  check_fails(bad, 3);
  CHECK_THAT(bad.err, Catch::Contains("$.mode is not a string"));
  write_file(dir + "/garbage.json", "{{{");
  check_fails(run("rwkvlite", "plan '" + dir + "/garbage.json' --memory-budget 20%"), 2);

  const Result held_out = run("rwkvlite", "profile " + kModel + " --offset 999000 --max-bytes 2000");
  check_fails(held_out, 2);
  CHECK_THAT(held_out.err, Catch::Contains("held-out"));
}

TEST_CASE("rwkvlite compress --profile --target-bytes writes the planned bytes", "[mixed]") {
  const std::string dir = case_dir("compress-profile");
  const Result plan = run("rwkvlite", "plan " + kProfile + " --memory-budget 25% --json -");
  const int64_t planned = parse_stdout(plan)["weight_bytes"].get<int64_t>();
  const Result c = run("rwkvlite", "--quiet compress " + kModel + " -o '" + dir + "/m.rwkvlite' --profile " + kProfile +
                                       " --target-bytes 25% --heldout-bytes 2000");
  INFO("compress stderr: " << c.err);
  REQUIRE(c.exit_code == 0);
  const Result e = run("rwkvlite", "--quiet eval '" + dir + "/m.rwkvlite' --max-bytes 200 --json -");
  CHECK(parse_stdout(e)["peak_resident_weight_bytes"].get<int64_t>() == planned);
  const json report = json::parse(read_all(dir + "/m.rwkvlite.report.json"));
  // One quantize rule per profiled matrix (a low-rank one's rule covers both its factors),
  // after a lowrank pass per rank the plan chose.
  const json& passes = report["config"]["passes"];
  REQUIRE(passes.size() >= 1);
  CHECK(passes.back()["type"] == "quantize");
  CHECK(passes.back()["rules"].size() == 50);
  for (size_t i = 0; i + 1 < passes.size(); ++i) CHECK(passes[i]["type"] == "lowrank");
  // The held-out result beside the prediction.
  const json& mixed = report["mixed_precision"];
  CHECK(mixed["planned_weight_bytes"].get<int64_t>() == planned);
  CHECK(mixed["held_out"]["text_offset"] == 1000000);
  CHECK(mixed["held_out"]["text_bytes"] == 2000);
  CHECK(mixed["held_out"]["peak_resident_weight_bytes"].get<int64_t>() == planned);
  CHECK(mixed["held_out"]["bits_per_byte"].get<double>() > mixed["held_out"]["dense_bits_per_byte"].get<double>() * 0.99);

  check_fails(run("rwkvlite", "compress " + kModel + " -o '" + dir + "/x.rwkvlite' --profile " + kProfile), 2);
  check_fails(run("rwkvlite", "compress " + kModel + " -o '" + dir + "/x.rwkvlite' --target-bytes 20%"), 2);
  check_fails(run("rwkvlite", "compress " + kModel + " -o '" + dir + "/x.rwkvlite' -c configs/int8.toml --profile " +
                                  kProfile + " --target-bytes 20%"),
              2);
  const Result small = run("rwkvlite", "compress " + kModel + " -o '" + dir + "/x.rwkvlite' --profile " + kProfile +
                                           " --target-bytes 1MB");
  check_fails(small, 2);
  CHECK_THAT(small.err, Catch::Contains("below the smallest encodings"));
  CHECK_FALSE(exists(dir + "/x.rwkvlite"));
}

TEST_CASE("rwkvlite profile --method gptq and low-rank fidelities, planned into configs of the same method", "[mixed]") {
  const std::string dir = case_dir("profile-gptq");
  const std::string tiny = "third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin";
  const Result r = run("rwkvlite", "--quiet profile " + tiny +
                                       " --max-bytes 100 --method gptq --fidelities i4g64,i8,lr8:i8 --probe i4g64 --json '" + dir +
                                       "/p.json'");
  INFO("profile stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const json p = json::parse(read_all(dir + "/p.json"));
  CHECK(p["method"] == "gptq");
  CHECK(p["moments_calibration"]["offset"] == 0);
  CHECK(p["moments_calibration"]["bytes"] == 200000);
  int with_moment = 0, lowrank = 0;
  for (const auto& t : p["tensors"]) {
    with_moment += t["costs"][0]["output_error"].is_null() ? 0 : 1;
    lowrank += t["costs"][2]["available"].get<bool>() ? 1 : 0;
  }
  CHECK(with_moment == 7 * 12);  // att receptance/key/value/gate/output and ffn receptance/key, 12 layers
  CHECK(lowrank == 8 * 12);      // every block projection; not the embedding or the head

  // The plan's config quantizes as the profile measured, unless told otherwise (with a warning).
  const Result same = run("rwkvlite", "plan '" + dir + "/p.json' --memory-budget 30% --emit-config '" + dir + "/c.toml'");
  REQUIRE(same.exit_code == 0);
  CHECK_THAT(same.err, !Catch::Contains("warn"));
  const std::string toml = read_all(dir + "/c.toml");
  CHECK_THAT(toml, Catch::Contains("[calibration]") && Catch::Contains("method = \"gptq\"") &&
                       Catch::Contains("--method gptq"));
  const Result other = run("rwkvlite", "plan '" + dir + "/p.json' --memory-budget 30% --method rtn --json -");
  CHECK(other.exit_code == 0);
  CHECK_THAT(other.err, Catch::Contains("measured with gptq and the config will use rtn: predictions are optimistic"));

  const Result bad = run("rwkvlite", "profile " + tiny + " --max-bytes 100 --fidelities i8,lr0:i8 --probe i8");
  check_fails(bad, 2);
  CHECK_THAT(bad.err, Catch::Contains("low-rank fidelity 'lr0:i8'"));
}
