#include "core/bf16.h"
#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/dropout.h"
#include "kernels/dropout_mask.h"

namespace rwkv::ops {

namespace {
// splitmix64's finaliser, to spread (seed, layer, place) over the 64-bit Philox key.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T, typename Load, typename Store>
void dropout_cpu(const T* x, T* y, int64_t rows, int64_t row_size, const DropoutKey& key, float keep_scale, Load load,
                 Store store) {
  const auto probability = static_cast<float>(key.probability);
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t i = 0; i < row_size; ++i) {
      const uint64_t element = dropout_mask::element_of(key.first_sample, key.sample_stride,
                                                        static_cast<uint64_t>(row_size), static_cast<uint64_t>(row),
                                                        static_cast<uint64_t>(i));
      const int64_t at = row * row_size + i;
      store(y, at, load(x, at) * dropout_mask::factor(key.seed, element, probability, keep_scale));
    }
  }
}
}  // namespace

uint64_t dropout_site_seed(uint64_t seed, int64_t layer, int64_t place) {
  return mix64(mix64(mix64(seed) ^ static_cast<uint64_t>(layer + 1)) ^ static_cast<uint64_t>(place));
}

Tensor keyed_dropout(const Tensor& x_in, const DropoutKey& key) {
  profile::Scope profile_scope("dropout", x_in.device());
  RWKV_CHECK(key.probability >= 0 && key.probability < 1, "keyed_dropout: probability must be in [0, 1), got ",
             key.probability);
  RWKV_CHECK(x_in.dim() >= 1 && key.sample_stride >= 1, "keyed_dropout: expects [rows, ...] and a stride >= 1, got ",
             x_in.describe());
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t rows = x.size(0), row_size = rows == 0 ? 0 : x.numel() / rows;
  const float keep_scale = static_cast<float>(1.0 / (1.0 - key.probability));
  if (x.numel() == 0) return y;
  if (x.device().is_cuda()) {
    RWKV_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16, "keyed_dropout: CUDA tensors must be f32 or bf16, "
               "got ", x.describe());
    detail::use_device_of(x);
    cuda_kernels::keyed_dropout(detail::cuda_float_io(x), x.raw_data(), y.raw_data(), rows, row_size,
                                {key.seed, key.first_sample, key.sample_stride, static_cast<float>(key.probability),
                                 keep_scale});
    return y;
  }
  if (x.dtype() == DType::bf16) {
    dropout_cpu(x.data<BFloat16>(), y.data<BFloat16>(), rows, row_size, key, keep_scale,
                [](const BFloat16* p, int64_t i) { return bf16_to_float(p[i]); },
                [](BFloat16* p, int64_t i, float v) { p[i] = float_to_bf16(v); });
    return y;
  }
  detail::dispatch_float("keyed_dropout", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    dropout_cpu(x.data<T>(), y.data<T>(), rows, row_size, key, keep_scale,
                [](const T* p, int64_t i) { return p[i]; },
                [](T* p, int64_t i, auto v) { p[i] = static_cast<T>(v); });
  });
  return y;
}

}  // namespace rwkv::ops
