#include "runtime/engine/state.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

LayerState layer_layout(ArchVersion arch, const ModelDims& d) {
  const auto D = static_cast<size_t>(d.n_embd);
  LayerState l;
  l.att_x_prev.assign(D, 0.0f);
  l.ffn_x_prev.assign(D, 0.0f);
  if (arch == ArchVersion::V4) {
    l.att_aa.assign(D, 0.0f);
    l.att_bb.assign(D, 0.0f);
    l.att_pp.assign(D, -1e30f);
  } else {
    l.att_wkv.assign(static_cast<size_t>(d.n_head * d.head_size * d.head_size), 0.0f);
  }
  return l;
}

template <typename Fn>
void for_each_pair(const LayerState& a, const LayerState& b, Fn&& fn) {
  fn(a.att_x_prev, b.att_x_prev);
  fn(a.ffn_x_prev, b.ffn_x_prev);
  fn(a.att_wkv, b.att_wkv);
  fn(a.att_aa, b.att_aa);
  fn(a.att_bb, b.att_bb);
  fn(a.att_pp, b.att_pp);
}

}  // namespace

int64_t State::float_count() const {
  int64_t n = 0;
  for (const LayerState& l : layers) {
    n += static_cast<int64_t>(l.att_x_prev.size() + l.ffn_x_prev.size() + l.att_wkv.size() + l.att_aa.size() +
                              l.att_bb.size() + l.att_pp.size());
  }
  return n;
}

State make_initial_state(ArchVersion arch, const ModelDims& dims) {
  State s;
  s.layers.assign(static_cast<size_t>(dims.n_layer), layer_layout(arch, dims));
  return s;
}

bool state_matches(const State& s, ArchVersion arch, const ModelDims& dims) {
  // Checked on every evaluation, so sizes are compared without building a reference state.
  if (static_cast<int64_t>(s.layers.size()) != dims.n_layer) return false;
  const auto D = static_cast<size_t>(dims.n_embd);
  const bool v4 = arch == ArchVersion::V4;
  const size_t wkv = v4 ? 0 : static_cast<size_t>(dims.n_head * dims.head_size * dims.head_size);
  const size_t v4_only = v4 ? D : 0;
  for (const LayerState& l : s.layers) {
    if (l.att_x_prev.size() != D || l.ffn_x_prev.size() != D || l.att_wkv.size() != wkv ||
        l.att_aa.size() != v4_only || l.att_bb.size() != v4_only || l.att_pp.size() != v4_only) {
      return false;
    }
  }
  return true;
}

double max_abs_difference(const State& a, const State& b) {
  if (a.layers.size() != b.layers.size()) throw UsageError("max_abs_difference: states have different layer counts");
  double m = 0;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    for_each_pair(a.layers[i], b.layers[i], [&](const std::vector<float>& x, const std::vector<float>& y) {
      if (x.size() != y.size()) throw UsageError("max_abs_difference: states have different layouts");
      for (size_t j = 0; j < x.size(); ++j) {
        const double d = std::fabs(static_cast<double>(x[j]) - static_cast<double>(y[j]));
        // A NaN anywhere is as different as it gets.
        m = std::isnan(d) ? INFINITY : std::max(m, d);
      }
    });
  }
  return m;
}

}  // namespace rwkvlite
