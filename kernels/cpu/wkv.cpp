// WKV on the CPU: the stable running-max recurrence of spec §1.5 and the exact two-sweep backward of §2.4,
// extended with an initial state in and a final state out. Work is split into (batch, block of channels)
// tasks; inside a task the time loop is outermost and channels innermost, so memory is walked contiguously.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

namespace {

constexpr int64_t kChannelBlock = 64;
constexpr double kMinExponent = -1e38;  // "minus infinity" that stays finite: -inf - (-inf) would be NaN

struct Task {
  int64_t b, c0, width;
};

std::vector<Task> make_tasks(int64_t batch, int64_t channels) {
  std::vector<Task> tasks;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t c0 = 0; c0 < channels; c0 += kChannelBlock) {
      tasks.push_back({b, c0, std::min(kChannelBlock, channels - c0)});
    }
  }
  return tasks;
}

}  // namespace

template <typename T>
void wkv_forward(int64_t batch, int64_t time, int64_t channels, const T* w, const T* u, const T* k, const T* v,
                 const T* state_in, T* y, T* state_out) {
  const std::vector<Task> tasks = make_tasks(batch, channels);
#pragma omp parallel for schedule(static) if (batch * time * channels > (1 << 14))
  for (size_t task = 0; task < tasks.size(); ++task) {
    const auto [b, c0, width] = tasks[task];
    T aa[kChannelBlock], bb[kChannelBlock], pp[kChannelBlock];
    for (int64_t j = 0; j < width; ++j) {
      const int64_t c = c0 + j;
      aa[j] = state_in ? state_in[(b * 3 + 0) * channels + c] : T(0);
      bb[j] = state_in ? state_in[(b * 3 + 1) * channels + c] : T(0);
      pp[j] = state_in ? state_in[(b * 3 + 2) * channels + c] : static_cast<T>(kMinExponent);
    }
    for (int64_t t = 0; t < time; ++t) {
      const int64_t row = (b * time + t) * channels + c0;
      for (int64_t j = 0; j < width; ++j) {
        const T kk = k[row + j], vv = v[row + j];
        const T bonus = u[c0 + j] + kk;
        T q = std::max(pp[j], bonus);
        T e1 = std::exp(pp[j] - q), e2 = std::exp(bonus - q);
        y[row + j] = (e1 * aa[j] + e2 * vv) / (e1 * bb[j] + e2);
        const T decayed = pp[j] + w[c0 + j];
        q = std::max(decayed, kk);
        e1 = std::exp(decayed - q);
        e2 = std::exp(kk - q);
        aa[j] = e1 * aa[j] + e2 * vv;
        bb[j] = e1 * bb[j] + e2;
        pp[j] = q;
      }
    }
    if (state_out) {
      for (int64_t j = 0; j < width; ++j) {
        state_out[(b * 3 + 0) * channels + c0 + j] = aa[j];
        state_out[(b * 3 + 1) * channels + c0 + j] = bb[j];
        state_out[(b * 3 + 2) * channels + c0 + j] = pp[j];
      }
    }
  }
}

