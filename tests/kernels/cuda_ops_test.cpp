// The CPU-vs-CUDA harness: every op of kernels/ops.h runs on random non-zero fp32 inputs on the GPU and is
// compared with the CPU op in double precision on the same values (so the tolerance measures the GPU's error
// alone). Tolerances: 1e-5 relative (max |diff| / max |reference|) for fp32 results, 1e-6 where the GPU
// accumulates in double, 0 (bit for bit with the CPU's fp32 op) where the two compute the same sequence.
// Also: determinism (two runs agree bit for bit), id range errors, the caching allocator and streams.
// WKV lives in cuda_wkv_test.cpp. Everything skips without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/ops.h"
#include "tests/kernels/cuda_test_util.h"

namespace rwkv {
namespace {

using testing::bitwise_equal;
using testing::expect_close;
using testing::f64;
using testing::on_gpu;
using testing::random_ids;
using testing::random_tensor;

constexpr double kFp32 = 1e-5;        // fp32 arithmetic against double
constexpr double kDoubleSums = 1e-6;  // results accumulated in double, rounded to fp32 once

class CudaOps : public testing::CudaTest {};
class CudaAllocator : public testing::CudaTest {};

// ---- matmul (cuBLAS)

TEST_F(CudaOps, MatmulEveryTransposeBatchAndSharedB) {
  const int64_t m = 37, n = 53, k = 19, g = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("trans_a ") + (ta ? "1" : "0") + " trans_b " + (tb ? "1" : "0"));
      const Tensor a = random_tensor(ta ? Shape{g, k, m} : Shape{g, m, k}, 1);
      const Tensor b = random_tensor(tb ? Shape{g, n, k} : Shape{g, k, n}, 2);
      expect_close(ops::matmul(on_gpu(a), on_gpu(b), ta, tb), ops::matmul(f64(a), f64(b), ta, tb), kFp32, "batched");
      const Tensor a0 = a.slice(0, 1, 2).squeeze(0), b0 = b.slice(0, 1, 2).squeeze(0);
      expect_close(ops::matmul(on_gpu(a0), on_gpu(b0), ta, tb), ops::matmul(f64(a0), f64(b0), ta, tb), kFp32, "2-D");
      expect_close(ops::matmul(on_gpu(a), on_gpu(b0), ta, tb), ops::matmul(f64(a), f64(b0), ta, tb), kFp32,
                   "shared B");
    }
  }
}

TEST_F(CudaOps, MatmulIntoWithBetaAndLargerK) {
  const Tensor a = random_tensor({64, 300}, 3), b = random_tensor({300, 96}, 4), c = random_tensor({64, 96}, 5);
  for (double beta : {0.0, 1.0, 0.5}) {
    Tensor out_gpu = on_gpu(c), out_ref = f64(c);
    ops::matmul_into(on_gpu(a), on_gpu(b), false, false, out_gpu, beta);
    ops::matmul_into(f64(a), f64(b), false, false, out_ref, beta);
    expect_close(out_gpu, out_ref, kFp32, "matmul_into beta " + std::to_string(beta));
  }
  // beta = 0 ignores whatever the output held, NaN included.
  Tensor poisoned = on_gpu(Tensor::full({64, 96}, std::numeric_limits<double>::quiet_NaN()));
  ops::matmul_into(on_gpu(a), on_gpu(b), false, false, poisoned, 0.0);
  expect_close(poisoned, ops::matmul(f64(a), f64(b)), kFp32, "matmul_into over NaN");
}

TEST_F(CudaOps, MatmulTf32OnlyWhenAllowed) {
  const Tensor a = random_tensor({128, 512}, 6), b = random_tensor({512, 128}, 7);
  const Tensor reference = ops::matmul(f64(a), f64(b));
  ASSERT_FALSE(ops::allow_tf32());
  const double exact = testing::relative_error(ops::matmul(on_gpu(a), on_gpu(b)), reference);
  EXPECT_LT(exact, kFp32);
  ops::set_allow_tf32(true);
  const double tf32 = testing::relative_error(ops::matmul(on_gpu(a), on_gpu(b)), reference);
  ops::set_allow_tf32(false);
  std::cout << "[ error    ] fp32 " << exact << ", tf32 " << tf32 << "\n";
  EXPECT_LT(tf32, 1e-2);
}

