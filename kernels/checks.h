// Argument checks and dtype dispatch shared by the ops/*.cpp files (internal to kernels/).
#pragma once

#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace rwkv::ops::detail {

// All tensors defined, on one device, with one floating dtype the kernels support there: f32, or f64 on the CPU.
void check_float_operands(const char* op, std::initializer_list<const Tensor*> tensors);
// The same for ops that also take bf16 (stored in bf16, computed in fp32): f32, bf16, or f64 on the CPU.
void check_float_or_bf16_operands(const char* op, std::initializer_list<const Tensor*> tensors);
// Every defined operand (undefined ones are absent optional operands) on one device, checked before an op reads
// any of them: a CPU path must never dereference device memory, and a CUDA kernel never a host pointer. Each op
// passes all of its tensor operands here first; the error names the op and the two tensors.
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);
void check_same_device(const char* op, const std::vector<const Tensor*>& tensors);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_ids(const char* op, const Tensor& ids);  // i32 or i64
// Every id in [0, limit); the error names the op, the offending value and its flat position.
void check_id_range(const char* op, const Tensor& ids, int64_t limit, const char* what);
[[noreturn]] void no_cuda_kernel(const char* op, const Tensor& t);

// The dtype the CPU computes a floating op in: fp32 for bf16 storage, else the tensor's own dtype.
inline DType cpu_compute_dtype(DType dtype) { return dtype == DType::bf16 ? DType::f32 : dtype; }
// A bf16 tensor on the CPU: its ops run as the f32 op on the widened input, rounded to bf16 once at the end.
inline bool is_cpu_bf16(const Tensor& t) { return t.device().is_cpu() && t.dtype() == DType::bf16; }

template <typename Fn>
void dispatch_float(const char* op, DType dtype, Fn&& fn) {
  if (dtype == DType::f32) return fn(float{});
  if (dtype == DType::f64) return fn(double{});
  RWKV_FAIL(op, ": unsupported dtype ", dtype_name(dtype), " (f32 or f64 expected)");
}

template <typename Fn>
void dispatch_ids(const char* op, DType dtype, Fn&& fn) {
  if (dtype == DType::i32) return fn(int32_t{});
  if (dtype == DType::i64) return fn(int64_t{});
  RWKV_FAIL(op, ": ids must be i32 or i64, got ", dtype_name(dtype));
}

}  // namespace rwkv::ops::detail
