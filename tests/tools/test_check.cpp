// `rwkvlite check` as a user meets it, on the committed baseline of the reference model's
// default config (configs/regression/baselines/reference/default.{eval,compress}.json) and
// copies of it that the tests degrade: exit 0 against itself, 4 on a regression with the
// failing metrics in the table and the tensor whose error grew in the blame, 2 on an unusable
// report, thresholds file or limit, with one located message. Needs no LibTorch: only JSON.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using nlohmann::ordered_json;
using namespace rwkvlite::test;

const std::string kBaseline = "configs/regression/baselines/reference/default.eval.json";
const std::string kBaselineCompress = "configs/regression/baselines/reference/default.compress.json";
const std::string kThresholds = "configs/regression/reference.toml";

ordered_json load(const std::string& relative_path) {
  return ordered_json::parse(read_all(source_dir() + "/" + relative_path));
}

std::string write_json_file(const std::string& name, const ordered_json& j) {
  const std::string path = scratch_dir() + "/" + name;
  write_file(path, j.dump(2));
  return path;
}

std::string q(const std::string& path) { return "'" + path + "'"; }

// The table row of `metric` with limit `limit` ("" when the line is not there).
std::string table_row(const std::string& out, const std::string& metric, const std::string& limit) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string m, l;
    words >> m >> l;
    if (m == metric && l == limit) return line;
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void check_usage_error(const Result& r, const std::string& message) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find(message) != std::string::npos);
}

// The degraded run of the tests: bits per byte x 1.05, 4096 more resident bytes, and the
// compress report's rel_err of one quantized tensor x 4.
const std::string kBlamedTensor = "blocks.2.ffn.value.weight";

struct Degraded {
  std::string report, compress_report;
  double bpb = 0;
  int64_t resident = 0;
};

Degraded write_degraded(const std::string& model_path) {
  ordered_json r = load(kBaseline);
  Degraded d;
  d.bpb = r["bits_per_byte"].get<double>() * 1.05;
  d.resident = r["peak_resident_weight_bytes"].get<int64_t>() + 4096;
  r["bits_per_byte"] = d.bpb;
  r["peak_resident_weight_bytes"] = d.resident;
  r["model"] = model_path;
  d.report = write_json_file("degraded.eval.json", r);
  ordered_json c = load(kBaselineCompress);
  bool found = false;
  for (auto& row : c["tensors"]) {
    if (row["pass"] == "quantize" && row["tensor"] == kBlamedTensor) {
      row["rel_err"] = row["rel_err"].get<double>() * 4;
      found = true;
    }
  }
  REQUIRE(found);
  d.compress_report = write_json_file("degraded.compress.json", c);
  return d;
}

size_t measured_rows(const ordered_json& compress_report) {
  size_t n = 0;
  for (const auto& row : compress_report["tensors"]) n += row.contains("rel_err") || row.contains("kl") || row.contains("recall");
  return n;
}

}  // namespace

TEST_CASE("check: the baseline against itself passes every limit of the shipped thresholds", "[tools][check]") {
  const Result r = run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline + " --thresholds " + kThresholds);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  for (const auto& [metric, limit] : std::vector<std::pair<std::string, std::string>>{
           {"bits_per_byte", "+0.5%"},
           {"top1_agreement", "-0.005"},
           {"kl_mean", "+20%"},
           {"peak_resident_weight_bytes", "+0%"},
           {"file_bytes", "+0%"}}) {
    const std::string row = table_row(r.out, metric, limit);
    INFO(metric);
    CHECK(ends_with(row, " pass"));
  }
  CHECK(r.out.find("check passed: 5 of 5 limits hold\n") != std::string::npos);
  CHECK(r.out.find("blame") == std::string::npos);  // only when a limit breaks

  const Result j = run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline + " --thresholds " +
                                                kThresholds + " --json -");
  REQUIRE(j.exit_code == 0);
  const ordered_json v = ordered_json::parse(j.out);  // the JSON alone on stdout
  CHECK(v["passed"] == true);
  CHECK(v["limits"].size() == 5);
  CHECK(v["blame"].is_null());
}

