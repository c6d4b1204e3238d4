// The front doors as a user meets them: both executables run on the tiny v5.2 model, and what
// they promise is checked from outside: exit codes (0 ok, 2 usage or config, 3 bad input
// file), stdout in the promised format (JSON alone with --json -, one float per line from
// logits), errors on stderr with stdout empty, and one report schema for rwkvlite eval and
// rwkvlite-run.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using nlohmann::json;
using rwkvlite::test::binary_dir;
using rwkvlite::test::scratch_dir;
using rwkvlite::test::source_dir;
using namespace rwkvlite::test;

const std::string kTinyModel = "third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin";

// The report keys tools/common/text_eval.h documents.
const char* const kReportKeys[] = {
    "model", "arch", "reference", "text", "text_offset", "text_bytes", "interleave_zeros", "tokenizer",
    "tokens_scored", "bits_per_byte", "top1_accuracy", "top1_agreement", "kl_mean", "reference_bits_per_byte",
    "peak_resident_weight_bytes", "peak_rss_bytes", "file_bytes", "tokens_per_second", "ms_per_token_median",
    "ms_per_token_p90", "load_seconds", "threads"};

// Two reports of one evaluation agree on every key but timings and process memory.
void check_same_report(json a, json b) {
  for (const char* k : {"tokens_per_second", "ms_per_token_median", "ms_per_token_p90", "load_seconds", "peak_rss_bytes"}) {
    a.erase(k);
    b.erase(k);
  }
  CHECK(a.dump(2) == b.dump(2));
}

}  // namespace

TEST_CASE("rwkvlite eval and rwkvlite-run print one report schema, the JSON alone on stdout with --json -",
          "[tools]") {
  const std::string args = kTinyModel + " --max-bytes 2000 --json -";
  const Result eval = run("rwkvlite", "eval " + args);
  const Result runtime = run("rwkvlite-run", args);
  REQUIRE(eval.exit_code == 0);
  REQUIRE(runtime.exit_code == 0);
  const json e = parse_stdout(eval);
  for (const char* k : kReportKeys) {
    INFO("key " << k);
    CHECK(e.contains(k));
  }
  CHECK(e["arch"] == "v5.2");
  CHECK(e["tokenizer"] == "bytes");
  CHECK(e["text_bytes"] == 2000);
  CHECK(e["tokens_scored"] == 1999);
  CHECK(e["bits_per_byte"].get<double>() > 1.0);
  CHECK(e["bits_per_byte"].get<double>() < 8.0);
  CHECK(e["top1_agreement"].is_null());  // no --reference
  CHECK(e["file_bytes"] == std::filesystem::file_size(source_dir() + "/" + kTinyModel));
  check_same_report(e, parse_stdout(runtime));
  CHECK(eval.err.find("evaluating") != std::string::npos);  // the logs went to stderr
}

TEST_CASE("Without --json - the report is a table on stdout, and --json FILE writes the same report", "[tools]") {
  const std::string path = case_dir("json_file") + "/report.json";
  const Result r = run("rwkvlite-run", kTinyModel + " --max-bytes 500 --json '" + path + "'");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("bits_per_byte") != std::string::npos);
  CHECK_FALSE(json::accept(r.out));  // a table, not JSON
  const json j = json::parse(read_all(path));
  CHECK(j["tokens_scored"] == 499);
}

TEST_CASE("rwkvlite-run measures its speed: load time, and per-token latency whose median is at most its p90",
          "[tools]") {
  const Result r = run("rwkvlite-run", kTinyModel + " --max-bytes 300 --json -");
  REQUIRE(r.exit_code == 0);
  const json j = parse_stdout(r);
  const double median = j["ms_per_token_median"].get<double>(), p90 = j["ms_per_token_p90"].get<double>();
  CHECK(median > 0.0);
  CHECK(median <= p90);
  CHECK(j["load_seconds"].get<double>() > 0.0);
  CHECK(j["tokens_per_second"].get<double>() > 0.0);
  // tokens_per_second times the same feeds from outside, so its mean time per token is at least
  // the timed feeds' mean; at least half of the feeds take the median or longer, so the median is
  // at most twice that mean.
  CHECK(median <= 2.0 * 1000.0 / j["tokens_per_second"].get<double>());
}

