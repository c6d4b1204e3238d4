#include "passes/predictor_training.h"

#include "core/error.h"

namespace rwkvlite {
namespace {

// A function-local static, so registration from another translation unit's static
// initialiser cannot run before it exists.
PredictorTrainer& trainer_slot() {
  static PredictorTrainer trainer;
  return trainer;
}

}  // namespace

const PredictorTrainer* registered_predictor_trainer() {
  const PredictorTrainer& t = trainer_slot();
  return t ? &t : nullptr;
}

PredictorTrainerRegistration::PredictorTrainerRegistration(PredictorTrainer trainer) {
  if (trainer_slot()) throw Error("a sparsity predictor trainer is already registered", kExitInternal);
  trainer_slot() = std::move(trainer);
}

}  // namespace rwkvlite
