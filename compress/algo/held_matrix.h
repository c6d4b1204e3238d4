// A matrix as compress stores it at one fidelity: a quantize encoding (round to nearest, or
// GPTQ through its input moment) or a low-rank fidelity's two factors. The sensitivity profile
// prices these forms and the elastic pass writes them, so both use this one implementation:
// what the profile costs is what the elastic file holds.
#pragma once

#include <Eigen/Dense>

#include <string>
#include <vector>

#include "compress/algo/lowrank.h"
#include "compress/algo/svd.h"
#include "runtime/core/model.h"

namespace rwkvlite {

// A low-rank fidelity "lr<rank>:<encoding>": the rank-`rank` factors, each in `factor_encoding`
// (parsed by parse_lowrank_fidelity, compress/analysis/sensitivity_profile.h).
struct LowRankFidelity {
  int rank = 0;
  std::string factor_encoding;
};

// One stored matrix [rows, cols] in `encoding`. With `encoded` empty the compact writer encodes
// `values` itself (round to nearest, the format's own scales); otherwise `encoded` holds the
// chosen bytes and `values` their decode (StoredTensor::encoded).
struct HeldMatrix {
  Tensor values;
  std::string encoding;
  std::vector<uint8_t> encoded;

  // What the file's rows decode to: `values` when the bytes were chosen, else the codec's
  // round trip of `values`.
  std::vector<float> decoded() const;
};

// W [rows, cols] (row-major) in `encoding`: GPTQ error compensation through the input moment C
// when C is given and the encoding has chosen scales (a quantize rule with method = "gptq"),
// otherwise the values as they are, for the writer's round to nearest.
HeldMatrix hold_quantized(const Tensor& w, const std::string& encoding, const Eigen::MatrixXd* C);

// W [rows, cols] as the lowrank pass and a quantize rule for its factors store it: the factors
// of rank f.rank from `svd` (of W, or of W·L when `whitening`), lr_a quantized with C and lr_b
// with the moment of its input, A C Aᵀ of the stored lr_a. Returns {lr_a, lr_b}.
struct HeldFactors {
  HeldMatrix a;  // [rank, cols]
  HeldMatrix b;  // [rows, rank]
  // B·A of the decoded factors, [rows, cols] row-major: the matrix the runtime multiplies by.
  std::vector<float> product() const;
};
HeldFactors hold_lowrank(const TruncatedSvd& svd, const Whitening* whitening, const Eigen::MatrixXd* C,
                         const LowRankFidelity& f);

}  // namespace rwkvlite
