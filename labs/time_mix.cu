// Lab: token shift + the three time-mix interpolations of a TimeMix block (spec §1.3/§1.4), forward and backward.
//   out_m = x * mix_m + xx * (1 - mix_m), xx = x shifted one step along time (zeros at t = 0), m = k, v, r.
// Versions: v1 the unfused graph (a kernel per op, temporaries in memory), v2 one fused scalar kernel, v3 the
// fused kernel with 16-byte accesses, and the production kernel (cuda_kernels::time_mix_forward/backward).
// Run: build/labs/lab_time_mix [--B 16] [--T 1024] [--C 768]
#include "kernels/cuda/rwkv_fused.h"
#include "labs/fused_lab.cuh"

namespace {

using namespace lab;
namespace cuda_kernels = rwkv::cuda_kernels;
constexpr int kMixes = 3;
constexpr int kThreads = 256;

// ---- CPU reference (double) ----
struct Reference {
  std::vector<float> outs[kMixes], grad_x, grad_mixes[kMixes];
};

Reference cpu_reference(const Sizes& s, const std::vector<float>& x, const std::vector<float>* mixes,
                        const std::vector<float>* grads) {
  Reference r;
  const int64_t C = s.C, n = s.n();
  auto shifted = [&](int64_t i) { return (i / C) % s.T > 0 ? static_cast<double>(x[i - C]) : 0.0; };
  std::vector<double> gx(n, 0.0);
  for (int m = 0; m < kMixes; ++m) {
    r.outs[m].resize(n);
    std::vector<double> gm(C, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % C;
      const double mix = mixes[m][c], g = grads[m][i];
      r.outs[m][i] = static_cast<float>(x[i] * mix + shifted(i) * (1.0 - mix));
      gx[i] += g * mix;
      if ((i / C) % s.T > 0) gx[i - C] += g * (1.0 - mix);
      gm[c] += g * (x[i] - shifted(i));
    }
    r.grad_mixes[m].assign(gm.begin(), gm.end());
  }
  r.grad_x.assign(gx.begin(), gx.end());
  return r;
}

// ---- v1: the unfused graph, one thread per element, one kernel per op ----
template <typename In, typename Out>
__global__ void shift_kernel(const In* x, int64_t T, int64_t C, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>((i / C) % T > 0 ? to_f(x[i - C]) : 0.0f);
}
template <typename In, typename Out>
__global__ void shift_back_kernel(const In* g, int64_t T, int64_t C, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>((i / C) % T < T - 1 ? to_f(g[i + C]) : 0.0f);
}
template <typename In>
__global__ void mul_channel_kernel(const In* a, const float* m, int64_t C, int64_t n, float* out) {
  LAB_GRID_STRIDE(i, n) out[i] = to_f(a[i]) * m[i % C];
}
__global__ void rsub_kernel(const float* m, int64_t C, float* out) { LAB_GRID_STRIDE(i, C) out[i] = 1.0f - m[i]; }
template <typename Out>
__global__ void add_kernel(const float* a, const float* b, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>(a[i] + b[i]);
}
__global__ void accumulate_kernel(const float* a, int64_t n, float* into) { LAB_GRID_STRIDE(i, n) into[i] += a[i]; }
template <typename A, typename B>
__global__ void sub_kernel(const A* a, const B* b, int64_t n, float* out) {
  LAB_GRID_STRIDE(i, n) out[i] = to_f(a[i]) - to_f(b[i]);
}
template <typename A>
__global__ void mul_kernel(const A* a, const float* b, int64_t n, float* out) {
  LAB_GRID_STRIDE(i, n) out[i] = to_f(a[i]) * b[i];
}
template <typename Out>
__global__ void convert_kernel(const float* a, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>(a[i]);
}
// One thread per channel, serial over the rows (deterministic; only C threads busy).
__global__ void column_sum_kernel(const float* a, int64_t rows, int64_t C, float* out) {
  LAB_GRID_STRIDE(c, C) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) sum += a[r * C + c];
    out[c] = static_cast<float>(sum);
  }
}

