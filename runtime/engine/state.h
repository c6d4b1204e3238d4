// The recurrent state of one sequence: plain copyable vectors, so a prompt's state can be
// copied and continued along several paths.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/core/model.h"

namespace rwkvlite {

struct LayerState {
  std::vector<float> att_x_prev;  // D: the previous token's ln1 output (time-mix token shift)
  std::vector<float> ffn_x_prev;  // D: the previous token's ln2 output (channel-mix token shift)
  // v5, v6, v7: one S x S matrix per head, H x S x S in total. v5/v6 index it [head][key][value]
  // and v7 [head][value][key], each as its reference implementation does. Empty for v4.
  std::vector<float> att_wkv;
  // v4 only (D each): the numerator and denominator of the decayed weighted average of values,
  // both scaled by exp(-att_pp) to keep them finite.
  std::vector<float> att_aa, att_bb, att_pp;
};

struct State {
  std::vector<LayerState> layers;

  // Number of floats in the whole state.
  int64_t float_count() const;
};

// A fresh state for a model of this version and these dimensions: zeros, except v4's att_pp,
// which starts at -1e30 (log of an empty sum) as in rwkv.cpp, so the first token's weight wins.
State make_initial_state(ArchVersion arch, const ModelDims& dims);

// True if `s` has the layer count and buffer sizes of a state for this version and dims.
bool state_matches(const State& s, ArchVersion arch, const ModelDims& dims);

// Largest |a - b| over all corresponding state values (both states must have the same layout;
// throws UsageError otherwise). For tests and tools comparing evaluation paths.
double max_abs_difference(const State& a, const State& b);

}  // namespace rwkvlite
