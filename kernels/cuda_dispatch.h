// Helpers shared by the CUDA branches of kernels/ops_*.cpp (internal to kernels/).
#pragma once

#include "core/cuda_runtime.h"
#include "core/tensor.h"
#include "kernels/cuda/kernels.h"

namespace rwkv::ops::detail {

// Makes the tensor's device current, so that the kernels that follow run there (on its current stream).
inline void use_device_of(const Tensor& t) { cuda::set_device(t.device().index); }

inline cuda_kernels::IdType cuda_id_type(const Tensor& ids) {
  return ids.dtype() == DType::i32 ? cuda_kernels::IdType::i32 : cuda_kernels::IdType::i64;
}

inline cuda_kernels::FloatIo cuda_float_io(const Tensor& t) {
  return t.dtype() == DType::bf16 ? cuda_kernels::FloatIo::bf16 : cuda_kernels::FloatIo::f32;
}

}  // namespace rwkv::ops::detail
