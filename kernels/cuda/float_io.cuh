// Element access for kernels templated over the storage type (float or __nv_bfloat16) with fp32 math: a bf16
// element is widened on load and rounded to nearest even on store; dispatch_io picks the type from FloatIo.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

__device__ inline float load(const float* p, int64_t i) { return p[i]; }
__device__ inline float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ inline void store(float* p, int64_t i, float value) { p[i] = value; }
__device__ inline void store(__nv_bfloat16* p, int64_t i, float value) { p[i] = __float2bfloat16_rn(value); }

// Calls fn with a value of the storage type of io.
template <typename Fn>
void dispatch_io(FloatIo io, Fn&& fn) {
  if (io == FloatIo::f32) return fn(float{});
  return fn(__nv_bfloat16{});
}

}  // namespace rwkv::cuda_kernels
