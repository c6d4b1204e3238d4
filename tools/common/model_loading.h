// Loading a model file for the front doors: a compact file through runtime/store (weights
// read on demand, residency counted), or a dense file through converters/model_io (the formats
// registered in this process: rwkv.cpp and safetensors always, .pth only in rwkvlite, which
// calls register_torch_parts()). Each load logs one line saying what was loaded.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "runtime/core/model.h"
#include "runtime/eval/token_predictor.h"
#include "runtime/store/compact_model.h"

namespace rwkvlite::tools {

struct RunnableModel {
  std::unique_ptr<TokenPredictor> predictor;
  std::shared_ptr<ResidencyCounter> residency;  // compact files only (a dense model's size is fixed)
  std::shared_ptr<RuntimeStats> stats;          // compact files only
  int64_t dense_weight_bytes = 0;               // dense files only
  int64_t vocab = 0;
  ArchVersion arch = ArchVersion::V5_2;
  double load_seconds = 0;  // reading the file and building the engine
  std::optional<int64_t> budget_bytes;      // the resolved --memory-budget
  std::optional<ElasticSelection> elastic;  // an elastic file's chosen forms

  // What the weights held in memory at most: the residency peak of a compact file, else the
  // dense weights' size.
  int64_t peak_resident_weight_bytes() const;
};

// A compact file runs with `runtime`; a dense one with runtime.threads and `ln_x_eps` (NaN:
// what the file implies). InputError for a file that is neither.
RunnableModel load_runnable_model(const std::string& path, const RuntimeOptions& runtime, float ln_x_eps);

// The dense canonical model of any registered format.
Model load_dense_model(const std::string& path, float ln_x_eps);

}  // namespace rwkvlite::tools
