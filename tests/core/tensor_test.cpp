#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/bf16.h"
#include "core/cuda_runtime.h"
#include "core/tensor.h"

namespace rwkv {
namespace {

Tensor arange(int64_t n, const Shape& shape) {
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = static_cast<float>(i);
  return Tensor::from_vector(values, shape);
}

TEST(CoreTensor, FactoriesAndMetadata) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.describe(), "f32[2, 3, 4] cpu");
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  Tensor f = Tensor::full({3}, 2.5, DType::i64);
  EXPECT_EQ(f.to_vector<int64_t>(), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(Tensor::scalar(1.5f).item(), 1.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty({7}).raw_data()) % kCpuAlignment, 0u);
}

TEST(CoreTensor, ViewsShareStorage) {
  Tensor t = arange(24, {2, 3, 4});
  Tensor r = t.reshape({6, 4});
  EXPECT_TRUE(r.shares_storage(t));
  Tensor s = t.slice(1, 1, 3);  // [2, 2, 4]
  EXPECT_TRUE(s.shares_storage(t));
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23}));
  Tensor tr = t.transpose(0, 2);  // [4, 3, 2]
  EXPECT_EQ(tr.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(tr.to_vector<float>()[1], 12.0f);  // element (0,0,1) = t(1,0,0)
  Tensor u = t.unsqueeze(0);
  EXPECT_EQ(u.shape(), (Shape{1, 2, 3, 4}));
  EXPECT_EQ(u.squeeze(0).shape(), t.shape());
  // Writing through a view changes the base.
  s.fill_(-1.0);
  EXPECT_EQ(t.to_vector<float>()[4], -1.0f);
  EXPECT_EQ(t.to_vector<float>()[0], 0.0f);
}

TEST(CoreTensor, ContiguousAndReshapeOfNonContiguous) {
  Tensor t = arange(6, {2, 3});
  Tensor tr = t.transpose(0, 1);
  Tensor c = tr.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(c.shares_storage(t));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(tr.reshape({6}).to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(t.view({-1}).shape(), (Shape{6}));
  EXPECT_THROW(tr.view({6}), Error);
}

TEST(CoreTensor, ExpandBroadcastsWithZeroStrides) {
  Tensor m = Tensor::from_vector<float>({1, 2, 3}, {1, 1, 3});
  Tensor e = m.expand({2, 2, 3});
  EXPECT_EQ(e.strides()[0], 0);
  EXPECT_EQ(e.contiguous().to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}));
  EXPECT_THROW(m.expand({2, 2, 4}), Error);
}

TEST(CoreTensor, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between two bf16 values (1 and 1 + 2^-7): ties go to the even mantissa (1).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up to the even one.
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.5f / 256)), 1.0f + 1.0f / 128);  // above halfway: up
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
  Tensor t = Tensor::from_vector<float>({1.0f + 1.0f / 256, -3.14159f, 65504.0f}, {3});
  Tensor b = t.to(DType::bf16);
  EXPECT_EQ(b.dtype(), DType::bf16);
  const std::vector<float> back = b.to(DType::f32).to_vector<float>();
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_NEAR(back[1], -3.14159f, 0.01f);
  EXPECT_EQ(back[2], 65536.0f);
}

TEST(CoreTensor, DtypeConversions) {
  Tensor ids = Tensor::from_vector<int64_t>({0, 5, 65535}, {3});
  EXPECT_EQ(ids.to(DType::u16).to_vector<int64_t>(), (std::vector<int64_t>{0, 5, 65535}));
  EXPECT_EQ(ids.to(DType::i32).dtype(), DType::i32);
  EXPECT_EQ(ids.to(DType::f64).to_vector<double>(), (std::vector<double>{0, 5, 65535}));
  Tensor t = arange(6, {2, 3}).transpose(0, 1).to(DType::f64);  // conversion of a strided view
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(CoreTensor, CopyIntoStridedDestination) {
  Tensor base = Tensor::zeros({3, 4});
  base.slice(1, 1, 3).copy_(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}));
  EXPECT_EQ(base.to_vector<float>(), (std::vector<float>{0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0}));
}

TEST(CoreTensor, ErrorsNameTheOpAndShapes) {
  Tensor t = Tensor::zeros({2, 3});
  try {
    t.slice(1, 0, 5);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("slice"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("f32[2, 3]"), std::string::npos);
  }
  EXPECT_THROW(t.data<int32_t>(), Error);
  EXPECT_THROW(t.view({4}), Error);
  EXPECT_THROW(t.transpose(0, 2), Error);
  EXPECT_THROW(t.copy_(Tensor::zeros({3, 2})), Error);
  EXPECT_THROW(Tensor::empty({-1}), Error);
}