TEST_CASE("On a compact file with --reference, rwkvlite-run and rwkvlite eval agree and report the reference keys",
          "[tools]") {
  const std::string dir = case_dir("compact");
  const std::string file = dir + "/tiny.rwkvlite";
  const Result c = run("rwkvlite", "compress " + kTinyModel + " -o '" + file +
                                       "' -c configs/default.toml --set calibration.bytes=20000 --quiet");
  REQUIRE(c.exit_code == 0);
  CHECK(c.err.empty());  // --quiet: nothing below a warning
  CHECK(run("rwkvlite", "verify '" + file + "'").exit_code == 0);

  const std::string args = "'" + file + "' --reference " + kTinyModel + " --max-bytes 1000 --json - --quiet";
  const Result runtime = run("rwkvlite-run", args);
  const Result eval = run("rwkvlite", "eval " + args);
  REQUIRE(runtime.exit_code == 0);
  REQUIRE(eval.exit_code == 0);
  CHECK(runtime.err.empty());
  const json r = parse_stdout(runtime);
  CHECK(r["top1_agreement"].is_number());
  CHECK(r["kl_mean"].get<double>() >= 0.0);
  CHECK(r["reference_bits_per_byte"].is_number());
  CHECK(r["peak_resident_bytes_by_part"].contains("ffn"));
  CHECK(r["peak_resident_weight_bytes"].get<int64_t>() < r["file_bytes"].get<int64_t>());
  check_same_report(r, parse_stdout(eval));

  SECTION("a corrupted or truncated compact file exits 3") {
    const std::string bytes = read_all(file);
    std::string corrupted = bytes;
    corrupted[corrupted.size() / 2] = static_cast<char>(corrupted[corrupted.size() / 2] ^ 0xFF);
    write_file(dir + "/corrupted.rwkvlite", corrupted);
    write_file(dir + "/truncated.rwkvlite", bytes.substr(0, bytes.size() / 2));
    check_fails(run("rwkvlite-run", "'" + dir + "/corrupted.rwkvlite' --max-bytes 200"), 3);
    check_fails(run("rwkvlite-run", "'" + dir + "/truncated.rwkvlite' --max-bytes 200"), 3);
    check_fails(run("rwkvlite", "verify '" + dir + "/truncated.rwkvlite'"), 3);
  }
}

TEST_CASE("rwkvlite generate and rwkvlite-run --prompt continue a prompt the same way", "[tools]") {
  const std::string args = kTinyModel + " --prompt 'To be' -n 20 --temperature 0";
  const Result g = run("rwkvlite", "generate " + args);
  const Result r = run("rwkvlite-run", args);
  REQUIRE(g.exit_code == 0);
  REQUIRE(r.exit_code == 0);
  CHECK(g.out.rfind("To be", 0) == 0);
  CHECK(g.out.size() > std::string("To be\n").size());
  CHECK(g.out == r.out);
  check_fails(run("rwkvlite-run", kTinyModel + " --prompt ''"), 2);
}

TEST_CASE("rwkvlite logits prints one float per vocabulary entry", "[tools]") {
  const Result r = run("rwkvlite", "logits " + kTinyModel + " --prompt Hello --quiet");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  std::istringstream lines(r.out);
  std::string line;
  std::vector<double> logits;
  while (std::getline(lines, line)) {
    INFO("line '" << line << "'");
    size_t used = 0;
    REQUIRE_NOTHROW(logits.push_back(std::stod(line, &used)));
    CHECK(used == line.size());
  }
  CHECK(logits.size() == 256);  // the tiny model's byte vocabulary
}