template <typename T>
void wkv_backward(int64_t batch, int64_t time, int64_t channels, const T* w, const T* u, const T* k, const T* v,
                  const T* y, const T* grad_y, const T* state_in, const T* grad_state_out, T* gw, T* gu, T* gk,
                  T* gv, T* grad_state_in) {
  const std::vector<Task> tasks = make_tasks(batch, channels);
#pragma omp parallel if (batch * time * channels > (1 << 14))
  {
    // Per-step scalars carried from the forward sweep to the reverse sweep: s_t = gy_t·e^{q_t}/D_t (scaled)
    // and r_t = u + k_t - q_t.
    std::vector<T> scaled_grad(static_cast<size_t>(time * kChannelBlock));
    std::vector<T> bonus_offset(static_cast<size_t>(time * kChannelBlock));
#pragma omp for schedule(static)
    for (size_t task = 0; task < tasks.size(); ++task) {
      const auto [b, c0, width] = tasks[task];
      T aa[kChannelBlock], bb[kChannelBlock], pp[kChannelBlock];
      T da[kChannelBlock], db[kChannelBlock];  // ∂a/∂w, ∂b/∂w in the scale e^pp
      T sum_gw[kChannelBlock], sum_gu[kChannelBlock];
      for (int64_t j = 0; j < width; ++j) {
        const int64_t c = c0 + j;
        aa[j] = state_in ? state_in[(b * 3 + 0) * channels + c] : T(0);
        bb[j] = state_in ? state_in[(b * 3 + 1) * channels + c] : T(0);
        pp[j] = state_in ? state_in[(b * 3 + 2) * channels + c] : static_cast<T>(kMinExponent);
        da[j] = db[j] = sum_gw[j] = sum_gu[j] = T(0);
      }
      // Forward sweep: recompute the state, accumulate gw and gu along the way.
      for (int64_t t = 0; t < time; ++t) {
        const int64_t row = (b * time + t) * channels + c0;
        for (int64_t j = 0; j < width; ++j) {
          const T kk = k[row + j], vv = v[row + j], yy = y[row + j];
          const T bonus = u[c0 + j] + kk;
          T q = std::max(pp[j], bonus);
          T e1 = std::exp(pp[j] - q), e2 = std::exp(bonus - q);
          const T s = grad_y[row + j] / (e1 * bb[j] + e2);
          sum_gw[j] += (da[j] - db[j] * yy) * e1 * s;
          sum_gu[j] += (vv - yy) * e2 * s;
          scaled_grad[static_cast<size_t>(t * kChannelBlock + j)] = s;
          bonus_offset[static_cast<size_t>(t * kChannelBlock + j)] = bonus - q;
          const T decayed = pp[j] + w[c0 + j];
          q = std::max(decayed, kk);
          e1 = std::exp(decayed - q);
          e2 = std::exp(kk - q);
          da[j] = e1 * (aa[j] + da[j]);
          db[j] = e1 * (bb[j] + db[j]);
          aa[j] = e1 * aa[j] + e2 * vv;
          bb[j] = e1 * bb[j] + e2;
          pp[j] = q;
        }
      }
      // The final state's gradient, taken through a_T = aa·e^pp and b_T = bb·e^pp: its adjoint is
      // (g_aa, g_bb)·e^{-pp_T}, which meets ∂a_T/∂w = da·e^{pp_T} with the scales cancelling.
      T ra[kChannelBlock], rb[kChannelBlock], rp[kChannelBlock];  // adjoints of (a, b) in the scale e^rp
      for (int64_t j = 0; j < width; ++j) {
        const int64_t c = c0 + j;
        if (grad_state_out) {
          ra[j] = grad_state_out[(b * 3 + 0) * channels + c];
          rb[j] = grad_state_out[(b * 3 + 1) * channels + c];
          rp[j] = -pp[j];
          sum_gw[j] += ra[j] * da[j] + rb[j] * db[j];
        } else {
          ra[j] = rb[j] = T(0);
          rp[j] = static_cast<T>(kMinExponent);
        }
        gw[b * channels + c] = sum_gw[j] * w[c];  // chain rule of w = -exp(time_decay)
        gu[b * channels + c] = sum_gu[j];
      }
      // Reverse sweep: adjoints of a and b flow back through time (spec §2.4's P and Q).
      for (int64_t t = time - 1; t >= 0; --t) {
        const int64_t row = (b * time + t) * channels + c0;
        for (int64_t j = 0; j < width; ++j) {
          const T kk = k[row + j], vv = v[row + j], yy = y[row + j];
          const T s = scaled_grad[static_cast<size_t>(t * kChannelBlock + j)];
          const T rr = bonus_offset[static_cast<size_t>(t * kChannelBlock + j)];
          T e1 = s * std::exp(rr);       // gy_t e^{u+k_t} / D_t
          T e2 = std::exp(kk + rp[j]);   // e^{k_t} in the adjoints' scale
          gk[row + j] = e1 * (vv - yy) + e2 * (ra[j] * vv + rb[j]);
          gv[row + j] = e1 + e2 * ra[j];
          const T z = rr - u[c0 + j] - kk;  // -q_t: the log of 1/D_t's scale
          const T q = std::max(rp[j] + w[c0 + j], z);
          e1 = std::exp(rp[j] + w[c0 + j] - q);
          e2 = s * std::exp(z - q);
          ra[j] = e1 * ra[j] + e2;
          rb[j] = e1 * rb[j] - e2 * yy;
          rp[j] = q;
        }
      }
      if (grad_state_in) {
        for (int64_t j = 0; j < width; ++j) {
          const int64_t c = c0 + j;
          const T p0 = state_in[(b * 3 + 2) * channels + c];
          const T scale = std::exp(rp[j] + p0);
          const T g_aa = ra[j] * scale, g_bb = rb[j] * scale;
          grad_state_in[(b * 3 + 0) * channels + c] = g_aa;
          grad_state_in[(b * 3 + 1) * channels + c] = g_bb;
          grad_state_in[(b * 3 + 2) * channels + c] =
              state_in[(b * 3 + 0) * channels + c] * g_aa + state_in[(b * 3 + 1) * channels + c] * g_bb;
        }
      }
    }
  }
}

#define RWKV_INSTANTIATE(T)                                                                                   \
  template void wkv_forward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, T*, \
                               T*);                                                                           \
  template void wkv_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*,     \
                                const T*, const T*, const T*, T*, T*, T*, T*, T*);
RWKV_INSTANTIATE(float)
RWKV_INSTANTIATE(double)
#undef RWKV_INSTANTIATE

}  // namespace rwkv::cpu
