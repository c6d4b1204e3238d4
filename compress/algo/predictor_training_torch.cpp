// The LibTorch trainer of channel-mix sparsity predictors (see predictor_training.h): a
// two-layer MLP without biases, D -> r (ReLU) -> F logits, trained with binary cross-entropy
// whose positives are weighted by the layer's negative/positive ratio (most neurons are
// inactive, so an unweighted loss would learn to predict "inactive" everywhere), and Adam.
//
// Reproducibility: every random draw (initialisation, batch order) comes from a generator
// local to the job and seeded from job.seed, never the global one, and each job runs on one
// thread with one intra-op thread, so its float operations happen in a fixed order whatever
// the pipeline's thread count. Jobs (layers) are independent and run in parallel.
// LibTorch hands matrix products to the system BLAS; OpenBLAS's own thread pool, shared by the
// concurrent jobs, made training 5-10x slower on a busy machine, so it is set to one thread
// while training (looked up at run time: other BLAS libraries have no such call).
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <chrono>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
#include "compress/algo/predictor_training.h"
#include "compress/algo/torch_parts.h"

namespace rwkvlite {
namespace {

Tensor to_rwkvlite(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  const float* p = c.data_ptr<float>();
  return Tensor(std::move(shape), std::vector<float>(p, p + c.numel()));
}

TrainedPredictor train_one(const PredictorTrainingJob& job, const std::vector<uint8_t>& labels) {
  // One intra-op thread for this thread's operations (OpenMP keeps this setting per thread).
  at::set_num_threads(1);
  const auto t0 = std::chrono::steady_clock::now();
  const CalibrationData::Rows& inputs = *job.inputs;
  const int64_t D = inputs.cols(), F = job.ffn_size, n = job.train_rows, r = job.rank;
  if (n < 1 || n > inputs.rows() || labels.size() != static_cast<size_t>(inputs.rows() * F)) {
    throw Error("predictor training: inconsistent job sizes", kExitInternal);
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(job.seed);

  const torch::Tensor X =
      torch::from_blob(const_cast<float*>(inputs.data()), {n, D}, torch::kFloat32);  // read only
  // Labels stay bytes (a float copy would be 4 x N x F per concurrent job, 176 MiB at the 0.1B
  // shape); each batch converts its rows, which gives the same 0/1 floats.
  const torch::Tensor Y = torch::from_blob(const_cast<uint8_t*>(labels.data()), {n, F}, torch::kUInt8);
  const double positives = Y.sum(torch::kInt64).item<double>();
  const double negatives = static_cast<double>(n * F) - positives;
  const torch::Tensor pos_weight = torch::full({1}, static_cast<float>(negatives / std::max(1.0, positives)));

  // Uniform initialisation with the fan-in bound of torch.nn.Linear.
  torch::Tensor down = ((torch::rand({r, D}, gen) * 2 - 1) / std::sqrt(static_cast<double>(D))).requires_grad_(true);
  torch::Tensor up = ((torch::rand({F, r}, gen) * 2 - 1) / std::sqrt(static_cast<double>(r))).requires_grad_(true);
  torch::optim::Adam adam({down, up}, torch::optim::AdamOptions(job.learning_rate));

  const int64_t batch = std::min<int64_t>(job.batch_size, n);
  double last_epoch_loss = 0;
  for (int epoch = 0; epoch < job.epochs; ++epoch) {
    const torch::Tensor order = torch::randperm(n, gen, torch::kLong);
    double loss_sum = 0;
    int64_t seen = 0;
    for (int64_t begin = 0; begin < n; begin += batch) {
      const int64_t end = std::min(n, begin + batch);
      const torch::Tensor idx = order.slice(0, begin, end);
      const torch::Tensor xb = X.index_select(0, idx);
      const torch::Tensor yb = Y.index_select(0, idx).to(torch::kFloat32);
      const torch::Tensor logits = torch::relu(xb.matmul(down.t())).matmul(up.t());
      torch::Tensor loss = torch::binary_cross_entropy_with_logits(logits, yb, {}, pos_weight);
      adam.zero_grad();
      loss.backward();
      adam.step();
      loss_sum += loss.item<double>() * static_cast<double>(end - begin);
      seen += end - begin;
    }
    last_epoch_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
  }

  TrainedPredictor out;
  out.down = to_rwkvlite(down);
  out.up = to_rwkvlite(up);
  out.final_loss = last_epoch_loss;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// Sets OpenBLAS to one thread for its lifetime when OpenBLAS is the BLAS in use.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    set_ = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    if (set_ == nullptr || get == nullptr) {
      set_ = nullptr;
      return;
    }
    saved_ = get();
    set_(1);
  }
  ~SingleThreadedBlas() {
    if (set_ != nullptr) set_(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int saved_ = 1;
};

std::vector<TrainedPredictor> train_all(const std::vector<PredictorTrainingJob>& jobs, int threads,
                                        const OnPredictorTrained& on_trained) {
  std::vector<TrainedPredictor> results(jobs.size());
  const int saved_threads = at::get_num_threads();
  {
    const SingleThreadedBlas single_threaded_blas;
    ThreadPool pool(std::max(1, std::min<int>(threads, static_cast<int>(jobs.size()))), 1);
    pool.parallel_for(0, static_cast<int64_t>(jobs.size()), 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const auto job = static_cast<size_t>(i);
        std::vector<uint8_t> labels;
        jobs[job].make_labels(labels);
        results[job] = train_one(jobs[job], labels);
        if (on_trained) on_trained(job, results[job], labels);
      }
    });
  }
  at::set_num_threads(saved_threads);
  return results;
}

}  // namespace

std::vector<TrainedPredictor> train_predictors_torch(const std::vector<PredictorTrainingJob>& jobs, int threads,
                                                    const OnPredictorTrained& on_trained) {
  return train_all(jobs, threads, on_trained);
}
}  // namespace rwkvlite
