// The TOML pipeline config: parsing with defaults, strict located errors, --set overrides,
// the resolved JSON and its hash, tensor selection on real names, and the quantize pass.
#include <fstream>
#include <regex>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/format/encoding.h"
#include "compress/passes/lowrank_pass.h"
#include "compress/passes/quantize_pass.h"
#include "compress/pipeline/compressed_model.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/config.h"
#include "compress/pipeline/did_you_mean.h"
#include "compress/pipeline/tensor_selector.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

// Writes `text` to <scratch>/<name> and returns the path.
std::string write_config(const std::string& text, const std::string& name = "config.toml") {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// The UsageError message from loading `text` as config.toml (fails the test if none).
std::string load_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  const std::string path = write_config(text);
  try {
    load_pipeline_config(path, builtin_passes(), overrides);
  } catch (const UsageError& e) {
    return e.what();
  }
  FAIL("expected a UsageError for:\n" << text);
  return "";
}

const char* kValid = R"(# RWKV-Lite-style recipe
[calibration]
bytes = 50000

[[pass]]
type = "lowrank"
divisor = 8

[[pass]]
type = "quantize"
rules = [ { targets = ["**.lr_a", "**.lr_b"], encoding = "i8" }, { targets = ["head.weight"], encoding = "f16" } ]
)";

std::vector<std::string> tiny_names(const std::string& stem) {
  const std::string path = tiny_model_path(stem, "FP32");
  if (!exists(path)) return {};
  return ordered_tensor_names(read_rwkvcpp(path));
}

}  // namespace

TEST_CASE("a valid config parses with defaults filled in", "[config]") {
  const PipelineConfig c = load_pipeline_config(write_config(kValid), builtin_passes());
  CHECK(c.calibration.text == "bundled");
  CHECK(c.calibration.text_path == "bundled");
  CHECK(c.calibration.offset == 0);
  CHECK(c.calibration.bytes == 50000);
  CHECK(c.calibration.seed == 1234);
  REQUIRE(c.passes.size() == 2);
  CHECK(c.passes[0].type == "lowrank");
  CHECK(dynamic_cast<const LowRankPass*>(c.passes[0].pass.get()) != nullptr);
  CHECK(c.passes[0].location.find("config.toml:5:1") != std::string::npos);
  CHECK(dynamic_cast<const QuantizePass*>(c.passes[1].pass.get()) != nullptr);
  CHECK(c.passes[0].settings() == [&] {
    nlohmann::ordered_json j = c.resolved["passes"][0];
    j.erase("type");
    return j;
  }());
  CHECK_FALSE(c.needs_calibration());

  const auto& lr = dynamic_cast<const LowRankPass&>(*c.passes[0].pass).options();
  CHECK(lr.rule == RankRule::Divisor);
  CHECK(lr.divisor == 8);
  CHECK(lr.targets == default_lowrank_targets());
  CHECK(lr.damping == 1e-2);
  CHECK(lr.svd == SvdMethod::Auto);

  const std::string expected = R"({"calibration":{"text":"bundled","offset":0,"bytes":50000,"seed":1234,"samples":16384,"interleave_zeros":false},)"
                               R"("passes":[{"type":"lowrank","targets":["blocks.*.att.receptance.weight",)"
                               R"("blocks.*.att.key.weight","blocks.*.att.value.weight","blocks.*.att.gate.weight"],)"
                               R"("ignore":[],"divisor":8,"activation_aware":false,"damping":0.01,"svd":"auto"},)"
                               R"({"type":"quantize","rules":[{"targets":["**.lr_a","**.lr_b"],"ignore":[],"encoding":"i8"},)"
                               R"({"targets":["head.weight"],"ignore":[],"encoding":"f16"}]}]})";
  CHECK(c.resolved.dump() == expected);
  CHECK(std::regex_match(c.hash, std::regex("[0-9a-f]{16}")));
  std::printf("resolved: %s\nhash: %s\n", c.resolved.dump().c_str(), c.hash.c_str());

  // Everything optional: an empty file is a pipeline with no passes and default calibration.
  const PipelineConfig empty = load_pipeline_config(write_config(""), builtin_passes());
  CHECK(empty.passes.empty());
  CHECK(empty.calibration.bytes == 200000);

  // Activation-aware lowrank needs calibration; relative text paths follow the config file.
  const PipelineConfig aware = load_pipeline_config(write_config(
      "[calibration]\ntext = \"data/calib.txt\"\n[[pass]]\ntype = \"lowrank\"\nactivation_aware = true\n"), builtin_passes());
  CHECK(aware.needs_calibration());
  CHECK(aware.calibration.text == "data/calib.txt");
  CHECK(aware.calibration.text_path == scratch_dir() + "/data/calib.txt");
}

