#include "compress/algo/error_aware_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "compress/algo/lowrank.h"
#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/format/codec.h"

namespace rwkvlite {

namespace {

// The clipped ranges tried per group: both ends pulled in by k * kClipStep of the range, for
// k in [0, kClipSteps], every combination. Fixed, so the choice is deterministic; 20% at most,
// beyond which clipping only ever lost in trials on the reference model.
constexpr int kClipSteps = 8;
constexpr double kClipStep = 0.025;

int levels_of(const format::EncodingSpec& spec) {
  if (const int bits = format::group_code_bits(spec.encoding)) return (1 << bits) - 1;
  throw Error("error-aware quantization: " + format::encoding_name(spec) + " has no group codes", kExitInternal);
}

bool is_group_encoding(const format::EncodingSpec& spec) { return format::is_group_encoding(spec.encoding); }

// Equal weights where a group's inputs never fire (all h zero): the output does not depend on
// those weights, and equal weights then pick the plain best fit.
std::vector<double> group_weights(const double* h, int64_t n) {
  std::vector<double> out(h, h + n);
  if (std::all_of(out.begin(), out.end(), [](double v) { return !(v > 0); })) std::fill(out.begin(), out.end(), 1.0);
  for (double& v : out) v = std::max(v, 0.0);
  return out;
}

int32_t group_code(double w, double min, double scale, int levels) {
  if (scale == 0.0) return 0;
  return static_cast<int32_t>(std::clamp(std::round((w - min) / scale), 0.0, static_cast<double>(levels)));
}

// decode_row's value of a group code: min + code * scale in float.
float group_value(int32_t code, float min, float scale) { return min + static_cast<float>(code) * scale; }

int32_t i8_code(double w, double scale) {
  if (scale == 0.0) return 0;
  return static_cast<int32_t>(std::clamp(std::round(w / scale), -127.0, 127.0));
}

float i8_value(int32_t code, float scale) { return static_cast<float>(code) * scale; }

// The format's own round-to-nearest choice for these values (the first candidate of every
// search, so the search never loses to it).
GroupScale rtn_group_scale(const float* w, int64_t n, const format::EncodingSpec& spec) {
  std::vector<uint8_t> bytes(format::encoded_row_bytes(spec, n));
  format::encode_rows_into(w, 1, n, spec.encoding, spec.params, bytes.data());
  GroupScale s;
  std::memcpy(&s.scale_bits, bytes.data(), 2);
  std::memcpy(&s.min_bits, bytes.data() + 2, 2);
  return s;
}

float rtn_i8_scale(const float* w, int64_t n) {
  std::vector<uint8_t> bytes(format::encoded_row_bytes(format::Encoding::I8, n));
  format::encode_rows_into(w, 1, n, format::Encoding::I8, {}, bytes.data());
  float s;
  std::memcpy(&s, bytes.data(), 4);
  return s;
}

// An fp16 scale/min candidate from real numbers: nearest fp16 of each, a negative scale
// clamped to zero.
GroupScale to_fp16(double min, double scale) {
  GroupScale s;
  s.min_bits = float_to_fp16(static_cast<float>(min));
  s.scale_bits = float_to_fp16(static_cast<float>(std::max(scale, 0.0)));
  if (s.scale_bits & 0x8000u) s.scale_bits = 0;  // -0
  return s;
}

bool finite_fp16(uint16_t bits) { return (bits & 0x7c00u) != 0x7c00u; }

// Weighted least squares of w ~ min + scale * code for fixed codes; false when the codes do not
// determine both (all equal).
bool refit_group(const float* w, const double* h, const int32_t* codes, int64_t n, double* min, double* scale) {
  double sh = 0, sk = 0, skk = 0, sw = 0, swk = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double k = codes[i];
    sh += h[i];
    sk += h[i] * k;
    skk += h[i] * k * k;
    sw += h[i] * w[i];
    swk += h[i] * w[i] * k;
  }
  const double det = sh * skk - sk * sk;
  if (!(det > 1e-12 * sh * skk)) return false;
  *min = (sw * skk - sk * swk) / det;
  *scale = (sh * swk - sk * sw) / det;
  return std::isfinite(*min) && std::isfinite(*scale);
}

double i8_row_error(const float* w, const double* h, int64_t n, float scale, int32_t* codes) {
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t k = i8_code(w[i], scale);
    if (codes) codes[i] = k;
    const double d = static_cast<double>(w[i]) - static_cast<double>(i8_value(k, scale));
    err += h[i] * d * d;
  }
  return err;
}

