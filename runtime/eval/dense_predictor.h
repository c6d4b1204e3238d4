// TokenPredictor over the dense engine, for any canonical model.
#pragma once

#include <memory>

#include "runtime/core/model.h"
#include "runtime/eval/token_predictor.h"

namespace rwkvlite {

std::unique_ptr<TokenPredictor> make_dense_predictor(const Model& model, int threads);

class Engine;
// Any engine, e.g. one built from a compact file's weights.
std::unique_ptr<TokenPredictor> make_engine_predictor(std::unique_ptr<Engine> engine);

}  // namespace rwkvlite
