// Token-shift mixing shared by every version's time mix and channel mix.
#include "runtime/engine/layer_forward.h"

namespace rwkvlite {

void mix_lerp(const float* x, const float* x_prev, const float* m, int64_t n, int64_t d, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    const float* pt = x_prev + t * d;
    float* ot = out + t * d;
    for (int64_t c = 0; c < d; ++c) ot[c] = xt[c] * m[c] + (pt[c] - pt[c] * m[c]);
  }
}

void mix_shift(const float* x, const float* sx, const float* m, int64_t n, int64_t d, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    const float* st = sx + t * d;
    float* ot = out + t * d;
    for (int64_t c = 0; c < d; ++c) ot[c] = st[c] * m[c] + xt[c];
  }
}

}  // namespace rwkvlite