TEST(CoreTensor, CudaWithoutDeviceIsAClearError) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  try {
    Tensor::zeros({2}).to(Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

TEST(CudaTensor, RoundTripsAndConvertsOnTheDevice) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Tensor t = arange(24, {2, 3, 4});
  Tensor d = t.to(Device::cuda(0));
  EXPECT_EQ(d.device(), Device::cuda(0));
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), t.to_vector<float>());
  // Strided gather and dtype conversion run on the GPU; results must equal the CPU's bit for bit.
  EXPECT_EQ(d.transpose(0, 2).contiguous().to_vector<float>(), t.transpose(0, 2).contiguous().to_vector<float>());
  Tensor odd = Tensor::from_vector<float>({1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.7f, 1e30f}, {4});
  EXPECT_EQ(odd.to(Device::cuda(0)).to(DType::bf16).to(DType::f32).to_vector<float>(),
            odd.to(DType::bf16).to(DType::f32).to_vector<float>());
  Tensor z = Tensor::full({5}, 3.0, DType::f32, Device::cuda(0));
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>(5, 3.0f)));
}

TEST(CudaTensor, CopiesIntoStridedViewsOnTheDevice) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  // What slice backward (a column block) and the padded head (-inf into the padded logit columns) do.
  const Tensor source = arange(2 * 3 * 2, {2, 3, 2});
  Tensor host = Tensor::zeros({2, 3, 5});
  Tensor device = Tensor::zeros({2, 3, 5}, DType::f32, Device::cuda(0));
  host.slice(2, 1, 3).copy_(source);
  device.slice(2, 1, 3).copy_(source.to(Device::cuda(0)));  // same-device strided destination
  EXPECT_EQ(device.to_vector<float>(), host.to_vector<float>());
  const Tensor minus_infinity = Tensor::full({1, 1}, -INFINITY, DType::f32, Device::cuda(0));
  Tensor logits = arange(4 * 6, {4, 6}).to(Device::cuda(0));
  logits.slice(1, 4, 6).copy_(minus_infinity.expand({4, 2}));  // broadcast source, strided destination
  const std::vector<float> values = logits.to_vector<float>();
  for (int64_t i = 0; i < 24; ++i) {
    EXPECT_EQ(values[static_cast<size_t>(i)], i % 6 >= 4 ? -INFINITY : static_cast<float>(i)) << i;
  }
  // A transposed destination with a dtype conversion.
  Tensor bf16 = Tensor::zeros({3, 2}, DType::bf16, Device::cuda(0));
  bf16.transpose(0, 1).copy_(arange(6, {2, 3}).to(Device::cuda(0)));
  EXPECT_EQ(bf16.to(DType::f32).to_vector<float>(), arange(6, {2, 3}).transpose(0, 1).contiguous().to_vector<float>());
}

TEST(CudaTensor, ZeroingIsAMemsetWithoutAHostWaitAndFillsViewsToo) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Tensor whole = arange(12, {3, 4}).to(Device::cuda(0));
  Tensor half = arange(12, {3, 4}).to(DType::bf16).to(Device::cuda(0));
  const int64_t waits = cuda::host_waits();
  whole.zero_();  // contiguous +0: cudaMemsetAsync on the stream
  half.zero_();
  EXPECT_EQ(cuda::host_waits(), waits) << "zero_() of a contiguous device tensor waited on the host";
  EXPECT_EQ(whole.to_vector<float>(), std::vector<float>(12, 0.0f));
  EXPECT_EQ(half.to(DType::f32).to_vector<float>(), std::vector<float>(12, 0.0f));
  // A strided view and other values take the copy path: only the view changes.
  Tensor columns = arange(12, {3, 4}).to(Device::cuda(0));
  columns.slice(1, 1, 3).zero_();
  columns.slice(1, 3, 4).fill_(-0.0);
  const std::vector<float> values = columns.to_vector<float>();
  for (int64_t i = 0; i < 12; ++i) {
    const float expected = i % 4 == 0 ? static_cast<float>(i) : 0.0f;
    EXPECT_EQ(values[static_cast<size_t>(i)], expected) << i;
    if (i % 4 == 3) {
      EXPECT_TRUE(std::signbit(values[static_cast<size_t>(i)])) << "fill_(-0.0) must keep the sign";
    }
  }
}

}  // namespace
}  // namespace rwkv
