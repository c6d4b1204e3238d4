// The pipeline frees each part of the calibration data once no later pass reads it (the sampled
// activations and input moments are most of compress's peak memory at the 0.1B shape). Probe
// passes, registered beside the built-in ones, record what each one is given.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "compress/passes/builtin_passes.h"
#include "compress/pipeline/pass_registry.h"
#include "compress/pipeline/pipeline.h"
#include "tests/support/test_support.h"

namespace {

using namespace rwkvlite;

struct Seen {
  size_t moments = 0;       // entries of input_second_moment
  size_t ffn_layers = 0;    // layers of ffn_key_inputs
  int64_t head_rows = 0;    // rows of head_inputs
};
std::map<std::string, Seen>& seen_by() {
  static std::map<std::string, Seen> seen;
  return seen;
}

// A pass that changes nothing, declares `use`, and records the calibration data it was given.
class ProbePass : public Pass {
 public:
  ProbePass(std::string name, CalibrationUse use) : name_(std::move(name)), use_(use) {}
  bool needs_calibration() const override { return true; }
  CalibrationUse calibration_use() const override { return use_; }
  void validate(const CompressedModel&) const override {}
  void plan(CompressPlan&) const override {}
  std::vector<PassReportRow> run(PassContext& ctx) override {
    REQUIRE(ctx.calibration);
    seen_by()[name_] = {ctx.calibration->input_second_moment.size(), ctx.calibration->ffn_key_inputs.size(),
                        ctx.calibration->head_inputs.rows()};
    return {};
  }

 private:
  std::string name_;
  CalibrationUse use_;
};

}  // namespace

TEST_CASE("calibration data is freed after the last pass that reads it", "[compress][calibration]") {
  const std::string model = rwkvlite::test::tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model);
  PassRegistry registry;
  add_builtin_passes(registry);
  auto probe = [&](const std::string& type, CalibrationUse use) {
    registry.add(type, [type, use](OptionReader&) -> std::unique_ptr<Pass> { return std::make_unique<ProbePass>(type, use); });
  };
  probe("probe_all", {true, true, true});
  probe("probe_ffn_head", {false, true, true});
  probe("probe_head", {false, false, true});
  probe("probe_none", {false, false, false});

  const std::string dir = rwkvlite::test::scratch_dir();
  const std::string config_path = dir + "/calibration-release.toml";
  std::ofstream(config_path) << "[calibration]\ntext = \"bundled\"\noffset = 0\nbytes = 4000\nsamples = 256\n"
                                "[[pass]]\ntype = \"probe_all\"\n"
                                "[[pass]]\ntype = \"lowrank\"\ntargets = [\"blocks.0.att.key.weight\"]\n"
                                "divisor = 4\nactivation_aware = true\n"
                                "[[pass]]\ntype = \"probe_ffn_head\"\n"
                                "[[pass]]\ntype = \"probe_head\"\n"
                                "[[pass]]\ntype = \"probe_none\"\n";
  CompressOptions o;
  o.model_path = model;
  o.config_path = config_path;
  o.output_path = dir + "/calibration-release.rwkvlite";
  o.force = true;
  seen_by().clear();
  REQUIRE(run_compress(o, registry) == 0);

  const int64_t layers = 12;  // the tiny v5.2 model
  // The first pass sees everything calibration recorded.
  CHECK(seen_by()["probe_all"].moments > 0);
  CHECK(seen_by()["probe_all"].ffn_layers == static_cast<size_t>(layers));
  CHECK(seen_by()["probe_all"].head_rows > 0);
  // The moments are gone once the activation-aware lowrank pass, their last reader, is done.
  CHECK(seen_by()["probe_ffn_head"].moments == 0);
  CHECK(seen_by()["probe_ffn_head"].ffn_layers == static_cast<size_t>(layers));
  CHECK(seen_by()["probe_head"].ffn_layers == 0);
  CHECK(seen_by()["probe_head"].head_rows == seen_by()["probe_all"].head_rows);
  CHECK(seen_by()["probe_none"].head_rows == 0);
}
