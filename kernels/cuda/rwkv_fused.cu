// Fused RWKV kernels (see rwkv_fused.h). Each thread owns N consecutive channels (one 16-byte access per operand
// when vectorised, N = 1 otherwise); math in fp32; bf16 results rounded to nearest even. Parameter gradients:
// fp32 per-thread sums over a fixed row chunk, combined over the block's row lanes in lane order into a partial
// per chunk, then summed over chunks in chunk order (in double): no atomics, the same bits on every run.
#include <cuda_bf16.h>

#include <cstdint>
#include <initializer_list>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rwkv_fused.h"

namespace rwkv::cuda_kernels {

namespace {

using bf16 = __nv_bfloat16;

constexpr int kThreads = 256;
constexpr int kColumnThreads = 32;  // threads along the channels in the parameter-gradient kernels
constexpr int kRowLanes = 8;        // threads along the rows there
constexpr int64_t kRowChunk = 64;   // rows per partial sum (a constant: the summation order depends on the shape only)

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(bf16 v) { return __bfloat162float(v); }
template <typename IO>
__device__ __forceinline__ IO from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float v) {
  return __float2bfloat16_rn(v);
}
// The value the I/O type actually stores (what a later read of it gives back).
template <typename IO>
__device__ __forceinline__ float rounded(float v) {
  return to_float(from_float<IO>(v));
}

// N consecutive activations: one 16-byte load when N elements fill 16 bytes (the caller guarantees alignment).
template <int N, typename IO>
__device__ __forceinline__ void load(const IO* p, float (&out)[N]) {
  if constexpr (N * sizeof(IO) == 16) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const IO* elements = reinterpret_cast<const IO*>(&raw);
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = to_float(elements[k]);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = to_float(p[k]);
  }
}

// N consecutive fp32 parameters: float4 loads when N is a multiple of 4.
template <int N>
__device__ __forceinline__ void load_params(const float* p, float (&out)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int k = 0; k < N; k += 4) {
      const float4 v = *reinterpret_cast<const float4*>(p + k);
      out[k] = v.x;
      out[k + 1] = v.y;
      out[k + 2] = v.z;
      out[k + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = p[k];
  }
}

template <int N, typename IO>
__device__ __forceinline__ void store(IO* p, const float (&values)[N]) {
  if constexpr (N * sizeof(IO) == 16) {
    uint4 raw;
    IO* elements = reinterpret_cast<IO*>(&raw);
#pragma unroll
    for (int k = 0; k < N; ++k) elements[k] = from_float<IO>(values[k]);
    *reinterpret_cast<uint4*>(p) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) p[k] = from_float<IO>(values[k]);
  }
}

template <int N>
__device__ __forceinline__ void fill(float (&values)[N], float value) {
#pragma unroll
  for (int k = 0; k < N; ++k) values[k] = value;
}

// ---- time mix -------------------------------------------------------------------------------------------------

struct MixPointers {
  const float* p[kMaxTimeMixes];
};
template <typename IO>
struct ConstIoPointers {
  const IO* p[kMaxTimeMixes];
};
template <typename IO>
struct IoPointers {
  IO* p[kMaxTimeMixes];
};

// The shifted row of `row` at channels [c, c + N): the previous token, `previous` at t = 0, or zeros.
template <int N, typename IO>
__device__ __forceinline__ void load_shifted(const IO* x, const IO* previous, int64_t row, int64_t t, int64_t c,
                                             int64_t time, int64_t channels, float (&xx)[N]) {
  if (t > 0) {
    load<N>(x + (row - 1) * channels + c, xx);
  } else if (previous) {
    load<N>(previous + (row / time) * channels + c, xx);
  } else {
    fill(xx, 0.0f);
  }
}

