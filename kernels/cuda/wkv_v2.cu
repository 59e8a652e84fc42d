// WKV v2: parallel over time as well as over (b, c). A block owns 32 channels of one batch element and cuts time
// into S segments, one per thread row (threadIdx.y). The state (a, b) — and its derivative with respect to w —
// evolves linearly, so each segment's effect can be summarised from the zero state, the summaries chained by a
// short serial scan (S steps, shared memory) into each segment's true initial state, and every segment replayed
// from there. The backward does the same in both directions: forward summaries -> initial states -> the per-step
// scalars of v1 (fp32 global scratch) with gw, gu partials; reverse summaries -> incoming adjoints -> gk, gv.
// All states use the running-max form, so nothing overflows. gw and gu partials are added in segment order.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/wkv_internal.cuh"

namespace rwkv::cuda_kernels::wkv_detail {

namespace {

constexpr int kChannels = 32;  // threadIdx.x: consecutive channels, so loads at a given t are coalesced
constexpr int kMaxSegments = 16;
constexpr int64_t kMinSegmentLength = 16;

struct Plan {
  int segments;
  int64_t length;  // steps per segment (the last ones may be shorter or empty)
};

Plan plan_for(int64_t time) {
  const int64_t segments = ceil_div(time, kMinSegmentLength) < kMaxSegments ? ceil_div(time, kMinSegmentLength)
                                                                             : kMaxSegments;
  return {static_cast<int>(segments), ceil_div(time, segments)};
}

// (aa, bb, pp) with a = aa·e^pp, b = bb·e^pp; da, db are ∂a/∂w, ∂b/∂w in the same scale.
struct State {
  float aa, bb, pp, da, db;
};

__device__ inline State zero_state() { return {0.0f, 0.0f, kMinExponent, 0.0f, 0.0f}; }

__device__ inline int64_t segment_begin(const Plan& plan, int segment, int64_t time) {
  const int64_t begin = segment * plan.length;
  return begin < time ? begin : time;
}
__device__ inline int64_t segment_end(const Plan& plan, int segment, int64_t time) {
  const int64_t end = (segment + 1) * plan.length;
  return end < time ? end : time;
}

// One step of the recurrence (spec §1.5), carrying the w-derivatives along (as in v1's backward).
__device__ inline void advance(State& s, float w, float k, float v) {
  const float decayed = s.pp + w;
  const float q = fmaxf(decayed, k);
  const float e1 = expf(decayed - q), e2 = expf(k - q);
  s.da = e1 * (s.aa + s.da);
  s.db = e1 * (s.bb + s.db);
  s.aa = e1 * s.aa + e2 * v;
  s.bb = e1 * s.bb + e2;
  s.pp = q;
}

// The state after a segment of n steps that starts from `before`, given the segment's summary from the zero
// state: before decays by e^{n·w} (its w-derivative gains n·before), then the two add.
__device__ inline State chain(const State& before, float w, int64_t n, const State& segment) {
  const float decayed = before.pp + static_cast<float>(n) * w;
  const float q = fmaxf(decayed, segment.pp);
  const float f1 = expf(decayed - q), f2 = expf(segment.pp - q);
  const float steps = static_cast<float>(n);
  return {f1 * before.aa + f2 * segment.aa, f1 * before.bb + f2 * segment.bb, q,
          f1 * (before.da + steps * before.aa) + f2 * segment.da, f1 * (before.db + steps * before.bb) + f2 * segment.db};
}

// Adjoints (ra, rb) of (a, b) in the scale e^rp, flowing backwards in time.
struct Adjoint {
  float ra, rb, rp;
};

// One reverse step at t (v1's reverse sweep): the adjoint decays by e^w and gains step t's 1/D_t terms.
__device__ inline void retreat(Adjoint& r, float w, float u, float k, float y, float s, float rr) {
  const float z = rr - u - k;
  const float q = fmaxf(r.rp + w, z);
  const float e1 = expf(r.rp + w - q), e2 = s * expf(z - q);
  r.ra = e1 * r.ra + e2;
  r.rb = e1 * r.rb - e2 * y;
  r.rp = q;
}

__device__ inline Adjoint chain_back(const Adjoint& after, float w, int64_t n, const Adjoint& segment) {
  const float decayed = after.rp + static_cast<float>(n) * w;
  const float q = fmaxf(decayed, segment.rp);
  const float f1 = expf(decayed - q), f2 = expf(segment.rp - q);
  return {f1 * after.ra + f2 * segment.ra, f1 * after.rb + f2 * segment.rb, q};
}

template <typename T>
__global__ void __launch_bounds__(kChannels* kMaxSegments)
    forward_kernel(int64_t batch, int64_t time, int64_t channels, Plan plan, const float* w, const T* u, const T* k,
                   const T* v, const float* state_in, T* y, float* state_out) {
  __shared__ State states[kMaxSegments][kChannels];  // segment summaries, then segment initial states
  const int lane = threadIdx.x, segment = threadIdx.y;
  const int64_t c = blockIdx.x * static_cast<int64_t>(kChannels) + lane;
  const bool active = c < channels;
  const int64_t begin = segment_begin(plan, segment, time), end = segment_end(plan, segment, time);
  const float ww = active ? w[c] : 0.0f, uu = active ? load(u, c) : 0.0f;
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
    const int64_t base = b * time * channels + c;
    // 1. Each segment's summary from the zero state.
    State s = zero_state();
    if (active) {
      for (int64_t t = begin; t < end; ++t) advance(s, ww, load(k, base + t * channels), load(v, base + t * channels));
    }
    states[segment][lane] = s;
    __syncthreads();
    // 2. Chain the summaries: each segment's initial state, and the final state.
    if (segment == 0 && active) {
      const int64_t at = b * 3 * channels + c;
      State running = state_in ? State{state_in[at], state_in[at + channels], state_in[at + 2 * channels], 0.0f, 0.0f}
                               : zero_state();
      for (int other = 0; other < plan.segments; ++other) {
        const State summary = states[other][lane];
        states[other][lane] = running;
        running = chain(running, ww, segment_end(plan, other, time) - segment_begin(plan, other, time), summary);
      }
      if (state_out) {
        state_out[at] = running.aa;
        state_out[at + channels] = running.bb;
        state_out[at + 2 * channels] = running.pp;
      }
    }
    __syncthreads();
    // 3. Replay each segment from its initial state, writing y.
    if (active) {
      s = states[segment][lane];
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i = base + t * channels;
        const float kk = load(k, i), vv = load(v, i);
        const float bonus = uu + kk;
        const float q = fmaxf(s.pp, bonus);
        const float e1 = expf(s.pp - q), e2 = expf(bonus - q);
        store(y, i, (e1 * s.aa + e2 * vv) / (e1 * s.bb + e2));
        advance(s, ww, kk, vv);
      }
    }
    __syncthreads();  // `states` is reused by the next batch element
  }
}

