#include "runtime/engine/wkv.h"

#include <algorithm>
#include <cmath>

#include "runtime/engine/kernels.h"

namespace rwkvlite::wkv {

void v4(const float* r, const float* k, const float* v, const float* neg_exp_decay, const float* first, int64_t n,
        int64_t d, float* aa, float* bb, float* pp, float* y, ThreadPool& pool) {
  // About 40 operations (four exp) per channel and token.
  pool.parallel_for(0, d, 40 * n, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      float a_c = aa[c], b_c = bb[c], p_c = pp[c];
      const float u = first[c], w = neg_exp_decay[c];
      for (int64_t t = 0; t < n; ++t) {
        const int64_t i = t * d + c;
        const float kt = k[i], vt = v[i];
        // Output: the running average with the current token weighted by exp(u + k), every
        // exponent shifted by the larger one so that nothing overflows.
        float ww = u + kt;
        float q = std::max(p_c, ww);
        float e1 = std::exp(p_c - q), e2 = std::exp(ww - q);
        const float num = e1 * a_c + e2 * vt;
        const float den = e1 * b_c + e2;
        y[i] = r[i] * (num / den);
        // State: decay the sums by exp(w) (w = -exp(time_decay), added in log space) and add
        // the current token with weight exp(k).
        ww = p_c + w;
        q = std::max(ww, kt);
        e1 = std::exp(ww - q);
        e2 = std::exp(kt - q);
        a_c = e1 * a_c + e2 * vt;
        b_c = e1 * b_c + e2;
        p_c = q;
      }
      aa[c] = a_c;
      bb[c] = b_c;
      pp[c] = p_c;
    }
  });
}

void v5(const float* r, const float* k, const float* v, const float* decay, bool decay_per_token, const float* bonus,
        int64_t n, int64_t heads, int64_t head_size, float* state, float* y, ThreadPool& pool) {
  const int64_t S = head_size, D = heads * head_size;
  pool.parallel_for(0, heads, 4 * S * S * n, [&](int64_t lo, int64_t hi) {
    for (int64_t h = lo; h < hi; ++h) {
      float* s = state + h * S * S;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t o = t * D + h * S;
        const float* rt = r + o;
        const float* kt = k + o;
        const float* vt = v + o;
        const float* wt = decay + (decay_per_token ? o : h * S);
        const float* ut = bonus + h * S;
        float* yt = y + o;
        for (int64_t j = 0; j < S; ++j) yt[j] = 0.0f;
        // Key index outermost so the state is walked row by row; each output y[j] sums over i
        // in increasing order, as rwkv.cpp's kernel does.
        for (int64_t i = 0; i < S; ++i) {
          const float ki = kt[i], ri = rt[i], ui = ut[i], wi = wt[i];
          float* si = s + i * S;
          for (int64_t j = 0; j < S; ++j) {
            const float kv = ki * vt[j];
            const float prev = si[j];
            yt[j] += (kv * ui + prev) * ri;
            si[j] = prev * wi + kv;
          }
        }
      }
    }
  });
}

void v7(const float* r, const float* w, const float* k, const float* v, const float* a, const float* b, int64_t n,
        int64_t heads, int64_t head_size, float* state, float* y, ThreadPool& pool) {
  const int64_t S = head_size, D = heads * head_size;
  pool.parallel_for(0, heads, 6 * S * S * n, [&](int64_t lo, int64_t hi) {
    for (int64_t h = lo; h < hi; ++h) {
      float* s = state + h * S * S;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t o = t * D + h * S;
        const float* rt = r + o;
        const float* wt = w + o;
        const float* kt = k + o;
        const float* vt = v + o;
        const float* at = a + o;
        const float* bt = b + o;
        for (int64_t i = 0; i < S; ++i) {
          float* si = s + i * S;
          // What the state currently predicts for this value row along the (normalised) key:
          // the part the delta rule replaces.
          const float sa = kernels::dot(at, si, S);
          const float vi = vt[i];
          // Element-wise (vectorises); the two sums use dot()'s fixed lane order rather than a
          // serial chain, which is several times faster and just as deterministic.
          for (int64_t j = 0; j < S; ++j) si[j] = si[j] * wt[j] + vi * kt[j] + sa * bt[j];
          y[o + i] = kernels::dot(si, rt, S);
        }
      }
    }
  });
}

}  // namespace rwkvlite::wkv