// out_m = x * mix_m + xx * (1 - mix_m), rounded step by step like the composed ops (no fused multiply-add).
template <typename IO, int N>
__global__ void time_mix_forward_kernel(const IO* x, const IO* previous, int64_t time, int64_t channels,
                                        int64_t rows, int count, MixPointers mixes, IoPointers<IO> outs) {
  const int64_t groups = channels / N;
  RWKV_GRID_STRIDE(i, rows * groups) {
    const int64_t row = i / groups, c = (i - row * groups) * N, t = row % time;
    float xv[N], xx[N];
    load<N>(x + row * channels + c, xv);
    load_shifted<N>(x, previous, row, t, c, time, channels, xx);
#pragma unroll
    for (int m = 0; m < kMaxTimeMixes; ++m) {  // unrolled: constant indices keep the pointers out of local memory
      if (m >= count) break;
      float mix[N], out[N];
      load_params<N>(mixes.p[m] + c, mix);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        out[k] = __fadd_rn(__fmul_rn(xv[k], mix[k]), __fmul_rn(xx[k], __fsub_rn(1.0f, mix[k])));
      }
      store<N>(outs.p[m] + row * channels + c, out);
    }
  }
}

// One pass over the gradients: grad_x (and grad_previous at t = 0) per row, and each thread's share of
// Σ g_m (x - xx) for the mix gradients, combined over the row lanes into partials [chunks, count, channels].
template <typename IO, int N>
__global__ void __launch_bounds__(kColumnThreads * kRowLanes)
    time_mix_backward_kernel(ConstIoPointers<IO> grads, const IO* x, const IO* previous, MixPointers mixes,
                             int count, int64_t time, int64_t channels, int64_t rows, int64_t chunks, IO* grad_x,
                             IO* grad_previous, float* partials) {
  __shared__ float lanes[kRowLanes][kMaxTimeMixes][N][kColumnThreads];
  const int64_t groups = channels / N;
  const int64_t group = blockIdx.x * static_cast<int64_t>(kColumnThreads) + threadIdx.x;
  const bool active = group < groups;
  const int64_t c = group * N;
  float mix[kMaxTimeMixes][N];
#pragma unroll
  for (int m = 0; m < kMaxTimeMixes; ++m) {
    if (active && m < count) {
      load_params<N>(mixes.p[m] + c, mix[m]);
    } else {
      fill(mix[m], 0.0f);
    }
  }
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    float acc[kMaxTimeMixes][N];
#pragma unroll
    for (int m = 0; m < kMaxTimeMixes; ++m) fill(acc[m], 0.0f);
    const int64_t begin = chunk * kRowChunk, end = begin + kRowChunk < rows ? begin + kRowChunk : rows;
    if (active) {
      for (int64_t row = begin + threadIdx.y; row < end; row += kRowLanes) {
        const int64_t t = row % time;
        const bool has_next = t + 1 < time;
        float xv[N], xx[N], gx[N], gp[N];
        load<N>(x + row * channels + c, xv);
        load_shifted<N>(x, previous, row, t, c, time, channels, xx);
        fill(gx, 0.0f);
        fill(gp, 0.0f);
        // Loops over the mixes are unrolled to kMaxTimeMixes with a guard, so mix[m] and acc[m] stay in registers.
#pragma unroll
        for (int m = 0; m < kMaxTimeMixes; ++m) {
          if (m >= count) break;
          float g[N], next[N];
          load<N>(grads.p[m] + row * channels + c, g);
          if (has_next) load<N>(grads.p[m] + (row + 1) * channels + c, next);
#pragma unroll
          for (int k = 0; k < N; ++k) {
            const float keep = __fsub_rn(1.0f, mix[m][k]);
            gx[k] = __fadd_rn(gx[k], __fmul_rn(g[k], mix[m][k]));
            if (has_next) gx[k] = __fadd_rn(gx[k], __fmul_rn(next[k], keep));
            gp[k] = __fadd_rn(gp[k], __fmul_rn(g[k], keep));
            acc[m][k] += g[k] * (xv[k] - xx[k]);
          }
        }
        store<N>(grad_x + row * channels + c, gx);
        if (t == 0 && grad_previous) store<N>(grad_previous + (row / time) * channels + c, gp);
      }
    }
#pragma unroll
    for (int m = 0; m < kMaxTimeMixes; ++m) {
      if (m >= count) break;
#pragma unroll
      for (int k = 0; k < N; ++k) lanes[threadIdx.y][m][k][threadIdx.x] = acc[m][k];
    }
    __syncthreads();
    if (threadIdx.y == 0 && active) {
      for (int m = 0; m < count; ++m) {
#pragma unroll
        for (int k = 0; k < N; ++k) {
          float sum = 0;
          for (int lane = 0; lane < kRowLanes; ++lane) sum += lanes[lane][m][k][threadIdx.x];
          partials[(chunk * count + m) * channels + c + k] = sum;
        }
      }
    }
    __syncthreads();  // `lanes` is rewritten by the next chunk
  }
}

