#include "compress/algo/predictor_training.h"

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

PredictorTrainer& trainer_slot() {
  static PredictorTrainer trainer;
  return trainer;
}

}  // namespace

const PredictorTrainer* registered_predictor_trainer() {
  const PredictorTrainer& t = trainer_slot();
  return t ? &t : nullptr;
}

void set_predictor_trainer(PredictorTrainer trainer) {
  if (trainer_slot()) throw Error("a sparsity predictor trainer is already registered", kExitInternal);
  trainer_slot() = std::move(trainer);
}

}  // namespace rwkvlite