// ---- v2: one fused kernel, one thread per element ----
struct Mixes {
  const float* p[kMixes];
};
template <typename IO>
struct Outs {
  IO* p[kMixes];
};
template <typename IO>
struct Grads {
  const IO* p[kMixes];
};

template <typename IO>
__global__ void fused_scalar_forward(const IO* x, Mixes mixes, int64_t T, int64_t C, int64_t n, Outs<IO> outs) {
  LAB_GRID_STRIDE(i, n) {
    const float xv = to_f(x[i]), xx = (i / C) % T > 0 ? to_f(x[i - C]) : 0.0f;
#pragma unroll
    for (int m = 0; m < kMixes; ++m) {
      const float mix = mixes.p[m][i % C];
      outs.p[m][i] = from_f<IO>(xv * mix + xx * (1.0f - mix));
    }
  }
}

template <typename IO>
__global__ void fused_scalar_grad_x(Grads<IO> g, Mixes mixes, int64_t T, int64_t C, int64_t n, IO* grad_x) {
  LAB_GRID_STRIDE(i, n) {
    const bool has_next = (i / C) % T < T - 1;
    float sum = 0;
#pragma unroll
    for (int m = 0; m < kMixes; ++m) {
      const float mix = mixes.p[m][i % C];
      sum += to_f(g.p[m][i]) * mix;
      if (has_next) sum += to_f(g.p[m][i + C]) * (1.0f - mix);
    }
    grad_x[i] = from_f<IO>(sum);
  }
}

// One thread per channel for all three mix gradients, serial over the rows.
template <typename IO>
__global__ void fused_scalar_grad_mixes(Grads<IO> g, const IO* x, int64_t T, int64_t C, int64_t rows, float* gm0,
                                        float* gm1, float* gm2) {
  LAB_GRID_STRIDE(c, C) {
    float sums[kMixes] = {0, 0, 0};
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * C + c;
      const float diff = to_f(x[i]) - (r % T > 0 ? to_f(x[i - C]) : 0.0f);
#pragma unroll
      for (int m = 0; m < kMixes; ++m) sums[m] += to_f(g.p[m][i]) * diff;
    }
    gm0[c] = sums[0];
    gm1[c] = sums[1];
    gm2[c] = sums[2];
  }
}

// ---- v3: fused, 16 bytes per access (C a multiple of the vector width) ----
template <typename IO>
__global__ void fused_vector_forward(const IO* x, Mixes mixes, int64_t T, int64_t C, int64_t groups,
                                     Outs<IO> outs) {
  constexpr int N = kVec<IO>;
  LAB_GRID_STRIDE(j, groups) {
    const int64_t i = j * N, c = i % C;
    float xv[N], xx[N];
    load_vec(x + i, xv);
    if ((i / C) % T > 0) {
      load_vec(x + i - C, xx);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) xx[k] = 0.0f;
    }
#pragma unroll
    for (int m = 0; m < kMixes; ++m) {
      float out[N];
#pragma unroll
      for (int k = 0; k < N; ++k) {
        const float mix = mixes.p[m][c + k];
        out[k] = xv[k] * mix + xx[k] * (1.0f - mix);
      }
      store_vec(outs.p[m] + i, out);
    }
  }
}

