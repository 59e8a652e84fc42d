// Kernel lab: the WKV operator of spec §1.5 (forward) and §2.4 (backward) over [B, T, C], zero initial state.
//   reference            double precision on the CPU, the stable running-max recurrence of the spec
//   lab v1               the official RWKV-LM layout written here from the spec: one thread per (b, c), serial
//                        over T, the state in registers; the backward keeps its two per-step scalars in
//                        per-thread arrays of a compile-time T_MAX (local memory), as the official kernel does
//   production v1        cuda_kernels::wkv_forward / wkv_backward with WkvVersion::v1_serial
//   production v2        the same with WkvVersion::v2_chunked (chunked scan, parallel over time)
// each in fp32 and bf16 I/O. Checks: every version against the reference (max |diff| / max |reference| per
// tensor: y 1e-5 and the fp32 gradients 5e-5, the tolerances of tests/kernels/cuda_wkv_test.cpp; bf16 I/O 5e-3
// against the reference on the bf16-rounded inputs) and determinism (two runs bit-identical). Timing: forward
// and forward+backward against the memory floor (k, v read and y written once; the backward reads k, v, y, gy
// and writes gk, gv once). Usage: lab_wkv [--B 16] [--T 1024] [--C 768] [--repeats 20]
#include <cstring>
#include <exception>
#include <type_traits>

#include "kernels/cuda/kernels.h"
#include "labs/lab.cuh"

