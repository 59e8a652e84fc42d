// Tensor layer of the fused RWKV ops (kernels/rwkv_ops.h): argument checks, then the CPU or CUDA kernel.
#include <string>

#include "core/bf16.h"
#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/rwkv_fused.h"
#include "kernels/cuda/rwkv_fused.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/rwkv_ops.h"

namespace rwkv::ops {

namespace {

// Activations: all defined, on one device, one dtype: f32 or bf16, or f64 on the CPU.
void check_activations(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  const Tensor* first = nullptr;
  const char* first_name = "";
  for (const auto& [name, t] : tensors) {
    RWKV_CHECK(t->defined(), op, ": ", name, " is undefined");
    if (!first) {
      first = t;
      first_name = name;
      const DType d = t->dtype();
      RWKV_CHECK(d == DType::f32 || d == DType::bf16 || (d == DType::f64 && t->device().is_cpu()), op, ": ", name,
                 " ", t->describe(), " has an unsupported dtype (f32 or bf16, or f64 on the CPU)");
      continue;
    }
    RWKV_CHECK(t->device() == first->device(), op, ": operands on different devices: ", first_name, " ",
               first->describe(), " and ", name, " ", t->describe());
    RWKV_CHECK(t->dtype() == first->dtype(), op, ": ", name, " ", t->describe(), " does not have the dtype of ",
               first_name, " ", first->describe());
  }
}

// Per-channel parameters and statistics are f32 (f64 when the activations are f64).
DType param_dtype(DType activation) { return activation == DType::f64 ? DType::f64 : DType::f32; }

void check_param(const char* op, const char* name, const Tensor& param, const Tensor& activation, int64_t channels) {
  RWKV_CHECK(param.defined(), op, ": ", name, " is undefined");
  RWKV_CHECK(param.device() == activation.device(), op, ": operands on different devices: activations ",
             activation.describe(), " and ", name, " ", param.describe());
  RWKV_CHECK(param.dtype() == param_dtype(activation.dtype()), op, ": ", name, " ", param.describe(), " must be ",
             dtype_name(param_dtype(activation.dtype())), " for activations ", activation.describe());
  RWKV_CHECK(param.shape() == Shape{channels}, op, ": ", name, " ", param.describe(), " must be [", channels,
             "] for activations ", activation.describe());
}

void check_same_shape(const char* op, const char* name, const Tensor& t, const char* reference_name,
                      const Tensor& reference) {
  RWKV_CHECK(t.shape() == reference.shape(), op, ": ", name, " ", t.describe(), " must have the shape of ",
             reference_name, " ", reference.describe());
}

// Calls fn(T{}) for the activation element type on the CPU.
template <typename Fn>
void dispatch_activation(const char* op, DType dtype, Fn&& fn) {
  if (dtype == DType::f32) return fn(float{});
  if (dtype == DType::f64) return fn(double{});
  if (dtype == DType::bf16) return fn(BFloat16{});
  RWKV_FAIL(op, ": unsupported dtype ", dtype_name(dtype));
}

template <typename T>
const T* optional_data(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

const void* optional_raw(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
Tensor optional_contiguous(const Tensor& t) { return t.defined() ? t.contiguous() : Tensor(); }

Shape leading_shape(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 1); }

void check_time_mix(const char* op, const Tensor& x, const Tensor& previous, const std::vector<Tensor>& mixes) {
  check_activations(op, {{"x", &x}});
  RWKV_CHECK(x.dim() == 3, op, ": x must be [batch, time, channels], got ", x.describe());
  RWKV_CHECK(x.size(0) >= 1 && x.size(1) >= 1 && x.size(2) >= 1, op, ": empty input x ", x.describe());
  if (previous.defined()) {
    check_activations(op, {{"x", &x}, {"previous", &previous}});
    RWKV_CHECK(previous.shape() == (Shape{x.size(0), x.size(2)}), op, ": previous ", previous.describe(),
               " must be [", x.size(0), ", ", x.size(2), "] for x ", x.describe());
  }
  RWKV_CHECK(!mixes.empty() && mixes.size() <= static_cast<size_t>(cuda_kernels::kMaxTimeMixes), op, ": ",
             mixes.size(), " mixes given (1 to ", cuda_kernels::kMaxTimeMixes, " supported)");
  for (size_t i = 0; i < mixes.size(); ++i) {
    const std::string name = "mix " + std::to_string(i);
    check_param(op, name.c_str(), mixes[i], x, x.size(2));
  }
}

}  // namespace

std::vector<Tensor> time_mix(const Tensor& x_in, const Tensor& previous_in, const std::vector<Tensor>& mixes_in) {
  profile::Scope profile_scope("time mix (fused)", x_in.device());
  check_time_mix("time_mix", x_in, previous_in, mixes_in);
  const Tensor x = x_in.contiguous(), previous = optional_contiguous(previous_in);
  const int64_t batch = x.size(0), time = x.size(1), channels = x.size(2);
  const int count = static_cast<int>(mixes_in.size());
  std::vector<Tensor> mixes, outs;
  for (const Tensor& mix : mixes_in) {
    mixes.push_back(mix.contiguous());
    outs.push_back(Tensor::empty(x.shape(), x.dtype(), x.device()));
  }
  if (x.device().is_cuda()) {
    cuda_kernels::TimeMixForwardArgs args{batch, time, channels, detail::cuda_float_io(x), x.raw_data(),
                                          optional_raw(previous), count, {}, {}};
    for (int i = 0; i < count; ++i) {
      args.mixes[i] = mixes[i].data<float>();
      args.outs[i] = outs[i].raw_data();
    }
    detail::use_device_of(x);
    cuda_kernels::time_mix_forward(args);
    return outs;
  }
  dispatch_activation("time_mix", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using P = cpu::fused_param_t<T>;
    const P* mix_pointers[cuda_kernels::kMaxTimeMixes] = {};
    T* out_pointers[cuda_kernels::kMaxTimeMixes] = {};
    for (int i = 0; i < count; ++i) {
      mix_pointers[i] = mixes[i].data<P>();
      out_pointers[i] = outs[i].data<T>();
    }
    cpu::time_mix_forward<T>(x.data<T>(), optional_data<T>(previous), batch, time, channels, mix_pointers, count,
                             out_pointers);
  });
  return outs;
}

TimeMixGrads time_mix_backward(const std::vector<Tensor>& grad_outs_in, const Tensor& x_in,
                               const Tensor& previous_in, const std::vector<Tensor>& mixes_in) {
  profile::Scope profile_scope("time mix (fused)", x_in.device());
  const char* op = "time_mix_backward";
  check_time_mix(op, x_in, previous_in, mixes_in);
  RWKV_CHECK(grad_outs_in.size() == mixes_in.size(), op, ": ", grad_outs_in.size(), " output gradients for ",
             mixes_in.size(), " mixes");
  for (const Tensor& grad : grad_outs_in) {
    check_activations(op, {{"x", &x_in}, {"an output gradient", &grad}});
    check_same_shape(op, "output gradient", grad, "x", x_in);
  }
  const Tensor x = x_in.contiguous(), previous = optional_contiguous(previous_in);
  const int64_t batch = x.size(0), time = x.size(1), channels = x.size(2);
  const int count = static_cast<int>(mixes_in.size());
  std::vector<Tensor> mixes, grad_outs;
  TimeMixGrads grads{Tensor::empty(x.shape(), x.dtype(), x.device()),
                     previous.defined() ? Tensor::empty(previous.shape(), x.dtype(), x.device()) : Tensor(),
                     {}};
  for (int i = 0; i < count; ++i) {
    mixes.push_back(mixes_in[i].contiguous());
    grad_outs.push_back(grad_outs_in[i].contiguous());
    grads.mixes.push_back(Tensor::empty({channels}, mixes[i].dtype(), x.device()));
  }
  if (x.device().is_cuda()) {
    cuda_kernels::TimeMixBackwardArgs args{batch, time, channels, detail::cuda_float_io(x), count, {}, x.raw_data(),
                                           optional_raw(previous), {}, grads.x.raw_data(),
                                           previous.defined() ? grads.previous.raw_data() : nullptr, {}};
    for (int i = 0; i < count; ++i) {
      args.grad_outs[i] = grad_outs[i].raw_data();
      args.mixes[i] = mixes[i].data<float>();
      args.grad_mixes[i] = grads.mixes[i].data<float>();
    }
    detail::use_device_of(x);
    cuda_kernels::time_mix_backward(args);
    return grads;
  }
  dispatch_activation(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using P = cpu::fused_param_t<T>;
    const T* grad_pointers[cuda_kernels::kMaxTimeMixes] = {};
    const P* mix_pointers[cuda_kernels::kMaxTimeMixes] = {};
    P* grad_mix_pointers[cuda_kernels::kMaxTimeMixes] = {};
    for (int i = 0; i < count; ++i) {
      grad_pointers[i] = grad_outs[i].data<T>();
      mix_pointers[i] = mixes[i].data<P>();
      grad_mix_pointers[i] = grads.mixes[i].data<P>();
    }
    cpu::time_mix_backward<T>(grad_pointers, x.data<T>(), optional_data<T>(previous), batch, time, channels,
                              mix_pointers, count, grads.x.data<T>(),
                              previous.defined() ? grads.previous.data<T>() : nullptr, grad_mix_pointers);
  });
  return grads;
}

