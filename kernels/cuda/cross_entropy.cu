// Cross-entropy over logits [rows, vocab] and L2Wrap's extra gradient.
// Forward: one block per row computes the logsumexp in one pass with a running (max, sum of exp) per thread,
// merged in a fixed tree (fp32); the mean loss sums the per-row losses in double in row order (one block).
// Backward: one elementwise pass. L2Wrap: one block per row finds the first maximal index.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kRowThreads = 256;

template <typename Fn>
void dispatch_ids(IdType id_type, Fn&& fn) {
  if (id_type == IdType::i32) return fn(int32_t{});
  return fn(int64_t{});
}

// A partial logsumexp: the largest value seen and the sum of exp(x - max) over the others (the max's own 1
// left out, so that log1p keeps full precision when one logit dominates). Empty: max = -inf.
struct MaxRest {
  float max, rest;
};

__device__ inline void add(MaxRest& part, float value) {
  if (value > part.max) {
    part.rest = (part.rest + 1.0f) * expf(part.max - value);  // 0 when the part was empty
    part.max = value;
  } else if (part.max > -INFINITY) {
    part.rest += expf(value - part.max);
  }
}

// `low` holds lower lanes or indices than `high`: every lane merges in the same order, so all agree.
__device__ inline MaxRest merge(MaxRest low, MaxRest high) {
  if (high.max == -INFINITY) return low;
  if (low.max == -INFINITY) return high;
  if (low.max >= high.max) return {low.max, low.rest + (high.rest + 1.0f) * expf(high.max - low.max)};
  return {high.max, high.rest + (low.rest + 1.0f) * expf(low.max - high.max)};
}

__device__ inline MaxRest warp_merge(MaxRest value) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const MaxRest other{__shfl_xor_sync(0xffffffffu, value.max, offset),
                        __shfl_xor_sync(0xffffffffu, value.rest, offset)};
    value = (threadIdx.x & offset) ? merge(other, value) : merge(value, other);
  }
  return value;
}

template <typename Id>
__global__ void logsumexp_kernel(const float* logits, const Id* targets, int64_t rows, int64_t vocab,
                                 float* logsumexp, float* row_loss) {
  __shared__ MaxRest shared[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    MaxRest part{-INFINITY, 0.0f};
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) add(part, x[v]);
    part = warp_merge(part);
    __syncthreads();
    if (lane == 0) shared[warp] = part;
    __syncthreads();
    if (warp == 0) {
      part = lane < warps ? shared[lane] : MaxRest{-INFINITY, 0.0f};
      part = warp_merge(part);
      if (lane == 0) {
        const float log_sum = log1pf(part.rest);
        logsumexp[row] = part.max + log_sum;
        // lse - x[target] as a sum of two non-negative terms: no cancellation when the target dominates.
        row_loss[row] = (part.max - x[static_cast<int64_t>(targets[row])]) + log_sum;
      }
    }
  }
}

// loss = mean of row_loss, summed in double: a single block, fixed assignment and tree.
__global__ void mean_kernel(const float* values, int64_t count, float* mean) {
  __shared__ double shared[32];
  double total = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) total += values[i];
  total = block_sum(total, shared);
  if (threadIdx.x == 0) *mean = static_cast<float>(total / static_cast<double>(count));
}

template <typename Id>
__global__ void cross_entropy_backward_kernel(const float* logits, const Id* targets, const float* logsumexp,
                                              int64_t rows, int64_t vocab, float scale, float* grad) {
  RWKV_GRID_STRIDE(i, rows * vocab) {
    const int64_t row = i / vocab, v = i % vocab;
    const float shifted = logits[i] - logsumexp[row];
    // softmax - 1 at the target through expm1: exact when the target's probability is close to 1.
    grad[i] = v == static_cast<int64_t>(targets[row]) ? scale * expm1f(shifted) : scale * expf(shifted);
  }
}

__global__ void l2wrap_backward_kernel(const float* logits, int64_t rows, int64_t vocab, float factor, float* grad) {
  __shared__ float best_values[32];
  __shared__ int64_t best_indices[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    float best = -INFINITY;
    int64_t index = vocab;  // "none yet": loses every tie
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      if (index == vocab || x[v] > best) {
        best = x[v];
        index = v;
      }
    }
    // Larger value wins; equal values go to the smaller index (the first maximal one, as on the CPU).
    auto combine = [&](float other_best, int64_t other_index) {
      if (other_index == vocab) return;
      if (index == vocab || other_best > best || (other_best == best && other_index < index)) {
        best = other_best;
        index = other_index;
      }
    };
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other_best = __shfl_xor_sync(0xffffffffu, best, offset);
      const int64_t other_index = __shfl_xor_sync(0xffffffffu, index, offset);
      combine(other_best, other_index);
    }
    __syncthreads();
    if (lane == 0) {
      best_values[warp] = best;
      best_indices[warp] = index;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int other = 1; other < warps; ++other) combine(best_values[other], best_indices[other]);
      // Rounded multiply, then add (no fused multiply-add): the same bits as the CPU's `+= factor * x`.
      grad[row * vocab + index] = __fadd_rn(grad[row * vocab + index], __fmul_rn(factor, x[index]));
    }
  }
}

}  // namespace

void cross_entropy_forward(const float* logits, const void* targets, IdType id_type, int64_t rows, int64_t vocab,
                           float* logsumexp, float* loss) {
  RWKV_CHECK(rows > 0 && vocab > 0, "cuda cross_entropy: empty logits");
  const cudaStream_t s = stream();
  Scratch row_loss(static_cast<size_t>(rows) * sizeof(float));
  dispatch_ids(id_type, [&](auto zero) {
    using Id = decltype(zero);
    logsumexp_kernel<<<blocks_for(rows, 1, kMaxGridX), kRowThreads, 0, s>>>(
        logits, static_cast<const Id*>(targets), rows, vocab, logsumexp, row_loss.as<float>());
  });
  check_launch("cuda cross_entropy (logsumexp)");
  mean_kernel<<<1, 1024, 0, s>>>(row_loss.as<float>(), rows, loss);
  check_launch("cuda cross_entropy (mean)");
}

void cross_entropy_backward(const float* logits, const void* targets, IdType id_type, const float* logsumexp,
                            int64_t rows, int64_t vocab, float scale, float* grad_logits) {
  if (rows == 0 || vocab == 0) return;
  dispatch_ids(id_type, [&](auto zero) {
    using Id = decltype(zero);
    cross_entropy_backward_kernel<<<blocks_for(rows * vocab, 256), 256, 0, stream()>>>(
        logits, static_cast<const Id*>(targets), logsumexp, rows, vocab, scale, grad_logits);
  });
  check_launch("cuda cross_entropy_backward");
}

void l2wrap_backward(const float* logits, int64_t rows, int64_t vocab, float factor, float* grad_logits) {
  if (rows == 0 || vocab == 0) return;
  l2wrap_backward_kernel<<<blocks_for(rows, 1, kMaxGridX), kRowThreads, 0, stream()>>>(logits, rows, vocab, factor,
                                                                                        grad_logits);
  check_launch("cuda l2wrap_backward");
}

}  // namespace rwkv::cuda_kernels