// The i8 row scale (f32) of the smallest weighted error: round-to-nearest's, then absmax/127
// shrunk by up to 20% in the same fixed steps, each also refitted given its codes.
float choose_i8_scale(const float* w, const double* h_in, int64_t n) {
  const std::vector<double> h = group_weights(h_in, n);
  float best = rtn_i8_scale(w, n);
  double best_err = i8_row_error(w, h.data(), n, best, nullptr);
  if (best == 0.0f) return best;
  std::vector<int32_t> codes(static_cast<size_t>(n));
  const double top = static_cast<double>(best);
  auto consider = [&](double s) {
    const float f = static_cast<float>(s);
    if (!(f > 0.0f) || !std::isfinite(f)) return;
    const double e = i8_row_error(w, h.data(), n, f, codes.data());
    if (e < best_err) {
      best_err = e;
      best = f;
    }
  };
  for (int k = 1; k <= 2 * kClipSteps; ++k) {
    const double s = top * (1.0 - 0.5 * kClipStep * k);
    consider(s);
    i8_row_error(w, h.data(), n, static_cast<float>(s), codes.data());  // s's codes, for the refit
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
      num += h[i] * w[i] * codes[static_cast<size_t>(i)];
      den += h[i] * static_cast<double>(codes[static_cast<size_t>(i)]) * codes[static_cast<size_t>(i)];
    }
    if (den > 0) consider(num / den);
  }
  return best;
}

void require_quantizable(const Tensor& w, const format::EncodingSpec& spec) {
  if (!has_chosen_scales(spec)) {
    throw Error("error-aware quantization cannot produce " + format::encoding_name(spec), kExitInternal);
  }
  if (w.numel() != static_cast<int64_t>(w.data.size())) throw Error("tensor without values", kExitInternal);
}

// Packs and decodes every row: the bytes are the result, the values their decode.
struct RowPacker {
  const format::EncodingSpec& spec;
  int64_t rows, cols;
  size_t row_bytes;
  QuantizedRows out;

  RowPacker(const format::EncodingSpec& s, int64_t r, int64_t c)
      : spec(s), rows(r), cols(c), row_bytes(format::encoded_row_bytes(s, c)) {
    out.encoded.resize(static_cast<size_t>(rows) * row_bytes);
    out.values.resize(static_cast<size_t>(rows * cols));
  }
  void put(int64_t r, const format::ChosenRow& chosen) {
    uint8_t* dst = out.encoded.data() + static_cast<size_t>(r) * row_bytes;
    format::pack_chosen_row(chosen, cols, spec, dst);
    format::decode_row(dst, cols, spec, out.values.data() + r * cols);
  }
};

}  // namespace

bool has_chosen_scales(const format::EncodingSpec& spec) {
  return spec.encoding == format::Encoding::I8 || is_group_encoding(spec);
}

double group_weighted_error(const float* w, const double* h, int64_t n, int levels, GroupScale s, int32_t* codes) {
  const float scale = fp16_to_float(s.scale_bits), min = fp16_to_float(s.min_bits);
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t k = group_code(w[i], min, scale, levels);
    if (codes) codes[i] = k;
    const double d = static_cast<double>(w[i]) - static_cast<double>(group_value(k, min, scale));
    err += h[i] * d * d;
  }
  return err;
}