namespace {

namespace ck = rwkv::cuda_kernels;

struct Sizes {
  int64_t batch, time, channels;
  int64_t elements() const { return batch * time * channels; }
};

// ---- flags: --name value pairs, each known name with an integer default.
struct Flags {
  int64_t batch = 16, time = 1024, channels = 768, repeats = 20;
};

// ---- CPU reference in double (spec §1.5 forward, §2.4 backward). Loops run time-outer, channel-inner so that
// memory is walked contiguously; the state of every channel of one batch element lives in vectors of C.
constexpr double kMinExponent = -1e38;  // the spec's finite "minus infinity"

std::vector<float> reference_forward(const Sizes& s, const std::vector<float>& w, const std::vector<float>& u,
                                     const std::vector<float>& k, const std::vector<float>& v) {
  const int64_t C = s.channels;
  std::vector<float> y(static_cast<size_t>(s.elements()));
  std::vector<double> aa(C), bb(C), pp(C);
  for (int64_t b = 0; b < s.batch; ++b) {
    std::fill(aa.begin(), aa.end(), 0.0);
    std::fill(bb.begin(), bb.end(), 0.0);
    std::fill(pp.begin(), pp.end(), kMinExponent);
    for (int64_t t = 0; t < s.time; ++t) {
      const int64_t row = (b * s.time + t) * C;
      for (int64_t c = 0; c < C; ++c) {
        const double kk = k[row + c], vv = v[row + c], bonus = static_cast<double>(u[c]) + kk;
        double q = std::max(pp[c], bonus);
        double e1 = std::exp(pp[c] - q), e2 = std::exp(bonus - q);
        y[row + c] = static_cast<float>((e1 * aa[c] + e2 * vv) / (e1 * bb[c] + e2));
        const double decayed = pp[c] + w[c];
        q = std::max(decayed, kk);
        e1 = std::exp(decayed - q);
        e2 = std::exp(kk - q);
        aa[c] = e1 * aa[c] + e2 * vv;
        bb[c] = e1 * bb[c] + e2;
        pp[c] = q;
      }
    }
  }
  return y;
}

struct Gradients {
  std::vector<float> gw, gu, gk, gv;  // gw, gu per batch element [B, C]; gw already multiplied by w
};

// The backward from the y it is given (the kernels read the saved forward output, they do not recompute it).
Gradients reference_backward(const Sizes& s, const std::vector<float>& w, const std::vector<float>& u,
                             const std::vector<float>& k, const std::vector<float>& v, const std::vector<float>& y,
                             const std::vector<float>& gy) {
  const int64_t C = s.channels, T = s.time;
  const auto per_batch = static_cast<size_t>(s.batch * C), n = static_cast<size_t>(s.elements());
  Gradients g{std::vector<float>(per_batch), std::vector<float>(per_batch), std::vector<float>(n),
              std::vector<float>(n)};
  std::vector<double> aa(C), bb(C), pp(C), da(C), db(C), sum_gw(C), sum_gu(C);
  std::vector<double> scaled_grad(static_cast<size_t>(T * C)), bonus_offset(static_cast<size_t>(T * C));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      aa[c] = bb[c] = da[c] = db[c] = sum_gw[c] = sum_gu[c] = 0.0;
      pp[c] = kMinExponent;
    }
    // Forward sweep: the state, its derivative in w (da, db, in the state's scale e^pp), gw and gu.
    for (int64_t t = 0; t < T; ++t) {
      const int64_t row = (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) {
        const double kk = k[row + c], vv = v[row + c], yy = y[row + c], bonus = static_cast<double>(u[c]) + kk;
        double q = std::max(pp[c], bonus);
        double e1 = std::exp(pp[c] - q), e2 = std::exp(bonus - q);
        const double scaled = gy[row + c] / (e1 * bb[c] + e2);  // gy_t e^q / D_t
        sum_gw[c] += (da[c] - db[c] * yy) * e1 * scaled;
        sum_gu[c] += (vv - yy) * e2 * scaled;
        scaled_grad[t * C + c] = scaled;
        bonus_offset[t * C + c] = bonus - q;
        const double decayed = pp[c] + w[c];
        q = std::max(decayed, kk);
        e1 = std::exp(decayed - q);
        e2 = std::exp(kk - q);
        da[c] = e1 * (aa[c] + da[c]);
        db[c] = e1 * (bb[c] + db[c]);
        aa[c] = e1 * aa[c] + e2 * vv;
        bb[c] = e1 * bb[c] + e2;
        pp[c] = q;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      g.gw[b * C + c] = static_cast<float>(sum_gw[c] * w[c]);
      g.gu[b * C + c] = static_cast<float>(sum_gu[c]);
    }
    // Reverse sweep: the adjoints of the state (spec's P and Q) in the scale e^rp, reusing aa, bb, pp.
    for (int64_t c = 0; c < C; ++c) {
      aa[c] = bb[c] = 0.0;
      pp[c] = kMinExponent;
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t row = (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) {
        const double kk = k[row + c], vv = v[row + c], yy = y[row + c];
        const double scaled = scaled_grad[t * C + c], offset = bonus_offset[t * C + c];
        double e1 = scaled * std::exp(offset);  // gy_t e^{u+k_t} / D_t
        double e2 = std::exp(kk + pp[c]);
        g.gk[row + c] = static_cast<float>(e1 * (vv - yy) + e2 * (aa[c] * vv + bb[c]));
        g.gv[row + c] = static_cast<float>(e1 + e2 * aa[c]);
        const double minus_q = offset - u[c] - kk;
        const double q = std::max(pp[c] + w[c], minus_q);
        e1 = std::exp(pp[c] + w[c] - q);
        e2 = scaled * std::exp(minus_q - q);
        aa[c] = e1 * aa[c] + e2;
        bb[c] = e1 * bb[c] - e2 * yy;
        pp[c] = q;
      }
    }
  }
  return g;
}

// ---- lab v1: the official layout (spec §2.2-2.4), one thread per (b, c), 32 threads per block.
__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ inline T from_float(float x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return __float2bfloat16_rn(x);
  }
}

constexpr int kLabThreads = 32;
constexpr float kMinExponentF = -1e38f;

template <typename T>
__global__ void lab_v1_forward(int64_t batch, int64_t time, int64_t channels, const float* w, const T* u, const T* k,
                               const T* v, T* y) {
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= batch * channels) return;
  const int64_t b = index / channels, c = index % channels;
  const float ww = w[c], uu = to_float(u[c]);
  const T* kp = k + b * time * channels + c;
  const T* vp = v + b * time * channels + c;
  T* yp = y + b * time * channels + c;
  float aa = 0.0f, bb = 0.0f, pp = kMinExponentF;
  for (int64_t t = 0; t < time; ++t) {
    const float kk = to_float(kp[t * channels]), vv = to_float(vp[t * channels]);
    float q = fmaxf(pp, uu + kk);
    float e1 = expf(pp - q), e2 = expf(uu + kk - q);
    yp[t * channels] = from_float<T>((e1 * aa + e2 * vv) / (e1 * bb + e2));
    q = fmaxf(pp + ww, kk);
    e1 = expf(pp + ww - q);
    e2 = expf(kk - q);
    aa = e1 * aa + e2 * vv;
    bb = e1 * bb + e2;
    pp = q;
  }
}

