// Keyed dropout on the GPU draws exactly the CPU's mask (the same Philox code, kernels/dropout_mask.h): f32 and
// bf16 results equal the CPU's bit for bit, with ranks' strides too.
#include <gtest/gtest.h>

#include "kernels/dropout.h"
#include "tests/kernels/cuda_test_util.h"

namespace rwkv::testing {
namespace {

class CudaKeyedDropout : public CudaTest {};

TEST_F(CudaKeyedDropout, MatchesTheCpuBitForBit) {
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Tensor x = random_tensor({6, 33, 20}, 4).to(dtype);
    for (const ops::DropoutKey& key : {ops::DropoutKey{0.1, 5, 0, 1}, ops::DropoutKey{0.5, 77, 9, 4}}) {
      const Tensor cpu = ops::keyed_dropout(x, key);
      const Tensor gpu = ops::keyed_dropout(on_gpu(x), key).to(Device::cpu());
      EXPECT_TRUE(bitwise_equal(gpu, cpu)) << dtype_name(dtype) << " p " << key.probability;
    }
  }
}

}  // namespace
}  // namespace rwkv::testing