TEST_CASE("rwkvlite inspect --json prints the model's format and dimensions as JSON", "[tools]") {
  const Result r = run("rwkvlite", "inspect " + kTinyModel + " --json");
  REQUIRE(r.exit_code == 0);
  const json j = parse_stdout(r);
  CHECK(j["arch"] == "v5.2");
  CHECK(j["format"].get<std::string>().find("rwkv.cpp") != std::string::npos);
  CHECK(j["dims"]["n_layer"] == 12);
  CHECK(j["dims"]["n_embd"] == 64);
  CHECK(j["dims"]["n_vocab"] == 256);
  CHECK(j["parameters"].get<int64_t>() > 0);
}

TEST_CASE("Usage and config errors exit 2 with the message on stderr and nothing on stdout", "[tools]") {
  check_fails(run("rwkvlite", "--no-such-flag"), 2);
  check_fails(run("rwkvlite-run", kTinyModel + " --no-such-flag"), 2);
  check_fails(run("rwkvlite", "eval"), 2);  // the model is required
  check_fails(run("rwkvlite-run", ""), 2);  // the model is required
  check_fails(run("rwkvlite", ""), 2);      // a subcommand is required
  check_fails(run("rwkvlite-run", kTinyModel + " --quiet --log-level info"), 2);  // they exclude each other

  const std::string dir = case_dir("usage");
  const std::string compress = "compress " + kTinyModel + " -o '" + dir + "/x.rwkvlite' ";
  check_fails(run("rwkvlite", compress + "-c configs/default.toml --set no_such.key=1"), 2);
  write_file(dir + "/typo.toml", "[calibration]\nbytez = 5\n");
  const Result typo = run("rwkvlite", compress + "-c '" + dir + "/typo.toml'");
  check_fails(typo, 2);
  CHECK(typo.err.find("bytez") != std::string::npos);

  // An existing output is never overwritten without --force.
  write_file(dir + "/exists.bin", "keep me");
  const Result convert = run("rwkvlite", "convert " + kTinyModel + " '" + dir + "/exists.bin'");
  check_fails(convert, 2);
  CHECK(convert.err.find("--force") != std::string::npos);
  CHECK(read_all(dir + "/exists.bin") == "keep me");
}

TEST_CASE("compress --report never overwrites the input model, the output or an existing report", "[tools]") {
  const std::string dir = case_dir("report-path");
  const std::string model = dir + "/model.bin";
  std::filesystem::copy_file(source_dir() + "/" + kTinyModel, model);
  const std::string before = read_all(model);
  const std::string compress = "compress '" + model + "' -c configs/dense-fp32.toml -o '" + dir + "/out.rwkvlite' ";
  // The input model as the report, also through another spelling of its path.
  for (const std::string& report : {model, dir + "/./model.bin"}) {
    const Result r = run("rwkvlite", compress + "--force --report '" + report + "'");
    check_fails(r, 2);
    CHECK(r.err.find("is the input model") != std::string::npos);
  }
  CHECK(read_all(model) == before);
  const Result same_as_output = run("rwkvlite", compress + "--report '" + dir + "/out.rwkvlite'");
  check_fails(same_as_output, 2);
  CHECK(same_as_output.err.find("is the output file") != std::string::npos);
  // An existing report needs --force, like any output: the default one beside -o too.
  write_file(dir + "/out.rwkvlite.report.json", "keep me");
  check_fails(run("rwkvlite", compress), 2);
  CHECK(read_all(dir + "/out.rwkvlite.report.json") == "keep me");
  write_file(dir + "/old.json", "keep me");
  const Result existing = run("rwkvlite", compress + "--report '" + dir + "/old.json'");
  check_fails(existing, 2);
  CHECK(read_all(dir + "/old.json") == "keep me");
  CHECK_FALSE(std::filesystem::exists(dir + "/out.rwkvlite"));
  const Result forced = run("rwkvlite", compress + "--force --report '" + dir + "/old.json'");
  CHECK(forced.exit_code == 0);
  CHECK(read_all(dir + "/old.json").find("\"dense_fp32_bytes\"") != std::string::npos);
  CHECK(read_all(model) == before);
}

