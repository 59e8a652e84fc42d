// CPU reference of the fused RWKV ops. The arithmetic follows the composed ops step by step (same operations in
// the same order, see cpu/elementwise.cpp and cpu/layernorm.cpp), so f32 and f64 results equal the composition.
#include "kernels/cpu/rwkv_fused.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/bf16.h"

namespace rwkv::cpu {

namespace {

constexpr int64_t kParallelThreshold = 1 << 15;
constexpr int kMaxMixes = 3;  // time_mix takes 1 to 3 mixes (checked by the caller)

inline float load(BFloat16 v) { return bf16_to_float(v); }
inline float load(float v) { return v; }
inline double load(double v) { return v; }

template <typename T>
inline T store(fused_param_t<T> v) {
  if constexpr (std::is_same_v<T, BFloat16>) {
    return float_to_bf16(v);
  } else {
    return v;
  }
}

}  // namespace

template <typename T>
void time_mix_forward(const T* x, const T* previous, int64_t batch, int64_t time, int64_t channels,
                      const fused_param_t<T>* const* mixes, int count, T* const* outs) {
  using P = fused_param_t<T>;
  const int64_t rows = batch * time;
#pragma omp parallel for schedule(static) if (rows * channels > kParallelThreshold)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / time, t = row % time;
    const T* xr = x + row * channels;
    const T* shifted = t > 0 ? xr - channels : (previous ? previous + b * channels : nullptr);
    for (int i = 0; i < count; ++i) {
      const P* mix = mixes[i];
      T* out = outs[i] + row * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const P xv = load(xr[c]), xx = shifted ? load(shifted[c]) : P(0);
        out[c] = store<T>(xv * mix[c] + xx * (P(1) - mix[c]));
      }
    }
  }
}

template <typename T>
void time_mix_backward(const T* const* grad_outs, const T* x, const T* previous, int64_t batch, int64_t time,
                       int64_t channels, const fused_param_t<T>* const* mixes, int count, T* grad_x, T* grad_previous,
                       fused_param_t<T>* const* grad_mixes) {
  using P = fused_param_t<T>;
  const int64_t rows = batch * time;
  // grad_x[t] = Σ_i g_i[t] m_i + g_i[t+1] (1 - m_i); grad_previous = Σ_i g_i[0] (1 - m_i).
#pragma omp parallel for schedule(static) if (rows * channels > kParallelThreshold)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t t = row % time;
    const bool has_next = t + 1 < time;
    T* gx = grad_x + row * channels;
    for (int64_t c = 0; c < channels; ++c) {
      P sum = 0;
      for (int i = 0; i < count; ++i) {
        sum += load(grad_outs[i][row * channels + c]) * mixes[i][c];
        if (has_next) sum += load(grad_outs[i][(row + 1) * channels + c]) * (P(1) - mixes[i][c]);
      }
      gx[c] = store<T>(sum);
    }
  }
  if (previous && grad_previous) {
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t row = b * time;
      for (int64_t c = 0; c < channels; ++c) {
        P sum = 0;
        for (int i = 0; i < count; ++i) sum += load(grad_outs[i][row * channels + c]) * (P(1) - mixes[i][c]);
        grad_previous[b * channels + c] = store<T>(sum);
      }
    }
  }
  // grad_mix_i = Σ over (b, t) of g_i (x - xx), in double, rows in order for every channel (deterministic). Blocks
  // of channels keep the row-by-row walk over contiguous memory.
  constexpr int64_t kChannelBlock = 64;
#pragma omp parallel for schedule(static) if (rows * channels > kParallelThreshold)
  for (int64_t first = 0; first < channels; first += kChannelBlock) {
    const int64_t width = std::min(kChannelBlock, channels - first);
    double sums[kMaxMixes][kChannelBlock] = {};
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / time, t = row % time;
      const T* xr = x + row * channels + first;
      const T* shifted = t > 0 ? xr - channels : (previous ? previous + b * channels + first : nullptr);
      for (int i = 0; i < count; ++i) {
        const T* g = grad_outs[i] + row * channels + first;
        for (int64_t c = 0; c < width; ++c) {
          const double xx = shifted ? static_cast<double>(load(shifted[c])) : 0.0;
          sums[i][c] += static_cast<double>(load(g[c])) * (static_cast<double>(load(xr[c])) - xx);
        }
      }
    }
    for (int i = 0; i < count; ++i) {
      for (int64_t c = 0; c < width; ++c) grad_mixes[i][first + c] = static_cast<P>(sums[i][c]);
    }
  }
}

template <typename T>
void add_layernorm_forward(const T* x, const T* delta, const fused_param_t<T>* weight, const fused_param_t<T>* bias,
                           int64_t rows, int64_t cols, double eps, T* sum, T* y, fused_param_t<T>* mean,
                           fused_param_t<T>* rstd) {
  using P = fused_param_t<T>;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const T* input = x + r * cols;
    if (delta) {
      // The stored (rounded) sum is what gets normalised, as in add-then-layernorm and in the backward.
      T* sr = sum + r * cols;
      const T* dr = delta + r * cols;
      for (int64_t c = 0; c < cols; ++c) sr[c] = store<T>(load(input[c]) + load(dr[c]));
      input = sr;
    }
    double total = 0;
    for (int64_t c = 0; c < cols; ++c) total += load(input[c]);
    const double mu = total / static_cast<double>(cols);
    double squares = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = load(input[c]) - mu;
      squares += d * d;
    }
    const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
    T* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      yr[c] = store<T>(static_cast<P>((load(input[c]) - mu) * inv_std) * weight[c] + bias[c]);
    }
    mean[r] = static_cast<P>(mu);
    rstd[r] = static_cast<P>(inv_std);
  }
}