GroupScale choose_group_scale(const float* w, const double* h_in, int64_t n, const format::EncodingSpec& spec) {
  const int levels = levels_of(spec);
  const std::vector<double> h = group_weights(h_in, n);
  GroupScale best = rtn_group_scale(w, n, spec);
  double best_err = group_weighted_error(w, h.data(), n, levels, best, nullptr);
  float lo = w[0], hi = w[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  const double range = static_cast<double>(hi) - lo;
  if (!(range > 0)) return best;
  std::vector<int32_t> codes(static_cast<size_t>(n));
  auto consider = [&](GroupScale s) {
    if (!finite_fp16(s.scale_bits) || !finite_fp16(s.min_bits)) return;
    const double e = group_weighted_error(w, h.data(), n, levels, s, codes.data());
    if (e < best_err) {
      best_err = e;
      best = s;
    }
  };
  for (int a = 0; a <= kClipSteps; ++a) {
    for (int b = 0; b <= kClipSteps; ++b) {
      const double l = lo + range * kClipStep * a, u = hi - range * kClipStep * b;
      const GroupScale s = to_fp16(l, (u - l) / levels);
      consider(s);
      // codes now hold s's codes (consider computed them even when s lost).
      if (!finite_fp16(s.scale_bits) || !finite_fp16(s.min_bits)) continue;
      double m = 0, sc = 0;
      if (refit_group(w, h.data(), codes.data(), n, &m, &sc)) consider(to_fp16(m, sc));
    }
  }
  return best;
}

QuantizedRows quantize_weighted(const Tensor& w, const format::EncodingSpec& spec, const std::vector<double>& importance) {
  require_quantizable(w, spec);
  const int64_t rows = w.rows(), cols = w.cols();
  if (static_cast<int64_t>(importance.size()) != cols) throw Error("importance has the wrong length", kExitInternal);
  RowPacker packer(spec, rows, cols);
  std::vector<int32_t> codes(static_cast<size_t>(cols));
  if (spec.encoding == format::Encoding::I8) {
    const std::vector<double> h = group_weights(importance.data(), cols);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = w.data.data() + r * cols;
      format::ChosenRow chosen;
      chosen.i8_scale = choose_i8_scale(row, importance.data(), cols);
      i8_row_error(row, h.data(), cols, chosen.i8_scale, codes.data());
      chosen.codes = codes.data();
      packer.put(r, chosen);
    }
    return std::move(packer.out);
  }
  const int levels = levels_of(spec);
  const int64_t group = spec.params.group_size, groups = (cols + group - 1) / group;
  std::vector<uint16_t> scale_bits(static_cast<size_t>(groups)), min_bits(static_cast<size_t>(groups));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data.data() + r * cols;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t g0 = g * group, n = std::min(group, cols - g0);
      const GroupScale s = choose_group_scale(row + g0, importance.data() + g0, n, spec);
      scale_bits[static_cast<size_t>(g)] = s.scale_bits;
      min_bits[static_cast<size_t>(g)] = s.min_bits;
      const std::vector<double> h = group_weights(importance.data() + g0, n);
      group_weighted_error(row + g0, h.data(), n, levels, s, codes.data() + g0);
    }
    format::ChosenRow chosen;
    chosen.scale_bits = scale_bits.data();
    chosen.min_bits = min_bits.data();
    chosen.codes = codes.data();
    packer.put(r, chosen);
  }
  return std::move(packer.out);
}

