// Internal to the WKV kernels: the launchers of each version (element access for the I/O types: float_io.cuh).
#pragma once

#include <cuda_bf16.h>

#include "kernels/cuda/float_io.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels::wkv_detail {

// "Minus infinity" that stays finite (spec §1.5): -inf - (-inf) would be NaN.
inline constexpr float kMinExponent = -1e38f;

void forward_v1(const WkvForwardArgs& args);
void backward_v1(const WkvBackwardArgs& args);
void forward_v2(const WkvForwardArgs& args);
void backward_v2(const WkvBackwardArgs& args);

}  // namespace rwkv::cuda_kernels::wkv_detail
