// The fused RWKV ops on the GPU against the CPU ops: f32 against the CPU f32 result (tight), bf16 against the CPU
// f64 result of the same bf16 values (bf16 tolerance), channel counts that allow the 16-byte vector path and ones
// that do not, unaligned views, and bit-identical repeats.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/kernels/cuda_test_util.h"
#include "kernels/rwkv_ops.h"

namespace rwkv::testing {
namespace {

constexpr double kF32Tolerance = 1e-6;        // elementwise results
constexpr double kF32SumTolerance = 1e-5;     // sums over batch and time (fp32 partials vs double)
constexpr double kBf16Tolerance = 1e-2;       // one bf16 rounding of the output, relative to the largest value
constexpr double kBf16SumTolerance = 1e-4;    // fp32 parameter gradients from bf16 inputs

Tensor param_for(const Tensor& activation, const Tensor& param) {
  return param.to(activation.dtype() == DType::f64 ? DType::f64 : DType::f32);
}

std::vector<Tensor> all_on_cpu(const std::vector<Tensor>& tensors, DType dtype) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.to(Device::cpu()).to(dtype));
  return out;
}

std::vector<Tensor> all_on_gpu(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(on_gpu(t));
  return out;
}

Tensor maybe(const Tensor& t, DType dtype, Device device) { return t.defined() ? t.to(dtype).to(device) : Tensor(); }

// The tolerance for activations of `dtype` and for their parameter sums.
double tolerance(DType dtype) { return dtype == DType::bf16 ? kBf16Tolerance : kF32Tolerance; }
double sum_tolerance(DType dtype) { return dtype == DType::bf16 ? kBf16SumTolerance : kF32SumTolerance; }
// bf16 is compared with the f64 CPU result of the same values; f32 with the f32 CPU result.
DType reference_dtype(DType dtype) { return dtype == DType::bf16 ? DType::f64 : DType::f32; }

class CudaRwkvFused : public CudaTest {};

TEST_F(CudaRwkvFused, TimeMixForwardAndBackward) {
  uint64_t seed = 1;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const Shape& shape : {Shape{2, 5, 64}, Shape{2, 3, 13}, Shape{3, 1, 8}, Shape{4, 100, 72}}) {
      for (bool with_previous : {false, true}) {
        for (int count = 1; count <= 3; ++count) {
          const std::string what = std::string(dtype_name(dtype)) + " x " + shape_str(shape) +
                                   (with_previous ? " previous" : "") + " mixes " + std::to_string(count);
          SCOPED_TRACE(what);
          const Tensor x = random_tensor(shape, ++seed, dtype);
          const Tensor previous = with_previous ? random_tensor({shape[0], shape[2]}, ++seed, dtype) : Tensor();
          std::vector<Tensor> mixes, grads;
          for (int m = 0; m < count; ++m) {
            mixes.push_back(random_tensor({shape[2]}, ++seed, DType::f32, -0.2f, 1.2f));
            grads.push_back(random_tensor(shape, ++seed, dtype));
          }
          const DType ref = reference_dtype(dtype);
          const Tensor x_ref = x.to(ref), previous_ref = maybe(previous, ref, Device::cpu());
          std::vector<Tensor> mixes_ref;
          for (const Tensor& m : mixes) mixes_ref.push_back(param_for(x_ref, m));
          const std::vector<Tensor> outs = ops::time_mix(on_gpu(x), maybe(previous, dtype, Device::cuda(0)),
                                                         all_on_gpu(mixes));
          const std::vector<Tensor> want = ops::time_mix(x_ref, previous_ref, mixes_ref);
          for (int m = 0; m < count; ++m) {
            EXPECT_EQ(outs[m].dtype(), dtype);
            expect_close(outs[m].to(Device::cpu()), want[m], tolerance(dtype), what + " out");
          }
          const ops::TimeMixGrads g = ops::time_mix_backward(all_on_gpu(grads), on_gpu(x),
                                                             maybe(previous, dtype, Device::cuda(0)),
                                                             all_on_gpu(mixes));
          const ops::TimeMixGrads r = ops::time_mix_backward(all_on_cpu(grads, ref), x_ref, previous_ref, mixes_ref);
          expect_close(g.x.to(Device::cpu()), r.x, tolerance(dtype), what + " grad x");
          ASSERT_EQ(g.previous.defined(), with_previous);
          if (with_previous) expect_close(g.previous.to(Device::cpu()), r.previous, tolerance(dtype), what + " prev");
          for (int m = 0; m < count; ++m) {
            EXPECT_EQ(g.mixes[m].dtype(), DType::f32);
            expect_close(g.mixes[m].to(Device::cpu()), r.mixes[m], sum_tolerance(dtype), what + " grad mix");
          }
        }
      }
    }
  }
}

