// Lab: residual add + layernorm (spec §1.2, the x + f(LN(x)) pattern of every block), forward and backward.
//   sum = x + delta, y = (sum - mean) * rstd * weight + bias over the C channels of each row.
// Versions: v1 separate passes (add, per-row statistics by one thread per row, normalise per element), v2 one
// fused block per row with scalar accesses, v3 the same with 16-byte accesses, and the production kernel
// (cuda_kernels::add_layernorm_forward/backward).
// Run: build/labs/lab_add_layernorm [--B 16] [--T 1024] [--C 768]
#include <cmath>

#include "kernels/cuda/rwkv_fused.h"
#include "labs/fused_lab.cuh"

namespace {

using namespace lab;
namespace cuda_kernels = rwkv::cuda_kernels;
constexpr int kThreads = 256;
constexpr float kEps = 1e-5f;

// ---- CPU reference (double), normalising the stored (rounded) sum ----
struct Reference {
  std::vector<float> sum, y, grad_input, grad_weight, grad_bias;
};

template <typename IO>
Reference cpu_reference(const Sizes& s, const std::vector<float>& x, const std::vector<float>& delta,
                        const std::vector<float>& weight, const std::vector<float>& bias,
                        const std::vector<float>& grad_y, const std::vector<float>& grad_sum) {
  const int64_t C = s.C, rows = s.rows();
  Reference r;
  r.sum.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) r.sum[i] = x[i] + delta[i];
  r.sum = as_stored<IO>(r.sum);
  r.y.resize(x.size());
  r.grad_input.resize(x.size());
  std::vector<double> gw(C, 0.0), gb(C, 0.0);
  for (int64_t row = 0; row < rows; ++row) {
    const float* v = r.sum.data() + row * C;
    double mu = 0, var = 0, mean_g = 0, mean_gx = 0;
    for (int64_t c = 0; c < C; ++c) mu += v[c];
    mu /= C;
    for (int64_t c = 0; c < C; ++c) var += (v[c] - mu) * (v[c] - mu);
    const double inv_std = 1.0 / std::sqrt(var / C + kEps);
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (v[c] - mu) * inv_std, gy = grad_y[row * C + c];
      r.y[row * C + c] = static_cast<float>(xhat * weight[c] + bias[c]);
      mean_g += gy * weight[c] / C;
      mean_gx += gy * weight[c] * xhat / C;
      gw[c] += gy * xhat;
      gb[c] += gy;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (v[c] - mu) * inv_std, g = grad_y[row * C + c] * static_cast<double>(weight[c]);
      r.grad_input[row * C + c] = static_cast<float>(inv_std * (g - mean_g - xhat * mean_gx) + grad_sum[row * C + c]);
    }
  }
  r.grad_weight.assign(gw.begin(), gw.end());
  r.grad_bias.assign(gb.begin(), gb.end());
  return r;
}

