// WKV v1: one thread per (b, c), serial over time — the official kernel's layout (spec §2.2-2.4) with the state
// in/out of cpu::wkv_forward/wkv_backward, any B, T and C (bounds-checked threads, no T_MAX), and the two
// per-step scalars of the backward kept in fp32 global scratch [2, B, T, C] instead of per-thread arrays.
// Consecutive threads hold consecutive channels, so every load and store at a given t is coalesced.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/wkv_internal.cuh"

namespace rwkv::cuda_kernels::wkv_detail {

namespace {

// One warp per block spreads the few B·C threads over as many multiprocessors as possible.
constexpr int kThreads = 32;

template <typename T>
__global__ void forward_kernel(int64_t batch, int64_t time, int64_t channels, const float* w, const T* u, const T* k,
                               const T* v, const float* state_in, T* y, float* state_out) {
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= batch * channels) return;
  const int64_t b = index / channels, c = index % channels;
  const float ww = w[c], uu = load(u, c);
  const int64_t state = b * 3 * channels + c;
  float aa = state_in ? state_in[state] : 0.0f;
  float bb = state_in ? state_in[state + channels] : 0.0f;
  float pp = state_in ? state_in[state + 2 * channels] : kMinExponent;
  for (int64_t t = 0, i = b * time * channels + c; t < time; ++t, i += channels) {
    const float kk = load(k, i), vv = load(v, i);
    const float bonus = uu + kk;
    float q = fmaxf(pp, bonus);
    float e1 = expf(pp - q), e2 = expf(bonus - q);
    store(y, i, (e1 * aa + e2 * vv) / (e1 * bb + e2));
    const float decayed = pp + ww;
    q = fmaxf(decayed, kk);
    e1 = expf(decayed - q);
    e2 = expf(kk - q);
    aa = e1 * aa + e2 * vv;
    bb = e1 * bb + e2;
    pp = q;
  }
  if (state_out) {
    state_out[state] = aa;
    state_out[state + channels] = bb;
    state_out[state + 2 * channels] = pp;
  }
}

// scaled_grad and bonus_offset: [B, T, C] fp32 scratch carrying s_t = gy_t·e^{q_t}/D_t and r_t = u + k_t - q_t
// from the forward sweep to the reverse sweep (the names of cpu::wkv_backward).
template <typename T>
__global__ void backward_kernel(int64_t batch, int64_t time, int64_t channels, const float* w, const T* u,
                                const T* k, const T* v, const T* y, const T* grad_y, const float* state_in,
                                const float* grad_state_out, float* scaled_grad, float* bonus_offset, float* gw,
                                float* gu, T* gk, T* gv, float* grad_state_in) {
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= batch * channels) return;
  const int64_t b = index / channels, c = index % channels;
  const float ww = w[c], uu = load(u, c);
  const int64_t state = b * 3 * channels + c;
  const int64_t first = b * time * channels + c;
  float aa = state_in ? state_in[state] : 0.0f;
  float bb = state_in ? state_in[state + channels] : 0.0f;
  float pp = state_in ? state_in[state + 2 * channels] : kMinExponent;
  float da = 0.0f, db = 0.0f;  // ∂a/∂w, ∂b/∂w in the scale e^pp
  float sum_gw = 0.0f, sum_gu = 0.0f;
  // Forward sweep: recompute the state, accumulate gw and gu along the way.
  for (int64_t t = 0, i = first; t < time; ++t, i += channels) {
    const float kk = load(k, i), vv = load(v, i), yy = load(y, i);
    const float bonus = uu + kk;
    float q = fmaxf(pp, bonus);
    float e1 = expf(pp - q), e2 = expf(bonus - q);
    const float s = load(grad_y, i) / (e1 * bb + e2);
    sum_gw += (da - db * yy) * e1 * s;
    sum_gu += (vv - yy) * e2 * s;
    scaled_grad[i] = s;
    bonus_offset[i] = bonus - q;
    const float decayed = pp + ww;
    q = fmaxf(decayed, kk);
    e1 = expf(decayed - q);
    e2 = expf(kk - q);
    da = e1 * (aa + da);
    db = e1 * (bb + db);
    aa = e1 * aa + e2 * vv;
    bb = e1 * bb + e2;
    pp = q;
  }
  // The final state's gradient enters through a = aa·e^pp, b = bb·e^pp (scales cancel against da, db).
  float ra = 0.0f, rb = 0.0f, rp = kMinExponent;  // adjoints of (a, b) in the scale e^rp
  if (grad_state_out) {
    ra = grad_state_out[state];
    rb = grad_state_out[state + channels];
    rp = -pp;
    sum_gw += ra * da + rb * db;
  }
  gw[index] = sum_gw * ww;  // chain rule of w = -exp(time_decay)
  gu[index] = sum_gu;
  // Reverse sweep: the adjoints of a and b flow back through time (spec §2.4's P and Q).
  for (int64_t t = time - 1, i = first + (time - 1) * channels; t >= 0; --t, i -= channels) {
    const float kk = load(k, i), vv = load(v, i), yy = load(y, i);
    const float s = scaled_grad[i], rr = bonus_offset[i];
    float e1 = s * expf(rr);      // gy_t e^{u+k_t} / D_t
    float e2 = expf(kk + rp);     // e^{k_t} in the adjoints' scale
    store(gk, i, e1 * (vv - yy) + e2 * (ra * vv + rb));
    store(gv, i, e1 + e2 * ra);
    const float z = rr - uu - kk;  // -q_t: the log of 1/D_t's scale
    const float q = fmaxf(rp + ww, z);
    e1 = expf(rp + ww - q);
    e2 = s * expf(z - q);
    ra = e1 * ra + e2;
    rb = e1 * rb - e2 * yy;
    rp = q;
  }
  if (grad_state_in) {
    const float scale = expf(rp + state_in[state + 2 * channels]);
    const float g_aa = ra * scale, g_bb = rb * scale;
    grad_state_in[state] = g_aa;
    grad_state_in[state + channels] = g_bb;
    grad_state_in[state + 2 * channels] = state_in[state] * g_aa + state_in[state + channels] * g_bb;
  }
}