TEST_CASE("config errors name file line column and the problem", "[config]") {
  SECTION("unknown key with a suggestion") {
    const std::string e = load_error(
        "[calibration]\n"
        "bytes = 50000\n"
        "\n"
        "[[pass]]\n"
        "type = \"lowrank\"\n"
        "\n"
        "divsor = 4\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:7:1: unknown key 'divsor' in [[pass]] #1 (lowrank); did you mean 'divisor'?"));
  }
  SECTION("unknown top-level table") {
    const std::string e = load_error("[calibraton]\nbytes = 1\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:1:"));
    CHECK_THAT(e, Catch::Contains("unknown key 'calibraton' at the top level; did you mean 'calibration'?"));
  }
  SECTION("unknown key inside a quantize rule") {
    const std::string e = load_error(
        "[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"head.weight\"], encoding = \"f16\", ignroe = [] } ]\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:"));
    CHECK_THAT(e, Catch::Contains("unknown key 'ignroe' in rules #1 of [[pass]] #1 (quantize); did you mean 'ignore'?"));
  }
  SECTION("a missing required key that was misspelt") {
    const std::string e =
        load_error("[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"head.weight\"], encodng = \"f16\" } ]\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:"));
    CHECK_THAT(e, Catch::Contains("needs 'encoding'"));
    CHECK_THAT(e, Catch::Contains("found 'encodng'"));
  }
  SECTION("wrong type") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrank\"\ndivisor = \"8\"\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:11: 'divisor' in [[pass]] #1 (lowrank) must be an integer, not a string"));
  }
  SECTION("wrong element type") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrank\"\ntargets = [\"head.weight\", 3]\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:27: every element of 'targets'"));
  }
  SECTION("[pass] instead of [[pass]]") {
    const std::string e = load_error("[pass]\ntype = \"lowrank\"\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:1:1: 'pass' at the top level must be an array of tables: write [[pass]]"));
  }
  SECTION("out of range") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrank\"\ndamping = 2\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:11: 'damping' in [[pass]] #1 (lowrank) must be in [0, 1], got 2"));
    const std::string e2 = load_error("[calibration]\nbytes = 0\n");
    CHECK_THAT(e2, Catch::Contains("config.toml:2:9: 'bytes' in [calibration] must be >= 1, got 0"));
  }
  SECTION("two rank rules") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrank\"\ndivisor = 8\nenergy = 0.9\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:"));
    CHECK_THAT(e, Catch::Contains("give at most one (found divisor, energy)"));
  }
  SECTION("bad patterns") {
    const std::string e = load_error(
        "[[pass]]\ntype = \"lowrank\"\ntargets = [\"blocks.*.att.key.weight\",\n           \"blocks.[0].att.key.weight\"]\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:4:12: invalid pattern 'blocks.[0].att.key.weight': character '['"));
    CHECK_THAT(e, Catch::Contains("re:"));
    const std::string r = load_error("[[pass]]\ntype = \"lowrank\"\nignore = [\"re:blocks.(0\"]\n");
    INFO(r);
    CHECK_THAT(r, Catch::Contains("config.toml:3:11: invalid pattern 're:blocks.(0': not a valid regular expression"));
    const std::string g = load_error("[[pass]]\ntype = \"lowrank\"\ntargets = [\"blocks.**x.weight\"]\n");
    CHECK_THAT(g, Catch::Contains("'**' must be a whole segment"));
  }
  SECTION("unknown pass type") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrnak\"\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:2:8: unknown pass type 'lowrnak' in [[pass]] #1"));
    CHECK_THAT(e, Catch::Contains("known types: "));
    CHECK_THAT(e, Catch::Contains("lowrank"));
    CHECK_THAT(e, Catch::Contains("quantize"));
    CHECK_THAT(e, Catch::Contains("did you mean 'lowrank'?"));
    const std::string missing = load_error("[calibration]\n[[pass]]\ndivisor = 8\n");
    CHECK_THAT(missing, Catch::Contains("config.toml:2:1: [[pass]] #1 needs 'type'"));
  }
  SECTION("unknown encoding") {
    const std::string e = load_error("[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"**\"], encoding = \"i3\" } ]\n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:"));
    CHECK_THAT(e, Catch::Contains("must be one of f32, f16, bf16, i8, i4g32, i4g64, i4g128, i3g32, i3g64, i3g128, "
                                  "i2g32, i2g64, i2g128, not 'i3'"));
  }
  SECTION("quantize methods") {
    const std::string rule = "[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"**\"], encoding = \"i4g64\", ";
    const std::string typo = load_error(rule + "method = \"gptqq\" } ]\n");
    INFO(typo);
    CHECK_THAT(typo, Catch::Contains("config.toml:3:"));
    CHECK_THAT(typo, Catch::Contains("'method' in rules #1 of [[pass]] #1 (quantize) must be one of rtn, weighted, gptq, not 'gptqq'"));
    CHECK_THAT(typo, Catch::Contains("did you mean 'gptq'?"));
    const std::string f16 = load_error(
        "[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"**\"], encoding = \"f16\", method = \"weighted\" } ]\n");
    INFO(f16);
    CHECK_THAT(f16, Catch::Contains("config.toml:3:"));
    CHECK_THAT(f16, Catch::Contains("method \"weighted\" of rules #1 of [[pass]] #1 (quantize) needs an integer encoding"));
    const std::string damping_rtn = load_error(rule + "damping = 0.1 } ]\n");
    INFO(damping_rtn);
    CHECK_THAT(damping_rtn, Catch::Contains("config.toml:3:"));
    CHECK_THAT(damping_rtn, Catch::Contains("'damping' of rules #1 of [[pass]] #1 (quantize) applies to method = \"gptq\" only"));
    const std::string damping_range = load_error(rule + "method = \"gptq\", damping = 1.5 } ]\n");
    INFO(damping_range);
    CHECK_THAT(damping_range, Catch::Contains("'damping' in rules #1 of [[pass]] #1 (quantize) must be in [0, 1], got 1.5"));
    const std::string unknown = load_error(rule + "method = \"gptq\", dampng = 0.1 } ]\n");
    CHECK_THAT(unknown, Catch::Contains("unknown key 'dampng' in rules #1 of [[pass]] #1 (quantize); did you mean 'damping'?"));
    const std::string flag = load_error(
        "[[pass]]\ntype = \"quantize\"\noutput_error = 1\nrules = [ { targets = [\"**\"], encoding = \"i8\" } ]\n");
    CHECK_THAT(flag, Catch::Contains("config.toml:3:16: 'output_error' in [[pass]] #1 (quantize) must be a boolean"));
  }
  SECTION("malformed TOML") {
    const std::string e = load_error("[[pass]]\ntype = \"lowrank\"\ndivisor = \n");
    INFO(e);
    CHECK_THAT(e, Catch::Contains("config.toml:3:"));
    CHECK_THAT(e, Catch::Contains("invalid TOML"));
    const std::string dup = load_error("[calibration]\nbytes = 1\nbytes = 2\n");
    CHECK_THAT(dup, Catch::Contains("config.toml:3:"));
  }
  SECTION("bad --set paths") {
    const std::string range = load_error(kValid, {"pass.3.divisor=4"});
    INFO(range);
    CHECK_THAT(range, Catch::Contains("config.toml:5:1: --set 'pass.3.divisor=4': index 3 is out of range: 'pass' has 2 entries"));
    const std::string typo = load_error(kValid, {"pass.0.divsor=4"});
    INFO(typo);
    CHECK_THAT(typo, Catch::Contains("config.toml:5:1: --set 'pass.0.divsor=4': unknown key 'divsor' in [[pass]] #1 (lowrank); did you mean 'divisor'?"));
    const std::string top = load_error(kValid, {"calibraton.bytes=5"});
    INFO(top);
    CHECK_THAT(top, Catch::Contains("config.toml"));
    CHECK_THAT(top, Catch::Contains("--set 'calibraton.bytes=5': unknown key 'calibraton' at the top level; did you mean 'calibration'?"));
    const std::string scalar = load_error(kValid, {"pass.0.divisor.x=1"});
    CHECK_THAT(scalar, Catch::Contains("'pass.0.divisor' is an integer, which has no 'x'"));
    const std::string shape = load_error(kValid, {"pass.x=1"});
    CHECK_THAT(shape, Catch::Contains("'pass' is an array; expected an index, not 'x'"));
    const std::string no_eq = load_error(kValid, {"pass.0.divisor"});
    CHECK_THAT(no_eq, Catch::Contains("config.toml: --set 'pass.0.divisor': expected key=value"));
    const std::string type = load_error(kValid, {"pass.0.divisor=eight"});
    INFO(type);
    CHECK_THAT(type, Catch::Contains("config.toml:5:1: --set 'pass.0.divisor=eight': 'divisor' in [[pass]] #1 (lowrank) must be an integer, not a string"));
  }
  SECTION("a missing file") {
    CHECK_THROWS_WITH(load_pipeline_config(scratch_dir() + "/no-such.toml", builtin_passes()), Catch::Contains("cannot read config file"));
  }
}