// Deterministic block sum (fixed shuffle tree); blockDim.x a multiple of 32.
__device__ float block_sum(float value, float* shared) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = value;
  __syncthreads();
  value = static_cast<int>(threadIdx.x & 31) < static_cast<int>(blockDim.x >> 5) ? shared[threadIdx.x & 31] : 0.0f;
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// ---- v1: separate passes ----
template <typename IO>
__global__ void add_kernel(const IO* x, const IO* delta, int64_t n, IO* sum) {
  LAB_GRID_STRIDE(i, n) sum[i] = from_f<IO>(to_f(x[i]) + to_f(delta[i]));
}
// One thread per row, serial over the channels.
template <typename IO>
__global__ void row_stats_kernel(const IO* input, int64_t rows, int64_t C, float* mean, float* rstd) {
  LAB_GRID_STRIDE(row, rows) {
    float total = 0, squares = 0;
    for (int64_t c = 0; c < C; ++c) total += to_f(input[row * C + c]);
    const float mu = total / C;
    for (int64_t c = 0; c < C; ++c) squares += (to_f(input[row * C + c]) - mu) * (to_f(input[row * C + c]) - mu);
    mean[row] = mu;
    rstd[row] = 1.0f / sqrtf(squares / C + kEps);
  }
}
template <typename IO>
__global__ void normalise_kernel(const IO* input, const float* mean, const float* rstd, const float* weight,
                                 const float* bias, int64_t C, int64_t n, IO* y) {
  LAB_GRID_STRIDE(i, n) {
    const int64_t row = i / C, c = i % C;
    y[i] = from_f<IO>((to_f(input[i]) - mean[row]) * rstd[row] * weight[c] + bias[c]);
  }
}
// Backward, one thread per row for the two row means, then per element.
template <typename IO>
__global__ void row_grad_stats_kernel(const IO* grad_y, const IO* input, const float* weight, const float* mean,
                                      const float* rstd, int64_t rows, int64_t C, float* mean_g, float* mean_gx) {
  LAB_GRID_STRIDE(row, rows) {
    float sum_g = 0, sum_gx = 0;
    for (int64_t c = 0; c < C; ++c) {
      const float g = to_f(grad_y[row * C + c]) * weight[c];
      sum_g += g;
      sum_gx += g * (to_f(input[row * C + c]) - mean[row]) * rstd[row];
    }
    mean_g[row] = sum_g / C;
    mean_gx[row] = sum_gx / C;
  }
}
template <typename IO>
__global__ void grad_input_kernel(const IO* grad_y, const IO* input, const IO* grad_sum, const float* weight,
                                  const float* mean, const float* rstd, const float* mean_g, const float* mean_gx,
                                  int64_t C, int64_t n, IO* grad_input) {
  LAB_GRID_STRIDE(i, n) {
    const int64_t row = i / C, c = i % C;
    const float xhat = (to_f(input[i]) - mean[row]) * rstd[row];
    grad_input[i] = from_f<IO>(rstd[row] * (to_f(grad_y[i]) * weight[c] - mean_g[row] - xhat * mean_gx[row]) +
                               to_f(grad_sum[i]));
  }
}
// One thread per channel, serial over the rows.
template <typename IO>
__global__ void column_param_grads_kernel(const IO* grad_y, const IO* input, const float* mean, const float* rstd,
                                          int64_t rows, int64_t C, float* grad_weight, float* grad_bias) {
  LAB_GRID_STRIDE(c, C) {
    float gw = 0, gb = 0;
    for (int64_t row = 0; row < rows; ++row) {
      const float g = to_f(grad_y[row * C + c]);
      gw += g * (to_f(input[row * C + c]) - mean[row]) * rstd[row];
      gb += g;
    }
    grad_weight[c] = gw;
    grad_bias[c] = gb;
  }
}

// ---- v2 (N = 1) and v3 (N = 16 bytes): one block per row, the add fused in ----
template <typename IO, int N>
__device__ __forceinline__ void load_n(const IO* p, float (&out)[N]) {
  if constexpr (N == 1) {
    out[0] = to_f(p[0]);
  } else {
    load_vec(p, out);
  }
}
template <typename IO, int N>
__device__ __forceinline__ void store_n(IO* p, const float (&v)[N]) {
  if constexpr (N == 1) {
    p[0] = from_f<IO>(v[0]);
  } else {
    store_vec(p, v);
  }
}

template <typename IO, int N>
__global__ void fused_forward(const IO* x, const IO* delta, const float* weight, const float* bias, int64_t rows,
                              int64_t C, IO* sum, IO* y, float* mean, float* rstd) {
  __shared__ float shared[32];
  const int64_t groups = C / N;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float total = 0;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N], d[N];
      load_n<IO, N>(x + row * C + g * N, v);
      load_n<IO, N>(delta + row * C + g * N, d);
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] = to_f(from_f<IO>(v[k] + d[k]));
      store_n<IO, N>(sum + row * C + g * N, v);
#pragma unroll
      for (int k = 0; k < N; ++k) total += v[k];
    }
    const float mu = block_sum(total, shared) / C;
    float squares = 0;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N];
      load_n<IO, N>(sum + row * C + g * N, v);
#pragma unroll
      for (int k = 0; k < N; ++k) squares += (v[k] - mu) * (v[k] - mu);
    }
    const float inv_std = 1.0f / sqrtf(block_sum(squares, shared) / C + kEps);
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N];
      load_n<IO, N>(sum + row * C + g * N, v);
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] = (v[k] - mu) * inv_std * weight[g * N + k] + bias[g * N + k];
      store_n<IO, N>(y + row * C + g * N, v);
    }
    if (threadIdx.x == 0) {
      mean[row] = mu;
      rstd[row] = inv_std;
    }
  }
}