// kMaxTime bounds the per-thread arrays, like the official -DTmax (the lab picks the smallest that fits T).
template <typename T, int kMaxTime>
__global__ void lab_v1_backward(int64_t batch, int64_t time, int64_t channels, const float* w, const T* u,
                                const T* k, const T* v, const T* y, const T* gy, float* gw, float* gu, T* gk, T* gv) {
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= batch * channels) return;
  const int64_t b = index / channels, c = index % channels;
  const float ww = w[c], uu = to_float(u[c]);
  const int64_t first = b * time * channels + c;
  float scaled_grad[kMaxTime], bonus_offset[kMaxTime];
  float aa = 0.0f, bb = 0.0f, pp = kMinExponentF, da = 0.0f, db = 0.0f, sum_gw = 0.0f, sum_gu = 0.0f;
  for (int64_t t = 0; t < time; ++t) {
    const int64_t i = first + t * channels;
    const float kk = to_float(k[i]), vv = to_float(v[i]), yy = to_float(y[i]);
    float q = fmaxf(pp, uu + kk);
    float e1 = expf(pp - q), e2 = expf(uu + kk - q);
    const float scaled = to_float(gy[i]) / (e1 * bb + e2);
    sum_gw += (da - db * yy) * e1 * scaled;
    sum_gu += (vv - yy) * e2 * scaled;
    scaled_grad[t] = scaled;
    bonus_offset[t] = uu + kk - q;
    q = fmaxf(pp + ww, kk);
    e1 = expf(pp + ww - q);
    e2 = expf(kk - q);
    da = e1 * (aa + da);
    db = e1 * (bb + db);
    aa = e1 * aa + e2 * vv;
    bb = e1 * bb + e2;
    pp = q;
  }
  gw[index] = sum_gw * ww;
  gu[index] = sum_gu;
  // Reverse sweep: the adjoints of the state in the scale e^pp, reusing aa, bb, pp.
  aa = 0.0f;
  bb = 0.0f;
  pp = kMinExponentF;
  for (int64_t t = time - 1; t >= 0; --t) {
    const int64_t i = first + t * channels;
    const float kk = to_float(k[i]), vv = to_float(v[i]), yy = to_float(y[i]);
    const float scaled = scaled_grad[t], offset = bonus_offset[t];
    float e1 = scaled * expf(offset);
    float e2 = expf(kk + pp);
    gk[i] = from_float<T>(e1 * (vv - yy) + e2 * (aa * vv + bb));
    gv[i] = from_float<T>(e1 + e2 * aa);
    const float minus_q = offset - uu - kk;
    const float q = fmaxf(pp + ww, minus_q);
    e1 = expf(pp + ww - q);
    e2 = scaled * expf(minus_q - q);
    aa = e1 * aa + e2;
    bb = e1 * bb - e2 * yy;
    pp = q;
  }
}

constexpr int64_t kLabMaxTime = 4096;  // lab v1 is skipped above this (its local arrays would not be reasonable)

// ---- the versions, over device buffers of one I/O type.
enum class Version { lab_v1, production_v1, production_v2 };
const char* version_name(Version version) {
  switch (version) {
    case Version::lab_v1: return "lab v1 (official layout)";
    case Version::production_v1: return "production v1 (serial)";
    case Version::production_v2: return "production v2 (chunked)";
  }
  return "?";
}

template <typename T>
struct DeviceData {
  lab::Buffer<float> w;
  lab::Buffer<T> u, k, v, gy, y, saved_y, gk, gv;
  lab::Buffer<float> gw, gu;
};