TEST_CASE("A truncated model file, a file that is not a model and a missing file exit 3", "[tools]") {
  const std::string dir = case_dir("bad_input");
  const std::string model = read_all(source_dir() + "/" + kTinyModel);
  REQUIRE(model.size() > 1000000);
  write_file(dir + "/truncated.bin", model.substr(0, model.size() / 2));
  struct FrontDoor {
    const char* tool;
    const char* subcommand;
  };
  for (const FrontDoor& d : {FrontDoor{"rwkvlite-run", ""}, FrontDoor{"rwkvlite", "eval "}, FrontDoor{"rwkvlite", "inspect "}}) {
    INFO(d.tool << " " << d.subcommand);
    check_fails(run(d.tool, d.subcommand + ("'" + dir + "/truncated.bin'")), 3);
    check_fails(run(d.tool, d.subcommand + std::string("README.md")), 3);
    check_fails(run(d.tool, d.subcommand + ("'" + dir + "/missing.bin'")), 3);
  }
}

TEST_CASE("A user's --text is scored from byte 0, and only the bundled text starts at its held-out offset", "[tools]") {
  const std::string dir = case_dir("user_text");
  const std::string text = dir + "/note.txt";
  write_file(text, "To be, or not to be: that is the qu.");  // 36 bytes
  for (const char* tool : {"rwkvlite", "rwkvlite-run"}) {
    INFO(tool);
    const std::string prefix = std::string(tool) == "rwkvlite" ? "eval " : "";
    const Result user = run(tool, prefix + kTinyModel + " --text '" + text + "' --json -");
    REQUIRE(user.exit_code == 0);
    const json u = parse_stdout(user);
    CHECK(u["text"] == text);
    CHECK(u["text_offset"] == 0);
    CHECK(u["text_bytes"] == 36);
    CHECK(u["tokens_scored"] == 35);  // bytes: every byte after the first is predicted

    const Result offset = run(tool, prefix + kTinyModel + " --text '" + text + "' --offset 30 --json -");
    REQUIRE(offset.exit_code == 0);
    CHECK(parse_stdout(offset)["text_bytes"] == 6);
    check_fails(run(tool, prefix + kTinyModel + " --text '" + text + "' --offset 36 --json -"), 3);

    const Result bundled = run(tool, prefix + kTinyModel + " --max-bytes 100 --json -");
    REQUIRE(bundled.exit_code == 0);
    const json b = parse_stdout(bundled);
    CHECK(b["text_offset"] == 1000000);
    CHECK(b["text"].get<std::string>().find("tinyshakespeare.txt") != std::string::npos);
  }
}

