// LayerNorm over the last axis. Forward and the input gradient: one block per row, fp32 statistics (two passes:
// mean, then the biased variance of the centred values), block sums in a fixed shuffle tree. Parameter
// gradients: column sums over rows in double, cut into fixed row chunks whose partials are added in chunk order.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

// Threads per row block: enough for the row, a multiple of 32, at most 256 (a function of the shape only).
int row_threads(int64_t cols) {
  const int64_t rounded = ceil_div(cols, 32) * 32;
  return static_cast<int>(rounded < 256 ? rounded : 256);
}

__global__ void layernorm_forward_kernel(const float* x, const float* weight, const float* bias, int64_t rows,
                                         int64_t cols, float eps, float* y, float* mean, float* rstd) {
  __shared__ float shared[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    float sum = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += xr[c];
    const float mu = block_sum(sum, shared) / static_cast<float>(cols);
    float squares = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float d = xr[c] - mu;
      squares += d * d;
    }
    const float inv_std = 1.0f / sqrtf(block_sum(squares, shared) / static_cast<float>(cols) + eps);
    float* yr = y + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - mu) * inv_std * weight[c] + bias[c];
    if (threadIdx.x == 0) {
      mean[row] = mu;
      rstd[row] = inv_std;
    }
  }
}

// grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = grad_y * weight, xhat = (x - mean) * rstd.
__global__ void layernorm_grad_input_kernel(const float* grad_y, const float* x, const float* weight,
                                            const float* mean, const float* rstd, int64_t rows, int64_t cols,
                                            float* grad_x) {
  __shared__ float shared[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* gy = grad_y + row * cols;
    const float* xr = x + row * cols;
    const float mu = mean[row], inv_std = rstd[row];
    float sum_g = 0, sum_g_xhat = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float g = gy[c] * weight[c];
      sum_g += g;
      sum_g_xhat += g * (xr[c] - mu) * inv_std;
    }
    const float mean_g = block_sum(sum_g, shared) / static_cast<float>(cols);
    const float mean_g_xhat = block_sum(sum_g_xhat, shared) / static_cast<float>(cols);
    float* gx = grad_x + row * cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float xhat = (xr[c] - mu) * inv_std;
      gx[c] = inv_std * (gy[c] * weight[c] - mean_g - xhat * mean_g_xhat);
    }
  }
}

constexpr int kColumnWidth = 32;
constexpr int kRowLanes = 8;
constexpr int64_t kRowChunk = 256;

// Per (row chunk, column): sums of grad_y * xhat and of grad_y, into double partials [chunks, cols] each.
__global__ void layernorm_param_partials_kernel(const float* grad_y, const float* x, const float* mean,
                                                const float* rstd, int64_t rows, int64_t cols, int64_t chunks,
                                                double* partial_weight, double* partial_bias) {
  __shared__ double lanes_w[kRowLanes][kColumnWidth], lanes_b[kRowLanes][kColumnWidth];
  const int64_t column = blockIdx.x * static_cast<int64_t>(kColumnWidth) + threadIdx.x;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t begin = chunk * kRowChunk, end = begin + kRowChunk < rows ? begin + kRowChunk : rows;
    double gw = 0, gb = 0;
    if (column < cols) {
      for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
        const double g = grad_y[r * cols + column];
        gw += g * ((static_cast<double>(x[r * cols + column]) - mean[r]) * rstd[r]);
        gb += g;
      }
    }
    lanes_w[threadIdx.y][threadIdx.x] = gw;
    lanes_b[threadIdx.y][threadIdx.x] = gb;
    __syncthreads();
    if (threadIdx.y == 0 && column < cols) {
      double sum_w = 0, sum_b = 0;
      for (int lane = 0; lane < kRowLanes; ++lane) {
        sum_w += lanes_w[lane][threadIdx.x];
        sum_b += lanes_b[lane][threadIdx.x];
      }
      partial_weight[chunk * cols + column] = sum_w;
      partial_bias[chunk * cols + column] = sum_b;
    }
    __syncthreads();
  }
}

__global__ void layernorm_param_sum_kernel(const double* partial_weight, const double* partial_bias, int64_t chunks,
                                           int64_t cols, float* grad_weight, float* grad_bias) {
  RWKV_GRID_STRIDE(column, cols) {
    double gw = 0, gb = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      gw += partial_weight[chunk * cols + column];
      gb += partial_bias[chunk * cols + column];
    }
    grad_weight[column] = static_cast<float>(gw);
    grad_bias[column] = static_cast<float>(gb);
  }
}

}  // namespace

void layernorm_forward(const float* x, const float* weight, const float* bias, int64_t rows, int64_t cols, float eps,
                       float* y, float* mean, float* rstd) {
  if (rows == 0 || cols == 0) return;
  layernorm_forward_kernel<<<blocks_for(rows, 1, kMaxGridX), row_threads(cols), 0, stream()>>>(
      x, weight, bias, rows, cols, eps, y, mean, rstd);
  check_launch("cuda layernorm");
}

void layernorm_backward(const float* grad_y, const float* x, const float* weight, const float* mean,
                        const float* rstd, int64_t rows, int64_t cols, float* grad_x, float* grad_weight,
                        float* grad_bias) {
  if (cols == 0) return;
  const cudaStream_t s = stream();
  if (rows == 0) {
    check_cuda(cudaMemsetAsync(grad_weight, 0, static_cast<size_t>(cols) * sizeof(float), s), "layernorm_backward");
    check_cuda(cudaMemsetAsync(grad_bias, 0, static_cast<size_t>(cols) * sizeof(float), s), "layernorm_backward");
    return;
  }
  layernorm_grad_input_kernel<<<blocks_for(rows, 1, kMaxGridX), row_threads(cols), 0, s>>>(
      grad_y, x, weight, mean, rstd, rows, cols, grad_x);
  check_launch("cuda layernorm_backward (input)");
  const int64_t chunks = ceil_div(rows, kRowChunk);
  Scratch partials(static_cast<size_t>(2 * chunks * cols) * sizeof(double));
  double* partial_weight = partials.as<double>();
  double* partial_bias = partial_weight + chunks * cols;
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kColumnWidth)),
                  static_cast<unsigned>(chunks < kMaxGridYZ ? chunks : kMaxGridYZ));
  layernorm_param_partials_kernel<<<grid, dim3(kColumnWidth, kRowLanes), 0, s>>>(
      grad_y, x, mean, rstd, rows, cols, chunks, partial_weight, partial_bias);
  check_launch("cuda layernorm_backward (parameter partials)");
  layernorm_param_sum_kernel<<<blocks_for(cols, 256), 256, 0, s>>>(partial_weight, partial_bias, chunks, cols,
                                                                   grad_weight, grad_bias);
  check_launch("cuda layernorm_backward (parameters)");
}

}  // namespace rwkv::cuda_kernels