template <typename T>
void forward(Version version, const Sizes& s, DeviceData<T>& d) {
  if (version == Version::lab_v1) {
    const auto blocks = static_cast<unsigned>((s.batch * s.channels + kLabThreads - 1) / kLabThreads);
    lab_v1_forward<T><<<blocks, kLabThreads>>>(s.batch, s.time, s.channels, d.w.data, d.u.data, d.k.data, d.v.data,
                                               d.y.data);
    lab::check(cudaGetLastError(), "lab v1 forward");
    return;
  }
  const ck::FloatIo io = std::is_same_v<T, float> ? ck::FloatIo::f32 : ck::FloatIo::bf16;
  const ck::WkvForwardArgs args{.batch = s.batch, .time = s.time, .channels = s.channels, .io = io, .w = d.w.data,
                                .u = d.u.data, .k = d.k.data, .v = d.v.data, .state_in = nullptr, .y = d.y.data,
                                .state_out = nullptr};
  ck::wkv_forward(args, version == Version::production_v1 ? ck::WkvVersion::v1_serial : ck::WkvVersion::v2_chunked);
}

template <typename T>
void backward(Version version, const Sizes& s, DeviceData<T>& d, const T* y) {
  if (version == Version::lab_v1) {
    const auto blocks = static_cast<unsigned>((s.batch * s.channels + kLabThreads - 1) / kLabThreads);
    if (s.time <= 1024) {
      lab_v1_backward<T, 1024><<<blocks, kLabThreads>>>(s.batch, s.time, s.channels, d.w.data, d.u.data, d.k.data,
                                                        d.v.data, y, d.gy.data, d.gw.data, d.gu.data, d.gk.data,
                                                        d.gv.data);
    } else {
      lab_v1_backward<T, kLabMaxTime><<<blocks, kLabThreads>>>(s.batch, s.time, s.channels, d.w.data, d.u.data,
                                                               d.k.data, d.v.data, y, d.gy.data, d.gw.data,
                                                               d.gu.data, d.gk.data, d.gv.data);
    }
    lab::check(cudaGetLastError(), "lab v1 backward");
    return;
  }
  const ck::FloatIo io = std::is_same_v<T, float> ? ck::FloatIo::f32 : ck::FloatIo::bf16;
  const ck::WkvBackwardArgs args{.batch = s.batch, .time = s.time, .channels = s.channels, .io = io, .w = d.w.data,
                                 .u = d.u.data, .k = d.k.data, .v = d.v.data, .y = y, .grad_y = d.gy.data,
                                 .state_in = nullptr, .grad_state_out = nullptr, .gw = d.gw.data, .gu = d.gu.data,
                                 .gk = d.gk.data, .gv = d.gv.data, .grad_state_in = nullptr};
  ck::wkv_backward(args, version == Version::production_v1 ? ck::WkvVersion::v1_serial : ck::WkvVersion::v2_chunked);
}

// ---- checks
struct Inputs {
  std::vector<float> w, u, k, v, gy;  // w = -exp(time_decay), fp32 in every I/O mode
};