template <typename IO>
__global__ void fused_grad_input(const IO* grad_y, const IO* input, const IO* grad_sum, const float* weight,
                                 const float* mean, const float* rstd, int64_t rows, int64_t C, IO* grad_input) {
  __shared__ float shared[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float mu = mean[row], inv_std = rstd[row];
    float sum_g = 0, sum_gx = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float g = to_f(grad_y[row * C + c]) * weight[c];
      sum_g += g;
      sum_gx += g * (to_f(input[row * C + c]) - mu) * inv_std;
    }
    const float mean_g = block_sum(sum_g, shared) / C, mean_gx = block_sum(sum_gx, shared) / C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const int64_t i = row * C + c;
      const float xhat = (to_f(input[i]) - mu) * inv_std;
      grad_input[i] = from_f<IO>(inv_std * (to_f(grad_y[i]) * weight[c] - mean_g - xhat * mean_gx) + to_f(grad_sum[i]));
    }
  }
}

int row_threads(int64_t groups) {
  const int64_t t = (groups + 31) / 32 * 32;
  return static_cast<int>(t < kThreads ? t : kThreads);
}

template <typename IO>
bool run(const Sizes& s) {
  std::printf("\n== %s ==\n", io_name<IO>());
  const int64_t n = s.n(), C = s.C, rows = s.rows();
  const std::vector<float> x_h = as_stored<IO>(random_vector(n, -2, 2, 1));
  const std::vector<float> delta_h = as_stored<IO>(random_vector(n, -1, 1, 2));
  const std::vector<float> weight_h = random_vector(C, 0.5f, 1.5f, 3), bias_h = random_vector(C, -1, 1, 4);
  const std::vector<float> grad_y_h = as_stored<IO>(random_vector(n, -1, 1, 5));
  const std::vector<float> grad_sum_h = as_stored<IO>(random_vector(n, -1, 1, 6));
  const Reference ref = cpu_reference<IO>(s, x_h, delta_h, weight_h, bias_h, grad_y_h, grad_sum_h);

  Buffer<IO> x(x_h), delta(delta_h), sum(n), y(n), grad_y(grad_y_h), grad_sum(grad_sum_h), grad_input(n);
  Buffer<float> weight(weight_h), bias(bias_h), mean(rows), rstd(rows), mean_g(rows), mean_gx(rows);
  Buffer<float> grad_weight(C), grad_bias(C);
  const int blocks = grid_for(n, kThreads);
  const bool vectorisable = C % kVec<IO> == 0;

  auto v1_forward = [&] {
    add_kernel<<<blocks, kThreads>>>(x.data, delta.data, n, sum.data);
    row_stats_kernel<<<grid_for(rows, 128), 128>>>(sum.data, rows, C, mean.data, rstd.data);
    normalise_kernel<<<blocks, kThreads>>>(sum.data, mean.data, rstd.data, weight.data, bias.data, C, n, y.data);
  };
  const int row_blocks = static_cast<int>(rows < (1 << 30) ? rows : (1 << 30));
  auto v2_forward = [&] {
    fused_forward<IO, 1><<<row_blocks, row_threads(C), 0>>>(x.data, delta.data, weight.data, bias.data, rows, C,
                                                             sum.data, y.data, mean.data, rstd.data);
  };
  auto v3_forward = [&] {
    fused_forward<IO, kVec<IO>><<<row_blocks, row_threads(C / kVec<IO>), 0>>>(
        x.data, delta.data, weight.data, bias.data, rows, C, sum.data, y.data, mean.data, rstd.data);
  };
  auto production_forward = [&] {
    cuda_kernels::add_layernorm_forward(float_io<IO>(), x.data, delta.data, weight.data, bias.data, rows, C, kEps,
                                        sum.data, y.data, mean.data, rstd.data);
  };
  auto v1_backward = [&] {
    row_grad_stats_kernel<<<grid_for(rows, 128), 128>>>(grad_y.data, sum.data, weight.data, mean.data, rstd.data,
                                                        rows, C, mean_g.data, mean_gx.data);
    grad_input_kernel<<<blocks, kThreads>>>(grad_y.data, sum.data, grad_sum.data, weight.data, mean.data, rstd.data,
                                            mean_g.data, mean_gx.data, C, n, grad_input.data);
    column_param_grads_kernel<<<grid_for(C, 128), 128>>>(grad_y.data, sum.data, mean.data, rstd.data, rows, C,
                                                         grad_weight.data, grad_bias.data);
  };
  auto v2_backward = [&] {
    fused_grad_input<<<row_blocks, row_threads(C)>>>(grad_y.data, sum.data, grad_sum.data, weight.data, mean.data,
                                                     rstd.data, rows, C, grad_input.data);
    column_param_grads_kernel<<<grid_for(C, 128), 128>>>(grad_y.data, sum.data, mean.data, rstd.data, rows, C,
                                                         grad_weight.data, grad_bias.data);
  };
  auto production_backward = [&] {
    cuda_kernels::add_layernorm_backward(float_io<IO>(), grad_sum.data, grad_y.data, sum.data, weight.data,
                                         mean.data, rstd.data, rows, C, grad_input.data, grad_weight.data,
                                         grad_bias.data);
  };

  bool ok = true;
  const double rtol = activation_rtol<IO>(), atol = activation_atol<IO>();
  auto check_forward = [&](const std::string& name, const std::function<void()>& launch) {
    check(cudaMemset(y.data, 0, y.bytes()), "memset");
    check(cudaMemset(sum.data, 0, sum.bytes()), "memset");
    launch();
    check(cudaDeviceSynchronize(), name.c_str());
    ok &= compare((name + " sum").c_str(), sum.download(), ref.sum, atol, rtol);
    ok &= compare((name + " y").c_str(), y.download(), ref.y, 2 * atol, 2 * rtol);
  };
  // The backward versions read the sum, mean and rstd of the production forward.
  auto check_backward = [&](const std::string& name, const std::function<void()>& launch) {
    production_forward();
    check(cudaMemset(grad_input.data, 0, grad_input.bytes()), "memset");
    check(cudaMemset(grad_weight.data, 0, grad_weight.bytes()), "memset");
    check(cudaMemset(grad_bias.data, 0, grad_bias.bytes()), "memset");
    launch();
    check(cudaDeviceSynchronize(), name.c_str());
    ok &= compare((name + " grad input").c_str(), grad_input.download(), ref.grad_input, 2 * atol, 2 * rtol);
    ok &= compare((name + " grad weight").c_str(), grad_weight.download(), ref.grad_weight, kSumAtol, kSumRtol);
    ok &= compare((name + " grad bias").c_str(), grad_bias.download(), ref.grad_bias, kSumAtol, kSumRtol);
  };
  check_forward("v1 separate passes", v1_forward);
  check_forward("v2 fused scalar", v2_forward);
  if (vectorisable) check_forward("v3 fused 16-byte", v3_forward);
  check_forward("production", production_forward);
  check_backward("v1 separate passes", v1_backward);
  check_backward("v2 fused row, column sums", v2_backward);
  check_backward("production", production_backward);
  if (!ok) return false;

  // Memory floor: forward reads x, delta and writes sum, y; backward reads grad_y, input, grad_sum, writes grad.
  const double forward_bytes = 4.0 * n * sizeof(IO), backward_bytes = 4.0 * n * sizeof(IO);
  std::printf(" forward\n");
  report("v1 separate passes", time_kernel(v1_forward), forward_bytes);
  report("v2 fused scalar", time_kernel(v2_forward), forward_bytes);
  if (vectorisable) report("v3 fused 16-byte", time_kernel(v3_forward), forward_bytes);
  report("production", time_kernel(production_forward), forward_bytes);
  std::printf(" backward\n");
  report("v1 separate passes", time_kernel(v1_backward), backward_bytes);
  report("v2 fused row, column sums", time_kernel(v2_backward), backward_bytes);
  report("production (16-byte, partials)", time_kernel(production_backward), backward_bytes);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const lab::Sizes sizes = lab::parse_sizes(argc, argv, "lab_add_layernorm");
  return lab::run_lab("lab_add_layernorm", [&] { return run<float>(sizes) && run<lab::bf16>(sizes); });
}
