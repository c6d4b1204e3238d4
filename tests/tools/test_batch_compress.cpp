// Batch compression as a user runs it (docs/batch.md): `rwkvlite compress IN... --output-dir DIR`
// on a folder of two good tiny checkpoints (the v5.2 and v7 models) and a truncated one, with
// configs/int8.toml (no calibration, so each item takes well under a second). Checked from
// outside: the exit code (6 when any item failed), each good output byte-identical to what the
// single-input form writes, nothing left for the broken item, the summary on stdout and in
// DIR/batch-summary.json, the glob and --inputs forms, and the usage errors (exit 2, nothing
// written).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"

using namespace rwkvlite::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kConfig = " -c configs/int8.toml --threads 2";

// models/alpha.bin (v5.2), models/beta.bin (v7) and models/broken.bin (the v5.2 file cut to
// half its bytes) under a fresh case folder; returns the folder.
std::string make_models(const std::string& name) {
  const std::string dir = case_dir(name);
  fs::create_directories(dir + "/models");
  const std::string v5 = read_all(tiny_model_path("5v2-730K", "FP32"));
  const std::string v7 = read_all(tiny_model_path("7v0-834K", "FP32"));
  REQUIRE(v5.size() > 1000);
  REQUIRE(v7.size() > 1000);
  write_file(dir + "/models/alpha.bin", v5);
  write_file(dir + "/models/beta.bin", v7);
  write_file(dir + "/models/broken.bin", v5.substr(0, v5.size() / 2));
  return dir;
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

int count_lines(const std::string& text) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// What the single-input form writes for `model`: the reference each batch output must equal.
std::string single_output(const std::string& model, const std::string& out) {
  const Result r = run("rwkvlite", "--quiet compress '" + model + "' -o '" + out + "'" + kConfig);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return read_all(out);
}

// The rows of a batch over alpha, broken, beta (in that order) as the summary file records them,
// checked against the files on disk.
void check_summary_of_three(const std::string& out_dir, const std::vector<std::string>& inputs) {
  const json s = json::parse(read_all(out_dir + "/batch-summary.json"));
  CHECK(s["schema_version"] == 1);
  CHECK(s["config"] == "configs/int8.toml");
  CHECK(s["config_hash"].get<std::string>().size() == 16);
  CHECK(s["inputs"] == 3);
  CHECK(s["succeeded"] == 2);
  CHECK(s["failed"] == 1);
  const json& rows = s["rows"];
  REQUIRE(rows.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(rows[i]["input"] == inputs[i]);
  CHECK(rows[0]["status"] == "ok");
  CHECK(rows[1]["status"] == "failed");
  CHECK(rows[2]["status"] == "ok");
  CHECK(rows[1]["output"].is_null());
  CHECK(rows[1]["error"].get<std::string>().find("broken.bin") != std::string::npos);
  for (size_t i : {0, 2}) {
    const std::string output = rows[i]["output"];
    const json report = json::parse(read_all(output + ".report.json"));
    CHECK(rows[i]["file_bytes"] == fs::file_size(output));
    CHECK(rows[i]["file_bytes"] == report["file_bytes"]);
    CHECK(rows[i]["dense_fp16_bytes"] == report["dense_fp32_bytes"].get<int64_t>() / 2);
    CHECK(rows[i]["ratio"].get<double>() ==
          Approx(rows[i]["dense_fp16_bytes"].get<double>() / rows[i]["file_bytes"].get<double>()).epsilon(1e-12));
    CHECK(rows[i]["seconds"].get<double>() >= 0.0);
  }
  // FP16 of the tiny models, 2 bytes a parameter: 731904 (v5.2) and 829888 (v7) parameters.
  // int8 halves the matrices; the v7 model keeps most of its bytes in FP32 vectors and LoRAs.
  CHECK(rows[0]["dense_fp16_bytes"] == 1463808);
  CHECK(rows[2]["dense_fp16_bytes"] == 1659776);
  CHECK(rows[0]["ratio"].get<double>() > 1.6);
  CHECK(rows[0]["ratio"].get<double>() < 2.0);
  CHECK(rows[2]["ratio"].get<double>() > 1.0);
  CHECK(rows[2]["ratio"].get<double>() < 1.2);
}

}  // namespace

TEST_CASE("A batch with one truncated checkpoint finishes the others, exits 6, and summarises all three",
          "[tools][batch]") {
  const std::string dir = make_models("batch_explicit");
  const std::string m = dir + "/models/", out = dir + "/out";
  const std::vector<std::string> inputs = {m + "alpha.bin", m + "broken.bin", m + "beta.bin"};
  const Result r = run("rwkvlite", "compress '" + inputs[0] + "' '" + inputs[1] + "' '" + inputs[2] +
                                       "' --output-dir '" + out + "'" + kConfig);
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 6);
  // The two good outputs and their reports, the summary, and nothing for the broken one (no
  // temporary either).
  CHECK(names_in(out) == std::set<std::string>{"alpha.rwkvlite", "alpha.rwkvlite.report.json", "beta.rwkvlite",
                                               "beta.rwkvlite.report.json", "batch-summary.json"});
  CHECK(read_all(out + "/alpha.rwkvlite") == single_output(inputs[0], dir + "/alpha.rwkvlite"));
  CHECK(read_all(out + "/beta.rwkvlite") == single_output(inputs[2], dir + "/beta.rwkvlite"));
  check_summary_of_three(out, inputs);

  // Progress on stderr, one line an item, and the failure as one error line.
  CHECK(r.err.find("[1/3] compressing " + inputs[0]) != std::string::npos);
  CHECK(r.err.find("[2/3] compressing " + inputs[1]) != std::string::npos);
  CHECK(r.err.find("[3/3] compressing " + inputs[2]) != std::string::npos);
  CHECK(r.err.find("[2/3] failed: '" + inputs[1] + "' is truncated") != std::string::npos);
  // The table on stdout: a header and one line an input, in order.
  CHECK(count_lines(r.out) == 4);
  CHECK(r.out.rfind("input", 0) == 0);
  const size_t a = r.out.find(inputs[0]), b = r.out.find(inputs[1]), c = r.out.find(inputs[2]);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(r.out.find("failed: ", b) < c);
  const std::string alpha_bytes = std::to_string(fs::file_size(out + "/alpha.rwkvlite"));
  CHECK(r.out.find(alpha_bytes, a) < b);

  // Outputs exist now: the same batch is refused before anything runs, and --force redoes it.
  const Result again = run("rwkvlite", "compress '" + inputs[0] + "' '" + inputs[2] + "' --output-dir '" + out + "'" +
                                           kConfig);
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("--force") != std::string::npos);
  CHECK(again.err.find("compressing") == std::string::npos);
  const Result forced = run("rwkvlite", "--quiet compress '" + inputs[0] + "' '" + inputs[2] + "' --output-dir '" +
                                            out + "' --force" + kConfig);
  CHECK(forced.exit_code == 0);
  CHECK(json::parse(read_all(out + "/batch-summary.json"))["succeeded"] == 2);
  CHECK(read_all(out + "/alpha.rwkvlite") == read_all(dir + "/alpha.rwkvlite"));
}

