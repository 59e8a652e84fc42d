#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {

// True when `small` equals the trailing dims of `full` once its leading 1s are dropped, so that small[i % n]
// lines up with full[i] in memory.
bool is_trailing_broadcast(const Shape& small, const Shape& full) {
  size_t lead = 0;
  while (lead < small.size() && small[lead] == 1) ++lead;
  const size_t rank = small.size() - lead;
  if (rank > full.size()) return false;
  for (size_t i = 0; i < rank; ++i) {
    if (small[lead + i] != full[full.size() - rank + i]) return false;
  }
  return true;
}

Tensor widened(const Tensor& t) { return t.defined() ? t.to(DType::f32) : Tensor(); }

}  // namespace

Tensor unary(Unary op, const Tensor& x_in) {
  profile::Scope profile_scope("elementwise", x_in.device());
  detail::check_float_or_bf16_operands(unary_name(op), {&x_in});
  if (detail::is_cpu_bf16(x_in)) return unary(op, widened(x_in)).to(DType::bf16);
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::unary(detail::cuda_float_io(x), op, x.raw_data(), y.raw_data(), x.numel());
    return y;
  }
  detail::dispatch_float(unary_name(op), x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::unary<T>(op, x.data<T>(), y.data<T>(), x.numel());
  });
  return y;
}

Tensor unary_backward(Unary op, const Tensor& grad_out_in, const Tensor& input_in, const Tensor& output_in) {
  profile::Scope profile_scope("elementwise", grad_out_in.device());
  const char* name = unary_name(op);
  detail::check_same_device(name, {&grad_out_in, &input_in, &output_in});
  const bool needs_output = op == Unary::exp || op == Unary::sigmoid;
  const bool needs_input = op == Unary::relu || op == Unary::square;
  const Tensor grad_out = grad_out_in.contiguous();
  const Tensor input = needs_input ? input_in.contiguous() : Tensor();
  const Tensor output = needs_output ? output_in.contiguous() : Tensor();
  const Tensor& used = needs_input ? input : (needs_output ? output : grad_out);
  detail::check_float_or_bf16_operands(name, {&grad_out, &used});
  detail::check_same_shape(name, grad_out, used);
  if (detail::is_cpu_bf16(grad_out)) {
    return unary_backward(op, widened(grad_out), widened(input), widened(output)).to(DType::bf16);
  }
  Tensor grad_in = Tensor::empty(grad_out.shape(), grad_out.dtype(), grad_out.device());
  if (grad_out.device().is_cuda()) {
    detail::use_device_of(grad_out);
    cuda_kernels::unary_backward(detail::cuda_float_io(grad_out), op, grad_out.raw_data(),
                                 needs_input ? input.raw_data() : nullptr, needs_output ? output.raw_data() : nullptr,
                                 grad_in.raw_data(), grad_out.numel());
    return grad_in;
  }
  detail::dispatch_float(name, grad_out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::unary_backward<T>(op, grad_out.data<T>(), needs_input ? input.data<T>() : nullptr,
                           needs_output ? output.data<T>() : nullptr, grad_in.data<T>(), grad_out.numel());
  });
  return grad_in;
}