template <typename IO>
bool run(const Sizes& s) {
  std::printf("\n== %s ==\n", io_name<IO>());
  const int64_t n = s.n(), C = s.C, rows = s.rows();
  const std::vector<float> x_h = as_stored<IO>(random_vector(n, -1, 1, 1));
  std::vector<float> mix_h[kMixes], grad_h[kMixes];
  for (int m = 0; m < kMixes; ++m) {
    mix_h[m] = random_vector(C, 0, 1, 10 + m);
    grad_h[m] = as_stored<IO>(random_vector(n, -1, 1, 20 + m));
  }
  const Reference ref = cpu_reference(s, x_h, mix_h, grad_h);

  Buffer<IO> x(x_h), grad_x(n);
  Buffer<IO> outs[kMixes] = {Buffer<IO>(n), Buffer<IO>(n), Buffer<IO>(n)};
  Buffer<IO> grads[kMixes] = {Buffer<IO>(grad_h[0]), Buffer<IO>(grad_h[1]), Buffer<IO>(grad_h[2])};
  Buffer<float> mixes[kMixes] = {Buffer<float>(mix_h[0]), Buffer<float>(mix_h[1]), Buffer<float>(mix_h[2])};
  Buffer<float> grad_mixes[kMixes] = {Buffer<float>(C), Buffer<float>(C), Buffer<float>(C)};
  Buffer<float> shifted(n), a(n), b(n), keep(n), gx_acc(n), one_minus(C);
  const Mixes mix_ptrs{{mixes[0].data, mixes[1].data, mixes[2].data}};
  const Outs<IO> out_ptrs{{outs[0].data, outs[1].data, outs[2].data}};
  const Grads<IO> grad_ptrs{{grads[0].data, grads[1].data, grads[2].data}};
  const int blocks = grid_for(n, kThreads);
  const bool vectorisable = C % kVec<IO> == 0;

  auto v1_forward = [&] {
    shift_kernel<<<blocks, kThreads>>>(x.data, s.T, C, n, shifted.data);
    for (int m = 0; m < kMixes; ++m) {
      mul_channel_kernel<<<blocks, kThreads>>>(x.data, mixes[m].data, C, n, a.data);
      rsub_kernel<<<grid_for(C, kThreads), kThreads>>>(mixes[m].data, C, one_minus.data);
      mul_channel_kernel<<<blocks, kThreads>>>(shifted.data, one_minus.data, C, n, b.data);
      add_kernel<<<blocks, kThreads>>>(a.data, b.data, n, outs[m].data);
    }
  };
  auto v2_forward = [&] { fused_scalar_forward<<<blocks, kThreads>>>(x.data, mix_ptrs, s.T, C, n, out_ptrs); };
  auto v3_forward = [&] {
    const int64_t groups = n / kVec<IO>;
    fused_vector_forward<<<grid_for(groups, kThreads), kThreads>>>(x.data, mix_ptrs, s.T, C, groups, out_ptrs);
  };
  auto production_forward = [&] {
    cuda_kernels::time_mix_forward({s.B, s.T, C, float_io<IO>(), x.data, nullptr, kMixes,
                                    {mixes[0].data, mixes[1].data, mixes[2].data},
                                    {outs[0].data, outs[1].data, outs[2].data}});
  };
  auto v1_backward = [&] {
    check(cudaMemset(gx_acc.data, 0, gx_acc.bytes()), "memset");
    shift_kernel<<<blocks, kThreads>>>(x.data, s.T, C, n, shifted.data);
    sub_kernel<<<blocks, kThreads>>>(x.data, shifted.data, n, b.data);  // x - xx
    for (int m = 0; m < kMixes; ++m) {
      mul_channel_kernel<<<blocks, kThreads>>>(grads[m].data, mixes[m].data, C, n, a.data);
      accumulate_kernel<<<blocks, kThreads>>>(a.data, n, gx_acc.data);
      rsub_kernel<<<grid_for(C, kThreads), kThreads>>>(mixes[m].data, C, one_minus.data);
      mul_channel_kernel<<<blocks, kThreads>>>(grads[m].data, one_minus.data, C, n, keep.data);
      shift_back_kernel<<<blocks, kThreads>>>(keep.data, s.T, C, n, a.data);
      accumulate_kernel<<<blocks, kThreads>>>(a.data, n, gx_acc.data);
      mul_kernel<<<blocks, kThreads>>>(grads[m].data, b.data, n, a.data);
      column_sum_kernel<<<grid_for(C, kThreads), kThreads>>>(a.data, rows, C, grad_mixes[m].data);
    }
    convert_kernel<<<blocks, kThreads>>>(gx_acc.data, n, grad_x.data);
  };
  auto v2_backward = [&] {
    fused_scalar_grad_x<<<blocks, kThreads>>>(grad_ptrs, mix_ptrs, s.T, C, n, grad_x.data);
    fused_scalar_grad_mixes<<<grid_for(C, 128), 128>>>(grad_ptrs, x.data, s.T, C, rows, grad_mixes[0].data,
                                                       grad_mixes[1].data, grad_mixes[2].data);
  };
  auto production_backward = [&] {
    cuda_kernels::time_mix_backward({s.B, s.T, C, float_io<IO>(), kMixes,
                                     {grads[0].data, grads[1].data, grads[2].data}, x.data, nullptr,
                                     {mixes[0].data, mixes[1].data, mixes[2].data}, grad_x.data, nullptr,
                                     {grad_mixes[0].data, grad_mixes[1].data, grad_mixes[2].data}});
  };

  bool ok = true;
  const double rtol = activation_rtol<IO>(), atol = activation_atol<IO>();
  auto check_forward = [&](const char* name, const std::function<void()>& launch) {
    for (auto& out : outs) check(cudaMemset(out.data, 0, out.bytes()), "memset");
    launch();
    check(cudaDeviceSynchronize(), name);
    for (int m = 0; m < kMixes; ++m) {
      ok &= compare((std::string(name) + " out " + std::to_string(m)).c_str(), outs[m].download(), ref.outs[m],
                    atol, rtol);
    }
  };
  auto check_backward = [&](const char* name, const std::function<void()>& launch) {
    check(cudaMemset(grad_x.data, 0, grad_x.bytes()), "memset");
    for (auto& gm : grad_mixes) check(cudaMemset(gm.data, 0, gm.bytes()), "memset");
    launch();
    check(cudaDeviceSynchronize(), name);
    ok &= compare((std::string(name) + " grad x").c_str(), grad_x.download(), ref.grad_x, atol, rtol);
    for (int m = 0; m < kMixes; ++m) {
      ok &= compare((std::string(name) + " grad mix " + std::to_string(m)).c_str(), grad_mixes[m].download(),
                    ref.grad_mixes[m], kSumAtol, kSumRtol);
    }
  };
  check_forward("v1 unfused", v1_forward);
  check_forward("v2 fused scalar", v2_forward);
  if (vectorisable) check_forward("v3 fused 16-byte", v3_forward);
  check_forward("production", production_forward);
  check_backward("v1 unfused", v1_backward);
  check_backward("v2 fused scalar", v2_backward);
  check_backward("production", production_backward);
  if (!ok) return false;

  // Memory floor: forward reads x and writes 3 outputs; backward reads 3 gradients and x and writes grad x.
  const double forward_bytes = 4.0 * n * sizeof(IO), backward_bytes = 5.0 * n * sizeof(IO);
  std::printf(" forward\n");
  report("v1 unfused (13 kernels)", time_kernel(v1_forward), forward_bytes);
  report("v2 fused scalar", time_kernel(v2_forward), forward_bytes);
  if (vectorisable) report("v3 fused 16-byte", time_kernel(v3_forward), forward_bytes);
  report("production", time_kernel(production_forward), forward_bytes);
  std::printf(" backward\n");
  report("v1 unfused (27 kernels)", time_kernel(v1_backward), backward_bytes);
  report("v2 fused scalar, column sums", time_kernel(v2_backward), backward_bytes);
  report("production (one pass, partials)", time_kernel(production_backward), backward_bytes);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const lab::Sizes sizes = lab::parse_sizes(argc, argv, "lab_time_mix");
  return lab::run_lab("lab_time_mix", [&] { return run<float>(sizes) && run<lab::bf16>(sizes); });
}
