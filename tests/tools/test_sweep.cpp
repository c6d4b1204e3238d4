// rwkvlite sweep from outside, on the tiny v5.2 model with a calibrated low-rank config
// (no LibTorch needed): the results table, the shared calibration (one miss per model),
// resuming after SIGKILL without redoing finished runs, recorded failures, identical values
// from scratch, and validation before anything runs.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/cli_runner.h"

namespace {

using namespace rwkvlite::test;
namespace fs = std::filesystem;

const std::string kTinyModel = "third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin";

// A sweep over three low-rank divisors plus the dense baseline, small enough for seconds.
std::string sweep_file(const std::string& dir, const std::string& models, const std::string& extra = "") {
  const std::string path = dir + "/sweep.toml";
  write_file(path, "base_config = \"" + source_dir() + "/configs/lowrank-aware.toml\"\n" +
                       "models = [" + models + "]\n" +
                       "[eval]\nbytes = 1500\n"
                       "[sweep]\n\"pass.0.divisor\" = [2, 4, 8]\n\"calibration.bytes\" = [3000]\n" + extra +
                       "[[baseline]]\nname = \"dense-fp32\"\n");
  return path;
}

std::string model_path(const std::string& relative) { return '"' + source_dir() + "/" + relative + '"'; }

using Table = std::vector<std::map<std::string, std::string>>;

// results.csv as rows of column -> value (the test's values have no quotes or commas).
Table read_csv(const std::string& path) {
  std::istringstream in(read_all(path));
  std::string line;
  std::vector<std::string> header;
  Table rows;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string field;
    std::istringstream s(l);
    while (std::getline(s, field, ',')) out.push_back(field);
    if (!l.empty() && l.back() == ',') out.push_back("");
    return out;
  };
  std::getline(in, line);
  header = split(line);
  while (std::getline(in, line)) {
    const auto fields = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size(); ++i) row[header[i]] = i < fields.size() ? fields[i] : "";
    rows.push_back(row);
  }
  return rows;
}

// The columns that legitimately differ between two runs of the same sweep.
Table without_timings(Table t) {
  for (auto& row : t) {
    for (const char* k : {"tokens_per_second", "compress_seconds", "eval_seconds", "calibration_cache"}) row.erase(k);
  }
  return t;
}

int count(const Table& t, const std::string& column, const std::string& value) {
  int n = 0;
  for (const auto& row : t) n += row.at(column) == value;
  return n;
}

}  // namespace

TEST_CASE("A sweep writes one row per run, calibrates each model once, and reruns nothing finished", "[tools][sweep]") {
  const std::string dir = case_dir("sweep_basic");
  const std::string sweep = sweep_file(dir, model_path(kTinyModel));
  const Result r = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/out' --jobs 2 --threads 1");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const Table t = read_csv(dir + "/out/results.csv");
  REQUIRE(t.size() == 4);  // the baseline, then divisors 2, 4, 8
  CHECK(t[0].at("baseline") == "dense-fp32");
  CHECK(t[1].at("pass.0.divisor") == "2");
  CHECK(t[3].at("params") == "calibration.bytes=3000;pass.0.divisor=8");  // [sweep] keys in sorted order
  CHECK(count(t, "status", "ok") == 4);
  // Three compressing runs share one calibration: exactly one computed it.
  CHECK(count(t, "calibration_cache", "miss") == 1);
  CHECK(count(t, "calibration_cache", "hit") == 2);
  CHECK(t[0].at("calibration_cache") == "none");
  // The dense baseline scores exactly the dense bits per byte; smaller ranks cost accuracy and save bytes.
  CHECK(t[0].at("bits_per_byte") == t[0].at("dense_bits_per_byte"));
  CHECK(std::stod(t[0].at("bpb_increase_pct")) == 0.0);
  // (Divisor 2 leaves these 256 x 256 matrices dense: its factors would be no smaller.)
  CHECK(std::stoll(t[3].at("peak_resident_weight_bytes")) < std::stoll(t[2].at("peak_resident_weight_bytes")));
  CHECK(std::stoll(t[2].at("peak_resident_weight_bytes")) < std::stoll(t[1].at("peak_resident_weight_bytes")));
  CHECK(std::stoll(t[1].at("peak_resident_weight_bytes")) == std::stoll(t[0].at("peak_resident_weight_bytes")));
  CHECK(std::stoll(t[0].at("dense_fp16_bytes")) * 2 == std::stoll(t[0].at("peak_resident_weight_bytes")));
  for (const auto& row : t) {
    const std::string run_dir = dir + "/out/runs/" + row.at("run_id");
    CHECK(exists(run_dir + "/result.json"));
    if (row.at("baseline").empty()) {
      CHECK(exists(run_dir + "/config.toml"));
      CHECK(fs::file_size(run_dir + "/model.rwkvlite") == std::stoull(row.at("file_bytes")));
    }
  }
  const json summary = json::parse(read_all(dir + "/out/summary.json"));
  CHECK(summary["ok"] == 4);
  CHECK(summary["models"][0]["pareto_front"].size() >= 2);

  // The saved config reproduces the run: rwkvlite compress with it writes the same bytes.
  const std::string id = t[2].at("run_id");
  const Result again = run("rwkvlite", "compress " + kTinyModel + " -o '" + dir + "/again.rwkvlite' -c '" + dir +
                                           "/out/runs/" + id + "/config.toml' -q");
  REQUIRE(again.exit_code == 0);
  CHECK(read_all(dir + "/again.rwkvlite") == read_all(dir + "/out/runs/" + id + "/model.rwkvlite"));

  // A rerun finds every run finished and redoes none of them.
  const auto before = fs::last_write_time(dir + "/out/runs/" + id + "/result.json");
  const Result rerun = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/out'");
  CHECK(rerun.exit_code == 0);
  CHECK(rerun.err.find("4 runs finished before (0 of them failed; --retry-failed redoes those), 0 to run") !=
        std::string::npos);
  CHECK(fs::last_write_time(dir + "/out/runs/" + id + "/result.json") == before);
  CHECK(read_csv(dir + "/out/results.csv") == t);

  // From scratch in another folder: the same values except timings.
  const Result fresh = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/fresh' --threads 2");
  REQUIRE(fresh.exit_code == 0);
  CHECK(without_timings(read_csv(dir + "/fresh/results.csv")) == without_timings(t));
}

