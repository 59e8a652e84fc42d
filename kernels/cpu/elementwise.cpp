#include <cmath>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;

template <typename T>
T apply(Binary op, T a, T b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
  }
  return T(0);
}
}  // namespace

template <typename T>
void unary(Unary op, const T* x, T* y, int64_t n) {
  switch (op) {
    case Unary::neg:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
      break;
    case Unary::exp:
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      break;
    case Unary::sigmoid:
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
      break;
    case Unary::relu:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
      break;
    case Unary::square:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
      break;
  }
}

template <typename T>
void unary_backward(Unary op, const T* grad_out, const T* x, const T* y, T* grad_in, int64_t n) {
  switch (op) {
    case Unary::neg:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) grad_in[i] = -grad_out[i];
      break;
    case Unary::exp:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) grad_in[i] = grad_out[i] * y[i];
      break;
    case Unary::sigmoid:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) grad_in[i] = grad_out[i] * y[i] * (T(1) - y[i]);
      break;
    case Unary::relu:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) grad_in[i] = x[i] > T(0) ? grad_out[i] : T(0);
      break;
    case Unary::square:
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) grad_in[i] = T(2) * x[i] * grad_out[i];
      break;
  }
}

template <typename T>
void binary(Binary op, const T* a, const T* b, int64_t b_period, T* out, int64_t n) {
  if (b_period == n) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = apply(op, a[i], b[i]);
    return;
  }
  const int64_t rows = n / b_period;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const T* ar = a + r * b_period;
    T* o = out + r * b_period;
    for (int64_t j = 0; j < b_period; ++j) o[j] = apply(op, ar[j], b[j]);
  }
}

template <typename T>
void binary_left_broadcast(Binary op, const T* a, int64_t a_period, const T* b, T* out, int64_t n) {
  const int64_t rows = n / a_period;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const T* br = b + r * a_period;
    T* o = out + r * a_period;
    for (int64_t j = 0; j < a_period; ++j) o[j] = apply(op, a[j], br[j]);
  }
}

template <typename T>
void affine(const T* x, T scale, T shift, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale + shift;
}

template <typename T>
void accumulate(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

#define RWKV_INSTANTIATE(T)                                                                   \
  template void unary<T>(Unary, const T*, T*, int64_t);                                       \
  template void unary_backward<T>(Unary, const T*, const T*, const T*, T*, int64_t);          \
  template void binary<T>(Binary, const T*, const T*, int64_t, T*, int64_t);                  \
  template void binary_left_broadcast<T>(Binary, const T*, int64_t, const T*, T*, int64_t);   \
  template void affine<T>(const T*, T, T, T*, int64_t);                                       \
  template void accumulate<T>(const T*, T*, int64_t);
RWKV_INSTANTIATE(float)
RWKV_INSTANTIATE(double)
#undef RWKV_INSTANTIATE

}  // namespace rwkv::cpu