int blocks(int64_t batch, int64_t channels) {
  const int64_t count = ceil_div(batch * channels, kThreads);
  RWKV_CHECK(count <= kMaxGridX, "cuda wkv: batch x channels = ", batch * channels, " is too large");
  return static_cast<int>(count);
}

}  // namespace

void forward_v1(const WkvForwardArgs& a) {
  dispatch_io(a.io, [&](auto zero) {
    using T = decltype(zero);
    forward_kernel<T><<<blocks(a.batch, a.channels), kThreads, 0, stream()>>>(
        a.batch, a.time, a.channels, a.w, static_cast<const T*>(a.u), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), a.state_in, static_cast<T*>(a.y), a.state_out);
  });
  check_launch("cuda wkv forward (v1)");
}

void backward_v1(const WkvBackwardArgs& a) {
  const size_t elements = static_cast<size_t>(a.batch * a.time * a.channels);
  Scratch carried(2 * elements * sizeof(float));
  float* scaled_grad = carried.as<float>();
  float* bonus_offset = scaled_grad + elements;
  dispatch_io(a.io, [&](auto zero) {
    using T = decltype(zero);
    backward_kernel<T><<<blocks(a.batch, a.channels), kThreads, 0, stream()>>>(
        a.batch, a.time, a.channels, a.w, static_cast<const T*>(a.u), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), static_cast<const T*>(a.y), static_cast<const T*>(a.grad_y), a.state_in,
        a.grad_state_out, scaled_grad, bonus_offset, a.gw, a.gu, static_cast<T*>(a.gk), static_cast<T*>(a.gv),
        a.grad_state_in);
  });
  check_launch("cuda wkv backward (v1)");
}

}  // namespace rwkv::cuda_kernels::wkv_detail
