// Calibration: runs the dense model over calibration text and records what passes need.
//
// The dense engine runs in sequence mode (blocks of 1024 tokens) with every matrix supplied
// through WeightProviders as a projection over the model tensor's own memory (no second copy of
// the weights), computed by the compressor's AVX-512/AVX2 kernels (dense_products.h); those
// whose weight a pass asked about first accumulate the second moment E[x xᵀ] of their inputs.
// Hidden states agree with the runtime's DenseProjection to FP32 rounding.
#pragma once

#include <set>
#include <string>

#include "runtime/core/model.h"
#include "compress/pipeline/config.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// Everything calibration's result depends on besides the model: calibration_cache_key
// (calibration_cache.h) keys on each field that changes the statistics, so a new field here
// belongs in the key too.
struct CalibrationRequest {
  std::string text;                  // the calibration bytes (byte-level) or text (tokenized)
  std::set<std::string> projections; // canonical weight names whose input moments are wanted
  int64_t max_samples = 16384;       // rows of sampled activations kept per layer (>= 1)
  int threads = 1;
};

// Deterministic for any thread count: every product and moment entry is one fixed-order FMA
// chain (dense_products.h), and observers run in token order on the calling thread.
CalibrationData run_calibration(const Model& model, const CalibrationRequest& request);

// The calibration text a [calibration] section names: the bytes read (zero bytes interleaved
// when asked), the path they came from ("bundled" resolved) and their xxh64 (16 hex digits,
// recorded in the file's provenance).
struct CalibrationText {
  std::string path;
  std::string text;
  std::string xxh64;
};
CalibrationText read_calibration_text(const CalibrationConfig& config);

// Tokens run_calibration will see for `text` (the model's tokenizer), for the dry run.
int64_t calibration_token_count(const Model& model, const std::string& text);

// The same tokens as a count and the xxh64 (16 hex digits) of their int32 ids, which the
// calibration cache keys on: it covers the tokenizer (and its vocabulary file) as well as the text.
struct CalibrationTokens {
  int64_t count = 0;
  std::string xxh64;
};
CalibrationTokens calibration_tokens(const Model& model, const std::string& text);

// Every sample_stride-th token is sampled, so that at most max_samples (>= 1) spread evenly
// over n_tokens; ceil(n_tokens / sample_stride) positions in all.
int64_t calibration_sample_stride(int64_t n_tokens, int64_t max_samples);

// Memory calibration holds, for the dry run: one D x D double matrix per recorded projection
// (`projections`, canonical weight names) plus the sampled activations (L + 1 rows of D floats
// per sampled token, at most min(samples, bytes) of them).
int64_t estimate_calibration_bytes(const Model& model, const std::set<std::string>& projections,
                                   const CalibrationConfig& config);

}  // namespace rwkvlite