TEST_CASE("check: a degraded report fails on the metrics it broke and blames the tensor whose error grew", "[tools][check]") {
  const ordered_json baseline = load(kBaseline);
  const Degraded d = write_degraded("degraded.rwkvlite");
  const std::string args = "check " + q(d.report) + " --baseline " + kBaseline + " --thresholds " + kThresholds +
                           " --compress-report " + q(d.compress_report) + " --baseline-compress-report " +
                           kBaselineCompress;
  const Result r = run("rwkvlite", args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 4);
  CHECK(ends_with(table_row(r.out, "bits_per_byte", "+0.5%"), "+5.00%     FAIL"));
  CHECK(ends_with(table_row(r.out, "peak_resident_weight_bytes", "+0%"), " FAIL"));
  CHECK(ends_with(table_row(r.out, "top1_agreement", "-0.005"), " pass"));
  CHECK(ends_with(table_row(r.out, "kl_mean", "+20%"), " pass"));
  CHECK(ends_with(table_row(r.out, "file_bytes", "+0%"), " pass"));
  CHECK(r.out.find("check FAILED: 2 of 5 limits broken (bits_per_byte, peak_resident_weight_bytes)\n") !=
        std::string::npos);
  const size_t rows = measured_rows(load(kBaselineCompress));
  CHECK(rows > 40);
  CHECK(r.out.find("blame: 1 of " + std::to_string(rows) + " tensors' measured error grew") != std::string::npos);
  CHECK(r.out.find("  quantize     " + kBlamedTensor) != std::string::npos);
  CHECK(r.out.find("+300.0%") != std::string::npos);
  CHECK(r.err.find("check failed: '" + d.report + "' regressed against '" + kBaseline +
                   "' on bits_per_byte, peak_resident_weight_bytes") != std::string::npos);

  const Result j = run("rwkvlite", args + " --json -");
  REQUIRE(j.exit_code == 4);
  const ordered_json v = ordered_json::parse(j.out);
  CHECK(v["passed"] == false);
  CHECK(v["failed_metrics"] == ordered_json({"bits_per_byte", "peak_resident_weight_bytes"}));
  const ordered_json& bpb = v["limits"][0];
  CHECK(bpb["metric"] == "bits_per_byte");
  CHECK(bpb["current"].get<double>() == d.bpb);
  CHECK(bpb["allowed"].get<double>() == baseline["bits_per_byte"].get<double>() * (1 + 0.5 / 100));
  CHECK(v["limits"][3]["current"].get<int64_t>() == d.resident);
  CHECK(v["limits"][3]["allowed"].get<int64_t>() == baseline["peak_resident_weight_bytes"].get<int64_t>());
  CHECK(v["blame"]["compared"] == rows);
  CHECK(v["blame"]["tensors"].size() == 1);
  CHECK(v["blame"]["tensors"][0]["tensor"] == kBlamedTensor);
  CHECK(v["blame"]["tensors"][0]["relative_growth"].get<double>() == Approx(3.0).epsilon(1e-12));
}

