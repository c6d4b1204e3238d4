// What `rwkvlite compress` measures about itself in OUT.report.json: per stage (loading,
// calibration, each pass, writing) the wall time and the peak resident memory, so a user sees
// where a run spends its time and which stage sets its memory peak.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using nlohmann::json;
using namespace rwkvlite::test;

TEST_CASE("the compress report times every stage and gives each stage's peak RSS", "[tools]") {
  const std::string dir = case_dir("compress-report-stages");
  const std::string out = dir + "/out.rwkvlite";
  const Result r = run("rwkvlite", "--log-level warn compress third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin -c "
                                   "configs/lowrank-int8.toml --set calibration.bytes=20000 -o '" + out + "' --force");
  REQUIRE(r.exit_code == 0);
  const json report = json::parse(std::ifstream(out + ".report.json"));
  const json& stages = report.at("stages");
  // Linux lets a process reset its own high-water mark, so each peak is the stage's own.
  CHECK(stages.at("peak_rss_per_stage") == true);
  std::vector<std::string> names;
  double seconds = 0;
  uint64_t largest_peak = 0;
  for (const json& s : stages.at("rows")) {
    names.push_back(s.at("stage"));
    CHECK(s.at("seconds").get<double>() >= 0);
    const uint64_t peak = s.at("peak_rss_bytes");
    CHECK(peak > 0);
    largest_peak = std::max(largest_peak, peak);
    seconds += s.at("seconds").get<double>();
  }
  const std::vector<std::string> expected = {"load", "calibration", "pass 1 lowrank", "pass 2 quantize", "write"};
  CHECK(names == expected);
  // The stages run one after another inside the run's total.
  CHECK(seconds <= report.at("seconds").get<double>());
  // The run's peak is the largest stage peak (or above it, by what the report itself takes).
  const uint64_t total_peak = report.at("peak_rss_bytes");
  CHECK(total_peak >= largest_peak);
  CHECK(total_peak < largest_peak + (64u << 20));
}

}  // namespace
