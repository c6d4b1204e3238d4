// The time-mix recurrences ("wkv"), one per family, each for a block of n tokens. Heads (or
// channels, for v4) are independent, so they are spread over the pool; each is computed by
// one thread with a fixed operation order, keeping results independent of the thread count.
#pragma once

#include <cstdint>

#include "runtime/engine/thread_pool.h"

namespace rwkvlite::wkv {

// RWKV-4, per channel c of D, in log space to stay finite: the state holds
// aa = sum of exp(...) * v, bb = sum of exp(...), both scaled by exp(-pp).
// y[t] = r[t] * wkv[t] where r is already the sigmoid of the receptance.
void v4(const float* r, const float* k, const float* v, const float* neg_exp_decay, const float* first, int64_t n,
        int64_t d, float* aa, float* bb, float* pp, float* y, ThreadPool& pool);

// RWKV-5/6, per head: state s[key i][value j] (S x S), per channel decay and bonus on the key
// index. decay is n x D when decay_per_token, else one D vector for every token.
//   y[j] = sum_i r[i] * (bonus[i] * k[i] * v[j] + s[i][j]);  s[i][j] = s[i][j] * decay[i] + k[i] * v[j]
void v5(const float* r, const float* k, const float* v, const float* decay, bool decay_per_token, const float* bonus,
        int64_t n, int64_t heads, int64_t head_size, float* state, float* y, ThreadPool& pool);

// RWKV-7 generalised delta rule, per head: state s[value i][key j] (S x S).
//   sa_i = sum_j a[j] * s[i][j];  s[i][j] = s[i][j] * w[j] + v[i] * k[j] + sa_i * b[j];
//   y[i] = sum_j s[i][j] * r[j]
// with a = -kk (the normalised key, removing the old association) and b = kk * iclr.
void v7(const float* r, const float* w, const float* k, const float* v, const float* a, const float* b, int64_t n,
        int64_t heads, int64_t head_size, float* state, float* y, ThreadPool& pool);

}  // namespace rwkvlite::wkv
