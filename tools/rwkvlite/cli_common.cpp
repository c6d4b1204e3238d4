#include "tools/rwkvlite/cli_common.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/eval/text_source.h"

namespace rwkvlite::cli {

void ModelArgs::add_to(CLI::App& cmd, bool with_tokenizer) {
  cmd.add_option("model", path, "Model file: rwkv.cpp .bin, .safetensors or .pth")->required();
  cmd.add_option("--threads", threads, "Worker threads for matrix products")->check(CLI::Range(1, 256));
  cmd.add_option("--ln-x-eps", ln_x_eps,
                 "Group-norm epsilon of v5/v6/v7 time-mix (default: what the file implies; rwkv.cpp files "
                 "use 1e-5 for v5 and 64e-5 for v6/v7, BlinkDL .pth files 64e-5)");
  if (with_tokenizer) {
    cmd.add_option("--tokenizer", tokenizer,
                   "bytes | world | PATH to a World-format vocabulary (default: from the vocabulary size)");
  }
}

Model ModelArgs::load() const {
  const auto t0 = std::chrono::steady_clock::now();
  LoadOptions options;
  options.ln_x_eps = ln_x_eps;
  Model m = load_model(path, options);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("loaded {}: {} RWKV {}, {} layers x {}, vocab {}, {:.1f} M parameters in {:.3f} s", path,
               m.source_format, arch_name(m.arch), m.dims.n_layer, m.dims.n_embd, m.dims.n_vocab,
               m.parameter_count() / 1e6, secs);
  return m;
}

void TextArgs::add_to(CLI::App& cmd, const std::string& default_path, uint64_t default_offset) {
  path = default_path;
  offset = default_offset;
  cmd.add_option("--text", path, "Text file (default: the bundled tinyshakespeare.txt)");
  cmd.add_option("--offset", offset, "First byte of the text to use (default: the held-out range for the bundled text)");
  cmd.add_option("--max-bytes", max_bytes, "Use at most this many bytes (0: to the end)");
  cmd.add_flag("--interleave-zeros", interleave_zeros,
               "Feed the text as c0 00 c1 00 ... (the tiny v6 model was trained this way); bits per byte are "
               "then per text byte");
}

std::string TextArgs::read() const {
  std::string text = read_text_range(path, offset, max_bytes);
  return interleave_zeros ? interleave_zero_bytes(text) : text;
}

std::string parse_hex(const std::string& hex) {
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw UsageError("--prompt-hex: '" + std::string(1, c) + "' is not a hex digit");
  };
  if (hex.size() % 2) throw UsageError("--prompt-hex needs an even number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(digit(hex[i]) * 16 + digit(hex[i + 1])));
  return out;
}

void write_json_file(const std::string& path, const std::string& json_text) {
  if (path == "-") {
    std::fwrite(json_text.data(), 1, json_text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  AtomicFile f(path);
  f.write(json_text.data(), json_text.size());
  f.write("\n", 1);
  f.commit();
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace rwkvlite::cli