TEST_CASE("check: flags override the thresholds file, and absolute limits apply", "[tools][check]") {
  const Degraded d = write_degraded("degraded.rwkvlite");
  const std::string base = "check " + q(d.report) + " --baseline " + kBaseline;
  // 10% allowed instead of the file's 0.5%: only the resident bytes still fail.
  const Result looser = run("rwkvlite", base + " --thresholds " + kThresholds + " --max-bpb-increase 10");
  INFO("stdout: " << looser.out << "\nstderr: " << looser.err);
  CHECK(looser.exit_code == 4);
  CHECK(ends_with(table_row(looser.out, "bits_per_byte", "+10%"), " pass"));
  CHECK(looser.out.find("(peak_resident_weight_bytes)") != std::string::npos);
  // Flags alone, absolute: the degraded bits per byte under a ceiling just above it passes,
  // a top-1 agreement floor above the baseline's fails.
  const ordered_json baseline = load(kBaseline);
  char ceiling[64], floor[64];
  std::snprintf(ceiling, sizeof ceiling, "%.17g", d.bpb * 1.0001);
  std::snprintf(floor, sizeof floor, "%.17g", baseline["top1_agreement"].get<double>() + 0.001);
  const Result absolute =
      run("rwkvlite", base + " --max-bpb " + ceiling + " --min-top1-agreement " + floor);
  INFO("stdout: " << absolute.out << "\nstderr: " << absolute.err);
  CHECK(absolute.exit_code == 4);
  CHECK(ends_with(table_row(absolute.out, "bits_per_byte", "max"), " pass"));
  CHECK(ends_with(table_row(absolute.out, "top1_agreement", "min"), " FAIL"));
  CHECK(absolute.out.find("check FAILED: 1 of 2 limits broken (top1_agreement)\n") != std::string::npos);
  // No compress reports given, none beside the model the reports name: said in one line.
  CHECK(absolute.out.find("blame: no compress report ('degraded.rwkvlite.report.json' does not exist; give "
                          "--compress-report); no baseline compress report ('default.rwkvlite.report.json' does not "
                          "exist; give --baseline-compress-report)\n") != std::string::npos);
}

TEST_CASE("check: the compress report is found beside the model the report names", "[tools][check]") {
  const std::string model = scratch_dir() + "/beside.rwkvlite";
  const Degraded d = write_degraded(model);
  write_file(model + ".report.json", read_all(d.compress_report));
  const Result r = run("rwkvlite", "check " + q(d.report) + " --baseline " + kBaseline + " --thresholds " +
                                                kThresholds + " --baseline-compress-report " + kBaselineCompress);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 4);
  CHECK(r.out.find("(" + model + ".report.json vs baseline " + kBaselineCompress + ")") != std::string::npos);
  CHECK(r.out.find(kBlamedTensor) != std::string::npos);
}

TEST_CASE("check: unusable reports and limits exit 2 with one clear line", "[tools][check]") {
  const std::string with_thresholds = " --baseline " + kBaseline + " --thresholds " + kThresholds;
  SECTION("missing report") {
    check_usage_error(run("rwkvlite", "check no-such.json" + with_thresholds), "cannot read report 'no-such.json'");
  }
  SECTION("malformed JSON") {
    const std::string path = scratch_dir() + "/truncated.json";
    write_file(path, "{\"bits_per_byte\": 1.9,");
    check_usage_error(run("rwkvlite", "check " + q(path) + with_thresholds),
                      "report '" + path + "' is not valid JSON: parse error at line 1, column 23");
  }
  SECTION("not an object") {
    const std::string path = write_json_file("array.json", ordered_json::array({1, 2}));
    check_usage_error(run("rwkvlite", "check " + q(path) + with_thresholds), "is not a JSON object but array");
  }
  // Limits on the two reference metrics, at known lines.
  const std::string reference_limits = scratch_dir() + "/reference-limits.toml";
  write_file(reference_limits, "[top1_agreement]\nmax_decrease = 0.005\n[kl_mean]\nmax_increase_pct = 20\n");
  SECTION("missing key") {
    ordered_json r = load(kBaseline);
    r.erase("kl_mean");
    const std::string path = write_json_file("no-kl.json", r);
    check_usage_error(run("rwkvlite", "check " + q(path) + " --baseline " + kBaseline + " --thresholds " +
                                               q(reference_limits)),
                      "'" + path + "' has no 'kl_mean' (a limit on it is set by " + reference_limits + ":4:20)");
  }
  SECTION("a limit on a metric that is null (evaluated without --reference)") {
    ordered_json r = load(kBaseline);
    r["top1_agreement"] = nullptr;
    const std::string path = write_json_file("no-reference.json", r);
    check_usage_error(run("rwkvlite", "check " + q(path) + " --baseline " + kBaseline + " --thresholds " +
                                               q(reference_limits)),
                      "'top1_agreement' is null in '" + path + "' (evaluated without --reference?), but " +
                          reference_limits + ":2:16 sets a limit on it");
    check_usage_error(run("rwkvlite", "check " + q(path) + " --baseline " + kBaseline + " --min-top1-agreement 0.9"),
                      "but --min-top1-agreement sets a limit on it");
  }
  SECTION("a metric of the wrong type") {
    ordered_json r = load(kBaseline);
    r["bits_per_byte"] = "1.9";
    const std::string path = write_json_file("string-bpb.json", r);
    check_usage_error(run("rwkvlite", "check " + q(path) + with_thresholds),
                      "'bits_per_byte' in '" + path + "' must be a number, not string");
  }
  SECTION("reports of different texts do not compare") {
    ordered_json r = load(kBaseline);
    r["text_bytes"] = 4000;
    const std::string path = write_json_file("shorter.json", r);
    check_usage_error(run("rwkvlite", "check " + q(path) + with_thresholds),
                      "reports do not compare: text_bytes is 4000 in '" + path + "' but 8000 in baseline");
  }
  SECTION("no limits at all") {
    check_usage_error(run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline),
                      "no limits to check: give --thresholds FILE or a --max-*/--min-* flag");
  }
  SECTION("a negative limit flag") {
    const Result r = run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline + " --max-bpb-increase -1");
    CHECK(r.exit_code == 2);
  }
  SECTION("a malformed compress report, even when every limit holds") {
    const std::string path = scratch_dir() + "/bad.compress.json";
    write_file(path, "{\"tensors\": 3}");
    check_usage_error(run("rwkvlite", "check " + kBaseline + with_thresholds + " --compress-report " + q(path) +
                                               " --baseline-compress-report " + kBaselineCompress),
                      "compress report '" + path + "' has no \"tensors\" array");
    const Degraded d = write_degraded("degraded.rwkvlite");
    check_usage_error(run("rwkvlite", "check " + q(d.report) + with_thresholds + " --compress-report " + q(path) +
                                               " --baseline-compress-report " + kBaselineCompress),
                      "compress report '" + path + "' has no \"tensors\" array");
  }
}