TEST_CASE("memory budget: an elastic file fits any budget down to streaming, other files fail clearly", "[tools][elastic]") {
  const std::string dir = case_dir("elastic");
  const std::string profile = dir + "/profile.json";
  REQUIRE(run("rwkvlite", "--quiet profile " + kTinyModel + " --max-bytes 150 --fidelities i2g64,i4g64,i8,f16 --json '" +
                              profile + "'").exit_code == 0);
  write_file(dir + "/elastic.toml", "[[pass]]\ntype = \"elastic\"\nprofile = \"profile.json\"\n");
  const std::string file = dir + "/tiny.elastic.rwkvlite";
  REQUIRE(run("rwkvlite", "--quiet compress " + kTinyModel + " -c '" + dir + "/elastic.toml' -o '" + file + "'").exit_code == 0);
  const int64_t dense_fp16 = json::parse(read_all(profile))["dense_fp16_bytes"].get<int64_t>();

  auto report = [&](const std::string& options) {
    const Result r = run("rwkvlite-run", "'" + file + "' --max-bytes 300 --json - " + options);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
  };
  const json resident = report("--memory-budget 30%");
  CHECK(resident["memory_budget_bytes"] == dense_fp16 * 30 / 100);
  CHECK(resident["peak_resident_weight_bytes"] == resident["elastic"]["planned_bytes"]);
  CHECK(resident["peak_resident_weight_bytes"].get<int64_t>() <= resident["memory_budget_bytes"].get<int64_t>());
  CHECK(resident["elastic"]["streaming"].is_null());
  CHECK_FALSE(resident.contains("stream"));

  const json streamed = report("--memory-budget 8%");
  CHECK(streamed["peak_resident_weight_bytes"] == streamed["elastic"]["planned_bytes"]);
  CHECK(streamed["peak_resident_weight_bytes"].get<int64_t>() <= streamed["memory_budget_bytes"].get<int64_t>());
  REQUIRE(streamed["elastic"]["streaming"].is_object());
  const double per_token = streamed["stream"]["bytes_read_per_token"].get<double>();
  const double planned_per_token = streamed["elastic"]["streaming"]["streamed_bytes_per_token"].get<double>();
  CHECK(per_token >= planned_per_token);
  CHECK(per_token <= planned_per_token * 1.05);  // the loader runs at most two layers ahead of 300 tokens
  CHECK(streamed["stream"]["pipelined"] == true);
  const json sequential = report("--memory-budget 8% --sequential --io-bandwidth 500");
  CHECK(sequential["stream"]["pipelined"] == false);
  CHECK(sequential["stream"]["io_bandwidth_bytes_per_second"] == 500e6);
  CHECK(sequential["bits_per_byte"] == streamed["bits_per_byte"]);

  // The speed is predicted before the run; `rwkvlite plan` gives the same plan without running it.
  CHECK(streamed["elastic"]["predicted_speed"]["tokens_per_second"].get<double>() > 0);
  CHECK(streamed["elastic"]["predicted_speed"]["read_ms_per_token"].get<double>() > 0);
  const Result plan_run = run("rwkvlite", "plan '" + file + "' --memory-budget 8% --json -");
  INFO(plan_run.err);
  REQUIRE(plan_run.exit_code == 0);
  const json plan = json::parse(plan_run.out);
  CHECK(plan["elastic"]["planned_bytes"] == streamed["elastic"]["planned_bytes"]);
  CHECK(plan["elastic"]["matrices"] == streamed["elastic"]["matrices"]);
  int64_t part_bytes = 0;
  for (const json& p : plan["parts"]) part_bytes += p["bytes"].get<int64_t>();
  CHECK(part_bytes == plan["elastic"]["elastic_bytes"].get<int64_t>() - 2 * plan["elastic"]["streaming"]["slot_bytes"].get<int64_t>() +
                          plan["elastic"]["streaming"]["streamed_bytes_per_token"].get<int64_t>());
  check_fails(run("rwkvlite", "plan '" + file + "' --memory-budget 8% --emit-config x.toml"), 2);

  const Result too_small = run("rwkvlite-run", "'" + file + "' --max-bytes 300 --memory-budget 1000");
  check_fails(too_small, 5);
  CHECK(too_small.err.find("needs at its smallest") != std::string::npos);
  check_fails(run("rwkvlite-run", "'" + file + "' --memory-budget lots"), 2);
  check_fails(run("rwkvlite", "eval '" + file + "' --memory-budget 0%"), 2);
  // A dense file: fits or fails, never streams.
  check_fails(run("rwkvlite-run", kTinyModel + " --max-bytes 300 --memory-budget 1MB"), 5);
  CHECK(run("rwkvlite-run", kTinyModel + " --max-bytes 300 --memory-budget 300%").exit_code == 0);
  check_fails(run("rwkvlite-run", kTinyModel + " --max-bytes 300 --memory-budget 300% --stream"), 2);
}
