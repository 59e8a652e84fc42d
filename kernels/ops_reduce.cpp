#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

Tensor sum(const Tensor& x_in, int64_t dim, bool keepdim) {
  profile::Scope profile_scope("reduce", x_in.device());
  detail::check_float_or_bf16_operands("sum", {&x_in});
  const int64_t axis = wrap_dim(dim, x_in.dim(), "sum");
  // bf16 on the CPU: the f32 sum (accumulated in double) of the widened input, rounded to bf16 (as on CUDA).
  if (detail::is_cpu_bf16(x_in)) {
    return sum(x_in.to(DType::f32), axis, keepdim).to(DType::bf16);
  }
  const Tensor x = x_in.contiguous();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.size(d);
  for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.size(d);
  Shape out_shape = x.shape();
  if (keepdim) {
    out_shape[static_cast<size_t>(axis)] = 1;
  } else {
    out_shape.erase(out_shape.begin() + axis);
  }
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::sum_middle(detail::cuda_float_io(x), x.raw_data(), outer, x.size(axis), inner, out.raw_data());
    return out;
  }
  detail::dispatch_float("sum", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::sum_middle<T>(x.data<T>(), outer, x.size(axis), inner, out.data<T>());
  });
  return out;
}

Tensor sum_all(const Tensor& x_in) {
  profile::Scope profile_scope("reduce", x_in.device());
  detail::check_float_or_bf16_operands("sum_all", {&x_in});
  if (detail::is_cpu_bf16(x_in)) {
    return sum_all(x_in.to(DType::f32)).to(DType::bf16);
  }
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::sum_middle(detail::cuda_float_io(x), x.raw_data(), 1, x.numel(), 1, out.raw_data());
    return out;
  }
  detail::dispatch_float("sum_all", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::sum_middle<T>(x.data<T>(), 1, x.numel(), 1, out.data<T>());
  });
  return out;
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  profile::Scope profile_scope("reduce", x.device());
  RWKV_CHECK(broadcast_shapes(shape, x.shape(), "sum_to_shape") == x.shape(), "sum_to_shape: ",
             shape_str(shape), " does not broadcast to ", x.describe());
  if (x.shape() == shape) return x;
  // bf16: several reductions in fp32, rounded to bf16 once at the end rather than after each.
  if (x.dtype() == DType::bf16) return sum_to_shape(x.to(DType::f32), shape).to(DType::bf16);
  Tensor reduced = x;
  // Leading dims that `shape` lacks are summed away; dims where `shape` has 1 are summed with keepdim.
  const size_t lead = x.shape().size() - shape.size();
  for (size_t i = 0; i < lead; ++i) reduced = sum(reduced, 0, false);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1 && reduced.size(static_cast<int64_t>(i)) != 1) {
      reduced = sum(reduced, static_cast<int64_t>(i), true);
    }
  }
  return reduced.reshape(shape);
}

}  // namespace rwkv::ops
