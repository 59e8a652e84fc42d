// Internal to the WKV kernels: element loads/stores for the I/O types and the launchers of each version.
#pragma once

#include <cuda_bf16.h>

#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels::wkv_detail {

// "Minus infinity" that stays finite (spec §1.5): -inf - (-inf) would be NaN.
inline constexpr float kMinExponent = -1e38f;

__device__ inline float load(const float* p, int64_t i) { return p[i]; }
__device__ inline float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ inline void store(float* p, int64_t i, float value) { p[i] = value; }
__device__ inline void store(__nv_bfloat16* p, int64_t i, float value) { p[i] = __float2bfloat16_rn(value); }

template <typename Fn>
void dispatch_io(FloatIo io, Fn&& fn) {
  if (io == FloatIo::f32) return fn(float{});
  return fn(__nv_bfloat16{});
}

void forward_v1(const WkvForwardArgs& args);
void backward_v1(const WkvBackwardArgs& args);
void forward_v2(const WkvForwardArgs& args);
void backward_v2(const WkvBackwardArgs& args);

}  // namespace rwkv::cuda_kernels::wkv_detail