TEST_CASE("overrides given with --set", "[config]") {
  const std::string path = write_config(
      "[[pass]]\ntype = \"lowrank\"\n[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"**.lr_a\"], encoding = \"i8\" } ]\n");
  const PipelineConfig base = load_pipeline_config(path, builtin_passes());
  const PipelineConfig c = load_pipeline_config(
      path, builtin_passes(), {"calibration.bytes=50000", "calibration.text=calib.txt", "pass.0.divisor=4", "pass.1.rules.0.encoding=f16",
             "pass.0.targets=[\"blocks.0.att.key.weight\"]", "pass.0.activation_aware=true", "pass.0.damping=1e-3"});
  CHECK(c.calibration.bytes == 50000);
  CHECK(c.calibration.text == "calib.txt");
  CHECK(c.calibration.text_path == scratch_dir() + "/calib.txt");
  const auto& lr = dynamic_cast<const LowRankPass&>(*c.passes[0].pass).options();
  CHECK(lr.divisor == 4);
  CHECK(lr.targets == std::vector<std::string>{"blocks.0.att.key.weight"});
  CHECK(lr.activation_aware);
  CHECK(lr.damping == 1e-3);
  CHECK(c.resolved["passes"][1]["rules"][0]["encoding"] == "f16");
  CHECK(c.hash != base.hash);
  // Setting a value to what it already is changes nothing.
  CHECK(load_pipeline_config(path, builtin_passes(), {"pass.0.divisor=8"}).hash == base.hash);
  // A quoted string and a bare word are the same string.
  CHECK(load_pipeline_config(path, builtin_passes(), {"pass.1.rules.0.encoding=\"f16\""}).resolved["passes"][1]["rules"][0]["encoding"] ==
        "f16");
}

