#include <cmath>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

template <typename T>
void layernorm_forward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols, double eps, T* y,
                       T* mean, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const double mu = sum / static_cast<double>(cols);
    double squares = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double d = xr[c] - mu;
      squares += d * d;
    }
    const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(cols) + eps);
    T* yr = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      yr[c] = static_cast<T>((xr[c] - mu) * inv_std) * weight[c] + bias[c];
    }
    mean[r] = static_cast<T>(mu);
    rstd[r] = static_cast<T>(inv_std);
  }
}

template <typename T>
void layernorm_backward(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd, int64_t rows,
                        int64_t cols, T* grad_x, T* grad_weight, T* grad_bias) {
  // grad_x: with xhat = (x - mean) * rstd and g = grad_y * weight,
  //   grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)).
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* gy = grad_y + r * cols;
    const T* xr = x + r * cols;
    const double mu = mean[r], inv_std = rstd[r];
    double sum_g = 0, sum_g_xhat = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double g = static_cast<double>(gy[c]) * weight[c];
      sum_g += g;
      sum_g_xhat += g * (xr[c] - mu) * inv_std;
    }
    const double mean_g = sum_g / static_cast<double>(cols), mean_g_xhat = sum_g_xhat / static_cast<double>(cols);
    T* gx = grad_x + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - mu) * inv_std;
      const double g = static_cast<double>(gy[c]) * weight[c];
      gx[c] = static_cast<T>(inv_std * (g - mean_g - xhat * mean_g_xhat));
    }
  }
  // Parameter gradients: column sums over rows, in row order for determinism.
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 15))
  for (int64_t c = 0; c < cols; ++c) {
    double gw = 0, gb = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double g = grad_y[r * cols + c];
      gw += g * (x[r * cols + c] - static_cast<double>(mean[r])) * rstd[r];
      gb += g;
    }
    grad_weight[c] = static_cast<T>(gw);
    grad_bias[c] = static_cast<T>(gb);
  }
}

#define RWKV_INSTANTIATE(T)                                                                                  \
  template void layernorm_forward<T>(const T*, const T*, const T*, int64_t, int64_t, double, T*, T*, T*);   \
  template void layernorm_backward<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, T*, \
                                      T*, T*);
RWKV_INSTANTIATE(float)
RWKV_INSTANTIATE(double)
#undef RWKV_INSTANTIATE

}  // namespace rwkv::cpu
