// The keep/zero decision of keyed dropout, one definition compiled for the CPU and (under nvcc) for CUDA
// kernels, so both devices draw exactly the same mask. Element e of the global stream (see DropoutKey) is kept
// when the 24-bit uniform of lane e % 4 of the Philox-4x32-10 block (seed, e / 4) is >= the probability: the
// same generator and the same bits-to-float rule as core/rng.h.
#pragma once

#include <cstdint>

#include "core/philox.h"

namespace rwkv::dropout_mask {

// Philox-4x32-10 lane `lane` of block (seed, counter); equal to rwkv::philox4x32(seed, counter)[lane].
RWKV_HOST_DEVICE inline uint32_t philox_lane(uint64_t seed, uint64_t counter, unsigned lane) {
  const PhiloxBlock block = philox4x32_block(seed, counter);
  // a select, not an index: a dynamically indexed array would go to local memory in a kernel
  return lane == 0 ? block.lanes[0] : lane == 1 ? block.lanes[1] : lane == 2 ? block.lanes[2] : block.lanes[3];
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