TEST_CASE("the resolved JSON is the same for semantically identical configs", "[config]") {
  const char* a = R"(
[calibration]
seed = 1234
bytes = 100000

[[pass]]
type = "lowrank"
damping = 0.01
targets = ["blocks.*.att.key.weight"]
energy = 0.9

[[pass]]
type = "quantize"
rules = [{ targets = ["**.lr_a"], encoding = "i8" }]
)";
  const char* b = R"(# same thing, other order, other spelling
[[pass]]
   energy=9e-1       # a float either way
   targets=[ 'blocks.*.att.key.weight' ]
   type='lowrank'
   svd = "auto"      # the default, explicitly
   damping = 1e-2
   ignore = []

[[pass]]
type = "quantize"
[[pass.rules]]
encoding = "i8"
targets = ["**.lr_a"]

[calibration]
bytes = 100_000
text = "bundled"
)";
  const PipelineConfig ca = load_pipeline_config(write_config(a, "a.toml"), builtin_passes());
  const PipelineConfig cb = load_pipeline_config(write_config(b, "b.toml"), builtin_passes());
  CHECK(ca.resolved.dump() == cb.resolved.dump());
  CHECK(ca.hash == cb.hash);
  // A real difference changes the hash.
  const PipelineConfig cc = load_pipeline_config(write_config(a, "c.toml"), builtin_passes(), {"pass.0.energy=0.95"});
  CHECK(cc.hash != ca.hash);
  // damping = 1 (integer) resolves like 1.0.
  const PipelineConfig i1 = load_pipeline_config(write_config("[[pass]]\ntype = \"lowrank\"\ndamping = 1\n", "i.toml"), builtin_passes());
  const PipelineConfig f1 = load_pipeline_config(write_config("[[pass]]\ntype = \"lowrank\"\ndamping = 1.0\n", "f.toml"), builtin_passes());
  CHECK(i1.hash == f1.hash);
}

