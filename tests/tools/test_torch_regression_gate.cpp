// The CI regression gate on the trained reference model (.pth, so it needs LibTorch): each
// shipped config is compressed, evaluated on 8000 held-out bytes against the dense model, and
// `rwkvlite check`ed against its committed baseline (configs/regression/baselines/reference/)
// with configs/regression/reference.toml, exactly as scripts/update_baselines.sh made the
// baseline: configs/default.toml as shipped, the others with calibration.bytes=20000.
// Select them with `ctest -R 'regression gate'` (Catch tag [gate]). A failure prints the check
// table and the blame (the fresh compress report is found beside the fresh model).
//
// CI runs a representative subset, to stay within a few minutes on 2 cores: default (low-rank,
// int8, 4-bit groups; the full 200000-byte calibration), dense-fp16 (the FP16 figure the default
// is compared with), int8 and clustered-head (the two-level head at run time). The other
// configs take 45-180 s each (sparse-ffn and all-techniques train predictors); they are hidden
// cases, run on demand with `build/tests/test_torch_regression_gate '[gate-full]'`.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using nlohmann::ordered_json;
using namespace rwkvlite::test;

const std::string kModel = "models/reference/rwkv5-ref-6x256.pth";
const std::string kBaselines = "configs/regression/baselines/reference/";

// Compresses, evaluates and checks `config`; returns the fresh evaluation report.
ordered_json gate(const std::string& config) {
  const auto start = std::chrono::steady_clock::now();
  const std::string out = scratch_dir() + "/" + config + ".rwkvlite";
  const std::string eval_json = scratch_dir() + "/" + config + ".eval.json";
  const std::string calibration = config == "default" ? "" : " --set calibration.bytes=20000";
  const Result c = run("rwkvlite", "--quiet compress " + kModel + " -o '" + out + "' -c configs/" + config +
                                                ".toml" + calibration);
  INFO("compress stderr: " << c.err);
  REQUIRE(c.exit_code == 0);
  const Result e = run("rwkvlite", "--quiet eval '" + out + "' --reference " + kModel +
                                                " --max-bytes 8000 --json '" + eval_json + "'");
  INFO("eval stderr: " << e.err);
  REQUIRE(e.exit_code == 0);
  const Result g = run("rwkvlite", "check '" + eval_json + "' --baseline " + kBaselines + config +
                                                ".eval.json --thresholds configs/regression/reference.toml" +
                                                " --baseline-compress-report " + kBaselines + config + ".compress.json");
  INFO("check stdout:\n" << g.out << "check stderr: " << g.err);
  CHECK(g.exit_code == 0);
  CHECK(g.out.find("check passed: 5 of 5 limits hold") != std::string::npos);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("regression gate %s: %.1f s\n%s", config.c_str(), seconds, g.out.c_str());
  return ordered_json::parse(read_all(eval_json));
}

}  // namespace

// Also the acceptance bounds of the default config (issue #5), on the fresh run: bits per byte
// within 2% of the dense model's, top-1 agreement above 0.9, and peak resident weight bytes at
// least 3x below dense FP16 (whose figure is gated, exactly, by the dense-fp16 case below).
TEST_CASE("regression gate: default (as shipped)", "[gate][torch]") {
  const ordered_json r = gate("default");
  const ordered_json fp16 = ordered_json::parse(read_all(source_dir() + "/" + kBaselines + "dense-fp16.eval.json"));
  CHECK(r["bits_per_byte"].get<double>() <= 1.02 * r["reference_bits_per_byte"].get<double>());
  CHECK(r["top1_agreement"].get<double>() > 0.9);
  CHECK(fp16["peak_resident_weight_bytes"].get<double>() / r["peak_resident_weight_bytes"].get<double>() >= 3.0);
}

TEST_CASE("regression gate: dense-fp16 (calibration.bytes=20000)", "[gate][torch]") { gate("dense-fp16"); }
TEST_CASE("regression gate: int8 (calibration.bytes=20000)", "[gate][torch]") { gate("int8"); }
TEST_CASE("regression gate: clustered-head (calibration.bytes=20000)", "[gate][torch]") { gate("clustered-head"); }

TEST_CASE("regression gate: dense-fp32 (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("dense-fp32"); }
TEST_CASE("regression gate: lowrank-svd (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("lowrank-svd"); }
TEST_CASE("regression gate: lowrank-aware (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("lowrank-aware"); }
TEST_CASE("regression gate: lowrank-int8 (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("lowrank-int8"); }
TEST_CASE("regression gate: sparse-ffn (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("sparse-ffn"); }
TEST_CASE("regression gate: lowrank-sparse-ffn (calibration.bytes=20000)", "[.][gate-full][torch]") {
  gate("lowrank-sparse-ffn");
}
TEST_CASE("regression gate: all-techniques (calibration.bytes=20000)", "[.][gate-full][torch]") { gate("all-techniques"); }
