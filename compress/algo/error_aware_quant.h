// Error-aware integer quantization of a projection W [out, in] whose inputs x have the second
// moment C = E[x xᵀ] (calibration): the output error ||(W - Q) x||² = tr((W - Q) C (W - Q)ᵀ)
// is what matters, not the weight error ||W - Q||².
//
//   weighted  each group (i4/i3/i2: G columns of a row; i8: the whole row) gets the scale and min that
//             minimise sum_i h_i (w_i - q_i)² with h = diag(C): a fixed grid of clipped ranges,
//             each refitted by weighted least squares given its codes, plus the format's own
//             round-to-nearest choice, so it is never worse than round-to-nearest under h.
//   gptq      GPTQ (Frantar et al. 2022): columns are quantized in input order and each
//             column's error is pushed onto the columns not yet quantized through the upper
//             Cholesky factor U of (C + λ·mean(diag C)·I)⁻¹ (the optimal update of the remaining
//             weights given the quantized ones). A group's scale and min are chosen, as in
//             `weighted`, from the group's weights as the updates have left them when its first
//             column is reached, and fixed from then on.
//
// Both return the encoded rows (the bytes of the compact format) and their decoded values. The
// bytes are the result, not the FP32 values: the writer's round-to-nearest encoder would choose
// different scales for the same values (compress/pipeline/compressed_model.h, StoredTensor::encoded).
//
// Deterministic: fixed column and row order, no threads, Eigen single-threaded; the same inputs
// give the same bytes.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/core/model.h"
#include "runtime/format/encoding.h"

namespace rwkvlite {

// GPTQ's default λ: H = E[x xᵀ] + λ·mean(diag)·I, as in the GPTQ paper.
constexpr double kDefaultGptqDamping = 0.01;

// The encodings these quantizers produce: i8 and the group encodings (i4g*, i3g*, i2g*).
bool has_chosen_scales(const format::EncodingSpec& spec);

struct QuantizedRows {
  std::vector<uint8_t> encoded;  // rows * encoded_row_bytes(spec, cols)
  std::vector<float> values;     // format::decode_row of every row (rows * cols)
};

// `importance` has one weight >= 0 per column (diag of C); all zero within a group means equal
// weights there. Throws UsageError for values beyond the encoding's range (as the encoder does)
// and InputError for non-finite values.
QuantizedRows quantize_weighted(const Tensor& w, const format::EncodingSpec& spec, const std::vector<double>& importance);

// C is in x in (the undamped calibration moment); damping λ in [0, 1].
QuantizedRows quantize_gptq(const Tensor& w, const format::EncodingSpec& spec, const Eigen::MatrixXd& C, double damping);

// The per-group choice both use, exposed for tests: for `n` values w (n <= the group size of
// the group encoding `spec`) with weights h, the scale and min (fp16 bit patterns) of the
// smallest sum h_i (w_i - q_i)², q_i the decoded value of w_i's nearest code, among the
// format's round-to-nearest choice and the fixed grid of candidates.
struct GroupScale {
  uint16_t scale_bits = 0, min_bits = 0;
};
GroupScale choose_group_scale(const float* w, const double* h, int64_t n, const format::EncodingSpec& spec);

// sum_i h_i (w_i - decode(code_i))² of `n` values in a group with that scale and min, with
// the codes round-to-nearest (clamped to 0..levels, levels = 2^bits - 1); the codes are
// written to `codes` when not null.
double group_weighted_error(const float* w, const double* h, int64_t n, int levels, GroupScale s, int32_t* codes);

// sqrt(tr(ΔW C ΔWᵀ) / tr(W C Wᵀ)) for ΔW = W - Q, both rows x cols row-major; nullopt when
// tr(W C Wᵀ) is not positive.
std::optional<double> input_weighted_error(const std::vector<float>& w, const std::vector<float>& q, int64_t rows,
                                           int64_t cols, const Eigen::MatrixXd& C);

}  // namespace rwkvlite