// ---- reductions

TEST_F(CudaOps, SumOverEveryDimAndSumAll) {
  const Tensor x = random_tensor({3, 70, 67}, 8);
  for (int64_t dim = 0; dim < 3; ++dim) {
    for (bool keepdim : {false, true}) {
      expect_close(ops::sum(on_gpu(x), dim, keepdim), ops::sum(f64(x), dim, keepdim), kDoubleSums,
                   "sum dim " + std::to_string(dim));
    }
  }
  expect_close(ops::sum_all(on_gpu(x)), ops::sum_all(f64(x)), kDoubleSums, "sum_all");
  expect_close(ops::sum_to_shape(on_gpu(x), {70, 1}), ops::sum_to_shape(f64(x), {70, 1}), kDoubleSums,
               "sum_to_shape");
}

TEST_F(CudaOps, SumOverLongAxesUsesOrderedPartials) {
  const Tensor rows = random_tensor({3, 100003}, 9);  // several chunks per row
  expect_close(ops::sum(on_gpu(rows), 1), ops::sum(f64(rows), 1), kDoubleSums, "long rows");
  const Tensor columns = random_tensor({2, 2051, 45}, 10);  // several row chunks per column
  expect_close(ops::sum(on_gpu(columns), 1), ops::sum(f64(columns), 1), kDoubleSums, "long columns");
  const Tensor all = random_tensor({1 << 20}, 11);
  expect_close(ops::sum_all(on_gpu(all)), ops::sum_all(f64(all)), kDoubleSums, "sum_all of 1M");
  EXPECT_TRUE(bitwise_equal(ops::sum(on_gpu(columns), 1), ops::sum(on_gpu(columns), 1)));
  EXPECT_TRUE(bitwise_equal(ops::sum_all(on_gpu(all)), ops::sum_all(on_gpu(all))));
}

// ---- layernorm

TEST_F(CudaOps, LayerNormForwardAndBackward) {
  for (const Shape& shape : {Shape{3, 67, 769}, Shape{5, 300, 64}, Shape{2, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t cols = shape.back();
    const Tensor x = random_tensor(shape, 12, DType::f32, -3, 3), gy = random_tensor(shape, 13);
    const Tensor weight = random_tensor({cols}, 14, DType::f32, 0.5f, 1.5f), bias = random_tensor({cols}, 15);
    const ops::LayerNormOutput out = ops::layernorm(on_gpu(x), on_gpu(weight), on_gpu(bias));
    const ops::LayerNormOutput ref = ops::layernorm(f64(x), f64(weight), f64(bias));
    expect_close(out.y, ref.y, kFp32, "layernorm y");
    expect_close(out.mean, ref.mean, kFp32, "layernorm mean");
    expect_close(out.rstd, ref.rstd, kFp32, "layernorm rstd");
    // The backward runs on the same saved statistics on both sides.
    const ops::LayerNormGrads grads = ops::layernorm_backward(on_gpu(gy), on_gpu(x), on_gpu(weight), out.mean, out.rstd);
    const ops::LayerNormGrads grads_ref =
        ops::layernorm_backward(f64(gy), f64(x), f64(weight), f64(out.mean), f64(out.rstd));
    expect_close(grads.x, grads_ref.x, kFp32, "layernorm grad x");
    expect_close(grads.weight, grads_ref.weight, kDoubleSums, "layernorm grad weight");
    expect_close(grads.bias, grads_ref.bias, kDoubleSums, "layernorm grad bias");
    const ops::LayerNormGrads again = ops::layernorm_backward(on_gpu(gy), on_gpu(x), on_gpu(weight), out.mean, out.rstd);
    EXPECT_TRUE(bitwise_equal(grads.weight, again.weight) && bitwise_equal(grads.x, again.x));
  }
}

// ---- embedding

TEST_F(CudaOps, EmbeddingForwardAndDeterministicBackward) {
  const int64_t vocab = 67, dim = 33;
  const Tensor table = random_tensor({vocab, dim}, 16);
  for (DType id_type : {DType::i32, DType::i64}) {
    SCOPED_TRACE(dtype_name(id_type));
    const Tensor ids = random_ids({5, 70}, vocab - 20, 17, id_type);  // repeats, and rows that no id hits
    const Tensor out = ops::embedding(on_gpu(table), on_gpu(ids));
    EXPECT_TRUE(bitwise_equal(out, ops::embedding(table, ids)));
    const Tensor grad = random_tensor({5, 70, dim}, 18);
    const Tensor grad_table = ops::embedding_backward(on_gpu(grad), on_gpu(ids), vocab);
    // Each row sums its positions in increasing order, like the CPU: the same bits.
    EXPECT_TRUE(bitwise_equal(grad_table, ops::embedding_backward(grad, ids, vocab)));
    expect_close(grad_table, ops::embedding_backward(f64(grad), ids, vocab), kFp32, "embedding backward");
  }
  // A large vocabulary with many repeats of a few ids.
  const Tensor ids = random_ids({16, 1024}, 50, 19, DType::i32);
  const Tensor grad = random_tensor({16, 1024, 64}, 20);
  EXPECT_TRUE(bitwise_equal(ops::embedding_backward(on_gpu(grad), on_gpu(ids), 50277),
                            ops::embedding_backward(grad, ids, 50277)));
}

TEST_F(CudaOps, OutOfRangeIdsNameTheOpValueAndPosition) {
  const Tensor table = on_gpu(random_tensor({10, 4}, 21));
  const Tensor ids = on_gpu(Tensor::from_vector<int64_t>({3, 0, 9, 12, -1, 3}, {2, 3}));
  try {
    ops::embedding(table, ids);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("embedding"), std::string::npos) << message;
    EXPECT_NE(message.find("token id 12 at position 3"), std::string::npos) << message;
  }
  const Tensor logits = on_gpu(random_tensor({2, 5}, 22));
  try {
    ops::cross_entropy(logits, on_gpu(Tensor::from_vector<int32_t>({0, 5}, {2})));
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("target 5 at position 1"), std::string::npos) << error.what();
  }
}

