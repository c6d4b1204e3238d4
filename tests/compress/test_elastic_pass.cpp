// The elastic pass and the elastic runtime on the tiny v5.2 model (vendored): the file holds
// every profiled matrix at each fidelity; at any budget the runtime holds exactly the planned
// bytes, never more than the budget on any token, chooses what the planner chooses from the
// profile, and computes bit for bit what the mixed-precision file of the same choice computes
// (round to nearest and GPTQ); bad profiles, budgets and metadata give one clear error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "compress/analysis/mixed_precision.h"
#include "compress/analysis/sensitivity_json.h"
#include "compress/analysis/sensitivity_profile.h"
#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/pipeline.h"
#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/eval/text_source.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/elastic_meta.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"
#include "runtime/plan/budget_planner.h"
#include "runtime/store/compact_model.h"
#include "tests/compress/dry_run_plan_check.h"
#include "tests/support/pipeline_test_helpers.h"
#include "tests/support/runtime_file_builder.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

const std::string kModel = tiny_model_path("5v2-730K", "FP32");

const Model& tiny_v52() {
  static const Model m = load_model(kModel);
  return m;
}

ProfileText calibration_bytes(size_t n) {
  ProfileText t;
  for (unsigned char c : read_text_range(bundled_text_path(), 0, n)) {
    t.tokens.push_back(c);
    t.token_bytes.push_back(1);
  }
  return t;
}

// Compressing `model` (the tiny v5.2 one by default) with the config at `cfg` into the scratch folder.
CompressOptions tiny_options(const std::string& cfg, const std::string& out_name, const std::string& model = kModel) {
  CompressOptions o;
  o.model_path = model;
  o.config_path = cfg;
  o.output_path = scratch_dir() + "/" + out_name;
  o.force = true;
  o.threads = 2;
  return o;
}

std::string compress_tiny(const std::string& cfg, const std::string& out_name) {
  const CompressOptions o = tiny_options(cfg, out_name);
  REQUIRE(run_compress(o, builtin_passes()) == 0);
  return o.output_path;
}

// A profile written to the scratch folder; its path.
std::string write_profile(const SensitivityProfile& p, const std::string& tag) {
  const std::string path = scratch_dir() + "/" + tag + ".json";
  write_file_atomically(path, profile_to_json(p).dump(1));
  return path;
}

SensitivityOptions fidelities_options() {
  SensitivityOptions o;
  o.fidelities = {"i2g64", "i4g64", "i8", "f16", "lr8:i4g64"};
  o.probe = "i2g64";
  return o;
}

// The rtn profile and the elastic file made from it, shared by the cases that only read them.
struct Fixture {
  SensitivityProfile profile;
  std::string profile_path, file;
};
const Fixture& rtn_fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.profile = profile_sensitivity(tiny_v52(), calibration_bytes(150), fidelities_options());
    x.profile_path = write_profile(x.profile, "elastic-rtn-profile");
    const std::string cfg = scratch_dir() + "/elastic-rtn.toml";
    write_file_atomically(cfg, "[[pass]]\ntype = \"elastic\"\nprofile = \"elastic-rtn-profile.json\"\n");
    x.file = compress_tiny(cfg, "elastic-rtn.rwkvlite");
    return x;
  }();
  return f;
}

RuntimeOptions with_budget(const std::string& budget) {
  RuntimeOptions o;
  o.threads = 2;
  o.memory_budget = MemoryBudget::parse(budget, "--memory-budget");
  return o;
}

// The planner's choice from the profile alone, for `budget` bytes with `fixed` bytes not elastic.
std::vector<std::string> planned_from_profile(const SensitivityProfile& p, int64_t budget, int64_t fixed) {
  std::vector<PlanItem> items;
  for (const TensorSensitivity& t : p.tensors) {
    PlanItem item{.name = t.name, .choices = {}};
    for (const FidelityCost& c : t.costs)
      if (c.available) item.choices.push_back({c.encoding, c.bytes, c.cost});
    items.push_back(item);
  }
  const Plan plan = plan_within_bytes(items, budget - fixed);
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); ++i) out.push_back(items[i].choices[static_cast<size_t>(plan.chosen[i])].label);
  return out;
}

std::vector<std::string> chosen_fidelities(const ElasticSelection& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.meta.items.size(); ++i) out.push_back(s.meta.items[i].choices[s.chosen[i]].fidelity);
  return out;
}

