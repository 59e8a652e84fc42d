// `rwkv bench wkv`: the WKV kernels' speed at a given (batch, time, channels). On a GPU: forward and
// forward+backward of each kernel version in fp32 and bf16 I/O, timed with CUDA events around each repeat, the
// L2 cache flushed before each, median of the repeats, and the achieved bandwidth against the memory floor (every
// tensor read or written once). Without a GPU it times the CPU implementation (fp32) instead and says so.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "train/cli/command.h"

namespace rwkv::cli {
namespace {

namespace po = boost::program_options;

struct Shape3 {
  int64_t batch, time, channels;
  int64_t elements() const { return batch * time * channels; }
};

// Bytes that must cross device memory at least once: forward reads k, v and writes y; the backward reads k, v,
// y, grad_y and writes gk, gv (plus the per-channel w, u and the per-batch gw, gu).
struct Floor {
  double forward_bytes, forward_backward_bytes;
};
Floor memory_floor(const Shape3& s, int64_t io_bytes) {
  const double big = static_cast<double>(s.elements() * io_bytes);
  const double small = static_cast<double>(s.channels * (4 + io_bytes) + 2 * s.batch * s.channels * 4);
  return {3 * big + small, 9 * big + 2 * small};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Timing {
  double median_ms, min_ms;
};

Timing repeat(int warmup, int repeats, const std::function<double()>& run_once) {
  for (int i = 0; i < warmup; ++i) run_once();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) times.push_back(run_once());
  return {median(times), *std::min_element(times.begin(), times.end())};
}

void print_row(const std::string& label, const std::string& pass, const Timing& t, double bytes, double bandwidth_gbs) {
  const double achieved = bytes / (t.median_ms * 1e-3) / 1e9;
  const double floor_ms = bytes / (bandwidth_gbs * 1e9) * 1e3;
  std::printf("%-10s %-17s %10.3f %10.3f %10.1f %10.1f %10.3f %9.1fx\n", label.c_str(), pass.c_str(), t.median_ms,
              t.min_ms, bytes / 1e6, achieved, floor_ms, t.median_ms / floor_ms);
}

void print_header(double bandwidth_gbs) {
  std::printf("%-10s %-17s %10s %10s %10s %10s %10s %10s\n", "kernel", "pass", "median ms", "min ms", "floor MB",
              "GB/s", "floor ms", "vs floor");
  std::printf("(floor ms: the floor bytes at %.0f GB/s)\n", bandwidth_gbs);
}

Tensor random_input(const Shape& shape, uint64_t seed, float low, float high) {
  Tensor t = Tensor::empty(shape);
  Generator generator(seed);
  generator.uniform_(t, low, high);
  return t;
}

struct Inputs {
  Tensor w, u, k, v, grad_y;  // fp32 on the CPU
};

Inputs make_inputs(const Shape3& s) {
  Inputs in;
  in.w = random_input({s.channels}, 1, -3, 1);
  std::vector<float> w = in.w.to_vector<float>();
  for (float& value : w) value = -std::exp(value);  // w = -exp(time_decay)
  in.w = Tensor::from_vector(w, {s.channels});
  in.u = random_input({s.channels}, 2, -1, 1);
  in.k = random_input({s.batch, s.time, s.channels}, 3, -2, 2);
  in.v = random_input({s.batch, s.time, s.channels}, 4, -1, 1);
  in.grad_y = random_input({s.batch, s.time, s.channels}, 5, -1, 1);
  return in;
}

void bench_gpu(const Shape3& s, const Inputs& in, const std::vector<std::string>& dtypes,
               const std::vector<std::string>& kernels, int warmup, int repeats, double bandwidth_gbs) {
  const Device gpu = Device::cuda(0);
  std::printf("WKV on %s (cuda:0): B=%lld T=%lld C=%lld, median of %d repeats after %d warm-up, L2 flushed before "
              "each\n",
              cuda::device_name(0).c_str(), static_cast<long long>(s.batch), static_cast<long long>(s.time),
              static_cast<long long>(s.channels), repeats, warmup);
  print_header(bandwidth_gbs);
  for (const std::string& dtype_name : dtypes) {
    const bool bf16 = dtype_name == "bf16";
    const DType dtype = bf16 ? DType::bf16 : DType::f32;
    const cuda_kernels::FloatIo io = bf16 ? cuda_kernels::FloatIo::bf16 : cuda_kernels::FloatIo::f32;
    const Tensor w = in.w.to(gpu), u = in.u.to(dtype).to(gpu), k = in.k.to(dtype).to(gpu), v = in.v.to(dtype).to(gpu);
    const Tensor grad_y = in.grad_y.to(dtype).to(gpu);
    Tensor y = Tensor::empty(k.shape(), dtype, gpu), gk = Tensor::empty(k.shape(), dtype, gpu);
    Tensor gv = Tensor::empty(k.shape(), dtype, gpu);
    Tensor gw = Tensor::empty({s.batch, s.channels}, DType::f32, gpu), gu = Tensor::empty({s.batch, s.channels}, DType::f32, gpu);
    const cuda_kernels::WkvForwardArgs forward{s.batch, s.time, s.channels, io, w.data<float>(), u.raw_data(),
                                               k.raw_data(), v.raw_data(), nullptr, y.raw_data(), nullptr};
    const cuda_kernels::WkvBackwardArgs backward{s.batch, s.time, s.channels, io, w.data<float>(), u.raw_data(),
                                                 k.raw_data(), v.raw_data(), y.raw_data(), grad_y.raw_data(), nullptr,
                                                 nullptr, gw.data<float>(), gu.data<float>(), gk.raw_data(),
                                                 gv.raw_data(), nullptr};
    const Floor floor = memory_floor(s, bf16 ? 2 : 4);
    for (const std::string& kernel : kernels) {
      const auto version = kernel == "v2" ? cuda_kernels::WkvVersion::v2_chunked : cuda_kernels::WkvVersion::v1_serial;
      cuda::set_device(0);
      auto timed = [&](bool with_backward) {
        cuda::flush_l2(0);
        return cuda::time_ms(0, [&] {
          cuda_kernels::wkv_forward(forward, version);
          if (with_backward) cuda_kernels::wkv_backward(backward, version);
        });
      };
      const std::string label = kernel + " " + dtype_name;
      print_row(label, "forward", repeat(warmup, repeats, [&] { return timed(false); }), floor.forward_bytes,
                bandwidth_gbs);
      print_row(label, "forward+backward", repeat(warmup, repeats, [&] { return timed(true); }),
                floor.forward_backward_bytes, bandwidth_gbs);
    }
  }
}

void bench_cpu(const Shape3& s, const Inputs& in, int warmup, int repeats, double bandwidth_gbs) {
  std::printf("No CUDA device: timing the CPU implementation (fp32 only; %s). B=%lld T=%lld C=%lld, median of %d "
              "repeats after %d warm-up\n",
              cuda::built_with_cuda() ? "this build has the CUDA backend but the machine has no GPU"
                                      : "this build has no CUDA backend",
              static_cast<long long>(s.batch), static_cast<long long>(s.time), static_cast<long long>(s.channels),
              repeats, warmup);
  print_header(bandwidth_gbs);
  const size_t n = static_cast<size_t>(s.elements()), bc = static_cast<size_t>(s.batch * s.channels);
  std::vector<float> y(n), gk(n), gv(n), gw(bc), gu(bc);
  const float *w = in.w.data<float>(), *u = in.u.data<float>(), *k = in.k.data<float>(), *v = in.v.data<float>();
  const float* grad_y = in.grad_y.data<float>();
  auto timed = [&](bool with_backward) {
    const auto start = std::chrono::steady_clock::now();
    cpu::wkv_forward<float>(s.batch, s.time, s.channels, w, u, k, v, nullptr, y.data(), nullptr);
    if (with_backward) {
      cpu::wkv_backward<float>(s.batch, s.time, s.channels, w, u, k, v, y.data(), grad_y, nullptr, nullptr, gw.data(),
                               gu.data(), gk.data(), gv.data(), nullptr);
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  const Floor floor = memory_floor(s, 4);
  print_row("cpu fp32", "forward", repeat(warmup, repeats, [&] { return timed(false); }), floor.forward_bytes,
            bandwidth_gbs);
  print_row("cpu fp32", "forward+backward", repeat(warmup, repeats, [&] { return timed(true); }),
            floor.forward_backward_bytes, bandwidth_gbs);
}

std::vector<std::string> expand(const std::string& choice, const std::vector<std::string>& all, const char* what) {
  if (choice == "both") return all;
  RWKV_CHECK(std::find(all.begin(), all.end(), choice) != all.end(), "bench wkv: unknown ", what, " '", choice,
             "' (", all[0], ", ", all[1], " or both)");
  return {choice};
}

int run_bench_wkv(const std::vector<std::string>& args) {
  Shape3 s{};
  int repeats = 0, warmup = 0;
  double bandwidth_gbs = 0;
  std::string dtype, kernel;
  bool force_cpu = false;
  po::options_description options(
      "usage: rwkv bench wkv [options]\n\n"
      "Times the WKV kernels (forward, and forward+backward) on random inputs. With a GPU: CUDA events around\n"
      "each repeat, the L2 cache flushed before each, median and minimum of the repeats, and the achieved\n"
      "bandwidth for the memory floor (k, v, y read or written once forward; k, v, y, grad_y, gk, gv backward).\n"
      "Without a GPU (or with --cpu) the CPU implementation is timed instead.\n\noptions");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("batch", po::value(&s.batch)->default_value(16), "B")
      ("time", po::value(&s.time)->default_value(1024), "T")
      ("channels", po::value(&s.channels)->default_value(768), "C")
      ("dtype", po::value(&dtype)->default_value("both"), "fp32, bf16 or both (GPU only)")
      ("kernel", po::value(&kernel)->default_value("both"), "v1 (serial over time), v2 (chunked scan) or both")
      ("repeats", po::value(&repeats)->default_value(20), "timed repeats")
      ("warmup", po::value(&warmup)->default_value(3), "untimed runs first")
      ("bandwidth", po::value(&bandwidth_gbs)->default_value(3000), "GB/s for the floor time (H100: ~3000)")
      ("cpu", po::bool_switch(&force_cpu), "time the CPU implementation even when a GPU is present");
  // clang-format on
  po::variables_map vm;
  if (!parse_options(args, options, vm)) return 0;
  RWKV_CHECK(s.batch > 0 && s.time > 0 && s.channels > 0 && repeats > 0 && warmup >= 0 && bandwidth_gbs > 0,
             "bench wkv: sizes, --repeats and --bandwidth must be positive");
  const std::vector<std::string> dtypes = expand(dtype, {"fp32", "bf16"}, "--dtype");
  const std::vector<std::string> kernels = expand(kernel, {"v1", "v2"}, "--kernel");
  const Inputs inputs = make_inputs(s);
  if (cuda::device_count() > 0 && !force_cpu) {
    bench_gpu(s, inputs, dtypes, kernels, warmup, repeats, bandwidth_gbs);
  } else {
    bench_cpu(s, inputs, warmup, repeats, bandwidth_gbs);
  }
  return 0;
}

}  // namespace

RWKV_BENCH("wkv", "WKV kernels: forward and forward+backward, ms and GB/s against the memory floor", run_bench_wkv);

}  // namespace rwkv::cli