TEST_CASE("glob and regex selection on the real tensor names of the tiny models", "[config][selector]") {
  const std::vector<std::string> names = tiny_names("5v2-730K");
  if (names.empty()) {
    WARN("skipped: tiny v5.2 model not present");
    return;
  }
  auto select = [&](std::vector<std::string> targets, std::vector<std::string> ignore = {}) {
    return TensorSelector(targets, ignore).select(names);
  };
  const auto keys = select({"blocks.*.att.key.weight"});
  REQUIRE(keys.size() == 12);
  CHECK(keys.front() == "blocks.0.att.key.weight");
  CHECK(keys.back() == "blocks.11.att.key.weight");
  CHECK(select({"blocks.1.*.key.weight"}) == std::vector<std::string>{"blocks.1.att.key.weight", "blocks.1.ffn.key.weight"});
  CHECK(select({"*.weight"}) == std::vector<std::string>{"emb.weight", "ln_out.weight", "head.weight"});
  CHECK(select({"**.head.weight"}) == std::vector<std::string>{"head.weight"});  // '**' may match nothing
  CHECK(select({"blocks.0.att.*ey.weight"}) == std::vector<std::string>{"blocks.0.att.key.weight"});
  size_t all_weights = 0;
  for (const auto& n : names) all_weights += n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0;
  CHECK(select({"**.weight"}).size() == all_weights);
  CHECK(select({"blocks.**.weight"}).size() == all_weights - 3);
  CHECK(select({R"(re:blocks\.(0|11)\.att\.(key|value)\.weight)"}) ==
        std::vector<std::string>{"blocks.0.att.key.weight", "blocks.0.att.value.weight", "blocks.11.att.key.weight",
                                 "blocks.11.att.value.weight"});
  CHECK(select({"re:att"}).empty());  // regexes match the whole name
  // RWKV-Lite's default set with an ignore list: everything but layer 0 and gates.
  const auto lite = select(default_lowrank_targets(), {"blocks.0.**", "re:.*\\.gate\\.weight"});
  CHECK(lite.size() == 11 * 3);
  for (const auto& n : lite) {
    CHECK(n.find("gate") == std::string::npos);
    CHECK(n.rfind("blocks.0.", 0) != 0);
  }
  CHECK(TensorSelector({"blocks.*.att.gate.weight", "blocks.*.att.nothing"}, {}).unmatched_targets(names) ==
        std::vector<std::string>{"blocks.*.att.nothing"});

  // v7 has no att.gate: the default targets still select r, k, v.
  const std::vector<std::string> v7 = tiny_names("7v0-834K");
  if (!v7.empty()) CHECK(TensorSelector(default_lowrank_targets(), {}).select(v7).size() == 12 * 3);
}