TEST_F(CudaRwkvFused, AddLayerNormForwardAndBackward) {
  uint64_t seed = 1000;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const Shape& shape : {Shape{3, 50, 64}, Shape{2, 7, 13}, Shape{1, 1, 8}, Shape{5, 768}}) {
      for (bool with_delta : {false, true}) {
        for (bool with_grad_sum : {false, true}) {
          if (with_grad_sum && !with_delta) continue;
          const std::string what = std::string(dtype_name(dtype)) + " x " + shape_str(shape) +
                                   (with_delta ? " delta" : "") + (with_grad_sum ? " grad_sum" : "");
          SCOPED_TRACE(what);
          const int64_t cols = shape.back();
          const Tensor x = random_tensor(shape, ++seed, dtype, -1, 3);  // row means well away from 0
          const Tensor delta = with_delta ? random_tensor(shape, ++seed, dtype) : Tensor();
          const Tensor weight = random_tensor({cols}, ++seed, DType::f32, 0.5f, 1.5f);
          const Tensor bias = random_tensor({cols}, ++seed);
          const Tensor grad_y = random_tensor(shape, ++seed, dtype);
          const Tensor grad_sum = with_grad_sum ? random_tensor(shape, ++seed, dtype) : Tensor();
          const ops::AddLayerNormOutput out = ops::add_layernorm(on_gpu(x), maybe(delta, dtype, Device::cuda(0)),
                                                                 on_gpu(weight), on_gpu(bias), 1e-5);
          // References: the sum from the inputs; the norm and its gradients from the GPU's stored sum (for bf16
          // the rounded values the kernel normalises), on the CPU in f32 (f64 for bf16).
          const DType ref = reference_dtype(dtype);
          const Tensor x_ref = x.to(ref);
          if (with_delta) {
            expect_close(out.sum.to(Device::cpu()), ops::add_layernorm(x_ref, delta.to(ref), param_for(x_ref, weight),
                                                                       param_for(x_ref, bias), 1e-5).sum,
                         tolerance(dtype), what + " sum");
          }
          const Tensor input = with_delta ? out.sum : on_gpu(x);
          const Tensor input_ref = input.to(Device::cpu()).to(ref);
          const ops::AddLayerNormOutput want = ops::add_layernorm(input_ref, Tensor(), param_for(x_ref, weight),
                                                                  param_for(x_ref, bias), 1e-5);
          expect_close(out.y.to(Device::cpu()), want.y, 2 * tolerance(dtype), what + " y");
          expect_close(out.mean.to(Device::cpu()), want.mean, 1e-4, what + " mean");
          expect_close(out.rstd.to(Device::cpu()), want.rstd, 1e-5, what + " rstd");
          const ops::AddLayerNormGrads g = ops::add_layernorm_backward(
              maybe(grad_sum, dtype, Device::cuda(0)), on_gpu(grad_y), input, on_gpu(weight), out.mean, out.rstd);
          const ops::AddLayerNormGrads r =
              ops::add_layernorm_backward(maybe(grad_sum, ref, Device::cpu()), grad_y.to(ref), input_ref,
                                          param_for(x_ref, weight), want.mean, want.rstd);
          expect_close(g.input.to(Device::cpu()), r.input, 4 * tolerance(dtype), what + " grad input");
          expect_close(g.weight.to(Device::cpu()), r.weight, sum_tolerance(dtype), what + " grad weight");
          expect_close(g.bias.to(Device::cpu()), r.bias, sum_tolerance(dtype), what + " grad bias");
        }
      }
    }
  }
}

TEST_F(CudaRwkvFused, GatesForwardAndBackward) {
  uint64_t seed = 2000;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const Shape& shape : {Shape{4, 5, 64}, Shape{7, 13}, Shape{3}}) {
      const std::string what = std::string(dtype_name(dtype)) + " " + shape_str(shape);
      SCOPED_TRACE(what);
      const Tensor gate = random_tensor(shape, ++seed, dtype, -4, 4), value = random_tensor(shape, ++seed, dtype);
      const Tensor grad = random_tensor(shape, ++seed, dtype);
      const DType ref = reference_dtype(dtype);
      const Tensor gate_ref = gate.to(ref), value_ref = value.to(ref), grad_ref = grad.to(ref);
      expect_close(ops::sigmoid_mul(on_gpu(gate), on_gpu(value)).to(Device::cpu()),
                   ops::sigmoid_mul(gate_ref, value_ref), tolerance(dtype), what + " sigmoid_mul");
      const ops::SigmoidMulGrads g = ops::sigmoid_mul_backward(on_gpu(grad), on_gpu(gate), on_gpu(value));
      const ops::SigmoidMulGrads r = ops::sigmoid_mul_backward(grad_ref, gate_ref, value_ref);
      expect_close(g.gate.to(Device::cpu()), r.gate, tolerance(dtype), what + " grad gate");
      expect_close(g.value.to(Device::cpu()), r.value, tolerance(dtype), what + " grad value");
      expect_close(ops::relu_square(on_gpu(gate)).to(Device::cpu()), ops::relu_square(gate_ref), tolerance(dtype),
                   what + " relu_square");
      expect_close(ops::relu_square_backward(on_gpu(grad), on_gpu(gate)).to(Device::cpu()),
                   ops::relu_square_backward(grad_ref, gate_ref), tolerance(dtype), what + " relu_square grad");
    }
  }
}