template <typename T>
__global__ void __launch_bounds__(kChannels* kMaxSegments)
    backward_kernel(int64_t batch, int64_t time, int64_t channels, Plan plan, const float* w, const T* u, const T* k,
                    const T* v, const T* y, const T* grad_y, const float* state_in, const float* grad_state_out,
                    float* scaled_grad, float* bonus_offset, float* gw, float* gu, T* gk, T* gv,
                    float* grad_state_in) {
  __shared__ State states[kMaxSegments][kChannels];
  __shared__ Adjoint adjoints[kMaxSegments][kChannels];
  __shared__ float partial_gw[kMaxSegments][kChannels], partial_gu[kMaxSegments][kChannels];
  __shared__ Adjoint final_adjoint[kChannels];
  __shared__ float final_gw[kChannels];
  const int lane = threadIdx.x, segment = threadIdx.y;
  const int64_t c = blockIdx.x * static_cast<int64_t>(kChannels) + lane;
  const bool active = c < channels;
  const int64_t begin = segment_begin(plan, segment, time), end = segment_end(plan, segment, time);
  const float ww = active ? w[c] : 0.0f, uu = active ? load(u, c) : 0.0f;
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
    const int64_t base = b * time * channels + c;
    const int64_t at = b * 3 * channels + c;
    // 1. Forward summaries from the zero state.
    State s = zero_state();
    if (active) {
      for (int64_t t = begin; t < end; ++t) advance(s, ww, load(k, base + t * channels), load(v, base + t * channels));
    }
    states[segment][lane] = s;
    __syncthreads();
    // 2. Initial state of every segment; the final state's adjoint (through a and b) and its gw term.
    if (segment == 0 && active) {
      State running = state_in ? State{state_in[at], state_in[at + channels], state_in[at + 2 * channels], 0.0f, 0.0f}
                               : zero_state();
      for (int other = 0; other < plan.segments; ++other) {
        const State summary = states[other][lane];
        states[other][lane] = running;
        running = chain(running, ww, segment_end(plan, other, time) - segment_begin(plan, other, time), summary);
      }
      if (grad_state_out) {
        const float ra = grad_state_out[at], rb = grad_state_out[at + channels];
        final_adjoint[lane] = {ra, rb, -running.pp};
        final_gw[lane] = ra * running.da + rb * running.db;
      } else {
        final_adjoint[lane] = {0.0f, 0.0f, kMinExponent};
        final_gw[lane] = 0.0f;
      }
    }
    __syncthreads();
    // 3. Forward replay: the per-step scalars for the reverse sweeps, and this segment's gw, gu partials.
    float sum_gw = 0.0f, sum_gu = 0.0f;
    if (active) {
      s = states[segment][lane];
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i = base + t * channels;
        const float kk = load(k, i), vv = load(v, i), yy = load(y, i);
        const float bonus = uu + kk;
        const float q = fmaxf(s.pp, bonus);
        const float e1 = expf(s.pp - q), e2 = expf(bonus - q);
        const float scaled = load(grad_y, i) / (e1 * s.bb + e2);
        sum_gw += (s.da - s.db * yy) * e1 * scaled;
        sum_gu += (vv - yy) * e2 * scaled;
        scaled_grad[i] = scaled;
        bonus_offset[i] = bonus - q;
        advance(s, ww, kk, vv);
      }
    }
    partial_gw[segment][lane] = sum_gw;
    partial_gu[segment][lane] = sum_gu;
    // 4. Reverse summaries: each segment's adjoint at its start, from a zero adjoint at its end.
    Adjoint r{0.0f, 0.0f, kMinExponent};
    if (active) {
      for (int64_t t = end - 1; t >= begin; --t) {
        const int64_t i = base + t * channels;
        retreat(r, ww, uu, load(k, i), load(y, i), scaled_grad[i], bonus_offset[i]);
      }
    }
    adjoints[segment][lane] = r;
    __syncthreads();
    // 5. Chain backwards: the adjoint arriving at every segment's end; the initial state's gradient; gw, gu.
    if (segment == 0 && active) {
      Adjoint running = final_adjoint[lane];
      for (int other = plan.segments - 1; other >= 0; --other) {
        const Adjoint summary = adjoints[other][lane];
        adjoints[other][lane] = running;
        running = chain_back(running, ww, segment_end(plan, other, time) - segment_begin(plan, other, time), summary);
      }
      if (grad_state_in) {
        const float scale = expf(running.rp + state_in[at + 2 * channels]);
        const float g_aa = running.ra * scale, g_bb = running.rb * scale;
        grad_state_in[at] = g_aa;
        grad_state_in[at + channels] = g_bb;
        grad_state_in[at + 2 * channels] = state_in[at] * g_aa + state_in[at + channels] * g_bb;
      }
      float total_gw = 0.0f, total_gu = 0.0f;
      for (int other = 0; other < plan.segments; ++other) {
        total_gw += partial_gw[other][lane];
        total_gu += partial_gu[other][lane];
      }
      gw[b * channels + c] = (total_gw + final_gw[lane]) * ww;  // chain rule of w = -exp(time_decay)
      gu[b * channels + c] = total_gu;
    }
    __syncthreads();
    // 6. Reverse replay from the true incoming adjoint: gk and gv.
    if (active) {
      r = adjoints[segment][lane];
      for (int64_t t = end - 1; t >= begin; --t) {
        const int64_t i = base + t * channels;
        const float kk = load(k, i), vv = load(v, i), yy = load(y, i);
        const float scaled = scaled_grad[i], rr = bonus_offset[i];
        const float e1 = scaled * expf(rr);
        const float e2 = expf(kk + r.rp);
        store(gk, i, e1 * (vv - yy) + e2 * (r.ra * vv + r.rb));
        store(gv, i, e1 + e2 * r.ra);
        retreat(r, ww, uu, kk, yy, scaled, rr);
      }
    }
    __syncthreads();  // shared arrays are reused by the next batch element
  }
}