struct ParamGradPointers {
  float* p[kMaxTimeMixes];
};

// Σ over chunks, in chunk order and in double, of partials [chunks, width]; column j goes to
// outs.p[j / out_width][j % out_width].
__global__ void sum_chunks_kernel(const float* partials, int64_t chunks, int64_t width, ParamGradPointers outs,
                                  int64_t out_width) {
  RWKV_GRID_STRIDE(j, width) {
    double sum = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partials[chunk * width + j];
    const int64_t which = j / out_width;
    float* out = which == 0 ? outs.p[0] : which == 1 ? outs.p[1] : outs.p[2];
    out[j - which * out_width] = static_cast<float>(sum);
  }
}

// ---- add + layernorm ------------------------------------------------------------------------------------------

// Threads per row block: one per N-group of the row, a multiple of 32, at most kThreads.
int row_threads(int64_t groups) {
  const int64_t rounded_up = ceil_div(groups, 32) * 32;
  return static_cast<int>(rounded_up < kThreads ? rounded_up : kThreads);
}

// One block per row (grid-stride over rows). The sum is stored first and the later passes re-read it (from L1)
// by the same thread, so the statistics are those of the rounded sum that the backward sees.
template <typename IO, int N>
__global__ void add_layernorm_forward_kernel(const IO* x, const IO* delta, const float* weight, const float* bias,
                                             int64_t rows, int64_t cols, float eps, IO* sum, IO* y, float* mean,
                                             float* rstd) {
  __shared__ float shared[32];
  const int64_t groups = cols / N;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const IO* input = (delta ? sum : x) + row * cols;
    float total = 0;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N];
      load<N>(x + row * cols + g * N, v);
      if (delta) {
        float d[N];
        load<N>(delta + row * cols + g * N, d);
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = rounded<IO>(v[k] + d[k]);
        store<N>(sum + row * cols + g * N, v);
      }
#pragma unroll
      for (int k = 0; k < N; ++k) total += v[k];
    }
    const float mu = block_sum(total, shared) / static_cast<float>(cols);
    float squares = 0;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N];
      load<N>(input + g * N, v);
#pragma unroll
      for (int k = 0; k < N; ++k) squares += (v[k] - mu) * (v[k] - mu);
    }
    const float inv_std = 1.0f / sqrtf(block_sum(squares, shared) / static_cast<float>(cols) + eps);
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float v[N], w[N], b[N];
      load<N>(input + g * N, v);
      load_params<N>(weight + g * N, w);
      load_params<N>(bias + g * N, b);
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] = (v[k] - mu) * inv_std * w[k] + b[k];
      store<N>(y + row * cols + g * N, v);
    }
    if (threadIdx.x == 0) {
      mean[row] = mu;
      rstd[row] = inv_std;
    }
  }
}

