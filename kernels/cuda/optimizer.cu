// Optimizer support: the fused Adam update (elementwise, same formula and order as cpu::adam_step) and the sum
// of squares for the gradient norm (double, fixed chunks added in order: deterministic), each also over many
// tensors in one launch: a host-built table of (tensor, first element) chunks goes to the device with the step.
#include <vector>

#include "core/cuda_runtime.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 16384;  // elements per block in the sum of squares

__device__ inline void adam_element(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t i,
                                    float lr, float beta1, float beta2, float eps, float weight_decay,
                                    float inv_bias1, float inv_sqrt_bias2, bool scale_grad, float grad_scale) {
  const float g = scale_grad ? grad[i] * grad_scale + 0.0f : grad[i];
  const float m = beta1 * exp_avg[i] + (1.0f - beta1) * g;
  const float v = beta2 * exp_avg_sq[i] + (1.0f - beta2) * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  // eps is added after the bias-corrected square root (spec §4.1).
  const float update = (m * inv_bias1) / (sqrtf(v) * inv_sqrt_bias2 + eps) + weight_decay * param[i];
  param[i] -= lr * update;
}

__global__ void adam_kernel(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, float inv_bias1,
                            float inv_sqrt_bias2) {
  RWKV_GRID_STRIDE(i, n) {
    adam_element(param, grad, exp_avg, exp_avg_sq, i, lr, beta1, beta2, eps, weight_decay, inv_bias1, inv_sqrt_bias2,
                 false, 1.0f);
  }
}

struct Chunk {
  int32_t tensor;
  int64_t begin;
};
constexpr int64_t kAdamChunk = 65536;  // elements of one tensor per block-iteration of the multi-tensor step

__global__ void multi_adam_kernel(const AdamTensorArgs* tensors, const Chunk* chunks, int64_t chunk_count,
                                  float beta1, float beta2, float eps, float inv_bias1, float inv_sqrt_bias2,
                                  bool scale_grad, float grad_scale) {
  for (int64_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
    const AdamTensorArgs t = tensors[chunks[c].tensor];
    const int64_t end = chunks[c].begin + kAdamChunk < t.n ? chunks[c].begin + kAdamChunk : t.n;
    for (int64_t i = chunks[c].begin + threadIdx.x; i < end; i += blockDim.x) {
      adam_element(t.param, t.grad, t.exp_avg, t.exp_avg_sq, i, t.lr, beta1, beta2, eps, t.weight_decay, inv_bias1,
                   inv_sqrt_bias2, scale_grad, grad_scale);
    }
  }
}

// The partial sums of squares_partial_kernel for chunks of many tensors (same chunks, same thread mapping).
__global__ void multi_squares_partial_kernel(const float* const* tensors, const int64_t* sizes, const Chunk* chunks,
                                             int64_t chunk_count, double* partials) {
  __shared__ double shared[32];
  for (int64_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
    const float* x = tensors[chunks[c].tensor];
    const int64_t n = sizes[chunks[c].tensor];
    const int64_t begin = chunks[c].begin, end = begin + kChunk < n ? begin + kChunk : n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) total += static_cast<double>(x[i]) * x[i];
    total = block_sum(total, shared);
    if (threadIdx.x == 0) partials[c] = total;
  }
}

// Block b adds tensor b's partials as ordered_total_kernel does; then one thread adds the tensors in order.
__global__ void per_tensor_total_kernel(const double* partials, const int64_t* first_chunk, double* totals) {
  __shared__ double shared[32];
  const int64_t begin = first_chunk[blockIdx.x], end = first_chunk[blockIdx.x + 1];
  double sum = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) totals[blockIdx.x] = sum;
}

__global__ void in_order_total_kernel(const double* totals, int64_t count, double* total) {
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += totals[i];
  *total = sum;
}

__global__ void squares_partial_kernel(const float* x, int64_t n, int64_t chunks, double* partials) {
  __shared__ double shared[32];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const int64_t begin = chunk * kChunk, end = begin + kChunk < n ? begin + kChunk : n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) total += static_cast<double>(x[i]) * x[i];
    total = block_sum(total, shared);
    if (threadIdx.x == 0) partials[chunk] = total;
  }
}

__global__ void ordered_total_kernel(const double* partials, int64_t count, double* total) {
  __shared__ double shared[32];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) *total = sum;
}

}  // namespace

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2) {
  if (n == 0) return;
  adam_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(param, grad, exp_avg, exp_avg_sq, n, lr, beta1,
                                                                   beta2, eps, weight_decay, 1.0f / bias_correction1,
                                                                   1.0f / sqrtf(bias_correction2));
  check_launch("cuda adam_step");
}

double sum_of_squares(const float* x, int64_t n) {
  if (n == 0) return 0.0;
  const cudaStream_t s = stream();
  const int64_t chunks = ceil_div(n, kChunk);
  Scratch partials(static_cast<size_t>(chunks + 1) * sizeof(double));
  double* total = partials.as<double>() + chunks;
  squares_partial_kernel<<<blocks_for(chunks, 1, kMaxGridX), kThreads, 0, s>>>(x, n, chunks, partials.as<double>());
  check_launch("cuda sum_of_squares (chunks)");
  ordered_total_kernel<<<1, 1024, 0, s>>>(partials.as<double>(), chunks, total);
  check_launch("cuda sum_of_squares (total)");
  double host = 0;
  check_cuda(cudaMemcpyAsync(&host, total, sizeof(host), cudaMemcpyDeviceToHost, s), "cuda sum_of_squares (copy)");
  rwkv::cuda::count_host_wait();
  check_cuda(cudaStreamSynchronize(s), "cuda sum_of_squares (synchronize)");
  return host;
}

