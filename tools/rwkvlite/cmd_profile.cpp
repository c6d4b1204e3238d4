// rwkvlite profile MODEL [--fidelities LIST] [--probe ENC] [--direct | --validate-proxy] [--method rtn|gptq]
//                        [--text FILE --offset N --max-bytes N --interleave-zeros] [--json FILE]:
// the sensitivity profile (compress/analysis/sensitivity_profile.h) of a dense model on
// calibration text: per weight matrix and fidelity, the rise in bits per byte when that matrix
// alone is held at that fidelity. `rwkvlite plan` turns it into a mixed-precision config or a
// memory-budget plan. Without --text it reads the bundled text from byte 0 (the training and
// calibration range), and refuses a range that reaches the held-out bytes.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <sstream>

#include "compress/analysis/mixed_precision.h"
#include "compress/analysis/sensitivity_json.h"
#include "compress/analysis/sensitivity_profile.h"
#include "compress/pipeline/calibration.h"
#include "runtime/core/error.h"
#include "runtime/format/layout.h"
#include "runtime/eval/text_source.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/rwkvlite/commands.h"

namespace rwkvlite::cli {
namespace {

struct ProfileCommand {
  tools::ModelArgs model;
  std::string text_path;  // "" = bundled
  uint64_t offset = 0;
  uint64_t max_bytes = 4000;
  bool interleave_zeros = false;
  std::string fidelities = "i2g64,i3g64,i4g64,i8,f16";
  std::string method = "rtn";
  SensitivityOptions options;
  std::string json_path;
};

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

ProfileText calibration_text(const ProfileCommand& c, int64_t vocab) {
  if (c.text_path.empty() && c.offset + c.max_bytes > kHeldOutStart)
    throw UsageError("profile: bytes [" + std::to_string(c.offset) + ", " + std::to_string(c.offset + c.max_bytes) +
                     ") of the bundled text reach its held-out range (byte " + std::to_string(kHeldOutStart) +
                     " on); calibrate below it");
  const std::string path = c.text_path.empty() ? bundled_text_path() : c.text_path;
  std::string bytes = read_text_range(path, c.offset, c.max_bytes);
  if (c.interleave_zeros) bytes = interleave_zero_bytes(bytes);
  const auto tokenizer = tokenizer_for(vocab, c.model.tokenizer);
  ProfileText text;
  text.tokens = tokenizer->encode(bytes);
  for (int32_t t : text.tokens) text.token_bytes.push_back(static_cast<int32_t>(tokenizer->token_bytes(t).size()));
  return text;
}

void print_profile(const SensitivityProfile& p, std::FILE* out) {
  std::fprintf(out, "mode %s, method %s, %lld tokens, base %.5f bits/byte, %lld evaluations in %.1f s\n",
               p.mode.c_str(), p.method.c_str(),
               static_cast<long long>(p.tokens_scored), p.base_bits_per_byte, static_cast<long long>(p.evaluations),
               p.seconds);
  std::fprintf(out, "%-34s", "tensor (KL bits/byte)");
  for (const auto& f : p.fidelities) std::fprintf(out, " %10s", f.c_str());
  std::fprintf(out, "\n");
  for (const auto& t : p.tensors) {
    std::fprintf(out, "%-34s", t.name.c_str());
    for (const auto& c : t.costs) {
      if (c.available) std::fprintf(out, " %10.5f%s", c.cost, c.measured ? "" : "~");
      else std::fprintf(out, " %10s", "-");
    }
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "(~: proxy estimate, the probe %s's KL scaled by squared round-trip error; -: does not apply)\n",
               p.probe.c_str());
  if (p.proxy_spearman_all) {
    std::fprintf(out, "proxy vs direct, Spearman over non-probe pairs: %.3f; per fidelity:", *p.proxy_spearman_all);
    for (const auto& [f, rho] : p.proxy_spearman_per_fidelity) std::fprintf(out, " %s %.3f", f.c_str(), rho);
    std::fprintf(out, "\n");
  }
}

int run_profile(ProfileCommand c) {
  const Model model = c.model.load_dense();
  c.options.fidelities = split_list(c.fidelities);
  c.options.threads = c.model.threads;
  c.options.progress = [](int64_t done, int64_t total) {
    if (done == total || done % 10 == 0) spdlog::info("profile {}/{} evaluations", done, total);
  };
  const ProfileText text = calibration_text(c, model.dims.n_vocab);
  // A gptq profile holds each calibrated matrix as a gptq config would (sensitivity_profile.h),
  // through the input moments of the same calibration that `plan --method gptq` configs run.
  CalibrationData calibration;
  const CalibrationConfig cal = mixed_precision_calibration();
  if (c.method == "gptq") {
    CalibrationRequest request;
    request.text = read_calibration_text(cal).text;
    for (const auto& [name, t] : model.tensors) {
      if (layout::is_calibrated_projection(name)) request.projections.insert(name);
    }
    request.max_samples = 1;  // moments only: no predictor is trained
    request.threads = c.model.threads;
    spdlog::info("gptq profile: input moments of {} matrices from bytes [{}, {}) of the bundled text",
                 request.projections.size(), cal.offset, cal.offset + cal.bytes);
    calibration = run_calibration(model, request);
    c.options.input_moments = &calibration.input_second_moment;
  }
  const SensitivityProfile profile = profile_sensitivity(model, text, c.options);
  if (c.json_path != "-") print_profile(profile, stdout);
  if (!c.json_path.empty()) {
    nlohmann::ordered_json j = profile_to_json(profile);
    // Where it came from, for `rwkvlite plan`'s emitted configs (ignored when read back).
    j["model"] = c.model.path;
    j["calibration_text"] = c.text_path.empty() ? "bundled" : c.text_path;
    j["calibration_offset"] = c.offset;
    j["calibration_bytes"] = c.max_bytes;
    if (c.method == "gptq")
      j["moments_calibration"] = {{"text", cal.text}, {"offset", cal.offset}, {"bytes", cal.bytes}};
    tools::write_json(c.json_path, j);
  }
  return 0;
}

}  // namespace

void register_profile(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "profile", "Measure how much each weight matrix's precision costs in bits per byte (sensitivity profile)");
  auto c = std::make_shared<ProfileCommand>();
  c->model.add_to(*cmd, "Dense model file: rwkv.cpp .bin, .safetensors or .pth", true);
  cmd->add_option("--fidelities", c->fidelities, "Comma-separated encodings to profile, and low-rank fidelities lr<rank>:<encoding> (lr32:i8)")->capture_default_str();
  cmd->add_option("--probe", c->options.probe, "Proxy mode: the one fidelity evaluated directly per tensor")
      ->capture_default_str();
  auto* direct = cmd->add_flag("--direct", c->options.direct, "Evaluate every (tensor, fidelity), no proxy");
  cmd->add_flag("--validate-proxy", c->options.validate_proxy,
                "Run the proxy and every direct evaluation, and report their Spearman rank correlation")
      ->excludes(direct);
  cmd->add_option("--method", c->method,
                  "How the calibrated matrices are held: rtn (round to nearest), or gptq (GPTQ and "
                  "activation-aware low rank through input moments of bytes [0, 200000) of the bundled text)")
      ->check(CLI::IsMember({"rtn", "gptq"}))
      ->capture_default_str();
  cmd->add_option("--text", c->text_path, "Calibration text file (default: the bundled tinyshakespeare.txt)");
  cmd->add_option("--offset", c->offset, "First byte of the calibration text")->capture_default_str();
  cmd->add_option("--max-bytes", c->max_bytes, "Calibration bytes per evaluation")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--interleave-zeros", c->interleave_zeros, "Feed the text as c0 00 c1 00 ... (the tiny v6 model)");
  cmd->add_option("--json", c->json_path, "Write the profile as JSON to this file ('-': the JSON alone on stdout)");
  cmd->callback([&action, c] { action = [c] { return run_profile(*c); }; });
}

}  // namespace rwkvlite::cli
