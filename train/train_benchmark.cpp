#include "train/train_benchmark.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "core/allocator.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "train/gpu_peaks.h"
#include "train/model/model.h"
#include "train/model/model_init.h"
#include "train/io/model_io.h"
#include "train/optim/optimizer.h"
#include "train/optim/schedule.h"

namespace rwkv {

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

// Wall-clock milliseconds of fn(), adding the host waits fn() itself made to `host_waits`. On a GPU the device
// is synchronised on both sides (not counted), so the time covers the kernels fn() launched and not only their
// launch.
double timed_ms(const Device& device, int64_t& host_waits, const std::function<void()>& fn) {
  if (device.is_cuda()) cuda::synchronize(device.index);
  const auto start = std::chrono::steady_clock::now();
  const int64_t waits_before = cuda::host_waits();
  fn();
  host_waits += cuda::host_waits() - waits_before;
  if (device.is_cuda()) cuda::synchronize(device.index);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// A [B, T+1] window of uniform random ids, split into inputs [B, T] and next-token targets [B, T], uploaded in
// one copy as the trainer does.
struct Batch {
  Tensor inputs, targets;
};
Batch random_batch(Generator& generator, int64_t batch, int64_t time, int64_t vocab, const Device& device) {
  const size_t half = static_cast<size_t>(batch * time);
  std::vector<int32_t> tokens(2 * half);  // inputs, then targets
  for (int64_t b = 0; b < batch; ++b) {
    int32_t previous = static_cast<int32_t>(generator.next_u64() % static_cast<uint64_t>(vocab));
    for (int64_t t = 0; t < time; ++t) {
      const auto next = static_cast<int32_t>(generator.next_u64() % static_cast<uint64_t>(vocab));
      tokens[static_cast<size_t>(b * time + t)] = previous;
      tokens[half + static_cast<size_t>(b * time + t)] = next;
      previous = next;
    }
  }
  const Tensor both = Tensor::from_vector(tokens, {2, batch, time}).to(device);
  return {both.slice(0, 0, 1).view({batch, time}), both.slice(0, 1, 2).view({batch, time})};
}

std::string gemm_precision(const std::string& precision, const Device& device) {
  if (precision == "bf16") {
    return device.is_cuda() ? "bf16 operands, fp32 accumulation (cuBLAS); bf16 activations, fp32 master weights"
                            : "bf16 operands widened to fp32 (CPU BLAS); bf16 activations, fp32 master weights";
  }
  if (!device.is_cuda()) return "fp32 (CPU BLAS)";
  if (precision == "tf32") return "tf32 (fp32 operands rounded to tf32 on tensor cores, fp32 accumulation)";
  return "fp32";
}

}  // namespace

TrainBenchmarkReport run_train_benchmark(const TrainConfig& config_in, const TrainBenchmarkOptions& options) {
  RWKV_CHECK(options.steps > 0 && options.warmup >= 0 && options.profile_steps >= 0,
             "bench train: --steps must be positive, --warmup and --profile >= 0");
  TrainConfig config = config_in;
  if (config.vocab_size == 0) {
    // The data file is not read, so its vocabulary is known only for bytes.
    RWKV_CHECK(config.data_type == "bytes", "bench train: vocab_size is required (the benchmark reads no data; "
               "e.g. --vocab_size 50277 for the GPT-NeoX 20B tokenizer)");
    config.vocab_size = 256;
  }
  config.validate();
  const Device device = parse_device(config.device);
  ops::set_allow_tf32(config.precision == "tf32");
  // This benchmark's own peaks: an earlier one in the same process (rwkv bench train --official) has freed its
  // model; its cached segments go back to the device.
  Allocator& allocator = allocator_for(device);
  if (device.is_cuda()) {
    cuda::synchronize(device.index);
    cuda::empty_cache(device.index);
  }
  allocator.reset_peak();

  Rwkv4 model(config.model());
  model.set_gradient_checkpointing(config.grad_cp == 1);
  model.set_activation_dtype(config.precision == "bf16" ? DType::bf16 : DType::f32);
  initialize_rwkv4(model, config.lr_init, config.seed);
  model.to(device);
  Optimizer optimizer(model.named_parameters(), config);
  const ScheduleShape shape = schedule_shape(config, 1);

  TrainBenchmarkReport report;
  report.device = device.str();
  report.device_name = device.is_cuda() ? cuda::device_name(device.index)
                                        : "CPU (" + std::to_string(omp_get_max_threads()) + " threads)";
  report.gemm_precision = gemm_precision(config.precision, device);
  report.model = model.config().describe();
  report.parameters = model.config().parameter_count();
  report.non_embedding_parameters = report.parameters - model.config().vocab_size * model.config().n_embd;
  report.micro_bsz = config.micro_bsz;
  report.ctx_len = config.ctx_len;
  report.tokens_per_step = config.micro_bsz * config.ctx_len;
  report.steps = options.steps;
  report.warmup = options.warmup;

  Generator tokens(config.seed);
  std::vector<double> step_ms, forward_ms, backward_ms, optimizer_ms;
  int64_t host_waits = 0, device_allocations_before = 0;
  model.zero_grad();
  for (int64_t step = 0; step < options.warmup + options.steps; ++step) {
    if (step == options.warmup) {
      host_waits = 0;
      device_allocations_before = allocator.stats().device_allocations;
    }
    // The batch's upload waits like the trainer's does each step: counted, not timed (the random ids are made
    // on the host, which the trainer's data path does not do).
    const int64_t waits_before_upload = cuda::host_waits();
    const Batch batch = random_batch(tokens, config.micro_bsz, config.ctx_len, config.vocab_size, device);
    host_waits += cuda::host_waits() - waits_before_upload;
    const double lr = learning_rate(config, shape, step);
    ag::Variable loss;
    const double forward =
        timed_ms(device, host_waits, [&] { loss = model.loss(batch.inputs, batch.targets); });
    // The loss is read after backward is queued, as the trainer does (its host wait counts).
    double loss_value = 0;
    const double backward = timed_ms(device, host_waits, [&] {
      loss.backward();
      loss_value = loss.data().item();
    });
    const double update = timed_ms(device, host_waits, [&] {
      optimizer.step(lr);
      model.zero_grad();
    });
    if (step < options.warmup) continue;
    forward_ms.push_back(forward);
    backward_ms.push_back(backward);
    optimizer_ms.push_back(update);
    step_ms.push_back(forward + backward + update);
    if (step + 1 == options.warmup + options.steps) report.last_loss = loss_value;
  }
  report.step_ms = median(step_ms);
  report.forward_ms = median(forward_ms);
  report.backward_ms = median(backward_ms);
  report.optimizer_ms = median(optimizer_ms);
  report.tokens_per_second = static_cast<double>(report.tokens_per_step) / (report.step_ms / 1000.0);
  if (device.is_cuda()) report.peak_tflops = bf16_peak_tflops(report.device_name);
  if (report.peak_tflops) {
    report.mfu = model_flops_utilisation(static_cast<double>(report.non_embedding_parameters),
                                         report.tokens_per_second, *report.peak_tflops);
  }
  const AllocatorStats stats = allocator.stats();
  report.peak_memory_bytes = stats.peak_bytes_in_use;
  report.peak_reserved_bytes = stats.peak_bytes_reserved;
  report.device_allocations_per_step =
      static_cast<double>(stats.device_allocations - device_allocations_before) / static_cast<double>(options.steps);
  report.host_waits_per_step = static_cast<double>(host_waits) / static_cast<double>(options.steps);
  // The profile comes last, so that the figures above are the unprofiled steps' alone.
  if (options.profile_steps > 0) {
    double profiled_ms = 0;
    int64_t ignored_waits = 0;
    profile::start();
    struct EndOnError {  // an exception mid-profile must not leave every later op timed
      bool done = false;
      ~EndOnError() {
        if (done) return;
        try {
          profile::stop();
        } catch (...) {  // already failing; the first error is the one to report
        }
      }
    } end_on_error;
    for (int64_t step = 0; step < options.profile_steps; ++step) {
      const Batch batch = random_batch(tokens, config.micro_bsz, config.ctx_len, config.vocab_size, device);
      const double lr = learning_rate(config, shape, options.warmup + options.steps + step);
      profiled_ms += timed_ms(device, ignored_waits, [&] {
        model.loss(batch.inputs, batch.targets).backward();
        optimizer.step(lr);
        model.zero_grad();
      });
    }
    const double per_step = 1.0 / static_cast<double>(options.profile_steps);
    end_on_error.done = true;
    for (profile::FamilyTime family : profile::stop()) {
      family.ms *= per_step;
      family.calls = (family.calls + options.profile_steps / 2) / options.profile_steps;
      report.profile.push_back(family);
    }
    report.profiled_step_ms = profiled_ms * per_step;
  }
  return report;
}

}  // namespace rwkv
