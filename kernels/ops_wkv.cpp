#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {

struct WkvDims {
  int64_t batch, time, channels;
};

// k and v share the I/O dtype (f32, bf16, or f64 on the CPU); time_decay, time_first and state_in are in the
// parameter dtype: f32 for bf16 I/O, else the I/O dtype.
WkvDims check_wkv(const char* op, const Tensor& time_decay, const Tensor& time_first, const Tensor& k,
                  const Tensor& v, const Tensor& state_in) {
  detail::check_same_device(op, {&time_decay, &time_first, &k, &v, &state_in});
  detail::check_float_or_bf16_operands(op, {&k, &v});
  const DType param_dtype = k.dtype() == DType::bf16 ? DType::f32 : k.dtype();
  for (const Tensor* t : {&time_decay, &time_first, &state_in}) {
    if (t == &state_in && !state_in.defined()) continue;
    RWKV_CHECK(t->defined(), op, ": time_decay and time_first must be defined");
    RWKV_CHECK(t->device() == k.device() && t->dtype() == param_dtype, op, ": ", t->describe(), " must be ",
               dtype_name(param_dtype), " on ", k.device().str(), " for k ", k.describe());
  }
  RWKV_CHECK(k.dim() == 3 && v.shape() == k.shape(), op, ": k ", k.describe(), " and v ", v.describe(),
             " must both be [batch, time, channels]");
  const WkvDims dims{k.size(0), k.size(1), k.size(2)};
  RWKV_CHECK(dims.time >= 1 && dims.channels >= 1 && dims.batch >= 1, op, ": empty input ", k.describe());
  RWKV_CHECK(time_decay.shape() == Shape{dims.channels} && time_first.shape() == Shape{dims.channels}, op,
             ": time_decay ", time_decay.describe(), " and time_first ", time_first.describe(), " must be [",
             dims.channels, "] for k ", k.describe());
  if (state_in.defined()) {
    RWKV_CHECK(state_in.shape() == (Shape{dims.batch, 3, dims.channels}), op, ": state ", state_in.describe(),
               " must be [", dims.batch, ", 3, ", dims.channels, "]");
  }
  return dims;
}

Tensor decay_from_time_decay(const Tensor& time_decay) {
  return unary(Unary::neg, unary(Unary::exp, time_decay));  // w = -exp(time_decay), in the tensor's precision
}

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// ---- CUDA: u, k, v, y and their gradients in the I/O dtype (f32 or bf16); w, the states, their gradients and
// the per-batch gw, gu always fp32 (spec §2.6).
void check_on_device(const char* op, const Tensor& k, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    RWKV_CHECK(!t->defined() || t->device() == k.device(), op, ": ", t->describe(), " is not on ",
               k.device().str(), " with k");
  }
}

WkvOutput wkv_cuda(const WkvDims& d, const Tensor& time_decay, const Tensor& time_first, const Tensor& k_in,
                   const Tensor& v_in, const Tensor& state_in_arg, bool want_state) {
  check_on_device("wkv", k_in, {&state_in_arg});
  const DType io = k_in.dtype();
  const Tensor w = decay_from_time_decay(time_decay.to(DType::f32)), u = time_first.to(io).contiguous();
  const Tensor k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor state_in = state_in_arg.defined() ? state_in_arg.to(DType::f32).contiguous() : Tensor();
  WkvOutput out{Tensor::empty(k.shape(), io, k.device()),
                want_state ? Tensor::empty({d.batch, 3, d.channels}, DType::f32, k.device()) : Tensor()};
  detail::use_device_of(k);
  cuda_kernels::wkv_forward({d.batch, d.time, d.channels, detail::cuda_float_io(k), w.data<float>(), u.raw_data(),
                             k.raw_data(), v.raw_data(), optional_data<float>(state_in), out.y.raw_data(),
                             want_state ? out.state.data<float>() : nullptr});
  return out;
}

WkvGrads wkv_backward_cuda(const WkvDims& d, const Tensor& time_decay, const Tensor& time_first, const Tensor& k_in,
                           const Tensor& v_in, const Tensor& y_in, const Tensor& grad_y_in, const Tensor& state_in_arg,
                           const Tensor& grad_state_out_arg) {
  check_on_device("wkv_backward", k_in, {&y_in, &grad_y_in, &state_in_arg, &grad_state_out_arg});
  const DType io = k_in.dtype();
  const Tensor w = decay_from_time_decay(time_decay.to(DType::f32)), u = time_first.to(io).contiguous();
  const Tensor k = k_in.contiguous(), v = v_in.contiguous();
  const Tensor y = y_in.to(io).contiguous(), gy = grad_y_in.to(io).contiguous();
  const Tensor state_in = state_in_arg.defined() ? state_in_arg.to(DType::f32).contiguous() : Tensor();
  const Tensor grad_state_out =
      grad_state_out_arg.defined() ? grad_state_out_arg.to(DType::f32).contiguous() : Tensor();
  Tensor gw_per_batch = Tensor::empty({d.batch, d.channels}, DType::f32, k.device());
  Tensor gu_per_batch = Tensor::empty({d.batch, d.channels}, DType::f32, k.device());
  WkvGrads grads{Tensor(), Tensor(), Tensor::empty(k.shape(), io, k.device()), Tensor::empty(k.shape(), io, k.device()),
                 state_in.defined() ? Tensor::empty(state_in.shape(), DType::f32, k.device()) : Tensor()};
  detail::use_device_of(k);
  cuda_kernels::wkv_backward({d.batch, d.time, d.channels, detail::cuda_float_io(k), w.data<float>(), u.raw_data(),
                              k.raw_data(), v.raw_data(), y.raw_data(), gy.raw_data(), optional_data<float>(state_in),
                              optional_data<float>(grad_state_out), gw_per_batch.data<float>(),
                              gu_per_batch.data<float>(), grads.k.raw_data(), grads.v.raw_data(),
                              state_in.defined() ? grads.state.data<float>() : nullptr});
  grads.time_decay = sum(gw_per_batch, 0).to(time_decay.dtype());  // over the batch, in a fixed order
  grads.time_first = sum(gu_per_batch, 0).to(time_first.dtype());
  return grads;
}

}  // namespace

