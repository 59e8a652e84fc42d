// The op-family profile behind `rwkv bench train --profile`: only the outermost op on a thread is timed, nothing
// is recorded outside a collection, and an op that throws leaves the nesting intact.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/cuda_runtime.h"
#include "core/op_profile.h"
#include "kernels/ops.h"
#include "tests/test_util.h"

namespace rwkv {
namespace {

const profile::FamilyTime* find(const std::vector<profile::FamilyTime>& families, const std::string& name) {
  const auto found = std::find_if(families.begin(), families.end(),
                                  [&](const profile::FamilyTime& f) { return f.family == name; });
  return found == families.end() ? nullptr : &*found;
}

TEST(OpProfile, TimesTheOutermostOpOfEachCallByFamily) {
  const Tensor a = testing::random_tensor({64, 32}, 1), b = testing::random_tensor({32, 48}, 2);
  ops::matmul(a, b);  // outside a collection: not recorded
  profile::start();
  EXPECT_TRUE(profile::collecting());
  ops::matmul(a, b);
  // A bf16 product on the CPU widens its operands (two copies) inside the GEMM: part of the GEMM's time.
  ops::matmul(a.to(DType::bf16), b.to(DType::bf16));  // the two conversions here are outside: copies
  ops::binary(Binary::add, a, a);
  const std::vector<profile::FamilyTime> families = profile::stop();
  EXPECT_FALSE(profile::collecting());
  const profile::FamilyTime* gemm = find(families, "gemm");
  const profile::FamilyTime* copies = find(families, "copy / convert");
  const profile::FamilyTime* elementwise = find(families, "elementwise");
  ASSERT_TRUE(gemm && copies && elementwise);
  EXPECT_EQ(gemm->calls, 2);
  EXPECT_EQ(copies->calls, 2);
  EXPECT_EQ(elementwise->calls, 1);
  EXPECT_GT(gemm->ms, 0.0);
  EXPECT_EQ(families.size(), 3u);
  for (size_t i = 1; i < families.size(); ++i) EXPECT_GE(families[i - 1].ms, families[i].ms);  // largest first
  EXPECT_TRUE(profile::stop().empty());  // a collection is read once
}

TEST(OpProfile, AnOpThatThrowsLeavesTheNextOneOutermost) {
  const Tensor a = testing::random_tensor({4, 3}, 1), b = testing::random_tensor({5, 2}, 2);
  profile::start();
  EXPECT_THROW(ops::matmul(a, b), Error);  // inner dimensions differ
  ops::binary(Binary::mul, a, a);
  const std::vector<profile::FamilyTime> families = profile::stop();
  const profile::FamilyTime* elementwise = find(families, "elementwise");
  ASSERT_NE(elementwise, nullptr) << "the op after a throwing one was taken for a nested one";
  EXPECT_EQ(elementwise->calls, 1);
}

TEST(CudaOpProfile, TimesDeviceWorkWithEvents) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Tensor a = testing::random_tensor({512, 256}, 1).to(Device::cuda(0));
  const Tensor b = testing::random_tensor({256, 384}, 2).to(Device::cuda(0));
  ops::matmul(a, b);  // cuBLAS handle and workspace outside the profile
  profile::start();
  for (int i = 0; i < 3; ++i) ops::matmul(a, b);
  const std::vector<profile::FamilyTime> families = profile::stop();
  const profile::FamilyTime* gemm = find(families, "gemm");
  ASSERT_NE(gemm, nullptr);
  EXPECT_EQ(gemm->calls, 3);
  EXPECT_GT(gemm->ms, 0.0);
  EXPECT_LT(gemm->ms, 1000.0);
}

}  // namespace
}  // namespace rwkv
