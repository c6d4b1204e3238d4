#include "runtime/eval/dense_predictor.h"

#include "runtime/engine/engine.h"

namespace rwkvlite {
namespace {

// Adapts the engine (dense or with compressed weights) to the evaluation interface.
class EnginePredictor final : public TokenPredictor {
 public:
  explicit EnginePredictor(std::unique_ptr<Engine> engine) : engine_(std::move(engine)), state_(engine_->new_state()) {}
  int64_t vocab_size() const override { return engine_->vocab_size(); }
  void reset() override { state_ = engine_->new_state(); }
  void feed(int32_t token, float* logits) override { engine_->eval_token(token, state_, logits); }
  void feed_sequence(const int32_t* tokens, size_t n, float* last_logits) override {
    engine_->eval_sequence(tokens, n, state_, last_logits);
  }

 private:
  std::unique_ptr<Engine> engine_;
  State state_;
};

}  // namespace

std::unique_ptr<TokenPredictor> make_engine_predictor(std::unique_ptr<Engine> engine) {
  return std::make_unique<EnginePredictor>(std::move(engine));
}

std::unique_ptr<TokenPredictor> make_dense_predictor(const Model& model, int threads) {
  return make_engine_predictor(std::make_unique<Engine>(model, threads));
}

}  // namespace rwkvlite