QuantizedRows quantize_gptq(const Tensor& w, const format::EncodingSpec& spec, const Eigen::MatrixXd& C, double damping) {
  require_quantizable(w, spec);
  const int64_t rows = w.rows(), cols = w.cols();
  if (C.rows() != cols || C.cols() != cols) throw Error("gptq: second moment of the wrong size", kExitInternal);
  if (!(damping >= 0 && damping <= 1)) throw UsageError("gptq: damping must be in [0, 1]");
  std::vector<double> importance(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) importance[static_cast<size_t>(j)] = C(j, j);

  // H = C + λ·mean(diag C)·I; an input that never fires (C_jj = 0) gets the mean on its
  // diagonal, so H is positive definite even without damping (its weights do not matter).
  const double mean_diag = C.diagonal().mean();
  Eigen::MatrixXd H = C;
  if (!(mean_diag > 0)) {
    H.setIdentity();
  } else {
    H.diagonal().array() += damping * mean_diag;
    for (int64_t j = 0; j < cols; ++j) {
      if (!(C(j, j) > 0)) H(j, j) += mean_diag;
    }
  }
  Eigen::LLT<Eigen::MatrixXd> llt_h(H);
  if (llt_h.info() != Eigen::Success) {
    throw UsageError("gptq: the damped second moment is not positive definite; raise 'damping'");
  }
  Eigen::MatrixXd Hinv = llt_h.solve(Eigen::MatrixXd::Identity(cols, cols));
  Hinv = 0.5 * (Hinv + Hinv.transpose());
  Eigen::LLT<Eigen::MatrixXd> llt_inv(Hinv);
  if (llt_inv.info() != Eigen::Success) {
    throw UsageError("gptq: the inverse of the damped second moment is ill-conditioned; raise 'damping'");
  }
  const Eigen::MatrixXd U = llt_inv.matrixU();  // Hinv = Uᵀ U

  // Row-major working copy: the update of one row is a contiguous loop.
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> W(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) W(r, c) = w.data[static_cast<size_t>(r * cols + c)];
  }
  const bool i8 = spec.encoding == format::Encoding::I8;
  const int64_t group = i8 ? cols : spec.params.group_size, groups = (cols + group - 1) / group;
  const int levels = i8 ? 127 : levels_of(spec);
  std::vector<float> i8_scales(static_cast<size_t>(rows));
  std::vector<uint16_t> scale_bits(static_cast<size_t>(rows * groups)), min_bits(static_cast<size_t>(rows * groups));
  std::vector<int32_t> codes(static_cast<size_t>(rows * cols));
  std::vector<float> segment(static_cast<size_t>(group));
  Eigen::VectorXd err(rows);

  for (int64_t j = 0; j < cols; ++j) {
    const int64_t g = j / group;
    if (j % group == 0) {
      // The group's scale and min from its weights as the updates so far left them; fixed
      // for the rest of the group.
      const int64_t n = std::min(group, cols - j);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < n; ++i) segment[static_cast<size_t>(i)] = static_cast<float>(W(r, j + i));
        if (i8) {
          i8_scales[static_cast<size_t>(r)] = choose_i8_scale(segment.data(), importance.data() + j, n);
        } else {
          const GroupScale s = choose_group_scale(segment.data(), importance.data() + j, n, spec);
          scale_bits[static_cast<size_t>(r * groups + g)] = s.scale_bits;
          min_bits[static_cast<size_t>(r * groups + g)] = s.min_bits;
        }
      }
    }
    const double d = U(j, j);
    for (int64_t r = 0; r < rows; ++r) {
      const double v = W(r, j);
      int32_t k;
      float q;
      if (i8) {
        const float s = i8_scales[static_cast<size_t>(r)];
        k = i8_code(v, s);
        q = i8_value(k, s);
      } else {
        const float s = fp16_to_float(scale_bits[static_cast<size_t>(r * groups + g)]);
        const float m = fp16_to_float(min_bits[static_cast<size_t>(r * groups + g)]);
        k = group_code(v, m, s, levels);
        q = group_value(k, m, s);
      }
      codes[static_cast<size_t>(r * cols + j)] = k;
      err(r) = (v - static_cast<double>(q)) / d;
    }
    // W[:, j+1:] -= err ⊗ U[j, j+1:]: the remaining columns absorb this column's error.
    const int64_t rest = cols - j - 1;
    if (rest > 0) {
      for (int64_t r = 0; r < rows; ++r) {
        const double e = err(r);
        if (e == 0.0) continue;
        double* row = W.data() + r * cols + j + 1;
        const double* u = U.data();  // column-major: U(j, c) at u[c * cols + j]
        for (int64_t c = 0; c < rest; ++c) row[c] -= e * u[(j + 1 + c) * cols + j];
      }
    }
  }

  RowPacker packer(spec, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    format::ChosenRow chosen;
    chosen.i8_scale = i8 ? i8_scales[static_cast<size_t>(r)] : 0.0f;
    chosen.scale_bits = scale_bits.data() + r * groups;
    chosen.min_bits = min_bits.data() + r * groups;
    chosen.codes = codes.data() + r * cols;
    packer.put(r, chosen);
  }
  return std::move(packer.out);
}

std::optional<double> input_weighted_error(const std::vector<float>& w, const std::vector<float>& q, int64_t rows,
                                           int64_t cols, const Eigen::MatrixXd& C) {
  Eigen::MatrixXd W(rows, cols), Q(rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      W(r, c) = w[static_cast<size_t>(r * cols + c)];
      Q(r, c) = q[static_cast<size_t>(r * cols + c)];
    }
  }
  return relative_output_error(W, Q, C);
}

}  // namespace rwkvlite