AddLayerNormOutput add_layernorm(const Tensor& x_in, const Tensor& delta_in, const Tensor& weight_in,
                                 const Tensor& bias_in, double eps) {
  profile::Scope profile_scope("add + layernorm (fused)", x_in.device());
  const char* op = "add_layernorm";
  check_activations(op, {{"x", &x_in}});
  RWKV_CHECK(x_in.dim() >= 1 && x_in.size(-1) >= 1, op, ": x must be [..., channels], got ", x_in.describe());
  if (delta_in.defined()) {
    check_activations(op, {{"x", &x_in}, {"delta", &delta_in}});
    check_same_shape(op, "delta", delta_in, "x", x_in);
  }
  const int64_t cols = x_in.size(-1), rows = x_in.numel() / cols;
  check_param(op, "weight", weight_in, x_in, cols);
  check_param(op, "bias", bias_in, x_in, cols);
  const Tensor x = x_in.contiguous(), delta = optional_contiguous(delta_in);
  const Tensor weight = weight_in.contiguous(), bias = bias_in.contiguous();
  const DType stats = param_dtype(x.dtype());
  AddLayerNormOutput out{delta.defined() ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor(),
                         Tensor::empty(x.shape(), x.dtype(), x.device()),
                         Tensor::empty(leading_shape(x), stats, x.device()),
                         Tensor::empty(leading_shape(x), stats, x.device())};
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::add_layernorm_forward(detail::cuda_float_io(x), x.raw_data(), optional_raw(delta),
                                        weight.data<float>(), bias.data<float>(), rows, cols,
                                        static_cast<float>(eps), delta.defined() ? out.sum.raw_data() : nullptr,
                                        out.y.raw_data(), out.mean.data<float>(), out.rstd.data<float>());
    return out;
  }
  dispatch_activation(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using P = cpu::fused_param_t<T>;
    cpu::add_layernorm_forward<T>(x.data<T>(), optional_data<T>(delta), weight.data<P>(), bias.data<P>(), rows, cols,
                                  eps, delta.defined() ? out.sum.data<T>() : nullptr, out.y.data<T>(),
                                  out.mean.data<P>(), out.rstd.data<P>());
  });
  return out;
}