dim3 grid_for(int64_t batch, int64_t channels) {
  return dim3(static_cast<unsigned>(ceil_div(channels, kChannels)),
              static_cast<unsigned>(batch < kMaxGridYZ ? batch : kMaxGridYZ));
}

}  // namespace

void forward_v2(const WkvForwardArgs& a) {
  const Plan plan = plan_for(a.time);
  dispatch_io(a.io, [&](auto zero) {
    using T = decltype(zero);
    forward_kernel<T><<<grid_for(a.batch, a.channels), dim3(kChannels, plan.segments), 0, stream()>>>(
        a.batch, a.time, a.channels, plan, a.w, static_cast<const T*>(a.u), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), a.state_in, static_cast<T*>(a.y), a.state_out);
  });
  check_launch("cuda wkv forward (v2)");
}

void backward_v2(const WkvBackwardArgs& a) {
  const Plan plan = plan_for(a.time);
  const size_t elements = static_cast<size_t>(a.batch * a.time * a.channels);
  Scratch carried(2 * elements * sizeof(float));
  float* scaled_grad = carried.as<float>();
  float* bonus_offset = scaled_grad + elements;
  dispatch_io(a.io, [&](auto zero) {
    using T = decltype(zero);
    backward_kernel<T><<<grid_for(a.batch, a.channels), dim3(kChannels, plan.segments), 0, stream()>>>(
        a.batch, a.time, a.channels, plan, a.w, static_cast<const T*>(a.u), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), static_cast<const T*>(a.y), static_cast<const T*>(a.grad_y), a.state_in,
        a.grad_state_out, scaled_grad, bonus_offset, a.gw, a.gu, static_cast<T*>(a.gk), static_cast<T*>(a.gv),
        a.grad_state_in);
  });
  check_launch("cuda wkv backward (v2)");
}

}  // namespace rwkv::cuda_kernels::wkv_detail