TEST_CASE("When every item fails the batch still exits 6 and writes the summary", "[tools][batch]") {
  const std::string dir = make_models("batch_all_fail");
  const std::string out = dir + "/out";
  const Result r = run("rwkvlite", "--quiet compress '" + dir + "/models/broken.bin' '" + dir +
                                       "/models/missing.bin' --output-dir '" + out + "'" + kConfig);
  CHECK(r.exit_code == 6);
  CHECK(names_in(out) == std::set<std::string>{"batch-summary.json"});
  const json s = json::parse(read_all(out + "/batch-summary.json"));
  CHECK(s["succeeded"] == 0);
  CHECK(s["failed"] == 2);
  CHECK(s["rows"][1]["status"] == "failed");
  CHECK(s["rows"][1]["error"].get<std::string>().find("missing.bin") != std::string::npos);
}

TEST_CASE("A quoted glob expands sorted, and a pattern matching nothing is a usage error", "[tools][batch]") {
  const std::string dir = make_models("batch_glob");
  const std::string m = dir + "/models/", out = dir + "/out";
  const Result r = run("rwkvlite", "--quiet compress '" + m + "*.bin' --output-dir '" + out + "'" + kConfig);
  CHECK(r.exit_code == 6);
  const json s = json::parse(read_all(out + "/batch-summary.json"));
  REQUIRE(s["rows"].size() == 3);
  CHECK(s["rows"][0]["input"] == m + "alpha.bin");
  CHECK(s["rows"][1]["input"] == m + "beta.bin");
  CHECK(s["rows"][2]["input"] == m + "broken.bin");
  CHECK(s["rows"][0]["status"] == "ok");
  CHECK(s["rows"][1]["status"] == "ok");
  CHECK(s["rows"][2]["status"] == "failed");
  CHECK(read_all(out + "/beta.rwkvlite") == single_output(m + "beta.bin", dir + "/beta.rwkvlite"));

  const Result none = run("rwkvlite", "compress '" + m + "*.pth' --output-dir '" + dir + "/none'" + kConfig);
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("matches no file") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/none"));
}

