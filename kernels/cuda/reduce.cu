// Sums over the middle axis of [outer, n, inner], accumulated in double. Deterministic: the axis is cut into
// chunks whose size depends only on the shape (never on the GPU), each chunk is summed by one block in a fixed
// tree, and the chunk partials are summed in chunk order by a second kernel. x and y are float or __nv_bfloat16
// (the same type); a bf16 result is the double sum rounded to fp32 and then to bf16, exactly as on the CPU.
#include <cuda_bf16.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

__device__ inline double load(const float* p, int64_t i) { return p[i]; }
__device__ inline double load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ inline void store(float* p, int64_t i, double value) { p[i] = static_cast<float>(value); }
__device__ inline void store(__nv_bfloat16* p, int64_t i, double value) {
  p[i] = __float2bfloat16_rn(static_cast<float>(value));
}

// ---- inner == 1: contiguous rows.
constexpr int kRowThreads = 256;
constexpr int64_t kRowChunk = 16384;  // elements of one row summed by one block

// Block (row, chunk) sums its slice; writes the float result when the row is one chunk, else a double partial.
template <typename T>
__global__ void sum_rows_kernel(const T* x, int64_t outer, int64_t n, int64_t chunks, double* partials, T* y) {
  __shared__ double shared[32];
  for (int64_t task = blockIdx.x; task < outer * chunks; task += gridDim.x) {
    const int64_t row = task / chunks, chunk = task % chunks;
    const int64_t begin = chunk * kRowChunk, end = begin + kRowChunk < n ? begin + kRowChunk : n;
    const T* p = x + row * n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) total += load(p, i);
    total = block_sum(total, shared);
    if (threadIdx.x == 0) {
      if (partials) {
        partials[task] = total;
      } else {
        store(y, row, total);
      }
    }
  }
}

// ---- inner > 1: a block is 32 columns x 8 row lanes over a chunk of kColumnChunk rows.
constexpr int kColumnWidth = 32;
constexpr int kRowLanes = 8;
constexpr int64_t kColumnChunk = 512;

template <typename T>
__global__ void sum_columns_kernel(const T* x, int64_t outer, int64_t n, int64_t inner, int64_t chunks,
                                   double* partials, T* y) {
  __shared__ double lanes[kRowLanes][kColumnWidth];
  const int64_t column = blockIdx.x * static_cast<int64_t>(kColumnWidth) + threadIdx.x;
  for (int64_t task = blockIdx.y; task < outer * chunks; task += gridDim.y) {
    const int64_t o = task / chunks, chunk = task % chunks;
    const int64_t begin = chunk * kColumnChunk, end = begin + kColumnChunk < n ? begin + kColumnChunk : n;
    double total = 0;
    if (column < inner) {
      for (int64_t i = begin + threadIdx.y; i < end; i += kRowLanes) total += load(x, (o * n + i) * inner + column);
    }
    lanes[threadIdx.y][threadIdx.x] = total;
    __syncthreads();
    if (threadIdx.y == 0 && column < inner) {
      double sum = 0;
      for (int lane = 0; lane < kRowLanes; ++lane) sum += lanes[lane][threadIdx.x];
      if (partials) {
        partials[task * inner + column] = sum;
      } else {
        store(y, o * inner + column, sum);
      }
    }
    __syncthreads();
  }
}

// y[o, j] = sum over chunks of partials[o, chunk, j], in chunk order.
template <typename T>
__global__ void sum_partials_kernel(const double* partials, int64_t outer, int64_t chunks, int64_t inner, T* y) {
  RWKV_GRID_STRIDE(index, outer * inner) {
    const int64_t o = index / inner, j = index % inner;
    double total = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partials[(o * chunks + chunk) * inner + j];
    store(y, index, total);
  }
}

template <typename T>
void sum_middle_typed(const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  if (outer == 0 || inner == 0) return;
  const cudaStream_t s = stream();
  if (n == 0) {
    check_cuda(cudaMemsetAsync(y, 0, static_cast<size_t>(outer * inner) * sizeof(T), s), "sum: zero fill");
    return;
  }
  if (inner == 1) {
    const int64_t chunks = ceil_div(n, kRowChunk);
    Scratch partials(chunks > 1 ? static_cast<size_t>(outer * chunks) * sizeof(double) : 0);
    double* partial_data = chunks > 1 ? partials.as<double>() : nullptr;
    sum_rows_kernel<<<blocks_for(outer * chunks, 1, kMaxGridX), kRowThreads, 0, s>>>(x, outer, n, chunks,
                                                                                      partial_data, y);
    check_launch("cuda sum (rows)");
    if (chunks > 1) {
      sum_partials_kernel<<<blocks_for(outer, 256), 256, 0, s>>>(partial_data, outer, chunks, 1, y);
      check_launch("cuda sum (row partials)");
    }
    return;
  }
  const int64_t chunks = ceil_div(n, kColumnChunk);
  Scratch partials(chunks > 1 ? static_cast<size_t>(outer * chunks * inner) * sizeof(double) : 0);
  double* partial_data = chunks > 1 ? partials.as<double>() : nullptr;
  const dim3 grid(static_cast<unsigned>(ceil_div(inner, kColumnWidth)),
                  static_cast<unsigned>(outer * chunks < kMaxGridYZ ? outer * chunks : kMaxGridYZ));
  RWKV_CHECK(grid.x <= static_cast<unsigned>(kMaxGridX), "cuda sum: ", inner, " columns is too many");
  sum_columns_kernel<<<grid, dim3(kColumnWidth, kRowLanes), 0, s>>>(x, outer, n, inner, chunks, partial_data, y);
  check_launch("cuda sum (columns)");
  if (chunks > 1) {
    sum_partials_kernel<<<blocks_for(outer * inner, 256), 256, 0, s>>>(partial_data, outer, chunks, inner, y);
    check_launch("cuda sum (column partials)");
  }
}

}  // namespace

void sum_middle(FloatIo io, const void* x, int64_t outer, int64_t n, int64_t inner, void* y) {
  if (io == FloatIo::f32) {
    sum_middle_typed(static_cast<const float*>(x), outer, n, inner, static_cast<float*>(y));
  } else {
    sum_middle_typed(static_cast<const __nv_bfloat16*>(x), outer, n, inner, static_cast<__nv_bfloat16*>(y));
  }
}

}  // namespace rwkv::cuda_kernels
