// Mixed precision (precision = bf16): activations and GEMM operands in bf16 with fp32 accumulation, fp32 master
// weights. A layer reads a bf16 copy of its fp32 weight, made in forward and kept for backward; the weight's
// gradient is computed in fp32 straight from the bf16 operands, so it reaches the fp32 master unrounded.
#pragma once

#include "autograd/variable.h"

namespace rwkv::ag {

// x [..., in] bf16 times weightᵀ, weight [out, in] f32 -> [..., out] bf16. dx is bf16, dweight f32.
Variable linear_bf16(const Variable& x, const Variable& weight);

}  // namespace rwkv::ag
