// The keep/zero decision of keyed dropout, one definition compiled for the CPU and (under nvcc) for CUDA
// kernels, so both devices draw exactly the same mask. Element e of the global stream (see DropoutKey) is kept
// when the 24-bit uniform of lane e % 4 of the Philox-4x32-10 block (seed, e / 4) is >= the probability: the
// same generator and the same bits-to-float rule as core/rng.h.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define RWKV_HOST_DEVICE __host__ __device__
#else
#define RWKV_HOST_DEVICE
#endif

namespace rwkv::dropout_mask {

// Philox-4x32-10 lane `lane` of block (seed, counter); equal to rwkv::philox4x32(seed, counter)[lane].
RWKV_HOST_DEVICE inline uint32_t philox_lane(uint64_t seed, uint64_t counter, unsigned lane) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return lane == 0 ? c0 : lane == 1 ? c1 : lane == 2 ? c2 : c3;
}

// The factor element `element` of the stream is multiplied by: 0 (dropped) or 1 / (1 − p) (kept), as
// torch.nn.Dropout in training mode.
RWKV_HOST_DEVICE inline float factor(uint64_t seed, uint64_t element, float probability, float keep_scale) {
  const uint32_t bits = philox_lane(seed, element >> 2, static_cast<unsigned>(element & 3));
  const float uniform = static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
  return uniform >= probability ? keep_scale : 0.0f;
}

// Position in the global element stream of element `i` (0 <= i < row_size) of row `row`: rows are samples,
// row r of this call being global sample first_sample + r·sample_stride.
RWKV_HOST_DEVICE inline uint64_t element_of(uint64_t first_sample, uint64_t sample_stride, uint64_t row_size,
                                            uint64_t row, uint64_t i) {
  return (first_sample + row * sample_stride) * row_size + i;
}

}  // namespace rwkv::dropout_mask