// grad_input = rstd * (g - mean(g) - xhat * mean(g * xhat)) + grad_sum, g = grad_y * weight.
template <typename IO, int N>
__global__ void add_layernorm_grad_input_kernel(const IO* grad_sum, const IO* grad_y, const IO* input,
                                                const float* weight, const float* mean, const float* rstd,
                                                int64_t rows, int64_t cols, IO* grad_input) {
  __shared__ float shared[32];
  const int64_t groups = cols / N;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float mu = mean[row], inv_std = rstd[row];
    float sum_g = 0, sum_g_xhat = 0;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float gy[N], v[N], w[N];
      load<N>(grad_y + row * cols + g * N, gy);
      load<N>(input + row * cols + g * N, v);
      load_params<N>(weight + g * N, w);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float gw = gy[k] * w[k];
        sum_g += gw;
        sum_g_xhat += gw * ((v[k] - mu) * inv_std);
      }
    }
    const float mean_g = block_sum(sum_g, shared) / static_cast<float>(cols);
    const float mean_g_xhat = block_sum(sum_g_xhat, shared) / static_cast<float>(cols);
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      float gy[N], v[N], w[N], out[N];
      load<N>(grad_y + row * cols + g * N, gy);
      load<N>(input + row * cols + g * N, v);
      load_params<N>(weight + g * N, w);
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float xhat = (v[k] - mu) * inv_std;
        out[k] = inv_std * (gy[k] * w[k] - mean_g - xhat * mean_g_xhat);
      }
      if (grad_sum) {
        float gs[N];
        load<N>(grad_sum + row * cols + g * N, gs);
#pragma unroll
        for (int k = 0; k < N; ++k) out[k] += gs[k];
      }
      store<N>(grad_input + row * cols + g * N, out);
    }
  }
}

// Per (row chunk, N columns): Σ grad_y * xhat and Σ grad_y, into partials [chunks, 2 * cols] (weight, then bias).
template <typename IO, int N>
__global__ void __launch_bounds__(kColumnThreads * kRowLanes)
    layernorm_param_partials_kernel(const IO* grad_y, const IO* input, const float* mean, const float* rstd,
                                    int64_t rows, int64_t cols, int64_t chunks, float* partials) {
  __shared__ float lanes[kRowLanes][2][N][kColumnThreads];
  const int64_t group = blockIdx.x * static_cast<int64_t>(kColumnThreads) + threadIdx.x;
  const bool active = group < cols / N;
  const int64_t c = group * N;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    float gw[N], gb[N];
    fill(gw, 0.0f);
    fill(gb, 0.0f);
    const int64_t begin = chunk * kRowChunk, end = begin + kRowChunk < rows ? begin + kRowChunk : rows;
    if (active) {
      for (int64_t row = begin + threadIdx.y; row < end; row += kRowLanes) {
        float gy[N], v[N];
        load<N>(grad_y + row * cols + c, gy);
        load<N>(input + row * cols + c, v);
        const float mu = mean[row], inv_std = rstd[row];
#pragma unroll
        for (int k = 0; k < N; ++k) {
          gw[k] += gy[k] * ((v[k] - mu) * inv_std);
          gb[k] += gy[k];
        }
      }
    }
#pragma unroll
    for (int k = 0; k < N; ++k) {
      lanes[threadIdx.y][0][k][threadIdx.x] = gw[k];
      lanes[threadIdx.y][1][k][threadIdx.x] = gb[k];
    }
    __syncthreads();
    if (threadIdx.y == 0 && active) {
#pragma unroll
      for (int k = 0; k < N; ++k) {
        float sum_w = 0, sum_b = 0;
        for (int lane = 0; lane < kRowLanes; ++lane) {
          sum_w += lanes[lane][0][k][threadIdx.x];
          sum_b += lanes[lane][1][k][threadIdx.x];
        }
        partials[chunk * 2 * cols + c + k] = sum_w;
        partials[chunk * 2 * cols + cols + c + k] = sum_b;
      }
    }
    __syncthreads();
  }
}

// ---- gates ----------------------------------------------------------------------------------------------------

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

