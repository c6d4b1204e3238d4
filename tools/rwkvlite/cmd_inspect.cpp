// rwkvlite inspect MODEL [--json]: format, architecture, dimensions, parameters and bytes per
// component as stored in the file.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>

#include "tools/common/json_output.h"
#include "tools/common/model_args.h"
#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "runtime/core/arch.h"
#include "runtime/core/file_io.h"

namespace rwkvlite::cli {
namespace {

// Bytes one element occupies in a source dtype (quantized blocks of 32 spread over elements).
double bytes_per_element(const std::string& dtype) {
  static const std::map<std::string, double> sizes = {
      {"FP32", 4}, {"F32", 4}, {"FP16", 2}, {"F16", 2}, {"BF16", 2},
      {"Q4_0", 18.0 / 32}, {"Q4_1", 20.0 / 32}, {"Q5_0", 22.0 / 32}, {"Q5_1", 24.0 / 32}, {"Q8_0", 34.0 / 32}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 4.0 : it->second;
}

}  // namespace

void register_inspect(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's format, architecture, dimensions and size per component");
  auto args = std::make_shared<tools::ModelArgs>();
  auto as_json = std::make_shared<bool>(false);
  args->add_to(*cmd, "Model file: rwkv.cpp .bin, .safetensors or .pth", false);
  cmd->add_flag("--json", *as_json, "Print JSON instead of text");
  cmd->callback([&action, args, as_json] {
    action = [args, as_json] {
      const Model m = args->load_dense();
      std::map<std::string, std::pair<int64_t, double>> per_component;  // params, bytes
      for (const auto& [name, t] : m.tensors) {
        auto& c = per_component[component_of(name)];
        c.first += t.numel();
        const auto it = m.source_dtypes.find(name);
        c.second += t.numel() * bytes_per_element(it == m.source_dtypes.end() ? "FP32" : it->second);
      }
      nlohmann::ordered_json j;
      j["file"] = args->path;
      j["file_bytes"] = file_size_or_throw(args->path);
      j["format"] = m.source_format;
      j["arch"] = arch_name(m.arch);
      j["dims"] = {{"n_layer", m.dims.n_layer}, {"n_embd", m.dims.n_embd},     {"n_vocab", m.dims.n_vocab},
                   {"n_head", m.dims.n_head},   {"head_size", m.dims.head_size}, {"ffn_size", m.dims.ffn_size}};
      if (m.arch == ArchVersion::V6) j["dims"].update({{"lora_maa", m.dims.lora_maa}, {"lora_decay", m.dims.lora_decay}});
      if (m.arch == ArchVersion::V7) {
        j["dims"].update({{"lora_w", m.dims.lora_w}, {"lora_a", m.dims.lora_a}, {"lora_v", m.dims.lora_v},
                          {"lora_g", m.dims.lora_g}});
      }
      if (m.arch != ArchVersion::V4) j["ln_x_eps"] = m.ln_x_eps;
      j["parameters"] = m.parameter_count();
      j["tensors"] = m.tensors.size();
      for (const char* c : {"embedding", "time_mix", "channel_mix", "head", "norms"}) {
        j["components"][c] = {{"parameters", per_component[c].first},
                              {"bytes", static_cast<int64_t>(per_component[c].second + 0.5)}};
      }
      if (*as_json) {
        tools::write_json("-", j);
        return 0;
      }
      std::printf("file        %s (%s)\n", args->path.c_str(), human_bytes(j["file_bytes"].get<double>()).c_str());
      std::printf("format      %s\n", m.source_format.c_str());
      std::printf("arch        RWKV %s\n", arch_name(m.arch));
      std::printf("dims        %lld layers, n_embd %lld, vocab %lld, ffn %lld", (long long)m.dims.n_layer,
                  (long long)m.dims.n_embd, (long long)m.dims.n_vocab, (long long)m.dims.ffn_size);
      if (m.arch != ArchVersion::V4) {
        std::printf(", %lld heads x %lld", (long long)m.dims.n_head, (long long)m.dims.head_size);
      }
      std::printf("\nparameters  %lld in %zu tensors\n", (long long)m.parameter_count(), m.tensors.size());
      std::printf("%-12s %12s %12s\n", "component", "parameters", "bytes");
      for (const char* c : {"embedding", "time_mix", "channel_mix", "head", "norms"}) {
        std::printf("%-12s %12lld %12s\n", c, (long long)per_component[c].first,
                    human_bytes(per_component[c].second).c_str());
      }
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
