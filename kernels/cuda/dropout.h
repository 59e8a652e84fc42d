// The CUDA kernel of ops::keyed_dropout (kernels/dropout.h); the no-CUDA build links a stub that throws.
#pragma once

#include <cstdint>

#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

struct DropoutLaunch {
  uint64_t seed;
  uint64_t first_sample;
  uint64_t sample_stride;
  float probability;
  float keep_scale;
};

// y = x * mask for rows × row_size elements of `io` (row r is global sample first_sample + r·sample_stride).
void keyed_dropout(FloatIo io, const void* x, void* y, int64_t rows, int64_t row_size, const DropoutLaunch& key);

}  // namespace rwkv::cuda_kernels