template <typename T>
bool run_io(const Sizes& s, const Inputs& raw, int repeats) {
  constexpr bool bf16 = !std::is_same_v<T, float>;
  const char* io_name = bf16 ? "bf16" : "fp32";
  const auto io_round = [&](const std::vector<float>& x) { return bf16 ? lab::round_to_bf16(x) : x; };
  // The reference sees exactly the values the kernels see.
  const Inputs in{raw.w, io_round(raw.u), io_round(raw.k), io_round(raw.v), io_round(raw.gy)};
  std::printf("\n%s I/O: reference in double on the CPU...\n", io_name);
  const std::vector<float> want_y = reference_forward(s, in.w, in.u, in.k, in.v);
  // Every backward starts from the same saved y (the reference's, in the I/O type), so its check is independent
  // of the forward's rounding.
  const std::vector<float> saved_y = io_round(want_y);
  const Gradients want = reference_backward(s, in.w, in.u, in.k, in.v, saved_y, in.gy);

  const auto n = static_cast<size_t>(s.elements()), per_batch = static_cast<size_t>(s.batch * s.channels);
  DeviceData<T> d{lab::Buffer<float>(in.w), lab::Buffer<T>(in.u), lab::Buffer<T>(in.k), lab::Buffer<T>(in.v),
                  lab::Buffer<T>(in.gy),    lab::Buffer<T>(n),     lab::Buffer<T>(saved_y), lab::Buffer<T>(n),
                  lab::Buffer<T>(n),        lab::Buffer<float>(per_batch), lab::Buffer<float>(per_batch)};
  const double y_tolerance = bf16 ? 5e-3 : 1e-5, io_tolerance = bf16 ? 5e-3 : 5e-5, fp32_tolerance = 5e-5;
  const Version versions[] = {Version::lab_v1, Version::production_v1, Version::production_v2};
  bool ok = true;
  for (const Version version : versions) {
    if (version == Version::lab_v1 && s.time > kLabMaxTime) {
      std::printf("%s %s: skipped (T > %lld)\n", version_name(version), io_name, static_cast<long long>(kLabMaxTime));
      continue;
    }
    std::printf("%s %s:\n", version_name(version), io_name);
    forward(version, s, d);
    const std::vector<float> y = d.y.download();
    forward(version, s, d);
    ok &= lab::close_to_scale("y", y, want_y, y_tolerance);
    ok &= lab::same_bits("y", y, d.y.download());
    backward(version, s, d, d.saved_y.data);
    const Gradients got{d.gw.download(), d.gu.download(), d.gk.download(), d.gv.download()};
    backward(version, s, d, d.saved_y.data);
    ok &= lab::close_to_scale("gk", got.gk, want.gk, io_tolerance);
    ok &= lab::close_to_scale("gv", got.gv, want.gv, io_tolerance);
    ok &= lab::close_to_scale("gw (per batch)", got.gw, want.gw, fp32_tolerance);
    ok &= lab::close_to_scale("gu (per batch)", got.gu, want.gu, fp32_tolerance);
    ok &= lab::same_bits("gk", got.gk, d.gk.download());
    ok &= lab::same_bits("gv", got.gv, d.gv.download());
    ok &= lab::same_bits("gw", got.gw, d.gw.download());
    ok &= lab::same_bits("gu", got.gu, d.gu.download());
  }

  // Floor: the forward reads k, v and writes y; the backward reads k, v, y, gy and writes gk, gv (each once);
  // the per-channel w, u and the [B, C] gw, gu are counted too.
  const double io_bytes = sizeof(T), small = static_cast<double>(s.channels) * 8;
  const double forward_bytes = 3 * io_bytes * static_cast<double>(n) + small;
  const double backward_bytes = 6 * io_bytes * static_cast<double>(n) + small + 8.0 * static_cast<double>(per_batch);
  std::printf("\ntiming %s I/O, B=%lld T=%lld C=%lld (L2 flushed, median of %d)%s:\n", io_name,
              static_cast<long long>(s.batch), static_cast<long long>(s.time), static_cast<long long>(s.channels),
              repeats, bf16 ? "; target for forward+backward: 0.12 ms" : "");
  for (const Version version : versions) {
    if (version == Version::lab_v1 && s.time > kLabMaxTime) continue;
    const std::string name = std::string(version_name(version)) + " ";
    lab::report(name + "fwd", lab::time_kernel([&] { forward(version, s, d); }, repeats), forward_bytes);
    lab::report(name + "fwd+bwd", lab::time_kernel([&] {
                  forward(version, s, d);
                  backward(version, s, d, d.y.data);
                }, repeats),
                forward_bytes + backward_bytes);
  }
  return ok;
}

bool run(const Flags& flags) {
  const Sizes s{flags.batch, flags.time, flags.channels};
  const auto n = static_cast<size_t>(s.elements()), C = static_cast<size_t>(s.channels);
  // The ranges of tests/kernels/cuda_wkv_test.cpp: time_decay in [-3, 1) (w in (-2.72, -0.05]), u in [-1, 1),
  // k in [-2, 2), v and gy in [-1, 1).
  Inputs raw{lab::random_vector(C, -3.0f, 1.0f, 1), lab::random_vector(C, -1.0f, 1.0f, 2),
             lab::random_vector(n, -2.0f, 2.0f, 3), lab::random_vector(n, -1.0f, 1.0f, 4),
             lab::random_vector(n, -1.0f, 1.0f, 5)};
  for (float& x : raw.w) x = -std::exp(x);
  bool ok = run_io<float>(s, raw, static_cast<int>(flags.repeats));
  ok &= run_io<__nv_bfloat16>(s, raw, static_cast<int>(flags.repeats));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  lab::parse_int_flags(argc, argv, "lab_wkv", {{"--B", &flags.batch}, {"--T", &flags.time}, {"--C", &flags.channels},
                                               {"--repeats", &flags.repeats}});
  return lab::run_lab("lab_wkv", [&] { return run(flags); });
}