// ---- token shift

TEST_F(CudaOps, TokenShiftWithAndWithoutPreviousAndBackward) {
  for (const Shape& shape : {Shape{3, 7, 67}, Shape{2, 1, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const Tensor x = random_tensor(shape, 23), previous = random_tensor({shape[0], shape[2]}, 24);
    EXPECT_TRUE(bitwise_equal(ops::token_shift(on_gpu(x)), ops::token_shift(x)));
    EXPECT_TRUE(bitwise_equal(ops::token_shift(on_gpu(x), on_gpu(previous)), ops::token_shift(x, previous)));
    EXPECT_TRUE(bitwise_equal(ops::token_shift_backward(on_gpu(x)), ops::token_shift_backward(x)));
    EXPECT_TRUE(bitwise_equal(ops::token_shift_previous_backward(on_gpu(x)), ops::token_shift_previous_backward(x)));
  }
}

// ---- cross-entropy and L2Wrap

TEST_F(CudaOps, CrossEntropyForwardAndBackward) {
  for (const Shape& shape : {Shape{3, 7, 1000}, Shape{4, 50277}, Shape{1, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    const Shape leading(shape.begin(), shape.end() - 1);
    const Tensor logits = random_tensor(shape, 25, DType::f32, -8, 8);
    for (DType id_type : {DType::i32, DType::i64}) {
      const Tensor targets = random_ids(leading, shape.back(), 26, id_type);
      const ops::CrossEntropyOutput out = ops::cross_entropy(on_gpu(logits), on_gpu(targets));
      const ops::CrossEntropyOutput ref = ops::cross_entropy(f64(logits), targets);
      EXPECT_TRUE(out.loss.device().is_cuda());
      expect_close(out.loss, ref.loss, kFp32, "cross_entropy loss");
      expect_close(out.logsumexp, ref.logsumexp, kFp32, "cross_entropy logsumexp");
      const Tensor grad = ops::cross_entropy_backward(0.7, on_gpu(logits), on_gpu(targets), out.logsumexp);
      // Both backwards from the GPU's logsumexp, so that the comparison measures the backward alone.
      const Tensor grad_ref = ops::cross_entropy_backward(0.7, f64(logits), targets, f64(out.logsumexp));
      expect_close(grad, grad_ref, kFp32, "cross_entropy backward");
      EXPECT_TRUE(bitwise_equal(out.loss, ops::cross_entropy(on_gpu(logits), on_gpu(targets)).loss));
    }
  }
}

TEST_F(CudaOps, L2WrapPicksTheFirstMaximum) {
  // Values on a coarse grid so that most rows have ties for the maximum.
  Tensor logits = random_tensor({6, 7, 300}, 27, DType::f32, 0, 8);
  std::vector<float> values = logits.to_vector<float>();
  for (float& value : values) value = std::floor(value);
  logits = Tensor::from_vector(values, logits.shape());
  const Tensor grad = random_tensor({6, 7, 300}, 28);
  Tensor grad_gpu = on_gpu(grad), grad_cpu = grad.clone();
  ops::l2wrap_backward_(grad_gpu, on_gpu(logits), 1e-4 / 42);
  ops::l2wrap_backward_(grad_cpu, logits, 1e-4 / 42);
  EXPECT_TRUE(bitwise_equal(grad_gpu, grad_cpu));
}

// ---- optimizer support

TEST_F(CudaOps, AdamStepsAndSumOfSquares) {
  const Tensor param = random_tensor({1000, 37}, 29), m = random_tensor({1000, 37}, 30, DType::f32, 0, 0.1f);
  const Tensor v = random_tensor({1000, 37}, 31, DType::f32, 0, 0.01f);
  Tensor p_gpu = on_gpu(param), m_gpu = on_gpu(m), v_gpu = on_gpu(v);
  Tensor p_cpu = param.clone(), m_cpu = m.clone(), v_cpu = v.clone();
  for (int64_t step = 1; step <= 3; ++step) {
    const Tensor grad = random_tensor({1000, 37}, 32 + static_cast<uint64_t>(step));
    const ops::AdamHyper hyper{6e-4, 0.9, 0.99, 1e-8, 0.01, step};
    ops::adam_step_(p_gpu, on_gpu(grad), m_gpu, v_gpu, hyper);
    ops::adam_step_(p_cpu, grad, m_cpu, v_cpu, hyper);
  }
  expect_close(p_gpu, p_cpu, 1e-6, "adam parameters (fp32 both sides)");
  expect_close(m_gpu, m_cpu, 1e-6, "adam first moment");
  expect_close(v_gpu, v_cpu, 1e-6, "adam second moment");
  const Tensor x = random_tensor({3, 100003}, 40);
  const double gpu = ops::sum_of_squares(on_gpu(x)), cpu = ops::sum_of_squares(x);
  EXPECT_NEAR(gpu, cpu, 1e-10 * cpu);
  EXPECT_EQ(gpu, ops::sum_of_squares(on_gpu(x)));
}

// ---- streams

TEST_F(CudaOps, OpsRunOnTheCurrentStream) {
  const Tensor a = random_tensor({256, 128}, 41), b = random_tensor({128, 64}, 42);
  void* stream = cuda::create_stream(0);
  Tensor on_stream;
  {
    cuda::StreamGuard guard(0, stream);
    EXPECT_EQ(cuda::current_stream(0), stream);
    on_stream = ops::sum(ops::matmul(on_gpu(a), on_gpu(b)), 0);
    cuda::synchronize(0);
  }
  EXPECT_EQ(cuda::current_stream(0), nullptr);
  expect_close(on_stream, ops::sum(ops::matmul(f64(a), f64(b)), 0), kFp32, "matmul + sum on a created stream");
  cuda::destroy_stream(0, stream);
}

// ---- the caching allocator on the device

TEST_F(CudaAllocator, ReusesFreedBlocksAndReportsStatistics) {
  Allocator& allocator = allocator_for(Device::cuda(0));
  const AllocatorStats before = allocator.stats();
  {
    const Tensor t = Tensor::empty({1000, 1000}, DType::f32, Device::cuda(0));
    const AllocatorStats during = allocator.stats();
    EXPECT_GE(during.bytes_in_use, before.bytes_in_use + 4'000'000);
    EXPECT_GE(during.peak_bytes_in_use, during.bytes_in_use);
    EXPECT_GE(during.bytes_reserved, during.bytes_allocated_blocks);
  }
  const AllocatorStats freed = allocator.stats();
  EXPECT_EQ(freed.bytes_in_use, before.bytes_in_use);
  const Tensor again = Tensor::empty({1000, 1000}, DType::f32, Device::cuda(0));
  EXPECT_EQ(allocator.stats().device_allocations, freed.device_allocations);  // served from the cache
  EXPECT_GT(allocator.stats().cache_hits, freed.cache_hits);
}

TEST_F(CudaAllocator, EmptyCacheReturnsFreeSegments) {
  Allocator& allocator = allocator_for(Device::cuda(0));
  { const Tensor big = Tensor::empty({64 << 20}, DType::f32, Device::cuda(0)); }
  const int64_t cached = allocator.stats().bytes_reserved;
  cuda::empty_cache(0);
  EXPECT_LE(allocator.stats().bytes_reserved, cached - (int64_t{256} << 20));
}

TEST_F(CudaAllocator, OutOfMemoryIsAClearError) {
  try {
    const Tensor huge = Tensor::empty({int64_t{1} << 48}, DType::f32, Device::cuda(0));  // 1 PiB
    FAIL() << "expected out of memory";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("CUDA out of memory on cuda:0"), std::string::npos) << message;
    EXPECT_NE(message.find("tried to allocate"), std::string::npos) << message;
    EXPECT_NE(message.find("peak in use"), std::string::npos) << message;
  }
  // The allocator still works afterwards.
  expect_close(ops::sum_all(on_gpu(Tensor::full({10}, 1.0))), Tensor::full({}, 10.0), 0, "after OOM");
}

}  // namespace
}  // namespace rwkv

namespace rwkv {
namespace {

// The multi-tensor forms the optimizer uses on the GPU: one launch for every tensor, the same arithmetic as the
// CPU (fp32 both sides), and the sum of squares bit-identical to the per-tensor GPU sums added in order.
TEST_F(CudaOps, MultiTensorAdamAndSumOfSquares) {
  const std::vector<Shape> shapes{{7, 5}, {200003}, {3}, {64, 64}};
  std::vector<Tensor> p_gpu, m_gpu, v_gpu, g_gpu, p_cpu, m_cpu, v_cpu, g_cpu;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const uint64_t seed = 200 + 10 * i;
    p_cpu.push_back(random_tensor(shapes[i], seed));
    m_cpu.push_back(random_tensor(shapes[i], seed + 1, DType::f32, 0, 0.1f));
    v_cpu.push_back(random_tensor(shapes[i], seed + 2, DType::f32, 0, 0.01f));
    g_cpu.push_back(random_tensor(shapes[i], seed + 3));
    p_gpu.push_back(on_gpu(p_cpu.back()));
    m_gpu.push_back(on_gpu(m_cpu.back()));
    v_gpu.push_back(on_gpu(v_cpu.back()));
    g_gpu.push_back(on_gpu(g_cpu.back()));
  }
  for (int64_t step = 1; step <= 3; ++step) {
    std::vector<ops::AdamTensor> gpu, cpu;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const double lr = 1e-3 * static_cast<double>(i + 1), decay = i % 2 == 0 ? 0.01 : 0.0;
      gpu.push_back({&p_gpu[i], &g_gpu[i], &m_gpu[i], &v_gpu[i], lr, decay});
      cpu.push_back({&p_cpu[i], &g_cpu[i], &m_cpu[i], &v_cpu[i], lr, decay});
    }
    ops::adam_step_(gpu, {0.9, 0.99, 1e-8, step}, 0.5);
    ops::adam_step_(cpu, {0.9, 0.99, 1e-8, step}, 0.5);
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    expect_close(p_gpu[i], p_cpu[i], 1e-6, "multi-tensor adam parameters " + std::to_string(i));
    expect_close(m_gpu[i], m_cpu[i], 1e-6, "multi-tensor adam first moment " + std::to_string(i));
    expect_close(v_gpu[i], v_cpu[i], 1e-6, "multi-tensor adam second moment " + std::to_string(i));
  }
  double per_tensor = 0;
  for (const Tensor& g : g_gpu) per_tensor += ops::sum_of_squares(g);
  EXPECT_EQ(ops::sum_of_squares(g_gpu), per_tensor);
  EXPECT_NEAR(ops::sum_of_squares(g_gpu), ops::sum_of_squares(g_cpu), 1e-10 * per_tensor);
}

}  // namespace
}  // namespace rwkv
