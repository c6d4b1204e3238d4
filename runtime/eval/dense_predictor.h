// TokenPredictor over the dense engine, for any canonical model.
#pragma once

#include <memory>

#include "core/model.h"
#include "eval/token_predictor.h"

namespace rwkvlite {

std::unique_ptr<TokenPredictor> make_dense_predictor(const Model& model, int threads);

}  // namespace rwkvlite