template <typename IO, int N>
__global__ void sigmoid_mul_forward_kernel(const IO* gate, const IO* value, int64_t groups, IO* out) {
  RWKV_GRID_STRIDE(i, groups) {
    float g[N], v[N];
    load<N>(gate + i * N, g);
    load<N>(value + i * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = sigmoid(g[k]) * v[k];
    store<N>(out + i * N, v);
  }
}

template <typename IO, int N>
__global__ void sigmoid_mul_backward_kernel(const IO* grad_out, const IO* gate, const IO* value, int64_t groups,
                                            IO* grad_gate, IO* grad_value) {
  RWKV_GRID_STRIDE(i, groups) {
    float go[N], g[N], v[N], dg[N], dv[N];
    load<N>(grad_out + i * N, go);
    load<N>(gate + i * N, g);
    load<N>(value + i * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float s = sigmoid(g[k]);
      dg[k] = go[k] * v[k] * s * (1.0f - s);
      dv[k] = go[k] * s;
    }
    store<N>(grad_gate + i * N, dg);
    store<N>(grad_value + i * N, dv);
  }
}

template <typename IO, int N>
__global__ void relu_square_forward_kernel(const IO* x, int64_t groups, IO* out) {
  RWKV_GRID_STRIDE(i, groups) {
    float v[N];
    load<N>(x + i * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = v[k] > 0.0f ? v[k] * v[k] : 0.0f;
    store<N>(out + i * N, v);
  }
}

template <typename IO, int N>
__global__ void relu_square_backward_kernel(const IO* grad_out, const IO* x, int64_t groups, IO* grad_x) {
  RWKV_GRID_STRIDE(i, groups) {
    float go[N], v[N];
    load<N>(grad_out + i * N, go);
    load<N>(x + i * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = v[k] > 0.0f ? 2.0f * v[k] * go[k] : 0.0f;
    store<N>(grad_x + i * N, v);
  }
}

// ---- host side ------------------------------------------------------------------------------------------------

bool aligned(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers) {
    if (p && (reinterpret_cast<uintptr_t>(p) & 15u) != 0) return false;
  }
  return true;
}

// The vector width for `io` when `extent` (channels, or elements) allows it and every pointer is aligned, else 1.
int vector_width(FloatIo io, int64_t extent, std::initializer_list<const void*> pointers) {
  const int width = io == FloatIo::bf16 ? 8 : 4;
  return extent % width == 0 && aligned(pointers) ? width : 1;
}

// Calls fn.template operator()<IO, N>() for the I/O type and the vector width (1 or 16 bytes' worth).
template <typename Fn>
void dispatch(FloatIo io, int width, Fn&& fn) {
  if (io == FloatIo::bf16) {
    if (width == 8) {
      fn.template operator()<bf16, 8>();
    } else {
      fn.template operator()<bf16, 1>();
    }
  } else if (width == 4) {
    fn.template operator()<float, 4>();
  } else {
    fn.template operator()<float, 1>();
  }
}

int capped_grid_y(int64_t chunks) { return static_cast<int>(chunks < kMaxGridYZ ? chunks : kMaxGridYZ); }

}  // namespace

void time_mix_forward(const TimeMixForwardArgs& a) {
  const int64_t rows = a.batch * a.time;
  if (rows == 0 || a.channels == 0) return;
  RWKV_CHECK(a.count >= 1 && a.count <= kMaxTimeMixes, "cuda time_mix: ", a.count, " mixes (1 to 3 supported)");
  MixPointers mixes{};
  for (int m = 0; m < a.count; ++m) mixes.p[m] = a.mixes[m];
  const int width = vector_width(a.io, a.channels, {a.x, a.previous, a.mixes[0], a.mixes[1 % a.count],
                                                    a.mixes[2 % a.count], a.outs[0], a.outs[1 % a.count],
                                                    a.outs[2 % a.count]});
  dispatch(a.io, width, [&]<typename IO, int N>() {
    IoPointers<IO> outs{};
    for (int m = 0; m < a.count; ++m) outs.p[m] = static_cast<IO*>(a.outs[m]);
    const int64_t items = rows * (a.channels / N);
    time_mix_forward_kernel<IO, N><<<blocks_for(items, kThreads, kMaxGridX), kThreads, 0, stream()>>>(
        static_cast<const IO*>(a.x), static_cast<const IO*>(a.previous), a.time, a.channels, rows, a.count, mixes,
        outs);
  });
  check_launch("cuda time_mix");
}

void time_mix_backward(const TimeMixBackwardArgs& a) {
  const int64_t rows = a.batch * a.time;
  if (rows == 0 || a.channels == 0) return;
  RWKV_CHECK(a.count >= 1 && a.count <= kMaxTimeMixes, "cuda time_mix_backward: ", a.count,
             " mixes (1 to 3 supported)");
  MixPointers mixes{};
  for (int m = 0; m < a.count; ++m) mixes.p[m] = a.mixes[m];
  const int width = vector_width(a.io, a.channels, {a.x, a.previous, a.grad_x, a.grad_previous, a.mixes[0],
                                                    a.mixes[1 % a.count], a.mixes[2 % a.count], a.grad_outs[0],
                                                    a.grad_outs[1 % a.count], a.grad_outs[2 % a.count]});
  const int64_t chunks = ceil_div(rows, kRowChunk);
  const int64_t width_all = a.count * a.channels;
  Scratch partials(static_cast<size_t>(chunks * width_all) * sizeof(float));
  const cudaStream_t s = stream();
  dispatch(a.io, width, [&]<typename IO, int N>() {
    ConstIoPointers<IO> grads{};
    for (int m = 0; m < a.count; ++m) grads.p[m] = static_cast<const IO*>(a.grad_outs[m]);
    const dim3 grid(static_cast<unsigned>(ceil_div(a.channels / N, kColumnThreads)),
                    static_cast<unsigned>(capped_grid_y(chunks)));
    time_mix_backward_kernel<IO, N><<<grid, dim3(kColumnThreads, kRowLanes), 0, s>>>(
        grads, static_cast<const IO*>(a.x), a.previous ? static_cast<const IO*>(a.previous) : nullptr, mixes,
        a.count, a.time, a.channels, rows, chunks, static_cast<IO*>(a.grad_x),
        a.previous ? static_cast<IO*>(a.grad_previous) : nullptr, partials.as<float>());
  });
  check_launch("cuda time_mix_backward");
  ParamGradPointers outs{};
  for (int m = 0; m < a.count; ++m) outs.p[m] = a.grad_mixes[m];
  sum_chunks_kernel<<<blocks_for(width_all, kThreads), kThreads, 0, s>>>(partials.as<float>(), chunks, width_all,
                                                                         outs, a.channels);
  check_launch("cuda time_mix_backward (mix gradients)");
}

void add_layernorm_forward(FloatIo io, const void* x, const void* delta, const float* weight, const float* bias,
                           int64_t rows, int64_t cols, float eps, void* sum, void* y, float* mean, float* rstd) {
  if (rows == 0 || cols == 0) return;
  const int width = vector_width(io, cols, {x, delta, weight, bias, sum, y});
  dispatch(io, width, [&]<typename IO, int N>() {
    add_layernorm_forward_kernel<IO, N><<<blocks_for(rows, 1, kMaxGridX), row_threads(cols / N), 0, stream()>>>(
        static_cast<const IO*>(x), static_cast<const IO*>(delta), weight, bias, rows, cols, eps,
        static_cast<IO*>(sum), static_cast<IO*>(y), mean, rstd);
  });
  check_launch("cuda add_layernorm");
}

void add_layernorm_backward(FloatIo io, const void* grad_sum, const void* grad_y, const void* input,
                            const float* weight, const float* mean, const float* rstd, int64_t rows, int64_t cols,
                            void* grad_input, float* grad_weight, float* grad_bias) {
  if (cols == 0) return;
  const cudaStream_t s = stream();
  if (rows == 0) {
    check_cuda(cudaMemsetAsync(grad_weight, 0, static_cast<size_t>(cols) * sizeof(float), s),
               "add_layernorm_backward");
    check_cuda(cudaMemsetAsync(grad_bias, 0, static_cast<size_t>(cols) * sizeof(float), s), "add_layernorm_backward");
    return;
  }
  const int width = vector_width(io, cols, {grad_sum, grad_y, input, weight, grad_input});
  const int64_t chunks = ceil_div(rows, kRowChunk);
  Scratch partials(static_cast<size_t>(chunks * 2 * cols) * sizeof(float));
  dispatch(io, width, [&]<typename IO, int N>() {
    add_layernorm_grad_input_kernel<IO, N><<<blocks_for(rows, 1, kMaxGridX), row_threads(cols / N), 0, s>>>(
        static_cast<const IO*>(grad_sum), static_cast<const IO*>(grad_y), static_cast<const IO*>(input), weight,
        mean, rstd, rows, cols, static_cast<IO*>(grad_input));
    check_launch("cuda add_layernorm_backward (input)");
    const dim3 grid(static_cast<unsigned>(ceil_div(cols / N, kColumnThreads)),
                    static_cast<unsigned>(capped_grid_y(chunks)));
    layernorm_param_partials_kernel<IO, N><<<grid, dim3(kColumnThreads, kRowLanes), 0, s>>>(
        static_cast<const IO*>(grad_y), static_cast<const IO*>(input), mean, rstd, rows, cols, chunks,
        partials.as<float>());
    check_launch("cuda add_layernorm_backward (parameter partials)");
  });
  const ParamGradPointers outs{{grad_weight, grad_bias, nullptr}};
  sum_chunks_kernel<<<blocks_for(2 * cols, kThreads), kThreads, 0, s>>>(partials.as<float>(), chunks, 2 * cols,
                                                                        outs, cols);
  check_launch("cuda add_layernorm_backward (parameters)");
}

void sigmoid_mul_forward(FloatIo io, const void* gate, const void* value, int64_t n, void* out) {
  if (n == 0) return;
  dispatch(io, vector_width(io, n, {gate, value, out}), [&]<typename IO, int N>() {
    sigmoid_mul_forward_kernel<IO, N><<<blocks_for(n / N, kThreads, kMaxGridX), kThreads, 0, stream()>>>(
        static_cast<const IO*>(gate), static_cast<const IO*>(value), n / N, static_cast<IO*>(out));
  });
  check_launch("cuda sigmoid_mul");
}

void sigmoid_mul_backward(FloatIo io, const void* grad_out, const void* gate, const void* value, int64_t n,
                          void* grad_gate, void* grad_value) {
  if (n == 0) return;
  dispatch(io, vector_width(io, n, {grad_out, gate, value, grad_gate, grad_value}), [&]<typename IO, int N>() {
    sigmoid_mul_backward_kernel<IO, N><<<blocks_for(n / N, kThreads, kMaxGridX), kThreads, 0, stream()>>>(
        static_cast<const IO*>(grad_out), static_cast<const IO*>(gate), static_cast<const IO*>(value), n / N,
        static_cast<IO*>(grad_gate), static_cast<IO*>(grad_value));
  });
  check_launch("cuda sigmoid_mul_backward");
}

void relu_square_forward(FloatIo io, const void* x, int64_t n, void* out) {
  if (n == 0) return;
  dispatch(io, vector_width(io, n, {x, out}), [&]<typename IO, int N>() {
    relu_square_forward_kernel<IO, N><<<blocks_for(n / N, kThreads, kMaxGridX), kThreads, 0, stream()>>>(
        static_cast<const IO*>(x), n / N, static_cast<IO*>(out));
  });
  check_launch("cuda relu_square");
}

void relu_square_backward(FloatIo io, const void* grad_out, const void* x, int64_t n, void* grad_x) {
  if (n == 0) return;
  dispatch(io, vector_width(io, n, {grad_out, x, grad_x}), [&]<typename IO, int N>() {
    relu_square_backward_kernel<IO, N><<<blocks_for(n / N, kThreads, kMaxGridX), kThreads, 0, stream()>>>(
        static_cast<const IO*>(grad_out), static_cast<const IO*>(x), n / N, static_cast<IO*>(grad_x));
  });
  check_launch("cuda relu_square_backward");
}

}  // namespace rwkv::cuda_kernels