void multi_tensor_adam_step(const AdamTensorArgs* tensors, int64_t count, float beta1, float beta2, float eps,
                            float bias_correction1, float bias_correction2, bool scale_grad, float grad_scale) {
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t begin = 0; begin < tensors[t].n; begin += kAdamChunk) chunks.push_back({static_cast<int32_t>(t), begin});
  }
  if (chunks.empty()) return;
  const cudaStream_t s = stream();
  const size_t table_bytes = static_cast<size_t>(count) * sizeof(AdamTensorArgs);
  Scratch table(table_bytes + chunks.size() * sizeof(Chunk));
  auto* device_tensors = table.as<AdamTensorArgs>();
  auto* device_chunks = reinterpret_cast<Chunk*>(table.as<char>() + table_bytes);
  check_cuda(cudaMemcpyAsync(device_tensors, tensors, table_bytes, cudaMemcpyHostToDevice, s), "cuda adam (table)");
  check_cuda(cudaMemcpyAsync(device_chunks, chunks.data(), chunks.size() * sizeof(Chunk), cudaMemcpyHostToDevice, s),
             "cuda adam (chunks)");
  const int64_t chunk_count = static_cast<int64_t>(chunks.size());
  multi_adam_kernel<<<blocks_for(chunk_count, 1, kMaxGridX), kThreads, 0, s>>>(
      device_tensors, device_chunks, chunk_count, beta1, beta2, eps, 1.0f / bias_correction1,
      1.0f / sqrtf(bias_correction2), scale_grad, grad_scale);
  check_launch("cuda multi-tensor adam_step");
}

double multi_tensor_sum_of_squares(const float* const* tensors, const int64_t* sizes, int64_t count) {
  if (count == 0) return 0.0;
  std::vector<Chunk> chunks;
  std::vector<int64_t> first_chunk{0};
  for (int64_t t = 0; t < count; ++t) {
    for (int64_t begin = 0; begin < sizes[t]; begin += kChunk) chunks.push_back({static_cast<int32_t>(t), begin});
    first_chunk.push_back(static_cast<int64_t>(chunks.size()));
  }
  const cudaStream_t s = stream();
  const int64_t chunk_count = static_cast<int64_t>(chunks.size());
  // One scratch block: pointers, sizes, chunk table, chunk boundaries per tensor, partials, totals, the total.
  const size_t pointer_bytes = static_cast<size_t>(count) * sizeof(float*);
  const size_t size_bytes = static_cast<size_t>(count) * sizeof(int64_t);
  const size_t chunk_bytes = chunks.size() * sizeof(Chunk);
  const size_t first_bytes = first_chunk.size() * sizeof(int64_t);
  const size_t doubles = static_cast<size_t>(chunk_count + count + 1);
  const auto align8 = [](size_t bytes) { return (bytes + 7) / 8 * 8; };
  const size_t at_sizes = align8(pointer_bytes), at_chunks = at_sizes + align8(size_bytes);
  const size_t at_first = at_chunks + align8(chunk_bytes), at_doubles = at_first + align8(first_bytes);
  Scratch scratch(at_doubles + doubles * sizeof(double));
  char* base = scratch.as<char>();
  check_cuda(cudaMemcpyAsync(base, tensors, pointer_bytes, cudaMemcpyHostToDevice, s), "cuda sum_of_squares (table)");
  check_cuda(cudaMemcpyAsync(base + at_sizes, sizes, size_bytes, cudaMemcpyHostToDevice, s),
             "cuda sum_of_squares (sizes)");
  if (chunk_bytes > 0) {
    check_cuda(cudaMemcpyAsync(base + at_chunks, chunks.data(), chunk_bytes, cudaMemcpyHostToDevice, s),
               "cuda sum_of_squares (chunks)");
  }
  check_cuda(cudaMemcpyAsync(base + at_first, first_chunk.data(), first_bytes, cudaMemcpyHostToDevice, s),
             "cuda sum_of_squares (boundaries)");
  auto* partials = reinterpret_cast<double*>(base + at_doubles);
  double* totals = partials + chunk_count;
  double* total = totals + count;
  if (chunk_count > 0) {
    multi_squares_partial_kernel<<<blocks_for(chunk_count, 1, kMaxGridX), kThreads, 0, s>>>(
        reinterpret_cast<const float* const*>(base), reinterpret_cast<const int64_t*>(base + at_sizes),
        reinterpret_cast<const Chunk*>(base + at_chunks), chunk_count, partials);
    check_launch("cuda multi-tensor sum_of_squares (chunks)");
  }
  per_tensor_total_kernel<<<static_cast<unsigned>(count), 1024, 0, s>>>(
      partials, reinterpret_cast<const int64_t*>(base + at_first), totals);
  check_launch("cuda multi-tensor sum_of_squares (tensors)");
  in_order_total_kernel<<<1, 1, 0, s>>>(totals, count, total);
  check_launch("cuda multi-tensor sum_of_squares (total)");
  double host = 0;
  check_cuda(cudaMemcpyAsync(&host, total, sizeof(host), cudaMemcpyDeviceToHost, s), "cuda sum_of_squares (copy)");
  rwkv::cuda::count_host_wait();
  check_cuda(cudaStreamSynchronize(s), "cuda sum_of_squares (synchronize)");
  return host;
}

}  // namespace rwkv::cuda_kernels
