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

const float* f32(const Tensor& t) { return t.data<float>(); }

}  // namespace

Tensor unary(Unary op, const Tensor& x_in) {
  detail::check_float_operands(unary_name(op), {&x_in});
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::unary(op, f32(x), y.data<float>(), x.numel());
    return y;
  }
  detail::dispatch_float(unary_name(op), x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::unary<T>(op, x.data<T>(), y.data<T>(), x.numel());
  });
  return y;
}

Tensor unary_backward(Unary op, const Tensor& grad_out_in, const Tensor& input_in, const Tensor& output_in) {
  const char* name = unary_name(op);
  const bool needs_output = op == Unary::exp || op == Unary::sigmoid;
  const bool needs_input = op == Unary::relu || op == Unary::square;
  const Tensor grad_out = grad_out_in.contiguous();
  const Tensor input = needs_input ? input_in.contiguous() : Tensor();
  const Tensor output = needs_output ? output_in.contiguous() : Tensor();
  const Tensor& used = needs_input ? input : (needs_output ? output : grad_out);
  detail::check_float_operands(name, {&grad_out, &used});
  detail::check_same_shape(name, grad_out, used);
  Tensor grad_in = Tensor::empty(grad_out.shape(), grad_out.dtype(), grad_out.device());
  if (grad_out.device().is_cuda()) {
    detail::use_device_of(grad_out);
    cuda_kernels::unary_backward(op, f32(grad_out), needs_input ? f32(input) : nullptr,
                                 needs_output ? f32(output) : nullptr, grad_in.data<float>(), grad_out.numel());
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
  const char* name = binary_name(op);
  detail::check_float_operands(name, {&a_in, &b_in});
  const Shape out_shape = broadcast_shapes(a_in.shape(), b_in.shape(), name);
  Tensor out = Tensor::empty(out_shape, a_in.dtype(), a_in.device());
  const int64_t n = out.numel();
  const bool cuda = a_in.device().is_cuda();
  auto run = [&](const Tensor& a, const Tensor& b, bool left_broadcast) {
    if (cuda) {
      detail::use_device_of(out);
      if (left_broadcast) {
        cuda_kernels::binary_left_broadcast(op, f32(a), a.numel(), f32(b), out.data<float>(), n);
      } else {
        cuda_kernels::binary(op, f32(a), f32(b), b.numel(), out.data<float>(), n);
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
  detail::check_float_operands("affine", {&x_in});
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::affine(f32(x), static_cast<float>(scale), static_cast<float>(shift), y.data<float>(), x.numel());
    return y;
  }
  detail::dispatch_float("affine", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::affine<T>(x.data<T>(), static_cast<T>(scale), static_cast<T>(shift), y.data<T>(), x.numel());
  });
  return y;
}

void accumulate_(Tensor& into, const Tensor& value_in) {
  detail::check_float_operands("accumulate_", {&into, &value_in});
  detail::check_same_shape("accumulate_", into, value_in);
  RWKV_CHECK(into.is_contiguous(), "accumulate_: destination ", into.describe(), " must be contiguous");
  const Tensor value = value_in.contiguous();
  if (into.device().is_cuda()) {
    detail::use_device_of(into);
    cuda_kernels::accumulate(f32(value), into.data<float>(), into.numel());
    return;
  }
  detail::dispatch_float("accumulate_", into.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::accumulate<T>(value.data<T>(), into.data<T>(), into.numel());
  });
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return x.expand(shape).contiguous(); }

}  // namespace rwkv::ops