template <typename T>
void add_layernorm_backward(const T* grad_sum, const T* grad_y, const T* input, const fused_param_t<T>* weight,
                            const fused_param_t<T>* mean, const fused_param_t<T>* rstd, int64_t rows, int64_t cols,
                            T* grad_input, fused_param_t<T>* grad_weight, fused_param_t<T>* grad_bias) {
  using P = fused_param_t<T>;
  // With xhat = (input - mean) * rstd and g = grad_y * weight: rstd * (g - mean(g) - xhat * mean(g * xhat)).
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const T* gy = grad_y + r * cols;
    const T* xr = input + r * cols;
    const double mu = mean[r], inv_std = rstd[r];
    double sum_g = 0, sum_g_xhat = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double g = static_cast<double>(load(gy[c])) * weight[c];
      sum_g += g;
      sum_g_xhat += g * (load(xr[c]) - mu) * inv_std;
    }
    const double mean_g = sum_g / static_cast<double>(cols), mean_g_xhat = sum_g_xhat / static_cast<double>(cols);
    T* gx = grad_input + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (load(xr[c]) - mu) * inv_std;
      const double g = static_cast<double>(load(gy[c])) * weight[c];
      const P through_norm = static_cast<P>(inv_std * (g - mean_g - xhat * mean_g_xhat));
      gx[c] = store<T>(grad_sum ? through_norm + load(grad_sum[r * cols + c]) : through_norm);
    }
  }
  // Parameter gradients: column sums over rows, in row order (deterministic).
#pragma omp parallel for schedule(static) if (rows * cols > kParallelThreshold)
  for (int64_t c = 0; c < cols; ++c) {
    double gw = 0, gb = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double g = load(grad_y[r * cols + c]);
      gw += g * (load(input[r * cols + c]) - static_cast<double>(mean[r])) * rstd[r];
      gb += g;
    }
    grad_weight[c] = static_cast<P>(gw);
    grad_bias[c] = static_cast<P>(gb);
  }
}

template <typename T>
void sigmoid_mul_forward(const T* gate, const T* value, int64_t n, T* out) {
  using P = fused_param_t<T>;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const P s = P(1) / (P(1) + std::exp(-load(gate[i])));
    out[i] = store<T>(s * load(value[i]));
  }
}

template <typename T>
void sigmoid_mul_backward(const T* grad_out, const T* gate, const T* value, int64_t n, T* grad_gate, T* grad_value) {
  using P = fused_param_t<T>;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const P s = P(1) / (P(1) + std::exp(-load(gate[i])));
    const P g = load(grad_out[i]);
    grad_gate[i] = store<T>(g * load(value[i]) * s * (P(1) - s));
    grad_value[i] = store<T>(g * s);
  }
}

template <typename T>
void relu_square_forward(const T* x, int64_t n, T* out) {
  using P = fused_param_t<T>;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const P v = load(x[i]);
    const P r = v > P(0) ? v : P(0);
    out[i] = store<T>(r * r);
  }
}

template <typename T>
void relu_square_backward(const T* grad_out, const T* x, int64_t n, T* grad_x) {
  using P = fused_param_t<T>;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const P v = load(x[i]);
    grad_x[i] = store<T>(v > P(0) ? P(2) * v * load(grad_out[i]) : P(0));
  }
}

#define RWKV_INSTANTIATE(T)                                                                                          \
  template void time_mix_forward<T>(const T*, const T*, int64_t, int64_t, int64_t, const fused_param_t<T>* const*, \
                                    int, T* const*);                                                                 \
  template void time_mix_backward<T>(const T* const*, const T*, const T*, int64_t, int64_t, int64_t,                 \
                                     const fused_param_t<T>* const*, int, T*, T*, fused_param_t<T>* const*);         \
  template void add_layernorm_forward<T>(const T*, const T*, const fused_param_t<T>*, const fused_param_t<T>*,       \
                                         int64_t, int64_t, double, T*, T*, fused_param_t<T>*, fused_param_t<T>*);    \
  template void add_layernorm_backward<T>(const T*, const T*, const T*, const fused_param_t<T>*,                     \
                                          const fused_param_t<T>*, const fused_param_t<T>*, int64_t, int64_t, T*,    \
                                          fused_param_t<T>*, fused_param_t<T>*);                                     \
  template void sigmoid_mul_forward<T>(const T*, const T*, int64_t, T*);                                            \
  template void sigmoid_mul_backward<T>(const T*, const T*, const T*, int64_t, T*, T*);                             \
  template void relu_square_forward<T>(const T*, int64_t, T*);                                                       \
  template void relu_square_backward<T>(const T*, const T*, int64_t, T*);
RWKV_INSTANTIATE(float)
RWKV_INSTANTIATE(double)
RWKV_INSTANTIATE(BFloat16)
#undef RWKV_INSTANTIATE

}  // namespace rwkv::cpu