TEST_F(CudaRwkvFused, UnalignedViewsTakeTheScalarPath) {
  // One element into a buffer: the data pointer is not 16-byte aligned although the sizes would allow vectors.
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Tensor storage = on_gpu(random_tensor({1 + 2 * 4 * 16}, 3000, dtype));
    const Tensor x = storage.slice(0, 1, 1 + 2 * 4 * 16).view({2, 4, 16});
    const Tensor mix = on_gpu(random_tensor({16}, 3001, DType::f32, 0, 1));
    const DType ref = reference_dtype(dtype);
    const Tensor x_ref = x.to(Device::cpu()).to(ref);
    expect_close(ops::time_mix(x, Tensor(), {mix})[0].to(Device::cpu()),
                 ops::time_mix(x_ref, Tensor(), {param_for(x_ref, mix.to(Device::cpu()))})[0], tolerance(dtype),
                 std::string(dtype_name(dtype)) + " unaligned time_mix");
    expect_close(ops::relu_square(x).to(Device::cpu()), ops::relu_square(x_ref), tolerance(dtype),
                 std::string(dtype_name(dtype)) + " unaligned relu_square");
  }
}

TEST_F(CudaRwkvFused, RepeatedRunsAreBitIdentical) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Shape shape{4, 300, 96};
    const Tensor x = on_gpu(random_tensor(shape, 4000, dtype)), previous = on_gpu(random_tensor({4, 96}, 4001, dtype));
    const std::vector<Tensor> mixes = {on_gpu(random_tensor({96}, 4002, DType::f32, 0, 1)),
                                       on_gpu(random_tensor({96}, 4003, DType::f32, 0, 1)),
                                       on_gpu(random_tensor({96}, 4004, DType::f32, 0, 1))};
    const std::vector<Tensor> grads = {on_gpu(random_tensor(shape, 4005, dtype)),
                                       on_gpu(random_tensor(shape, 4006, dtype)),
                                       on_gpu(random_tensor(shape, 4007, dtype))};
    const ops::TimeMixGrads a = ops::time_mix_backward(grads, x, previous, mixes);
    const ops::TimeMixGrads b = ops::time_mix_backward(grads, x, previous, mixes);
    EXPECT_TRUE(bitwise_equal(a.x, b.x));
    EXPECT_TRUE(bitwise_equal(a.previous, b.previous));
    for (size_t m = 0; m < mixes.size(); ++m) EXPECT_TRUE(bitwise_equal(a.mixes[m], b.mixes[m])) << m;

    const Tensor weight = on_gpu(random_tensor({96}, 4008, DType::f32, 0.5f, 1.5f));
    const Tensor bias = on_gpu(random_tensor({96}, 4009));
    const ops::AddLayerNormOutput o1 = ops::add_layernorm(x, grads[0], weight, bias, 1e-5);
    const ops::AddLayerNormOutput o2 = ops::add_layernorm(x, grads[0], weight, bias, 1e-5);
    EXPECT_TRUE(bitwise_equal(o1.y, o2.y));
    const ops::AddLayerNormGrads g1 = ops::add_layernorm_backward(grads[1], grads[2], o1.sum, weight, o1.mean, o1.rstd);
    const ops::AddLayerNormGrads g2 = ops::add_layernorm_backward(grads[1], grads[2], o1.sum, weight, o1.mean, o1.rstd);
    EXPECT_TRUE(bitwise_equal(g1.input, g2.input));
    EXPECT_TRUE(bitwise_equal(g1.weight, g2.weight));
    EXPECT_TRUE(bitwise_equal(g1.bias, g2.bias));
  }
}

TEST_F(CudaRwkvFused, MixedDevicesAreErrors) {
  const Tensor x = on_gpu(random_tensor({2, 3, 8}, 5000));
  EXPECT_THROW(ops::time_mix(x, Tensor(), {random_tensor({8}, 5001)}), Error);
  EXPECT_THROW(ops::sigmoid_mul(x, random_tensor({2, 3, 8}, 5002)), Error);
  EXPECT_THROW(ops::add_layernorm(x, Tensor(), random_tensor({8}, 5003), on_gpu(random_tensor({8}, 5004)), 1e-5),
               Error);
}

}  // namespace
}  // namespace rwkv::testing
