// Teacher-forced evaluation on text and its report: the one code path and the one JSON schema
// of `rwkvlite eval` and `rwkvlite-run`. Report keys (stable, snake_case; docs/runtime.md):
//   model, arch, reference, text, text_offset, text_bytes, interleave_zeros, tokenizer,
//   tokens_scored, bits_per_byte, top1_accuracy, top1_agreement, kl_mean,
//   reference_bits_per_byte, peak_resident_weight_bytes, peak_rss_bytes, file_bytes,
//   tokens_per_second, ms_per_token_median, ms_per_token_p90, load_seconds, threads,
//   and for compact files the on-demand parts (tools/common/runtime_report.h).
// The three reference keys are null without --reference. Bits per byte are per text byte, so
// with --interleave-zeros they are twice the per-fed-byte value; text_bytes counts fed bytes.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>

#include "runtime/tokenizer/tokenizer.h"
#include "tools/common/model_args.h"
#include "tools/common/model_loading.h"
#include "tools/common/text_args.h"

namespace rwkvlite::tools {

// --reference and --json, shared by both evaluating front doors.
struct EvalArgs {
  std::string reference_path;  // "" for none
  std::string json_path;       // "" for none, "-" for stdout

  void add_to(CLI::App& cmd);
};

// Scores `text` with `model` from a fresh state, and against the model at `reference_path`
// when one is given (loaded as stored, with `model_args`' threads and --ln-x-eps), logging
// progress; returns the report described above.
nlohmann::ordered_json evaluate_on_text(const ModelArgs& model_args, RunnableModel& model, const Tokenizer& tokenizer,
                                        const TextArgs& text, const std::string& reference_path);

}  // namespace rwkvlite::tools
