// Options and helpers shared by the rwkvlite subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <memory>
#include <string>

#include "runtime/core/model.h"
#include "runtime/eval/token_predictor.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite::cli {

// How a command loads its model: path, group-norm epsilon override, threads, tokenizer choice.
struct ModelArgs {
  std::string path;
  double ln_x_eps = NAN;  // NaN: keep what the file implies
  int threads = 2;
  std::string tokenizer;  // "" (choose from the vocabulary size), "bytes", "world" or a vocab path

  void add_to(CLI::App& cmd, bool with_tokenizer);
  Model load() const;  // logs format, version and load time
};

// Reads --text FILE from --offset for --max-bytes (0 = to the end), optionally interleaved
// with 0x00 for the tiny v6 model.
struct TextArgs {
  std::string path;
  uint64_t offset = 0;
  uint64_t max_bytes = 0;
  bool interleave_zeros = false;

  void add_to(CLI::App& cmd, const std::string& default_path, uint64_t default_offset);
  std::string read() const;
};

// Hex string ("22696e") -> bytes; UsageError on odd length or a non-hex digit.
std::string parse_hex(const std::string& hex);

// Writes a JSON document to a file atomically ("-" for stdout).
void write_json_file(const std::string& path, const std::string& json_text);

std::string human_bytes(double bytes);

}  // namespace rwkvlite::cli
