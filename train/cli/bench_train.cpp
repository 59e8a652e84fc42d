// `rwkv bench train --config F [--micro_bsz B] [--steps N] [--warmup W] [--json] [--key value ...]` (also plain
// `rwkv bench --config F ...`): real training steps on synthetic tokens, with tokens/s, the forward / backward /
// optimizer split, MFU and peak memory. The measurement is run_train_benchmark (train/train_benchmark.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/json.h"
#include "train/cli/command.h"
#include "train/config/config.h"
#include "train/train_benchmark.h"

namespace rwkv::cli {
namespace {

int64_t integer_option(const ParsedConfig& parsed, const std::string& name, int64_t fallback, int64_t minimum) {
  const auto found = parsed.extra.find(name);
  if (found == parsed.extra.end()) return fallback;
  try {
    size_t used = 0;
    const int64_t value = std::stoll(found->second, &used);
    if (used == found->second.size() && value >= minimum) return value;
  } catch (const std::exception&) {
  }
  RWKV_FAIL("--", name, " '", found->second, "': expected an integer >= ", minimum);
}

// A JSON number, or null where there is none or it is not finite (a diverged loss, an unknown peak): JSON has
// no NaN or infinity, and scripts read this with strict parsers.
std::string number_or_null(const std::optional<double>& value) {
  return value && std::isfinite(*value) ? data::json::number(*value) : "null";
}

void print_json(const TrainBenchmarkReport& r) {
  namespace json = data::json;
  std::printf("{\"device\": %s, \"device_name\": %s, \"model\": %s, \"parameters\": %lld, "
              "\"non_embedding_parameters\": %lld, \"gemm_precision\": %s, \"micro_bsz\": %lld, \"ctx_len\": %lld, "
              "\"tokens_per_step\": %lld, \"steps\": %lld, \"warmup\": %lld, \"tokens_per_second\": %s, "
              "\"step_ms\": %s, \"forward_ms\": %s, \"backward_ms\": %s, \"optimizer_ms\": %s, "
              "\"peak_tflops\": %s, \"mfu\": %s, \"peak_memory_bytes\": %lld, \"last_loss\": %s}\n",
              json::quote(r.device).c_str(), json::quote(r.device_name).c_str(), json::quote(r.model).c_str(),
              static_cast<long long>(r.parameters), static_cast<long long>(r.non_embedding_parameters),
              json::quote(r.gemm_precision).c_str(), static_cast<long long>(r.micro_bsz),
              static_cast<long long>(r.ctx_len), static_cast<long long>(r.tokens_per_step),
              static_cast<long long>(r.steps), static_cast<long long>(r.warmup),
              number_or_null(r.tokens_per_second).c_str(), number_or_null(r.step_ms).c_str(),
              number_or_null(r.forward_ms).c_str(), number_or_null(r.backward_ms).c_str(),
              number_or_null(r.optimizer_ms).c_str(), number_or_null(r.peak_tflops).c_str(),
              number_or_null(r.mfu).c_str(), static_cast<long long>(r.peak_memory_bytes),
              number_or_null(r.last_loss).c_str());
}

void print_text(const TrainBenchmarkReport& r) {
  std::printf("rwkv bench train: %s on %s, %s\n", r.model.c_str(), r.device.c_str(), r.device_name.c_str());
  std::printf("  parameters   %lld (%lld without the embedding)\n", static_cast<long long>(r.parameters),
              static_cast<long long>(r.non_embedding_parameters));
  std::printf("  GEMMs        %s\n", r.gemm_precision.c_str());
  std::printf("  batch        micro_bsz %lld x ctx_len %lld = %lld tokens per step; random tokens\n",
              static_cast<long long>(r.micro_bsz), static_cast<long long>(r.ctx_len),
              static_cast<long long>(r.tokens_per_step));
  std::printf("  timing       median of %lld steps after %lld warm-up\n", static_cast<long long>(r.steps),
              static_cast<long long>(r.warmup));
  std::printf("  tokens/s     %.0f\n", r.tokens_per_second);
  std::printf("  ms per step  %.2f = forward %.2f + backward %.2f + optimizer %.2f (medians)\n", r.step_ms,
              r.forward_ms, r.backward_ms, r.optimizer_ms);
  if (r.mfu) {
    std::printf("  MFU          %.1f%% of %.0f TFLOP/s bf16\n", 100.0 * *r.mfu, *r.peak_tflops);
  } else {
    std::printf("  MFU          n/a (%s)\n", r.device == "cpu" ? "CPU" : "no bf16 peak known for this GPU");
  }
  std::printf("  peak memory  %.1f MiB (%s allocator)\n", static_cast<double>(r.peak_memory_bytes) / (1 << 20),
              r.device == "cpu" ? "CPU" : "device");
  std::printf("  last loss    %.4f\n", r.last_loss);
}

int run_bench_train(const std::vector<std::string>& args_in) {
  // --json is a switch; the config parser's extra options all take a value.
  std::vector<std::string> args = args_in;
  const auto json_flag = std::remove(args.begin(), args.end(), std::string("--json"));
  const bool json = json_flag != args.end();
  args.erase(json_flag, args.end());
  const ParsedConfig parsed = parse_train_config(
      args, {{"steps", "timed training steps (default 10)"}, {"warmup", "untimed steps first (default 2)"}});
  if (parsed.help) {
    std::cout << "usage: rwkv bench train --config F [--micro_bsz B] [--steps N] [--warmup W] [--json] "
                 "[--key value ...]\n\n"
                 "Runs real training steps (the config's model shape, official init, Adam with the config's\n"
                 "parameter groups and schedule, L2Wrap loss) on seeded random tokens on the config's device; no\n"
                 "data is read. Prints tokens/s (median step), ms per step split into forward / backward /\n"
                 "optimizer (synchronised wall clock), MFU on GPUs with a known bf16 peak, and the allocator's peak\n"
                 "memory. --json prints one JSON object instead.\n\n"
              << parsed.help_text;
    return 0;
  }
  TrainBenchmarkOptions options;
  options.steps = integer_option(parsed, "steps", options.steps, 1);
  options.warmup = integer_option(parsed, "warmup", options.warmup, 0);
  const TrainBenchmarkReport report = run_train_benchmark(parsed.config, options);
  if (json) {
    print_json(report);
  } else {
    print_text(report);
  }
  return 0;
}

}  // namespace

RWKV_BENCH("train", "training steps on random tokens: tokens/s, forward/backward/optimizer ms, MFU, memory",
           run_bench_train);

}  // namespace rwkv::cli
