// The compress log, as a person reads it: `rwkvlite compress` on the tiny v5.2 model with
// configs/default.toml (20000 calibration bytes) at --log-level info, stderr compared line by
// line with tests/tools/golden/compress-default-tiny-v5.2.log after masking what varies from
// run to run (clock times, durations, the checkout and scratch paths). A change to what the
// log says shows up here; regenerate the golden file on purpose with
// RWKVLITE_UPDATE_GOLDEN=1 ctest -R test_compress_log.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

using namespace rwkvlite::test;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); !from.empty() && at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// Clock times, durations and paths masked; everything else (names, shapes, sizes, metrics)
// is deterministic and kept.
std::string masked(std::string log) {
  log = replace_all(log, scratch_dir(), "<scratch>");
  log = replace_all(log, source_dir(), "<source>");
  log = std::regex_replace(log, std::regex(R"(\[\d\d:\d\d:\d\d\.\d{3}\])"), "[<time>]");
  log = std::regex_replace(log, std::regex(R"(\b\d+(\.\d+)? s\b)"), "<t> s");
  log = std::regex_replace(log, std::regex(R"(\b\d+(\.\d+)? (tokens|MiB)/s\b)"), "<rate>");
  return log;
}

}  // namespace

TEST_CASE("compress log of the default config on the tiny v5.2 model matches the golden log", "[tools][log]") {
  const std::string model = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model);
  const std::string out = scratch_dir() + "/default-tiny.rwkvlite";
  const std::string log_path = scratch_dir() + "/compress.log";
  const std::string cmd = "RWKVLITE_NO_PROGRESS=1 " + binary_dir() + "/bin/rwkvlite --log-level info compress " + model +
                          " -o " + out + " -c " + source_dir() + "/configs/default.toml" +
                          " --set calibration.bytes=20000 --threads 2 2> " + log_path;
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string actual = masked(read_text(log_path));
  const std::string golden_path = source_dir() + "/tests/tools/golden/compress-default-tiny-v5.2.log";
  if (std::getenv("RWKVLITE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary) << actual;
    WARN("wrote " << golden_path);
  }
  const std::string expected = read_text(golden_path);
  const std::vector<std::string> got = lines_of(actual), want = lines_of(expected);
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    INFO("line " << i + 1 << " (raw log in " << log_path << ")");
    REQUIRE(got[i] == want[i]);
  }
  CHECK(got.size() == want.size());
}