AddLayerNormGrads add_layernorm_backward(const Tensor& grad_sum_in, const Tensor& grad_y_in, const Tensor& input_in,
                                         const Tensor& weight_in, const Tensor& mean_in, const Tensor& rstd_in) {
  profile::Scope profile_scope("add + layernorm (fused)", input_in.device());
  const char* op = "add_layernorm_backward";
  detail::check_same_device(op, {&grad_sum_in, &grad_y_in, &input_in, &weight_in, &mean_in, &rstd_in});
  check_activations(op, {{"input", &input_in}, {"grad_y", &grad_y_in}});
  check_same_shape(op, "grad_y", grad_y_in, "input", input_in);
  if (grad_sum_in.defined()) {
    check_activations(op, {{"input", &input_in}, {"grad_sum", &grad_sum_in}});
    check_same_shape(op, "grad_sum", grad_sum_in, "input", input_in);
  }
  RWKV_CHECK(input_in.dim() >= 1 && input_in.size(-1) >= 1, op, ": input must be [..., channels], got ",
             input_in.describe());
  const int64_t cols = input_in.size(-1), rows = input_in.numel() / cols;
  check_param(op, "weight", weight_in, input_in, cols);
  for (const auto& [name, stat] : {std::pair{"mean", &mean_in}, std::pair{"rstd", &rstd_in}}) {
    RWKV_CHECK(stat->defined() && stat->device() == input_in.device() &&
                   stat->dtype() == param_dtype(input_in.dtype()) && stat->shape() == leading_shape(input_in),
               op, ": ", name, " ", stat->defined() ? stat->describe() : std::string("undefined"), " must be ",
               dtype_name(param_dtype(input_in.dtype())), shape_str(leading_shape(input_in)), " for input ",
               input_in.describe());
  }
  const Tensor grad_sum = optional_contiguous(grad_sum_in), grad_y = grad_y_in.contiguous();
  const Tensor input = input_in.contiguous(), weight = weight_in.contiguous();
  const Tensor mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  const DType params = param_dtype(input.dtype());
  AddLayerNormGrads grads{Tensor::empty(input.shape(), input.dtype(), input.device()),
                          Tensor::empty({cols}, params, input.device()), Tensor::empty({cols}, params, input.device())};
  if (input.device().is_cuda()) {
    detail::use_device_of(input);
    cuda_kernels::add_layernorm_backward(detail::cuda_float_io(input), optional_raw(grad_sum), grad_y.raw_data(),
                                         input.raw_data(), weight.data<float>(), mean.data<float>(),
                                         rstd.data<float>(), rows, cols, grads.input.raw_data(),
                                         grads.weight.data<float>(), grads.bias.data<float>());
    return grads;
  }
  dispatch_activation(op, input.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using P = cpu::fused_param_t<T>;
    cpu::add_layernorm_backward<T>(optional_data<T>(grad_sum), grad_y.data<T>(), input.data<T>(), weight.data<P>(),
                                   mean.data<P>(), rstd.data<P>(), rows, cols, grads.input.data<T>(),
                                   grads.weight.data<P>(), grads.bias.data<P>());
  });
  return grads;
}

