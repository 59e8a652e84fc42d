// Lab: the two gates of the RWKV blocks, forward and backward (spec §1.4 and §1.6):
//   sigmoid_mul(gate, value) = sigmoid(gate) * value   (receptance gates)
//   relu_square(x) = max(x, 0)^2                        (ChannelMix's squared ReLU)
// Versions: v1 the unfused graph (a kernel per op, the intermediate written to memory and read back), v2 one
// fused scalar kernel, v3 fused with 16-byte accesses, and the production kernels (cuda_kernels::sigmoid_mul_* and
// relu_square_*). All are memory bound: fusing removes the intermediate's round trip, vectors cut instructions.
// Run: build/labs/lab_gates [--B 16] [--T 1024] [--C 768]
#include <cmath>

#include "kernels/cuda/rwkv_fused.h"
#include "labs/fused_lab.cuh"

namespace {

using namespace lab;
namespace cuda_kernels = rwkv::cuda_kernels;
constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- v1: one kernel per op (intermediates in fp32, as separate tensors) ----
template <typename IO>
__global__ void sigmoid_kernel(const IO* x, int64_t n, float* s) {
  LAB_GRID_STRIDE(i, n) s[i] = sigmoid(to_f(x[i]));
}
template <typename A, typename B, typename Out>
__global__ void mul_kernel(const A* a, const B* b, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>(to_f(a[i]) * to_f(b[i]));
}
template <typename Out>
__global__ void sigmoid_backward_kernel(const float* g, const float* s, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>(g[i] * s[i] * (1.0f - s[i]));
}
template <typename IO>
__global__ void relu_kernel(const IO* x, int64_t n, float* r) {
  LAB_GRID_STRIDE(i, n) r[i] = fmaxf(to_f(x[i]), 0.0f);
}
template <typename Out>
__global__ void square_kernel(const float* r, int64_t n, Out* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<Out>(r[i] * r[i]);
}
template <typename IO>
__global__ void square_backward_kernel(const IO* g, const float* r, int64_t n, float* out) {
  LAB_GRID_STRIDE(i, n) out[i] = 2.0f * r[i] * to_f(g[i]);
}
template <typename IO>
__global__ void relu_backward_kernel(const float* g, const IO* x, int64_t n, IO* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<IO>(to_f(x[i]) > 0.0f ? g[i] : 0.0f);
}

// ---- v2: fused, one thread per element ----
template <typename IO>
__global__ void sigmoid_mul_scalar(const IO* gate, const IO* value, int64_t n, IO* out) {
  LAB_GRID_STRIDE(i, n) out[i] = from_f<IO>(sigmoid(to_f(gate[i])) * to_f(value[i]));
}
template <typename IO>
__global__ void sigmoid_mul_backward_scalar(const IO* g, const IO* gate, const IO* value, int64_t n, IO* grad_gate,
                                            IO* grad_value) {
  LAB_GRID_STRIDE(i, n) {
    const float s = sigmoid(to_f(gate[i])), go = to_f(g[i]);
    grad_gate[i] = from_f<IO>(go * to_f(value[i]) * s * (1.0f - s));
    grad_value[i] = from_f<IO>(go * s);
  }
}
template <typename IO>
__global__ void relu_square_scalar(const IO* x, int64_t n, IO* out) {
  LAB_GRID_STRIDE(i, n) {
    const float v = to_f(x[i]);
    out[i] = from_f<IO>(v > 0.0f ? v * v : 0.0f);
  }
}
template <typename IO>
__global__ void relu_square_backward_scalar(const IO* g, const IO* x, int64_t n, IO* grad_x) {
  LAB_GRID_STRIDE(i, n) {
    const float v = to_f(x[i]);
    grad_x[i] = from_f<IO>(v > 0.0f ? 2.0f * v * to_f(g[i]) : 0.0f);
  }
}

// ---- v3: fused, 16 bytes per access (n a multiple of the vector width) ----
template <typename IO>
__global__ void sigmoid_mul_vector(const IO* gate, const IO* value, int64_t groups, IO* out) {
  constexpr int N = kVec<IO>;
  LAB_GRID_STRIDE(j, groups) {
    float g[N], v[N];
    load_vec(gate + j * N, g);
    load_vec(value + j * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = sigmoid(g[k]) * v[k];
    store_vec(out + j * N, v);
  }
}
template <typename IO>
__global__ void sigmoid_mul_backward_vector(const IO* grad, const IO* gate, const IO* value, int64_t groups,
                                            IO* grad_gate, IO* grad_value) {
  constexpr int N = kVec<IO>;
  LAB_GRID_STRIDE(j, groups) {
    float go[N], g[N], v[N], dg[N], dv[N];
    load_vec(grad + j * N, go);
    load_vec(gate + j * N, g);
    load_vec(value + j * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float s = sigmoid(g[k]);
      dg[k] = go[k] * v[k] * s * (1.0f - s);
      dv[k] = go[k] * s;
    }
    store_vec(grad_gate + j * N, dg);
    store_vec(grad_value + j * N, dv);
  }
}
template <typename IO>
__global__ void relu_square_vector(const IO* x, int64_t groups, IO* out) {
  constexpr int N = kVec<IO>;
  LAB_GRID_STRIDE(j, groups) {
    float v[N];
    load_vec(x + j * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = v[k] > 0.0f ? v[k] * v[k] : 0.0f;
    store_vec(out + j * N, v);
  }
}
template <typename IO>
__global__ void relu_square_backward_vector(const IO* grad, const IO* x, int64_t groups, IO* grad_x) {
  constexpr int N = kVec<IO>;
  LAB_GRID_STRIDE(j, groups) {
    float g[N], v[N];
    load_vec(grad + j * N, g);
    load_vec(x + j * N, v);
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = v[k] > 0.0f ? 2.0f * v[k] * g[k] : 0.0f;
    store_vec(grad_x + j * N, v);
  }
}

template <typename IO>
bool run(const Sizes& s) {
  std::printf("\n== %s ==\n", io_name<IO>());
  const int64_t n = s.n();
  const std::vector<float> gate_h = as_stored<IO>(random_vector(n, -4, 4, 1));
  const std::vector<float> value_h = as_stored<IO>(random_vector(n, -2, 2, 2));
  const std::vector<float> grad_h = as_stored<IO>(random_vector(n, -1, 1, 3));
  // CPU reference in double; relu_square takes `gate` as its input.
  std::vector<float> sm(n), sm_gate(n), sm_value(n), rs(n), rs_grad(n);
  for (int64_t i = 0; i < n; ++i) {
    const double sg = 1.0 / (1.0 + std::exp(-static_cast<double>(gate_h[i]))), g = grad_h[i], x = gate_h[i];
    sm[i] = static_cast<float>(sg * value_h[i]);
    sm_gate[i] = static_cast<float>(g * value_h[i] * sg * (1.0 - sg));
    sm_value[i] = static_cast<float>(g * sg);
    rs[i] = static_cast<float>(x > 0 ? x * x : 0.0);
    rs_grad[i] = static_cast<float>(x > 0 ? 2.0 * x * g : 0.0);
  }

  Buffer<IO> gate(gate_h), value(value_h), grad(grad_h), out(n), grad_a(n), grad_b(n);
  Buffer<float> tmp(n), tmp2(n);
  const int blocks = grid_for(n, kThreads);
  const int64_t groups = n / kVec<IO>;
  const int vector_blocks = grid_for(groups, kThreads);
  const bool vectorisable = n % kVec<IO> == 0;
  const cuda_kernels::FloatIo io = float_io<IO>();

  struct Version {
    std::string name;
    std::function<void()> sm_forward, sm_backward, rs_forward, rs_backward;
  };
  std::vector<Version> versions;
  versions.push_back(
      {"v1 unfused",
       [&] {
         sigmoid_kernel<<<blocks, kThreads>>>(gate.data, n, tmp.data);
         mul_kernel<<<blocks, kThreads>>>(tmp.data, value.data, n, out.data);
       },
       [&] {
         sigmoid_kernel<<<blocks, kThreads>>>(gate.data, n, tmp.data);  // the graph's saved sigmoid
         mul_kernel<<<blocks, kThreads>>>(grad.data, value.data, n, tmp2.data);
         sigmoid_backward_kernel<<<blocks, kThreads>>>(tmp2.data, tmp.data, n, grad_a.data);
         mul_kernel<<<blocks, kThreads>>>(grad.data, tmp.data, n, grad_b.data);
       },
       [&] {
         relu_kernel<<<blocks, kThreads>>>(gate.data, n, tmp.data);
         square_kernel<<<blocks, kThreads>>>(tmp.data, n, out.data);
       },
       [&] {
         relu_kernel<<<blocks, kThreads>>>(gate.data, n, tmp.data);  // the graph's saved relu output
         square_backward_kernel<<<blocks, kThreads>>>(grad.data, tmp.data, n, tmp2.data);
         relu_backward_kernel<<<blocks, kThreads>>>(tmp2.data, gate.data, n, grad_a.data);
       }});
  versions.push_back(
      {"v2 fused scalar", [&] { sigmoid_mul_scalar<<<blocks, kThreads>>>(gate.data, value.data, n, out.data); },
       [&] {
         sigmoid_mul_backward_scalar<<<blocks, kThreads>>>(grad.data, gate.data, value.data, n, grad_a.data,
                                                           grad_b.data);
       },
       [&] { relu_square_scalar<<<blocks, kThreads>>>(gate.data, n, out.data); },
       [&] { relu_square_backward_scalar<<<blocks, kThreads>>>(grad.data, gate.data, n, grad_a.data); }});
  if (vectorisable) {
    versions.push_back(
        {"v3 fused 16-byte",
         [&] { sigmoid_mul_vector<<<vector_blocks, kThreads>>>(gate.data, value.data, groups, out.data); },
         [&] {
           sigmoid_mul_backward_vector<<<vector_blocks, kThreads>>>(grad.data, gate.data, value.data, groups,
                                                                    grad_a.data, grad_b.data);
         },
         [&] { relu_square_vector<<<vector_blocks, kThreads>>>(gate.data, groups, out.data); },
         [&] { relu_square_backward_vector<<<vector_blocks, kThreads>>>(grad.data, gate.data, groups, grad_a.data); }});
  }
  versions.push_back(
      {"production", [&] { cuda_kernels::sigmoid_mul_forward(io, gate.data, value.data, n, out.data); },
       [&] { cuda_kernels::sigmoid_mul_backward(io, grad.data, gate.data, value.data, n, grad_a.data, grad_b.data); },
       [&] { cuda_kernels::relu_square_forward(io, gate.data, n, out.data); },
       [&] { cuda_kernels::relu_square_backward(io, grad.data, gate.data, n, grad_a.data); }});

  bool ok = true;
  const double rtol = activation_rtol<IO>(), atol = activation_atol<IO>();
  auto run_and_check = [&](const std::string& what, const std::function<void()>& launch,
                           const std::vector<std::pair<Buffer<IO>*, const std::vector<float>*>>& results) {
    for (const auto& result : results) check(cudaMemset(result.first->data, 0, result.first->bytes()), "memset");
    launch();
    check(cudaDeviceSynchronize(), what.c_str());
    for (size_t r = 0; r < results.size(); ++r) {
      ok &= compare((what + (r ? " (value)" : "")).c_str(), results[r].first->download(), *results[r].second, atol,
                    rtol);
    }
  };
  for (const Version& v : versions) {
    run_and_check(v.name + " sigmoid_mul", v.sm_forward, {{&out, &sm}});
    run_and_check(v.name + " sigmoid_mul grad", v.sm_backward, {{&grad_a, &sm_gate}, {&grad_b, &sm_value}});
    run_and_check(v.name + " relu_square", v.rs_forward, {{&out, &rs}});
    run_and_check(v.name + " relu_square grad", v.rs_backward, {{&grad_a, &rs_grad}});
  }
  if (!ok) return false;

  const double bytes = static_cast<double>(n) * sizeof(IO);
  const char* titles[4] = {" sigmoid_mul forward", " sigmoid_mul backward", " relu_square forward",
                           " relu_square backward"};
  const double floors[4] = {3 * bytes, 5 * bytes, 2 * bytes, 3 * bytes};  // tensors read + written once
  for (int op = 0; op < 4; ++op) {
    std::printf("%s\n", titles[op]);
    for (const Version& v : versions) {
      const std::function<void()>& launch =
          op == 0 ? v.sm_forward : op == 1 ? v.sm_backward : op == 2 ? v.rs_forward : v.rs_backward;
      report(v.name, time_kernel(launch), floors[op]);
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const lab::Sizes sizes = lab::parse_sizes(argc, argv, "lab_gates");
  return lab::run_lab("lab_gates", [&] { return run<float>(sizes) && run<lab::bf16>(sizes); });
}
