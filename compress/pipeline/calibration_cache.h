// A directory of calibration statistics, so that compress runs sharing a model and calibration
// settings calibrate once (calibration is nearly all of a run's time).
//
// An entry is keyed by the xxh64 of a canonical description of everything the statistics
// depend on: the model (file content hash and the load options that change it), the token ids
// the model's tokenizer makes of the calibration text, the calibration settings and the
// projection set, plus the cache format and tool versions. The pass settings are not in it:
// calibration records every calibrated projection of the model whatever the passes ask for.
//
// <dir>/<key>.calib (little-endian):
//   "RWKVLCAL", u32 format version, u32 0, 16 bytes key (hex), u64 n + n bytes description,
//   i64 tokens, sample_stride, n_layer, n_embd, n_samples, n_projections,
//   per projection: u64 n + n bytes name, i64 dim, dim x dim f64 (input_second_moment),
//   n_layer x n_samples x n_embd f32 (ffn_key_inputs), n_samples x n_embd f32 (head_inputs),
//   n_layer f64 (ffn_active_fraction), u64 xxh64 of every byte before it.
// Values are stored bit for bit, so a cached run writes the same bytes as an uncached one.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "runtime/core/model.h"
#include "compress/pipeline/config.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

inline constexpr uint32_t kCalibrationCacheVersion = 1;

// What the statistics depend on. The seed is not in it: calibration uses none.
struct CalibrationCacheInputs {
  std::string model_xxh64;            // file_xxh64 of the model file
  float ln_x_eps = NAN;               // the load option (NaN: the file's)
  std::string text_xxh64;             // CalibrationText::xxh64 (after interleaving)
  std::string tokens_xxh64;           // xxh64 of the token ids (the tokenizer's part)
  CalibrationConfig calibration;      // offset, bytes, samples, interleave_zeros
  std::set<std::string> projections;  // CalibrationRequest::projections
};

struct CalibrationCacheKey {
  std::string description;  // canonical JSON text, stored in the file and compared on read
  std::string key;          // 16 hex digits of its xxh64
};
CalibrationCacheKey calibration_cache_key(const CalibrationCacheInputs& inputs);

// The exact shape the statistics of `model` over `tokens` tokens have; a cache file is checked
// against it field by field before anything is read into memory.
struct CalibrationShape {
  int64_t tokens = 0, sample_stride = 1, n_samples = 0, n_layer = 0, n_embd = 0;
  std::map<std::string, int64_t> projection_dims;  // name -> D of its D x D second moment
};
CalibrationShape calibration_shape(const Model& model, const std::set<std::string>& projections, int64_t tokens,
                                   int64_t max_samples);

std::string calibration_cache_path(const std::string& dir, const std::string& key);

// Writes atomically (a temporary sibling renamed into place).
void write_calibration_cache(const std::string& path, const CalibrationCacheKey& key, const CalibrationShape& shape,
                             const CalibrationData& data);
// Throws InputError saying what is wrong when the file is not a valid entry for `key` with
// exactly `shape` (wrong magic, version, key, description, any count or dimension, size,
// checksum, non-finite values); allocates only what `shape` implies.
CalibrationData read_calibration_cache(const std::string& path, const CalibrationCacheKey& key,
                                       const CalibrationShape& shape);

// The statistics from `dir`, or `compute()`d and stored there. Holds an exclusive flock on
// <dir>/<key>.lock around check, compute and write, so of several processes wanting one key
// one computes and the others wait and read its file. A file that does not read back is one
// warning, then recomputed and overwritten. Failing to write the entry is a warning (the run
// goes on); failing to create the directory or the lock file is a UsageError.
struct CachedCalibration {
  CalibrationData data;
  bool hit = false;
  std::string path;
};
CachedCalibration calibration_through_cache(const std::string& dir, const CalibrationCacheKey& key,
                                            const CalibrationShape& shape,
                                            const std::function<CalibrationData()>& compute);

}  // namespace rwkvlite
