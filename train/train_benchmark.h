// `rwkv bench train`'s measurement: real training steps (the config's model shape, official init, Adam with the
// config's parameter groups, L2Wrap loss) on seeded random tokens, timed per phase. The command line
// (train/cli/bench_train.cpp) prints the report; the tests call the function directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/op_profile.h"
#include "train/config/config.h"

namespace rwkv {

struct TrainBenchmarkOptions {
  int64_t steps = 10;  // timed steps
  int64_t warmup = 2;  // untimed steps first (allocator caches, first-touch pages, cuBLAS handles)
  // Steps after the timed ones with every op timed by family (core/op_profile.h); 0 = no profile. Separate
  // from the timed steps because timing each op (CUDA events) slows the step down.
  int64_t profile_steps = 0;
};

struct TrainBenchmarkReport {
  std::string device;        // "cpu", "cuda:0"
  std::string device_name;   // the GPU's name, or "CPU (N threads)"
  std::string gemm_precision;
  std::string model;         // ModelConfig::describe()
  int64_t parameters = 0;
  int64_t non_embedding_parameters = 0;  // all but emb.weight (MFU's convention)
  int64_t micro_bsz = 0, ctx_len = 0, tokens_per_step = 0;
  int64_t steps = 0, warmup = 0;
  // Medians over the timed steps. step_ms is the median of whole steps, so it need not equal the sum of the
  // phase medians. The optimizer phase includes clearing the gradients.
  double step_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
  double tokens_per_second = 0;           // tokens_per_step / step_ms
  std::optional<double> peak_tflops;      // the GPU's dense bf16 peak, when known
  std::optional<double> mfu;              // fraction of peak_tflops (6 · non-embedding parameters · tokens/s)
  int64_t peak_memory_bytes = 0;          // the allocator's peak in use during this benchmark (model included)
  int64_t peak_reserved_bytes = 0;        // the caching allocator's peak held from the device (0 on the CPU)
  // Per timed step, on a GPU (0 on the CPU): segments the caching allocator had to take from the device
  // (cudaMalloc; 0 once its cache is warm) and host waits on the device (copies to the host, synchronisations:
  // core/cuda_runtime.h's count), each phase counted between its own timing synchronisations.
  double device_allocations_per_step = 0;
  double host_waits_per_step = 0;
  double last_loss = 0;                   // of the last step, a sanity check (about ln(vocab) at the start)
  // With profile_steps: per step, each op family's calls and time (largest first), and the profiled steps'
  // mean wall time (the families' sum falls short of it by what no op accounts for: launch gaps, host work).
  std::vector<profile::FamilyTime> profile;
  double profiled_step_ms = 0;
};

// Runs options.warmup + options.steps training steps on config.device. vocab_size 0 means 256 for byte data
// (data_type = bytes) and is an error otherwise: the data file is never read.
TrainBenchmarkReport run_train_benchmark(const TrainConfig& config, const TrainBenchmarkOptions& options);

}  // namespace rwkv
