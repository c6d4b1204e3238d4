// LibTorch training of the cluster-level head (see cluster_head_training.h); registers itself
// with the cluster_head pass from a static initializer.
#include <torch/torch.h>

#include <vector>

#include "compress/algo/cluster_head_training.h"
#include "compress/algo/torch_parts.h"
#include "runtime/core/seeded_random.h"

namespace rwkvlite {

namespace {

// Restores LibTorch's intra-op thread count on every exit path.
class SingleThreadedTorch {
 public:
  SingleThreadedTorch() : saved_(at::get_num_threads()) { at::set_num_threads(1); }
  ~SingleThreadedTorch() { at::set_num_threads(saved_); }
  SingleThreadedTorch(const SingleThreadedTorch&) = delete;
  SingleThreadedTorch& operator=(const SingleThreadedTorch&) = delete;

 private:
  int saved_;
};

// Fisher-Yates over [0, n) from SeededRandom (std::shuffle's draws are not portable).
std::vector<int64_t> permutation(int64_t n, SeededRandom& rng) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.next_below(static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

void train_cluster_head(ClusterHeadWeights& w, const ClusterRows& inputs, const ClusterRows& target,
                        int64_t train_rows, const ClusterHeadTrainingOptions& o) {
  // One thread: LibTorch's parallel reductions would otherwise make the weights depend on the
  // machine's thread count.
  SingleThreadedTorch single;
  torch::NoGradGuard outer_no_grad;
  const int64_t d = inputs.cols(), k = target.cols();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const torch::Tensor x =
      torch::from_blob(const_cast<float*>(inputs.data()), {inputs.rows(), d}, f32).narrow(0, 0, train_rows).clone();
  const torch::Tensor p =
      torch::from_blob(const_cast<float*>(target.data()), {target.rows(), k}, f32).narrow(0, 0, train_rows).clone();
  torch::Tensor weight = torch::from_blob(w.weight.data(), {k, d}, f32).clone().requires_grad_(true);
  torch::Tensor bias = torch::from_blob(w.bias.data(), {k}, f32).clone().requires_grad_(true);
  torch::optim::Adam adam({weight, bias}, torch::optim::AdamOptions(o.learning_rate));
  SeededRandom rng(o.seed);
  const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(o.batch_size, train_rows));
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    const std::vector<int64_t> order = permutation(train_rows, rng);
    const torch::Tensor index_all = torch::from_blob(const_cast<int64_t*>(order.data()),
                                                     {train_rows}, torch::TensorOptions().dtype(torch::kInt64));
    for (int64_t start = 0; start < train_rows; start += batch) {
      const int64_t len = std::min(batch, train_rows - start);
      const torch::Tensor index = index_all.narrow(0, start, len);
      const torch::Tensor xb = x.index_select(0, index), pb = p.index_select(0, index);
      torch::AutoGradMode enable(true);
      adam.zero_grad();
      const torch::Tensor log_q = torch::log_softmax(torch::addmm(bias, xb, weight.t()), 1);
      // KL(p ‖ q) = sum p (log p - log q); the log p term has no gradient.
      const torch::Tensor loss = -(pb * log_q).sum() / static_cast<double>(len);
      loss.backward();
      adam.step();
    }
  }
  const torch::Tensor wt = weight.detach().contiguous(), bt = bias.detach().contiguous();
  std::copy(wt.data_ptr<float>(), wt.data_ptr<float>() + k * d, w.weight.data());
  std::copy(bt.data_ptr<float>(), bt.data_ptr<float>() + k, w.bias.data());
}

}  // namespace

void train_cluster_head_torch(ClusterHeadWeights& weights, const ClusterRows& inputs, const ClusterRows& target,
                              int64_t train_rows, const ClusterHeadTrainingOptions& options) {
  train_cluster_head(weights, inputs, target, train_rows, options);
}

}  // namespace rwkvlite