TEST_CASE("A list file given with --inputs: comments and blank lines skipped, paths from the list's folder",
          "[tools][batch]") {
  const std::string dir = make_models("batch_list");
  const std::string out = dir + "/out";
  write_file(dir + "/models/list.txt", "# the two good ones\n\nalpha.bin\n   beta.bin  \n# broken.bin\n");
  // Run from the source directory: the entries resolve against models/, not the working directory.
  const Result r = run("rwkvlite", "--quiet compress --inputs '" + dir + "/models/list.txt' --output-dir '" + out +
                                       "'" + kConfig);
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(count_lines(r.out) == 3);
  const json s = json::parse(read_all(out + "/batch-summary.json"));
  REQUIRE(s["rows"].size() == 2);
  CHECK(s["rows"][0]["input"] == dir + "/models/alpha.bin");
  CHECK(s["rows"][1]["input"] == dir + "/models/beta.bin");
  CHECK(s["failed"] == 0);
  CHECK(read_all(out + "/alpha.rwkvlite") == single_output(dir + "/models/alpha.bin", dir + "/alpha.rwkvlite"));

  const Result missing_list = run("rwkvlite", "compress --inputs '" + dir + "/nope.txt' --output-dir '" + dir +
                                                  "/o2'" + kConfig);
  CHECK(missing_list.exit_code == 3);
  CHECK_FALSE(fs::exists(dir + "/o2"));
}

TEST_CASE("Batch usage errors exit 2 before anything is read or written", "[tools][batch]") {
  const std::string dir = make_models("batch_usage");
  const std::string m = dir + "/models/", out = dir + "/out";
  fs::create_directories(dir + "/other");
  write_file(dir + "/other/alpha.safetensors", "x");
  const auto check_usage = [&](const std::string& args, const std::string& message) {
    const Result r = run("rwkvlite", args);
    INFO(args << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find(message) != std::string::npos);
    CHECK(r.err.find("compressing") == std::string::npos);
    CHECK_FALSE(fs::exists(out));
  };
  check_usage("compress '" + m + "alpha.bin' '" + dir + "/other/alpha.safetensors' --output-dir '" + out + "'" +
                  kConfig,
              "same stem 'alpha'");
  check_usage("compress '" + m + "alpha.bin' '" + m + "beta.bin' -o '" + out + "'" + kConfig,
              "-o OUTPUT takes exactly one MODEL");
  check_usage("compress --inputs '" + m + "list.txt' -o '" + out + "'" + kConfig, "-o OUTPUT takes exactly one MODEL");
  check_usage("compress '" + m + "alpha.bin' '" + m + "beta.bin'" + kConfig, "--output-dir DIR");
  check_usage("compress '" + m + "alpha.bin' -o '" + out + "/a.rwkvlite' --output-dir '" + out + "'" + kConfig,
              "exclude each other");
  check_usage("compress '" + m + "alpha.bin' --output-dir '" + out + "' --dry-run" + kConfig, "--dry-run");
  // A bad config fails at once, before the first model is read.
  check_usage("compress '" + m + "alpha.bin' '" + m + "beta.bin' --output-dir '" + out + "'" + kConfig +
                  " --set pass.0.no_such_key=1",
              "no_such_key");
  // An output directory that is a file.
  write_file(out, "not a directory");
  const Result file_dir = run("rwkvlite", "compress '" + m + "alpha.bin' --output-dir '" + out + "'" + kConfig);
  CHECK(file_dir.exit_code == 2);
  CHECK(file_dir.err.find("is not a directory") != std::string::npos);
  CHECK(read_all(out) == "not a directory");
}