WkvOutput wkv(const Tensor& time_decay, const Tensor& time_first, const Tensor& k_in, const Tensor& v_in,
              const Tensor& state_in_arg, bool want_state) {
  profile::Scope profile_scope("wkv forward", k_in.device());
  const WkvDims d = check_wkv("wkv", time_decay, time_first, k_in, v_in, state_in_arg);
  if (k_in.device().is_cuda()) return wkv_cuda(d, time_decay, time_first, k_in, v_in, state_in_arg, want_state);
  // bf16 I/O on the CPU: the f32 kernel on widened k, v and on u rounded to bf16 (as the CUDA kernels read it);
  // y is rounded back to bf16, the state stays f32.
  const DType io = k_in.dtype(), compute = detail::cpu_compute_dtype(io);
  const Tensor w = decay_from_time_decay(time_decay), u = time_first.to(io).to(compute).contiguous();
  const Tensor k = k_in.to(compute).contiguous(), v = v_in.to(compute).contiguous();
  const Tensor state_in = state_in_arg.defined() ? state_in_arg.contiguous() : Tensor();
  WkvOutput out{Tensor::empty(k.shape(), compute),
                want_state ? Tensor::empty({d.batch, 3, d.channels}, compute) : Tensor()};
  detail::dispatch_float("wkv", compute, [&](auto zero) {
    using T = decltype(zero);
    cpu::wkv_forward<T>(d.batch, d.time, d.channels, w.data<T>(), u.data<T>(), k.data<T>(), v.data<T>(),
                        optional_data<T>(state_in), out.y.data<T>(), want_state ? out.state.data<T>() : nullptr);
  });
  out.y = out.y.to(io);
  return out;
}

WkvGrads wkv_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k_in, const Tensor& v_in,
                      const Tensor& y_in, const Tensor& grad_y_in, const Tensor& state_in_arg,
                      const Tensor& grad_state_out_arg) {
  profile::Scope profile_scope("wkv backward", k_in.device());
  detail::check_same_device("wkv_backward", {&time_decay, &time_first, &k_in, &v_in, &y_in, &grad_y_in, &state_in_arg,
                                             &grad_state_out_arg});
  const WkvDims d = check_wkv("wkv_backward", time_decay, time_first, k_in, v_in, state_in_arg);
  detail::check_same_shape("wkv_backward", y_in, k_in);
  detail::check_same_shape("wkv_backward", grad_y_in, k_in);
  if (grad_state_out_arg.defined()) {
    RWKV_CHECK(grad_state_out_arg.shape() == (Shape{d.batch, 3, d.channels}), "wkv_backward: state gradient ",
               grad_state_out_arg.describe(), " must be [", d.batch, ", 3, ", d.channels, "]");
  }
  check_on_device("wkv_backward", k_in, {&y_in, &grad_y_in, &grad_state_out_arg});
  if (k_in.device().is_cuda()) {
    return wkv_backward_cuda(d, time_decay, time_first, k_in, v_in, y_in, grad_y_in, state_in_arg,
                             grad_state_out_arg);
  }
  // bf16 I/O: as in the forward, the f32 kernel on widened inputs; gk, gv rounded back to bf16.
  const DType io = k_in.dtype(), dtype = detail::cpu_compute_dtype(io);
  const Tensor w = decay_from_time_decay(time_decay), u = time_first.to(io).to(dtype).contiguous();
  const Tensor k = k_in.to(dtype).contiguous(), v = v_in.to(dtype).contiguous();
  const Tensor y = y_in.to(io).to(dtype).contiguous(), gy = grad_y_in.to(io).to(dtype).contiguous();
  const Tensor state_in = state_in_arg.defined() ? state_in_arg.contiguous() : Tensor();
  const Tensor grad_state_out = grad_state_out_arg.defined() ? grad_state_out_arg.to(dtype).contiguous() : Tensor();
  Tensor gw_per_batch = Tensor::empty({d.batch, d.channels}, dtype);
  Tensor gu_per_batch = Tensor::empty({d.batch, d.channels}, dtype);
  WkvGrads grads{Tensor(), Tensor(), Tensor::empty(k.shape(), dtype), Tensor::empty(k.shape(), dtype),
                 state_in.defined() ? Tensor::empty(state_in.shape(), dtype) : Tensor()};
  detail::dispatch_float("wkv_backward", dtype, [&](auto zero) {
    using T = decltype(zero);
    cpu::wkv_backward<T>(d.batch, d.time, d.channels, w.data<T>(), u.data<T>(), k.data<T>(), v.data<T>(),
                         y.data<T>(), gy.data<T>(), optional_data<T>(state_in), optional_data<T>(grad_state_out),
                         gw_per_batch.data<T>(), gu_per_batch.data<T>(), grads.k.data<T>(), grads.v.data<T>(),
                         state_in.defined() ? grads.state.data<T>() : nullptr);
  });
  grads.time_decay = sum(gw_per_batch, 0);
  grads.time_first = sum(gu_per_batch, 0);
  grads.k = grads.k.to(io);
  grads.v = grads.v.to(io);
  return grads;
}

}  // namespace rwkv::ops