// The engine holds exactly its plan's bytes after loading, and never more than its budget while
// it runs through `text`, checked after every token.
void check_within_budget(CompactEngine& ce, const std::string& text) {
  const int64_t b = ce.budget_bytes.value();
  CHECK(ce.elastic->planned_bytes() <= b);
  CHECK(ce.residency->current() == ce.elastic->planned_bytes());  // the accounting is exact
  State s = ce.engine->new_state();
  std::vector<float> logits(static_cast<size_t>(ce.engine->vocab_size()));
  for (unsigned char c : text) {
    ce.engine->eval_token(c, s, logits.data());
    REQUIRE(ce.residency->current() <= b);
  }
  CHECK(ce.residency->peak() <= b);
}

// Logits of every position of `text` fed byte by byte.
std::vector<float> all_logits(Engine& engine, const std::string& text) {
  State s = engine.new_state();
  std::vector<float> all, logits(static_cast<size_t>(engine.vocab_size()));
  for (unsigned char c : text) {
    engine.eval_token(c, s, logits.data());
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// Compresses the tiny model with the mixed-precision config of the selection's choices.
std::string compress_mixed(const ElasticSelection& s, bool gptq, const std::string& tag) {
  MixedPrecisionPlan plan;
  const std::vector<std::string> f = chosen_fidelities(s);
  for (size_t i = 0; i < f.size(); ++i) plan.tensors.push_back({s.meta.items[i].name, f[i], 0, 0});
  const std::string cfg = scratch_dir() + "/" + tag + ".toml";
  write_file_atomically(cfg, mixed_precision_config_toml(plan, {tag}, gptq));
  return compress_tiny(cfg, tag + ".rwkvlite");
}

}  // namespace

TEST_CASE("elastic file: every profiled matrix at each fidelity, with the profile's costs") {
  const Fixture& f = rtn_fixture();
  const format::CompactFile file = format::CompactFile::open(f.file);
  CHECK(file.verify().empty());
  const auto meta = layout::ElasticMeta::from_json(file.metadata(), f.file);
  REQUIRE(meta);
  CHECK(meta->method == "rtn");
  CHECK(meta->dense_fp16_bytes == tiny_v52().parameter_count() * 2);
  REQUIRE(meta->items.size() == f.profile.tensors.size());
  for (size_t i = 0; i < meta->items.size(); ++i) {
    const TensorSensitivity& t = f.profile.tensors[i];
    INFO(t.name);
    CHECK(meta->items[i].name == t.name);
    CHECK_FALSE(file.find(t.name));  // the dense matrix is not kept
    size_t k = 0;
    for (const FidelityCost& c : t.costs) {
      if (!c.available) continue;
      const layout::ElasticChoice& choice = meta->items[i].choices.at(k++);
      CHECK(choice.fidelity == c.encoding);
      CHECK(choice.cost == c.cost);
      int64_t stored = 0;
      for (const std::string& name : choice.tensors) {
        REQUIRE(file.find(name));
        stored += static_cast<int64_t>(file.find(name)->nbytes);
        const bool lowrank = c.encoding.rfind("lr", 0) == 0;
        CHECK(format::encoding_name(file.find(name)->encoding) == (lowrank ? std::string("i4g64") : c.encoding));
      }
      CHECK(stored == c.bytes);
    }
    CHECK(k == meta->items[i].choices.size());
  }
  // The dry run plans the file to the byte (the costs it writes are known before the run).
  check_plan_equals_written(scratch_dir() + "/elastic-rtn.toml");
}

TEST_CASE("elastic runtime: at each budget it holds exactly the planned bytes, never above the budget") {
  const Fixture& f = rtn_fixture();
  const std::string text = read_text_range(bundled_text_path(), 1000000, 120);
  const int64_t hundred = tiny_v52().parameter_count() * 2;
  for (const std::string budget : {"100%", "40%", "25%", "20%", "800000"}) {
    INFO(budget);
    CompactEngine ce = load_compact_engine(f.file, with_budget(budget));
    REQUIRE(ce.elastic);
    const int64_t b = ce.budget_bytes.value();
    CHECK(b == MemoryBudget::parse(budget, "x").resolve(hundred));
    CHECK(chosen_fidelities(*ce.elastic) == planned_from_profile(f.profile, b, ce.elastic->fixed_bytes));
    check_within_budget(ce, text);
  }
  // Tighter budgets predict more loss.
  const CompactEngine loose = load_compact_engine(f.file, with_budget("40%"));
  const CompactEngine tight = load_compact_engine(f.file, with_budget("20%"));
  CHECK(tight.elastic->predicted_kl_bits_per_byte > loose.elastic->predicted_kl_bits_per_byte);
  CHECK(tight.elastic->elastic_bytes < loose.elastic->elastic_bytes);

  // No budget: every matrix at its largest form (f16 here).
  const CompactEngine full = load_compact_engine(f.file, 2);
  for (const std::string& fidelity : chosen_fidelities(*full.elastic)) CHECK(fidelity == "f16");
  CHECK_FALSE(full.budget_bytes);

  // Below the smallest resident forms the layers stream; below the smallest streamed plan, one
  // ResourceError saying what that needs.
  int64_t smallest_resident = full.elastic->fixed_bytes, smallest_non_layer = 0, largest_layer = 0;
  std::map<int64_t, int64_t> smallest_by_layer;
  for (const TensorSensitivity& t : f.profile.tensors) {
    int64_t least = INT64_MAX;
    for (const FidelityCost& c : t.costs)
      if (c.available) least = std::min(least, c.bytes);
    smallest_resident += least;
    if (const auto layer = layout::layer_index(t.name)) smallest_by_layer[*layer] += least;
    else smallest_non_layer += least;
  }
  for (const auto& [layer, bytes] : smallest_by_layer) largest_layer = std::max(largest_layer, bytes);
  const int64_t smallest_streamed = full.elastic->fixed_bytes + smallest_non_layer + 2 * largest_layer;
  CHECK_FALSE(load_compact_engine(f.file, with_budget(std::to_string(smallest_resident))).elastic->streaming);
  CHECK(load_compact_engine(f.file, with_budget(std::to_string(smallest_resident - 1))).elastic->streaming);
  CHECK_NOTHROW(load_compact_engine(f.file, with_budget(std::to_string(smallest_streamed))));
  CHECK_THROWS_AS(load_compact_engine(f.file, with_budget(std::to_string(smallest_streamed - 1))), ResourceError);
  CHECK_THROWS_WITH(load_compact_engine(f.file, with_budget(std::to_string(smallest_streamed - 1))),
                    Catch::Contains("needs at its smallest: " + std::to_string(smallest_streamed) + " bytes"));
}

TEST_CASE("streamed layers: within the budget on every token, each layer read once per token") {
  const Fixture& f = rtn_fixture();
  const std::string text = read_text_range(bundled_text_path(), 1000000, 80);
  for (const std::string budget : {"12%", "8%", "6%"}) {
    for (const bool pipelined : {true, false}) {
      INFO(budget << (pipelined ? " pipelined" : " sequential"));
      RuntimeOptions o = with_budget(budget);
      o.stream_options.pipelined = pipelined;
      CompactEngine ce = load_compact_engine(f.file, o);
      REQUIRE(ce.elastic->streaming);
      const StreamingPlan& sp = *ce.elastic->streaming;
      check_within_budget(ce, text);
      const StreamStats& st = *ce.stats->stream;
      const int64_t tokens = static_cast<int64_t>(text.size());
      const int64_t streamed_layers = tiny_v52().dims.n_layer - sp.first_streamed_layer;
      // Every streamed layer once per token; the loader may be up to two layers ahead.
      CHECK(st.layer_loads >= tokens * streamed_layers);
      CHECK(st.layer_loads <= tokens * streamed_layers + (pipelined ? 2 : 0));
      CHECK(st.bytes_read >= tokens * sp.streamed_bytes_per_token);
      CHECK(st.bytes_read <= tokens * sp.streamed_bytes_per_token + 2 * sp.slot_bytes);
    }
  }
}

TEST_CASE("streamed layers compute what the resident mixed-precision file of the same choice computes") {
  const Fixture& f = rtn_fixture();
  const std::string text = read_text_range(bundled_text_path(), 1000000, 64);
  RuntimeOptions o = with_budget("9%");
  CompactEngine pipelined = load_compact_engine(f.file, o);
  REQUIRE(pipelined.elastic->streaming);
  o.stream_options.pipelined = false;
  o.stream_options.io_bandwidth_bytes_per_second = 200e6;
  CompactEngine sequential = load_compact_engine(f.file, o);
  CompactEngine mixed = load_compact_engine(compress_mixed(*pipelined.elastic, false, "elastic-stream-mixed"), 2);
  const std::vector<float> expected = all_logits(*mixed.engine, text);
  CHECK(all_logits(*pipelined.engine, text) == expected);
  CHECK(all_logits(*sequential.engine, text) == expected);
  // Sequence mode (a prompt at once) passes the layers in the same order.
  std::vector<int32_t> tokens(text.begin(), text.end());
  std::vector<float> last(static_cast<size_t>(pipelined.engine->vocab_size()));
  State s = pipelined.engine->new_state();
  pipelined.engine->eval_sequence(tokens.data(), tokens.size(), s, last.data());
  CHECK(std::vector<float>(expected.end() - static_cast<std::ptrdiff_t>(last.size()), expected.end()) == last);

  // --stream streams where holding fits too; it needs a budget and an elastic file.
  RuntimeOptions forced = with_budget("40%");
  forced.stream = true;
  CHECK(load_compact_engine(f.file, forced).elastic->streaming);
  RuntimeOptions no_budget;
  no_budget.stream = true;
  CHECK_THROWS_AS(load_compact_engine(f.file, no_budget), UsageError);
  const std::string plain = write_runtime_file(tiny_v52(), RuntimeFileSpec{}, "plain-stream.rwkvlite");
  CHECK_THROWS_AS(load_compact_engine(plain, forced), UsageError);
}

TEST_CASE("elastic runtime computes what the mixed-precision file of the same choice computes") {
  const Fixture& f = rtn_fixture();
  const std::string text = read_text_range(bundled_text_path(), 1000000, 64);
  // The first budget whose plan holds both low-rank and 2-bit forms, so both are compared.
  std::optional<CompactEngine> found;
  for (int percent = 19; percent <= 40 && !found; ++percent) {
    CompactEngine e = load_compact_engine(f.file, with_budget(std::to_string(percent) + "%"));
    const std::vector<std::string> chosen = chosen_fidelities(*e.elastic);
    if (std::count(chosen.begin(), chosen.end(), "lr8:i4g64") > 0 && std::count(chosen.begin(), chosen.end(), "i2g64") > 0)
      found = std::move(e);
  }
  REQUIRE(found);
  CompactEngine& elastic = *found;
  CompactEngine mixed = load_compact_engine(compress_mixed(*elastic.elastic, false, "elastic-rtn-mixed"), 2);
  CHECK(mixed.residency->current() == elastic.residency->current());
  CHECK(all_logits(*elastic.engine, text) == all_logits(*mixed.engine, text));
}

TEST_CASE("gptq elastic file: its forms are the gptq config's, bit for bit", "[gptq]") {
  const Model& model = tiny_v52();
  CalibrationRequest request;
  request.text = read_calibration_text(mixed_precision_calibration()).text;
  for (const auto& [name, t] : model.tensors)
    if (layout::is_calibrated_projection(name)) request.projections.insert(name);
  request.max_samples = 1;
  request.threads = 2;
  const CalibrationData calibration = run_calibration(model, request);
  SensitivityOptions o = fidelities_options();
  o.input_moments = &calibration.input_second_moment;
  const SensitivityProfile p = profile_sensitivity(model, calibration_bytes(120), o);
  CHECK(p.method == "gptq");
  write_profile(p, "elastic-gptq-profile");
  const std::string cfg = scratch_dir() + "/elastic-gptq.toml";
  write_file_atomically(cfg, "[calibration]\ntext = \"bundled\"\noffset = 0\nbytes = 200000\nseed = 1234\n\n"
                             "[[pass]]\ntype = \"elastic\"\nprofile = \"elastic-gptq-profile.json\"\n");
  const std::string gptq_file = compress_tiny(cfg, "elastic-gptq.rwkvlite");

  const std::string text = read_text_range(bundled_text_path(), 1000000, 64);
  CompactEngine elastic = load_compact_engine(gptq_file, with_budget("22%"));
  CHECK(elastic.elastic->meta.method == "gptq");
  CompactEngine mixed = load_compact_engine(compress_mixed(*elastic.elastic, true, "elastic-gptq-mixed"), 2);
  CHECK(all_logits(*elastic.engine, text) == all_logits(*mixed.engine, text));
}

TEST_CASE("elastic pass: a profile of another model or a fidelity it lacks is one usage error") {
  const Fixture& f = rtn_fixture();
  auto run_with = [&](const std::string& body, const std::string& model) {
    const std::string cfg = scratch_dir() + "/elastic-bad.toml";
    write_file_atomically(cfg, body);
    return run_compress(tiny_options(cfg, "elastic-bad.rwkvlite", model), builtin_passes());
  };
  const std::string pass = "[[pass]]\ntype = \"elastic\"\nprofile = \"" + f.profile_path + "\"\n";
  CHECK_THROWS_WITH(run_with(pass, tiny_model_path("7v0-834K", "FP32")),
                    Catch::Contains("is of a model with 731904 parameters; this one has 829888"));
  CHECK_THROWS_AS(run_with(pass, tiny_model_path("7v0-834K", "FP32")), UsageError);
  CHECK_THROWS_WITH(run_with(pass + "fidelities = [\"i3g64\"]\n", kModel),
                    Catch::Contains("elastic-bad.toml:4:14: fidelity 'i3g64' is not in the profile"));
  CHECK_THROWS_AS(run_with(pass + "fidelities = [\"i8\", \"i8\"]\n", kModel), UsageError);
  CHECK_THROWS_AS(run_with("[[pass]]\ntype = \"elastic\"\nprofile = \"no-such-profile.json\"\n", kModel), InputError);
  write_file_atomically(scratch_dir() + "/not-a-profile.json", "{\"schema\": 1");
  CHECK_THROWS_WITH(run_with("[[pass]]\ntype = \"elastic\"\nprofile = \"not-a-profile.json\"\n", kModel),
                    Catch::Contains("(the elastic pass's profile) is not JSON"));
  CHECK_FALSE(exists(scratch_dir() + "/elastic-bad.rwkvlite"));
  // A subset of fidelities stores only those.
  CHECK(run_with(pass + "fidelities = [\"i8\", \"i4g64\"]\n", kModel) == 0);
  const format::CompactFile file = format::CompactFile::open(scratch_dir() + "/elastic-bad.rwkvlite");
  const auto meta = layout::ElasticMeta::from_json(file.metadata(), "x");
  for (const auto& item : meta->items) CHECK(item.choices.size() == 2);
}

TEST_CASE("elastic metadata that does not match the file is one input error") {
  const Model& m = tiny_v52();
  auto load_with = [&](const nlohmann::json& elastic) {
    RuntimeFileSpec spec;
    spec.metadata = {{"elastic", elastic}};
    const std::string path = write_runtime_file(m, spec, "elastic-hostile.rwkvlite");
    return load_compact_engine(path, 2);
  };
  const nlohmann::json base = {{"method", "rtn"}, {"base_bits_per_byte", 2.0}, {"dense_fp16_bytes", 100},
                               {"tokens_scored", 10}, {"profile_xxh64", "0000000000000000"}};
  auto with_items = [&](nlohmann::json items) {
    nlohmann::json j = base;
    j["items"] = std::move(items);
    return j;
  };
  const nlohmann::json missing = with_items(
      {{{"name", "head.weight"}, {"choices", {{{"fidelity", "i8"}, {"bytes", 10}, {"cost", 0.1}, {"tensors", {"head.weight@i8"}}}}}}});
  CHECK_THROWS_WITH(load_with(missing), Catch::Contains("lists tensor 'head.weight@i8', which the file lacks"));
  CHECK_THROWS_AS(load_with(with_items(nlohmann::json::array({{{"name", "x"}, {"choices", nlohmann::json::array()}}}))), InputError);
  CHECK_THROWS_AS(load_with(with_items({{{"name", "x"}, {"choices", {{{"fidelity", "i8"}, {"bytes", -1}, {"cost", 0.1}, {"tensors", {"x@i8"}}}}}}})),
                  InputError);
  CHECK_THROWS_AS(load_with(with_items({{{"name", "x"}, {"choices", {{{"fidelity", "i8"}, {"bytes", 1}, {"cost", 0.1}, {"tensors", {"x"}}}}}}})),
                  InputError);
  CHECK_THROWS_AS(load_with(base), InputError);  // no items
  CHECK_THROWS_AS(load_with("elastic"), InputError);
  // A non-elastic file that does not fit its budget fails with ResourceError; a percentage
  // needs an elastic file's dense FP16 size.
  const std::string plain = write_runtime_file(m, RuntimeFileSpec{}, "plain.rwkvlite");
  CHECK_THROWS_AS(load_compact_engine(plain, with_budget("100000")), ResourceError);
  CHECK_THROWS_AS(load_compact_engine(plain, with_budget("50%")), UsageError);
  CHECK_NOTHROW(load_compact_engine(plain, with_budget("1GB")));
  CHECK_THROWS_AS(MemoryBudget::parse("-3", "--memory-budget"), UsageError);
  CHECK_THROWS_AS(MemoryBudget::parse("12parsecs", "--memory-budget"), UsageError);
}