TEST_CASE("pattern syntax", "[config][selector]") {
  CHECK(TensorPattern::compile("a.*.c").matches("a.b.c"));
  CHECK_FALSE(TensorPattern::compile("a.*.c").matches("a.b.x.c"));
  CHECK(TensorPattern::compile("a.**.c").matches("a.b.x.c"));
  CHECK(TensorPattern::compile("a.**.c").matches("a.c"));
  CHECK(TensorPattern::compile("**").matches("anything.at.all"));
  CHECK(TensorPattern::compile("a*b*c").matches("aXbYbc"));
  CHECK_FALSE(TensorPattern::compile("a*b*c").matches("aXbY"));
  CHECK(TensorPattern::compile("**.lr_a").matches("blocks.0.att.key.lr_a"));
  CHECK_FALSE(TensorPattern::compile("**.lr_a").matches("blocks.0.att.key.lr_b"));
  for (const char* bad : {"", "a..b", ".a", "a.", "a.b?", "a.**b", "re:", "re:(", "a b"}) {
    INFO(bad);
    CHECK_THROWS_AS(TensorPattern::compile(bad), UsageError);
  }
}

TEST_CASE("pass registry and suggestions", "[config]") {
  const auto types = builtin_passes().types();
  CHECK(types == std::vector<std::string>{"cluster_head", "elastic", "fold_embedding", "lowrank", "neuron_major",
                                          "quantize", "sparsity_predictor"});
  CHECK(edit_distance("divsor", "divisor") == 1);
  CHECK(edit_distance("rnak", "rank") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(closest_match("divsor", {"rank", "divisor", "damping"}) == "divisor");
  CHECK(closest_match("zzz", {"rank", "divisor"}).empty());
  PassRegistry registry;
  add_builtin_passes(registry);
  CHECK_THROWS_AS(registry.add("lowrank", [](OptionReader&) { return std::unique_ptr<Pass>(); }), Error);
  CHECK_THROWS_AS(registry.add("empty", nullptr), Error);
  CHECK(registry.find("no-such-pass") == nullptr);
}

TEST_CASE("quantize pass: encodings by first matching rule and byte sizes", "[config][quantize]") {
  using format::encoded_tensor_bytes;
  CHECK(encoded_tensor_bytes("f32", 1, 64) == 256);
  CHECK(encoded_tensor_bytes("f16", 1, 64) == 128);
  CHECK(encoded_tensor_bytes("bf16", 1, 64) == 128);
  CHECK(encoded_tensor_bytes("i8", 3, 64) == 3 * 68);
  CHECK(encoded_tensor_bytes("i4g32", 1, 64) == 2 * 4 + 32);
  CHECK(encoded_tensor_bytes("i4g64", 1, 64) == 4 + 32);
  // i4 rows are whole groups (docs/compact-format.md): a partial last group still takes G/2 bytes.
  CHECK(encoded_tensor_bytes("i4g128", 1, 64) == 4 + 64);   // one partial group
  CHECK(encoded_tensor_bytes("i4g64", 1, 100) == 2 * 4 + 64);
  CHECK(encoded_tensor_bytes("i4g64", 1, 7) == 4 + 32);      // odd count rounds up to whole bytes
  CHECK_THROWS_AS(encoded_tensor_bytes("q9", 1, 8), UsageError);
  CHECK(is_quantize_encoding("i8"));
  CHECK_FALSE(is_quantize_encoding("b1"));

  const std::string path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  CompressedModel model = CompressedModel::from_dense(read_rwkvcpp(path));
  const PipelineConfig c = load_pipeline_config(write_config(kValid, "q.toml"), builtin_passes());
  PassContext ctx{model, nullptr, 0, 1, {}, {}};
  // lowrank then quantize, as the config orders them.
  for (const auto& spec : c.passes) spec.pass->validate(model);
  std::vector<PassReportRow> lowrank_rows = c.passes[0].pass->run(ctx);
  auto& quantize = dynamic_cast<QuantizePass&>(*c.passes[1].pass);
  CHECK(quantize.unmatched_rules(model).empty());
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  quantize.plan(plan);
  CHECK(plan.warnings.empty());
  const std::vector<PassReportRow> rows = quantize.run(ctx);
  REQUIRE(rows.size() == 48 * 2 + 1);  // every lr_a and lr_b, and the head
  REQUIRE(plan.model.names() == model.names());
  for (const auto& t : model.tensors()) CHECK(plan.model.at(t.name).encoding == t.encoding);
  for (const auto& r : rows) {
    CHECK(r.metric == "rel_err");
    REQUIRE(r.value);
    CHECK(*r.value >= 0);
    CHECK(*r.value < (r.encoding_after == "f16" ? 1e-3 : 0.05));
  }
  CHECK(model.at("blocks.0.att.key.lr_a").encoding == "i8");
  CHECK(model.at("blocks.0.att.key.lr_b").encoding == "i8");
  CHECK(model.at("head.weight").encoding == "f16");
  CHECK(model.at("emb.weight").encoding == "f32");  // no rule: unchanged
  const auto& head = rows.back();
  CHECK(head.tensor == "head.weight");
  CHECK(head.bytes_before == 256 * 64 * 4);
  CHECK(head.bytes_after == 256 * 64 * 2);
  // lr_a [8, 64] in i8: 8 rows of 4 + 64 bytes.
  CHECK(rows[0].bytes_after == 8 * 68);
}

TEST_CASE("quantize: methods resolve only when given, need calibration, and need input statistics", "[config][quantize]") {
  // Without method the rule resolves as before (so existing configs hash and write the same).
  const PipelineConfig plain = load_pipeline_config(write_config(kValid, "q.toml"), builtin_passes());
  CHECK(plain.passes[1].settings().dump().find("method") == std::string::npos);
  CHECK_FALSE(plain.passes[1].pass->needs_calibration());
  const PipelineConfig gptq = load_pipeline_config(
      write_config("[[pass]]\ntype = \"quantize\"\nrules = [ { targets = [\"blocks.*.att.key.weight\"], encoding = "
                   "\"i4g64\", method = \"gptq\", damping = 0.05 } ]\n",
                   "g.toml"),
      builtin_passes());
  CHECK(gptq.passes[0].settings().dump() ==
        R"({"rules":[{"targets":["blocks.*.att.key.weight"],"ignore":[],"encoding":"i4g64","method":"gptq","damping":0.05}]})");
  CHECK(gptq.passes[0].pass->needs_calibration());
  CHECK(has_input_statistics("blocks.3.att.output.weight"));
  CHECK(has_input_statistics("blocks.3.att.key.lr_a"));
  CHECK(has_input_statistics("blocks.3.ffn.key.lr_b"));
  CHECK_FALSE(has_input_statistics("blocks.3.ffn.value.weight"));  // relu(k)² is not recorded
  CHECK_FALSE(has_input_statistics("head.weight"));

  const std::string path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const CompressedModel model = CompressedModel::from_dense(read_rwkvcpp(path));
  QuantizeOptions o;
  o.rules = {{{"head.weight", "blocks.0.att.key.weight"}, {}, "i4g64", QuantizeMethod::Weighted, kDefaultGptqDamping}};
  QuantizePass pass(o);
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  try {
    pass.plan(plan);
    FAIL("expected a UsageError");
  } catch (const UsageError& e) {
    CHECK_THAT(e.what(), Catch::Contains("quantize: rule 1 (method \"weighted\") matches 'head.weight', whose input statistics"));
  }
}

TEST_CASE("quantize plan: a rule that matches no tensor is a warning", "[config][quantize]") {
  const std::string path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const CompressedModel model = CompressedModel::from_dense(read_rwkvcpp(path));
  QuantizeOptions o;
  o.rules = {{{"**.lr_a"}, {}, "i8"}, {{"head.weight"}, {}, "f16"}};  // no lowrank before it
  QuantizePass pass(o);
  CompressPlan plan{model.shapes_only(), {}, 0, {}};
  pass.plan(plan);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(plan.warnings[0].find("rule 1") != std::string::npos);
  CHECK(plan.warnings[0].find("**.lr_a") != std::string::npos);
  CHECK(plan.model.at("head.weight").encoding == "f16");
  CHECK(plan.model.at("head.weight").values.data.empty());  // shapes only
}