Tensor sigmoid_mul(const Tensor& gate_in, const Tensor& value_in) {
  profile::Scope profile_scope("gates (fused)", gate_in.device());
  const char* op = "sigmoid_mul";
  check_activations(op, {{"gate", &gate_in}, {"value", &value_in}});
  check_same_shape(op, "value", value_in, "gate", gate_in);
  const Tensor gate = gate_in.contiguous(), value = value_in.contiguous();
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
  if (gate.device().is_cuda()) {
    detail::use_device_of(gate);
    cuda_kernels::sigmoid_mul_forward(detail::cuda_float_io(gate), gate.raw_data(), value.raw_data(), gate.numel(),
                                      out.raw_data());
    return out;
  }
  dispatch_activation(op, gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::sigmoid_mul_forward<T>(gate.data<T>(), value.data<T>(), gate.numel(), out.data<T>());
  });
  return out;
}

SigmoidMulGrads sigmoid_mul_backward(const Tensor& grad_out_in, const Tensor& gate_in, const Tensor& value_in) {
  profile::Scope profile_scope("gates (fused)", gate_in.device());
  const char* op = "sigmoid_mul_backward";
  check_activations(op, {{"gate", &gate_in}, {"value", &value_in}, {"grad_out", &grad_out_in}});
  check_same_shape(op, "value", value_in, "gate", gate_in);
  check_same_shape(op, "grad_out", grad_out_in, "gate", gate_in);
  const Tensor grad_out = grad_out_in.contiguous(), gate = gate_in.contiguous(), value = value_in.contiguous();
  SigmoidMulGrads grads{Tensor::empty(gate.shape(), gate.dtype(), gate.device()),
                        Tensor::empty(gate.shape(), gate.dtype(), gate.device())};
  if (gate.device().is_cuda()) {
    detail::use_device_of(gate);
    cuda_kernels::sigmoid_mul_backward(detail::cuda_float_io(gate), grad_out.raw_data(), gate.raw_data(),
                                       value.raw_data(), gate.numel(), grads.gate.raw_data(), grads.value.raw_data());
    return grads;
  }
  dispatch_activation(op, gate.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::sigmoid_mul_backward<T>(grad_out.data<T>(), gate.data<T>(), value.data<T>(), gate.numel(),
                                 grads.gate.data<T>(), grads.value.data<T>());
  });
  return grads;
}

Tensor relu_square(const Tensor& x_in) {
  profile::Scope profile_scope("gates (fused)", x_in.device());
  check_activations("relu_square", {{"x", &x_in}});
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::relu_square_forward(detail::cuda_float_io(x), x.raw_data(), x.numel(), out.raw_data());
    return out;
  }
  dispatch_activation("relu_square", x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::relu_square_forward<T>(x.data<T>(), x.numel(), out.data<T>());
  });
  return out;
}

Tensor relu_square_backward(const Tensor& grad_out_in, const Tensor& x_in) {
  profile::Scope profile_scope("gates (fused)", x_in.device());
  const char* op = "relu_square_backward";
  check_activations(op, {{"x", &x_in}, {"grad_out", &grad_out_in}});
  check_same_shape(op, "grad_out", grad_out_in, "x", x_in);
  const Tensor grad_out = grad_out_in.contiguous(), x = x_in.contiguous();
  Tensor grad_x = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) {
    detail::use_device_of(x);
    cuda_kernels::relu_square_backward(detail::cuda_float_io(x), grad_out.raw_data(), x.raw_data(), x.numel(),
                                       grad_x.raw_data());
    return grad_x;
  }
  dispatch_activation(op, x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::relu_square_backward<T>(grad_out.data<T>(), x.data<T>(), x.numel(), grad_x.data<T>());
  });
  return grad_x;
}

}  // namespace rwkv::ops
