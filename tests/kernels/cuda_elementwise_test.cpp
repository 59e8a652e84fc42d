// CUDA elementwise kernels against their CPU implementations on random inputs (skipped without a GPU).
#include <gtest/gtest.h>

#include "core/cuda_runtime.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

using testing::random_tensor;
using testing::relative_error;

class CudaElementwise : public ::testing::Test {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
  static Tensor gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
};

TEST_F(CudaElementwise, UnaryForwardAndBackward) {
  const Tensor x = random_tensor({3, 5, 70}, 1, DType::f32, -4, 4);
  const Tensor g = random_tensor({3, 5, 70}, 2);
  for (Unary op : {Unary::neg, Unary::exp, Unary::sigmoid, Unary::relu, Unary::square}) {
    SCOPED_TRACE(unary_name(op));
    const Tensor y_cpu = ops::unary(op, x), y_gpu = ops::unary(op, gpu(x));
    EXPECT_LT(relative_error(y_gpu, y_cpu), 1e-6);
    EXPECT_LT(relative_error(ops::unary_backward(op, gpu(g), gpu(x), y_gpu), ops::unary_backward(op, g, x, y_cpu)),
              1e-6);
  }
}

TEST_F(CudaElementwise, BinaryWithEveryBroadcastPattern) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{4, 33, 64}, {4, 33, 64}}, {{4, 33, 64}, {1, 1, 64}}, {{1, 1, 64}, {4, 33, 64}}, {{4, 33, 64}, {33, 1}}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = random_tensor(sa, 3), b = random_tensor(sb, 4, DType::f32, 0.5f, 2.0f);
    for (Binary op : {Binary::add, Binary::sub, Binary::mul, Binary::div}) {
      SCOPED_TRACE(std::string(binary_name(op)) + " " + shape_str(sa) + " " + shape_str(sb));
      EXPECT_LT(relative_error(ops::binary(op, gpu(a), gpu(b)), ops::binary(op, a, b)), 1e-6);
    }
  }
}

TEST_F(CudaElementwise, AffineAndAccumulate) {
  const Tensor x = random_tensor({1000}, 5), y = random_tensor({1000}, 6);
  EXPECT_LT(relative_error(ops::affine(gpu(x), -1.5, 0.25), ops::affine(x, -1.5, 0.25)), 1e-6);
  Tensor into_cpu = y.clone(), into_gpu = gpu(y);
  ops::accumulate_(into_cpu, x);
  ops::accumulate_(into_gpu, gpu(x));
  EXPECT_LT(relative_error(into_gpu, into_cpu), 1e-6);
}

TEST_F(CudaElementwise, MixingDevicesIsAnError) {
  EXPECT_THROW(ops::binary(Binary::add, gpu(random_tensor({4}, 7)), random_tensor({4}, 8)), Error);
}

}  // namespace
}  // namespace rwkv