TEST_CASE("A sweep killed with SIGKILL resumes without redoing the runs that finished", "[tools][sweep]") {
  const std::string dir = case_dir("sweep_kill");
  const std::string sweep = sweep_file(dir, model_path(kTinyModel));
  const std::string out = dir + "/out";
  // Start the sweep in the background, kill it (and so its workers) once a run has finished.
  const std::string cmd = "cd '" + source_dir() + "' && ('" + binary_dir() + "/bin/rwkvlite' sweep '" + sweep +
                          "' -o '" + out + "' --jobs 1 --threads 1 -q 2>/dev/null & pid=$!; "
                          "for i in $(seq 1 600); do n=$(ls '" + out + "'/runs/*/result.json 2>/dev/null | wc -l); "
                          "[ \"$n\" -ge 2 ] && break; sleep 0.05; done; kill -9 $pid; wait $pid 2>/dev/null; true)";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the killed workers exit
  std::map<std::string, fs::file_time_type> finished;
  for (const auto& e : fs::directory_iterator(out + "/runs")) {
    if (exists(e.path().string() + "/result.json")) finished[e.path().string()] = fs::last_write_time(e.path() / "result.json");
  }
  REQUIRE(finished.size() >= 2);
  REQUIRE(finished.size() < 4);

  const Result resumed = run("rwkvlite", "sweep '" + sweep + "' -o '" + out + "' --threads 1");
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.err.find(std::to_string(finished.size()) + " runs finished before") != std::string::npos);
  CHECK(resumed.err.find(std::to_string(4 - finished.size()) + " to run") != std::string::npos);
  for (const auto& [run_dir, t] : finished) CHECK(fs::last_write_time(run_dir + "/result.json") == t);
  const Table t = read_csv(out + "/results.csv");
  CHECK(count(t, "status", "ok") == 4);
  // The killed sweep never finished its calibration-sharing bookkeeping wrong: one miss in all.
  CHECK(count(t, "calibration_cache", "miss") == 1);
}

TEST_CASE("A failed run is recorded with its error, the others go on, and the exit code is 6", "[tools][sweep]") {
  const std::string dir = case_dir("sweep_failure");
  const std::string bad = dir + "/truncated.bin";
  const std::string good = read_all(source_dir() + "/" + kTinyModel);
  write_file(bad, good.substr(0, good.size() / 2));
  const std::string sweep = sweep_file(dir, model_path(kTinyModel) + ", \"" + bad + "\"");
  const Result r = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/out' --threads 1");
  CHECK(r.exit_code == 6);
  const Table t = read_csv(dir + "/out/results.csv");
  REQUIRE(t.size() == 8);
  CHECK(count(t, "status", "ok") == 4);
  CHECK(count(t, "status", "failed") == 4);
  for (const auto& row : t) {
    if (row.at("model") == bad) CHECK(row.at("error").find("truncated.bin") != std::string::npos);
  }
  const json summary = json::parse(read_all(dir + "/out/summary.json"));
  CHECK(summary["failed"] == 4);
  CHECK(summary["failures"].size() == 4);
}

TEST_CASE("A sweep whose settings the config rejects fails before any run, naming the sweep file's line",
          "[tools][sweep]") {
  const std::string dir = case_dir("sweep_invalid");
  const std::string sweep = sweep_file(dir, model_path(kTinyModel), "[[run]]\n\"pass.0.divisr\" = 3\n");
  const Result r = run("rwkvlite", "sweep '" + sweep + "' -o '" + dir + "/out'");
  check_fails(r, 2);
  CHECK(r.err.find(sweep + ":9") != std::string::npos);
  CHECK(r.err.find("divisor") != std::string::npos);  // did you mean
  CHECK_FALSE(exists(dir + "/out"));

  write_file(dir + "/typo.toml", "base_config = \"x.toml\"\nmodel = []\n");
  const Result typo = run("rwkvlite", "sweep '" + dir + "/typo.toml'");
  check_fails(typo, 2);
  CHECK(typo.err.find("typo.toml:2") != std::string::npos);
  CHECK(typo.err.find("models") != std::string::npos);
}
