// Shared scaffolding of the kernel labs (labs/*.cu; see labs/README.md): random inputs, a comparison against the
// CPU reference, and a timer that flushes L2 before each repeat and reports the median. Each lab keeps its own
// CPU reference, its numbered kernel versions (naive to fast) and what the trainer uses, so the path to the fast
// version stays readable and re-runnable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

namespace lab {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "lab: %s: %s\n", what, cudaGetErrorString(status));
    std::exit(2);
  }
}

// True when a GPU is present; otherwise prints why the lab cannot run and the caller exits 0 (CI has no GPU).
inline bool have_gpu(const char* lab_name) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("%s: no CUDA device, nothing to run\n", lab_name);
    return false;
  }
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  std::printf("%s on %s\n", lab_name, properties.name);
  return true;
}

// ---- command line: "--name value" pairs of positive integers, each flag's default already in its variable.
struct IntFlag {
  const char* name;
  int64_t* value;
};
// Fills the flags from argv; on an unknown flag, a missing or non-positive value prints the usage and exits 2.
inline void parse_int_flags(int argc, char** argv, const char* program, std::initializer_list<IntFlag> flags) {
  auto usage = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\nusage: %s", program, why.c_str(), program);
    for (const IntFlag& flag : flags) {
      std::fprintf(stderr, " [%s %lld]", flag.name, static_cast<long long>(*flag.value));
    }
    std::fprintf(stderr, "\n");
    std::exit(2);
  };
  for (int i = 1; i < argc; i += 2) {
    const IntFlag* match = nullptr;
    for (const IntFlag& flag : flags) {
      if (argv[i] == std::string(flag.name)) match = &flag;
    }
    if (match == nullptr) usage(std::string("unknown flag '") + argv[i] + "'");
    if (i + 1 >= argc) usage(std::string(argv[i]) + " needs a value");
    char* end = nullptr;
    const long long value = std::strtoll(argv[i + 1], &end, 10);
    if (*end != '\0' || value < 1) {
      usage(std::string(argv[i]) + " must be a positive integer, got '" + argv[i + 1] + "'");
    }
    *match->value = value;
  }
}

// A lab's main after its flags: exit 0 without a GPU (printing why), else the checks' verdict (1 when one
// failed), 2 when something threw.
inline int run_lab(const char* program, const std::function<bool()>& body) {
  if (!have_gpu(program)) return 0;
  try {
    const bool ok = body();
    std::printf("\n%s: %s\n", program, ok ? "all checks passed" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", program, error.what());
    return 2;
  }
}

// Uniform values in [lo, hi), seeded: never all-zero.
inline std::vector<float> random_vector(size_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(n);
  for (float& v : values) v = dist(rng);
  return values;
}

inline std::vector<float> round_to_bf16(std::vector<float> values) {
  for (float& v : values) v = __bfloat162float(__float2bfloat16(v));
  return values;
}

// A device buffer of T (float or __nv_bfloat16) filled from / read back as floats.
template <typename T>
struct Buffer {
  T* data = nullptr;
  size_t n = 0;
  explicit Buffer(size_t count) : n(count) {
    check(cudaMalloc(&data, std::max<size_t>(count, 1) * sizeof(T)), "cudaMalloc");
  }
  explicit Buffer(const std::vector<float>& values) : Buffer(values.size()) { upload(values); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cudaFree(data); }
  void upload(const std::vector<float>& values) {
    std::vector<T> host(values.size());
    for (size_t i = 0; i < values.size(); ++i) host[i] = static_cast<T>(values[i]);
    check(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<float> download() const {
    std::vector<T> host(n);
    check(cudaMemcpy(host.data(), data, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(host[i]);
    return values;
  }
  size_t bytes() const { return n * sizeof(T); }
};

// Largest |got - want| / (atol + rtol * |want|); prints and returns false when it exceeds 1.
inline bool compare(const char* what, const std::vector<float>& got, const std::vector<float>& want, double atol,
                    double rtol) {
  double worst = 0, worst_abs = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double ratio = diff / (atol + rtol * std::fabs(want[i]));
    if (!(ratio <= worst)) {
      worst = std::isnan(ratio) ? INFINITY : ratio;
      worst_abs = diff;
      at = i;
    }
  }
  const bool ok = got.size() == want.size() && worst <= 1.0;
  std::printf("  check %-28s %s  max |diff| %.3g at %zu (%.2f of the tolerance)\n", what, ok ? "ok  " : "FAIL",
              worst_abs, at, worst);
  return ok;
}

// The project's tolerance form: max |got - want| <= tolerance * max |want| over the tensor.
inline bool close_to_scale(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                           double tolerance) {
  double scale = 0;
  for (const float x : want) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  return compare(what.c_str(), got, want, tolerance * (scale > 0 ? scale : 1.0), 0.0);
}

// Two runs of a kernel gave the same bits (determinism).
inline bool same_bits(const std::string& what, const std::vector<float>& first, const std::vector<float>& second) {
  const bool same = first.size() == second.size() &&
                    std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0;
  std::printf("  check %-28s %s  two runs %s\n", what.c_str(), same ? "ok  " : "FAIL",
              same ? "bit-identical" : "differ");
  return same;
}

// Median and minimum milliseconds of `repeats` runs of `launch` (after `warmup`), each timed with CUDA events
// and preceded by a write of twice the L2 size, so every repeat reads its inputs from memory.
struct Timing {
  double median_ms, min_ms;
};
inline Timing time_kernel(const std::function<void()>& launch, int repeats = 20, int warmup = 3) {
  int device = 0, l2_bytes = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "L2 size");
  void* flush = nullptr;
  const size_t flush_bytes = 2 * static_cast<size_t>(l2_bytes) + (1 << 20);
  check(cudaMalloc(&flush, flush_bytes), "cudaMalloc (L2 flush)");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < warmup; ++i) launch();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    check(cudaMemset(flush, i & 0xff, flush_bytes), "L2 flush");
    check(cudaEventRecord(start), "cudaEventRecord");
    launch();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  check(cudaGetLastError(), "kernel launch");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(flush);
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

// One line of a lab's table: the version, its time, and its bandwidth against the memory floor (`bytes` moved
// once at `peak_gb_per_s`; 3000 GB/s is the H100's measured device-to-device copy rate).
inline void report(const std::string& version, const Timing& t, double bytes, double peak_gb_per_s = 3000.0) {
  const double floor_ms = bytes / (peak_gb_per_s * 1e9) * 1e3;
  std::printf("  %-34s median %8.4f ms  min %8.4f ms  %7.1f GB/s  %5.2fx the floor (%.4f ms)\n", version.c_str(),
              t.median_ms, t.min_ms, bytes / (t.median_ms * 1e-3) / 1e9, t.median_ms / floor_ms, floor_ms);
}

}  // namespace lab
