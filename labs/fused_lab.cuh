// Pieces shared by the fused-kernel labs (time_mix, add_layernorm, gates): the --B/--T/--C flags, fp32 <-> I/O
// conversions for kernels templated on float and __nv_bfloat16, 16-byte vector access, and the tolerances that a
// version's result must meet against the CPU reference.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/kernels.h"
#include "labs/lab.cuh"

namespace lab {

struct Sizes {
  int64_t B = 16, T = 1024, C = 768;
  int64_t rows() const { return B * T; }
  int64_t n() const { return B * T * C; }
};

// --B 16 --T 1024 --C 768 (any subset; anything else is an error).
inline Sizes parse_sizes(int argc, char** argv, const char* program) {
  Sizes sizes;
  parse_int_flags(argc, argv, program, {{"--B", &sizes.B}, {"--T", &sizes.T}, {"--C", &sizes.C}});
  std::printf("B=%lld T=%lld C=%lld\n", static_cast<long long>(sizes.B), static_cast<long long>(sizes.T),
              static_cast<long long>(sizes.C));
  return sizes;
}

using bf16 = __nv_bfloat16;

// The production kernels' name for the I/O type.
template <typename IO>
rwkv::cuda_kernels::FloatIo float_io() {
  return std::is_same_v<IO, bf16> ? rwkv::cuda_kernels::FloatIo::bf16 : rwkv::cuda_kernels::FloatIo::f32;
}

template <typename IO>
const char* io_name() {
  return std::is_same_v<IO, bf16> ? "bf16" : "f32";
}

// Host values as the I/O type stores them (bf16: rounded to nearest even), so the CPU reference sees the same inputs.
template <typename IO>
std::vector<float> as_stored(std::vector<float> values) {
  if constexpr (std::is_same_v<IO, bf16>) {
    return round_to_bf16(std::move(values));
  } else {
    return values;
  }
}

// Tolerance of an activation result (one bf16 rounding, or fp32 arithmetic in another order) and of a sum over
// the B*T rows (fp32 partial sums against the CPU's double).
template <typename IO>
double activation_rtol() {
  return std::is_same_v<IO, bf16> ? 1e-2 : 1e-5;
}
template <typename IO>
double activation_atol() {
  return std::is_same_v<IO, bf16> ? 1e-2 : 1e-5;
}
inline constexpr double kSumRtol = 1e-3, kSumAtol = 1e-2;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <typename IO>
__device__ __forceinline__ IO from_f(float v) {
  if constexpr (std::is_same_v<IO, bf16>) {
    return __float2bfloat16_rn(v);
  } else {
    return v;
  }
}

// Elements per 16-byte access.
template <typename IO>
inline constexpr int kVec = 16 / sizeof(IO);

template <typename IO>
__device__ __forceinline__ void load_vec(const IO* p, float (&out)[kVec<IO>]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const IO* e = reinterpret_cast<const IO*>(&raw);
#pragma unroll
  for (int k = 0; k < kVec<IO>; ++k) out[k] = to_f(e[k]);
}

template <typename IO>
__device__ __forceinline__ void store_vec(IO* p, const float (&values)[kVec<IO>]) {
  uint4 raw;
  IO* e = reinterpret_cast<IO*>(&raw);
#pragma unroll
  for (int k = 0; k < kVec<IO>; ++k) e[k] = from_f<IO>(values[k]);
  *reinterpret_cast<uint4*>(p) = raw;
}

inline int grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks < (1 << 30) ? blocks : (1 << 30)));
}

#define LAB_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace lab
