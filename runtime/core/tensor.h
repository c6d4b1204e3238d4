// The canonical in-memory tensor: FP32 values in row-major (PyTorch) order.
//
// Every reader dequantizes into this form and every writer starts from it, so passes and the
// dense engine see one representation whatever the source file was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvlite {

struct Tensor {
  std::vector<int64_t> shape;  // PyTorch order: shape[0] is the slowest-varying dimension
  std::vector<float> data;     // numel() values, row-major

  Tensor() = default;
  Tensor(std::vector<int64_t> s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {}
  explicit Tensor(std::vector<int64_t> s) : shape(std::move(s)), data(static_cast<size_t>(numel_of(shape)), 0.0f) {}

  int64_t numel() const { return numel_of(shape); }
  int64_t dim(size_t i) const { return shape.at(i); }
  size_t rank() const { return shape.size(); }
  // Rows and columns of a matrix viewed as 2-D: all leading dims folded into rows.
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }

  static int64_t numel_of(const std::vector<int64_t>& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
  }
};

std::string shape_to_string(const std::vector<int64_t>& shape);

// The 2-D matrix `m` (rows x cols) transposed to cols x rows; a tensor without values (a plan's
// shape) gives the swapped shape without values.
Tensor transposed(const Tensor& m);

}  // namespace rwkvlite
