#include "compress/algo/held_matrix.h"

#include <optional>

#include "compress/algo/error_aware_quant.h"
#include "runtime/format/codec.h"
#include "runtime/format/encoding.h"

namespace rwkvlite {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Tensor row_major(const Eigen::MatrixXf& m) {
  Tensor t{{m.rows(), m.cols()}, std::vector<float>(static_cast<size_t>(m.size()))};
  Eigen::Map<RowMajor>(t.data.data(), m.rows(), m.cols()) = m;
  return t;
}

}  // namespace

std::vector<float> HeldMatrix::decoded() const {
  if (!encoded.empty()) return values.data;
  return format::round_trip_rows(values.data.data(), values.rows(), values.cols(), format::parse_encoding(encoding));
}

HeldMatrix hold_quantized(const Tensor& w, const std::string& encoding, const Eigen::MatrixXd* C) {
  const format::EncodingSpec spec = format::parse_encoding(encoding);
  if (C && has_chosen_scales(spec)) {
    QuantizedRows q = quantize_gptq(w, spec, *C, kDefaultGptqDamping);
    return {Tensor{w.shape, std::move(q.values)}, encoding, std::move(q.encoded)};
  }
  return {w, encoding, {}};
}

std::vector<float> HeldFactors::product() const {
  const std::vector<float> av = a.decoded(), bv = b.decoded();
  const int64_t rank = a.values.rows(), cols = a.values.cols(), rows = b.values.rows();
  std::vector<float> w(static_cast<size_t>(rows * cols));
  Eigen::Map<RowMajor>(w.data(), rows, cols) =
      Eigen::Map<const RowMajor>(bv.data(), rows, rank) * Eigen::Map<const RowMajor>(av.data(), rank, cols);
  return w;
}

HeldFactors hold_lowrank(const TruncatedSvd& svd, const Whitening* whitening, const Eigen::MatrixXd* C,
                         const LowRankFidelity& f) {
  const LowRankFactors factors = factors_from_svd(svd, f.rank, whitening);
  HeldFactors out;
  out.a = hold_quantized(row_major(factors.a), f.factor_encoding, C);
  std::optional<Eigen::MatrixXd> C_b;
  if (C) {
    const std::vector<float> a_stored = out.a.decoded();
    const Eigen::Map<const RowMajor> A(a_stored.data(), f.rank, factors.a.cols());
    C_b = A.cast<double>() * *C * A.cast<double>().transpose();
  }
  out.b = hold_quantized(row_major(factors.b), f.factor_encoding, C_b ? &*C_b : nullptr);
  return out;
}

}  // namespace rwkvlite