TEST_CASE("check: thresholds files are read strictly, errors located at file:line:column", "[tools][check]") {
  auto check_toml = [](const std::string& name, const std::string& toml, const std::string& message) {
    const std::string path = scratch_dir() + "/" + name;
    write_file(path, toml);
    check_usage_error(run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline + " --thresholds " + q(path)),
                      path + message);
  };
  check_toml("typo.toml", "[bits_per_byte]\nmax_increse_pct = 0.5\n",
             ":2:1: unknown key 'max_increse_pct' in [bits_per_byte]; did you mean 'max_increase_pct'?");
  check_toml("direction.toml", "[top1_agreement]\nmax = 0.9\n", ":2:1: unknown key 'max' in [top1_agreement]");
  check_toml("table.toml", "[bpb]\nmax = 2\n", ":1:2: unknown key 'bpb' at the top level");
  check_toml("type.toml", "[kl_mean]\n\nmax = \"0.1\"\n",
             ":3:7: 'max' in [kl_mean] must be a number, not a string");
  check_toml("negative.toml", "[file_bytes]\nmax_increase_pct = -1\n",
             ":2:20: 'max_increase_pct' in [file_bytes] must be a finite number >= 0");
  check_toml("not-a-table.toml", "kl_mean = 3\n", ":1:11: 'kl_mean' at the top level must be a table, not an integer");
  check_toml("syntax.toml", "[kl_mean\n", ":1:9: invalid TOML");
  check_usage_error(run("rwkvlite", "check " + kBaseline + " --baseline " + kBaseline + " --thresholds no-such.toml"),
                    "cannot read thresholds file 'no-such.toml'");
}

TEST_CASE("check: every shipped config has a committed baseline pair", "[tools][check]") {
  size_t configs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    ++configs;
    const std::string stem = entry.path().stem().string();
    INFO(stem << ": run scripts/update_baselines.sh " << stem);
    CHECK(exists(source_dir() + "/configs/regression/baselines/reference/" + stem + ".eval.json"));
    CHECK(exists(source_dir() + "/configs/regression/baselines/reference/" + stem + ".compress.json"));
  }
  CHECK(configs >= 11);
}