Tensor binary(Binary op, const Tensor& a_in, const Tensor& b_in) {
  profile::Scope profile_scope("elementwise", a_in.device());
  const char* name = binary_name(op);
  detail::check_float_or_bf16_operands(name, {&a_in, &b_in});
  const Shape out_shape = broadcast_shapes(a_in.shape(), b_in.shape(), name);
  if (detail::is_cpu_bf16(a_in)) return binary(op, widened(a_in), widened(b_in)).to(DType::bf16);
  Tensor out = Tensor::empty(out_shape, a_in.dtype(), a_in.device());
  const int64_t n = out.numel();
  const bool cuda = a_in.device().is_cuda();
  auto run = [&](const Tensor& a, const Tensor& b, bool left_broadcast) {
    if (cuda) {
      detail::use_device_of(out);
      const cuda_kernels::FloatIo io = detail::cuda_float_io(out);
      if (left_broadcast) {
        cuda_kernels::binary_left_broadcast(io, op, a.raw_data(), a.numel(), b.raw_data(), out.raw_data(), n);
      } else {
        cuda_kernels::binary(io, op, a.raw_data(), b.raw_data(), b.numel(), out.raw_data(), n);
      }
      return;
    }
    detail::dispatch_float(name, a.dtype(), [&](auto zero) {
      using T = decltype(zero);
      if (left_broadcast) {
        cpu::binary_left_broadcast<T>(op, a.data<T>(), a.numel(), b.data<T>(), out.data<T>(), n);
      } else {
        cpu::binary<T>(op, a.data<T>(), b.data<T>(), b.numel(), out.data<T>(), n);
      }
    });
  };
  if (n == 0) return out;
  const bool a_full = a_in.shape() == out_shape, b_full = b_in.shape() == out_shape;
  if (a_full && (b_full || is_trailing_broadcast(b_in.shape(), out_shape))) {
    run(a_in.contiguous(), b_in.contiguous(), false);
  } else if (b_full && is_trailing_broadcast(a_in.shape(), out_shape)) {
    run(a_in.contiguous(), b_in.contiguous(), true);
  } else {
    run(broadcast_to(a_in, out_shape), broadcast_to(b_in, out_shape), false);
  }
  return out;
}

Tensor affine(const Tensor& x_in, double scale, double shift) {
  profile::Scope profile_scope("elementwise", x_in.device());
  detail::check_float_or_bf16_operands("affine", {&x_in});
  if (detail::is_cpu_bf16(x_in)) return affine(widened(x_in), scale, shift).to(DType::bf16);
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::affine(detail::cuda_float_io(x), x.raw_data(), static_cast<float>(scale), static_cast<float>(shift),
                         y.raw_data(), x.numel());
    return y;
  }
  detail::dispatch_float("affine", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::affine<T>(x.data<T>(), static_cast<T>(scale), static_cast<T>(shift), y.data<T>(), x.numel());
  });
  return y;
}

void accumulate_(Tensor& into, const Tensor& value_in) {
  profile::Scope profile_scope("elementwise", into.device());
  detail::check_float_or_bf16_operands("accumulate_", {&into});
  detail::check_float_or_bf16_operands("accumulate_", {&value_in});
  RWKV_CHECK(into.device() == value_in.device(), "accumulate_: operands on different devices: ", into.describe(),
             " and ", value_in.describe());
  const bool widening = into.dtype() == DType::f32 && value_in.dtype() == DType::bf16;
  RWKV_CHECK(into.dtype() == value_in.dtype() || widening, "accumulate_: cannot accumulate ", value_in.describe(),
             " into ", into.describe(), " (equal dtypes, or bf16 into f32)");
  detail::check_same_shape("accumulate_", into, value_in);
  RWKV_CHECK(into.is_contiguous(), "accumulate_: destination ", into.describe(), " must be contiguous");
  const Tensor value = value_in.contiguous();
  if (into.device().is_cuda()) {
    detail::use_device_of(into);
    cuda_kernels::accumulate(detail::cuda_float_io(value), detail::cuda_float_io(into), value.raw_data(),
                             into.raw_data(), into.numel());
    return;
  }
  if (into.dtype() == DType::bf16) {  // into = round(into + value), the sum in fp32
    Tensor sum = widened(into);
    accumulate_(sum, widened(value));
    into.copy_(sum);
    return;
  }
  if (widening) {
    accumulate_(into, widened(value));
    return;
  }
  detail::dispatch_float("accumulate_", into.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::accumulate<T>(value.data<T>(), into.data<T>(), into.numel());
  });
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return x.expand(shape).contiguous(); }

}  // namespace rwkv::ops
