// rwkvlite sweep --backend slurm on a real Slurm cluster (scripts/setup_slurm.sh starts a
// one-node one on localhost; scripts/test.sh does so before the tests): the job array's results
// equal a local run's except timings, per-task logs exist, and --collect gathers the same table.
// Skipped, with the reason, where no cluster answers.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>

#include "tests/support/cli_runner.h"

namespace {

using namespace rwkvlite::test;
namespace fs = std::filesystem;

// Empty when a cluster answers, else why not.
std::string why_no_slurm() {
  if (std::system("command -v sbatch >/dev/null 2>&1") != 0) return "sbatch is not on PATH";
  if (std::system("scontrol ping >/dev/null 2>&1") != 0) return "'scontrol ping' finds no slurmctld";
  return "";
}

// results.csv lines without the columns that differ between identical runs.
std::vector<std::string> csv_without_timings(const std::string& path) {
  std::istringstream in(read_all(path));
  std::string line;
  std::vector<std::string> out;
  std::vector<bool> keep;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string f;
    std::istringstream s(line);
    while (std::getline(s, f, ',')) fields.push_back(f);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    if (keep.empty()) {
      for (const auto& name : fields) {
        keep.push_back(name != "tokens_per_second" && name != "compress_seconds" && name != "eval_seconds" &&
                       name != "calibration_cache");
      }
    }
    std::string kept;
    for (size_t i = 0; i < fields.size() && i < keep.size(); ++i) {
      if (keep[i]) kept += fields[i] + ",";
    }
    out.push_back(kept);
  }
  return out;
}

}  // namespace

TEST_CASE("A sweep on Slurm gives the local run's results, with per-task logs", "[tools][sweep][slurm]") {
  const std::string why = why_no_slurm();
  if (!why.empty()) {
    WARN("skipped: no Slurm cluster (" << why << "); scripts/setup_slurm.sh starts one on localhost");
    return;
  }
  const std::string dir = case_dir("sweep_slurm");
  const std::string sweep = dir + "/sweep.toml";
  write_file(sweep, "base_config = \"" + source_dir() + "/configs/lowrank-aware.toml\"\n" +
                        "models = [\"" + source_dir() + "/third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin\"]\n" +
                        "[eval]\nbytes = 1000\n[sweep]\n\"pass.0.divisor\" = [2, 8]\n\"calibration.bytes\" = [2000]\n"
                        "[[baseline]]\nname = \"dense-fp32\"\n");
  const Result local = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/local' --threads 1");
  REQUIRE(local.exit_code == 0);
  const Result slurm = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/slurm' --threads 1 --backend slurm");
  INFO(slurm.err);
  REQUIRE(slurm.exit_code == 0);
  CHECK(slurm.err.find("job array") != std::string::npos);
  const auto expected = csv_without_timings(dir + "/local/results.csv");
  REQUIRE(expected.size() == 4);
  CHECK(csv_without_timings(dir + "/slurm/results.csv") == expected);
  int logs = 0;
  for (const auto& e : fs::directory_iterator(dir + "/slurm/logs")) logs += e.path().extension() == ".log";
  CHECK(logs == 3);

  const Result collect = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/slurm' --collect");
  CHECK(collect.exit_code == 0);
  CHECK(csv_without_timings(dir + "/slurm/results.csv") == expected);
}
