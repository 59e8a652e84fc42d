// `rwkv bench train --config F [--micro_bsz B] [--steps N] [--warmup W] [--json] [--key value ...]` (also plain
// `rwkv bench --config F ...`): real training steps on synthetic tokens, with tokens/s, the forward / backward /
// optimizer split, MFU and peak memory. The measurement is run_train_benchmark (train/train_benchmark.h).
// `--official` runs the workloads RWKV-LM was measured on (train/official_figures.h) in one call and prints one
// table with the ratios to its figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "data/json.h"
#include "train/cli/command.h"
#include "train/config/config.h"
#include "train/official_figures.h"
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

std::string json_of(const TrainBenchmarkReport& r) {
  namespace json = data::json;
  const auto integer = [](int64_t value) { return std::to_string(value); };
  const std::vector<std::pair<const char*, std::string>> fields = {
      {"device", json::quote(r.device)},
      {"device_name", json::quote(r.device_name)},
      {"model", json::quote(r.model)},
      {"parameters", integer(r.parameters)},
      {"non_embedding_parameters", integer(r.non_embedding_parameters)},
      {"gemm_precision", json::quote(r.gemm_precision)},
      {"micro_bsz", integer(r.micro_bsz)},
      {"ctx_len", integer(r.ctx_len)},
      {"tokens_per_step", integer(r.tokens_per_step)},
      {"steps", integer(r.steps)},
      {"warmup", integer(r.warmup)},
      {"tokens_per_second", number_or_null(r.tokens_per_second)},
      {"step_ms", number_or_null(r.step_ms)},
      {"forward_ms", number_or_null(r.forward_ms)},
      {"backward_ms", number_or_null(r.backward_ms)},
      {"optimizer_ms", number_or_null(r.optimizer_ms)},
      {"peak_tflops", number_or_null(r.peak_tflops)},
      {"mfu", number_or_null(r.mfu)},
      {"peak_memory_bytes", integer(r.peak_memory_bytes)},
      {"peak_reserved_bytes", integer(r.peak_reserved_bytes)},
      {"device_allocations_per_step", number_or_null(r.device_allocations_per_step)},
      {"host_waits_per_step", number_or_null(r.host_waits_per_step)},
      {"last_loss", number_or_null(r.last_loss)},
      {"profiled_step_ms", number_or_null(r.profiled_step_ms)},
  };
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    if (out.size() > 1) out += ", ";
    out += json::quote(key) + ": " + value;
  }
  out += ", \"profile\": [";
  for (size_t i = 0; i < r.profile.size(); ++i) {
    const profile::FamilyTime& family = r.profile[i];
    out += (i > 0 ? ", {\"family\": " : "{\"family\": ") + json::quote(family.family) +
           ", \"calls_per_step\": " + std::to_string(family.calls) + ", \"ms_per_step\": " +
           number_or_null(family.ms) + "}";
  }
  return out + "]}";
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
  if (r.device == "cpu") {
    std::printf("  peak memory  %.1f MiB (CPU allocator)\n", static_cast<double>(r.peak_memory_bytes) / (1 << 20));
  } else {
    std::printf("  peak memory  %.1f MiB in use, %.1f MiB reserved (caching allocator)\n",
                static_cast<double>(r.peak_memory_bytes) / (1 << 20),
                static_cast<double>(r.peak_reserved_bytes) / (1 << 20));
    std::printf("  per step     %.1f device allocations (cudaMalloc), %.1f host waits on the GPU\n",
                r.device_allocations_per_step, r.host_waits_per_step);
  }
  std::printf("  last loss    %.4f\n", r.last_loss);
  if (r.profile.empty()) return;
  double attributed = 0;
  for (const profile::FamilyTime& family : r.profile) attributed += family.ms;
  std::printf("\nper op family (%s; per step, over profiled steps of %.2f ms with every op timed)\n",
              r.device == "cpu" ? "wall clock" : "device time between CUDA events", r.profiled_step_ms);
  std::printf("  %-26s %8s %10s %7s\n", "family", "calls", "ms", "share");
  for (const profile::FamilyTime& family : r.profile) {
    std::printf("  %-26s %8lld %10.3f %6.1f%%\n", family.family.c_str(), static_cast<long long>(family.calls),
                family.ms, 100.0 * family.ms / r.profiled_step_ms);
  }
  std::printf("  %-26s %8s %10.3f %6.1f%%\n", "(in no op: gaps, host work)", "",
              r.profiled_step_ms - attributed, 100.0 * (r.profiled_step_ms - attributed) / r.profiled_step_ms);
}

// ---- --official: RWKV-LM's workloads in one call, one table.

// The keys a workload fixes. A value given for one (in a config file or on the command line) applies to every
// row, and the rows are then not comparable with RWKV-LM's figures.
const std::vector<std::string> kWorkloadKeys = {"n_layer", "n_embd", "micro_bsz", "grad_cp",
                                                "ctx_len", "vocab_size", "precision"};

struct SuiteRow {
  OfficialWorkload workload;
  std::optional<TrainBenchmarkReport> report;
  std::string error;  // when the workload failed (e.g. out of memory): the others still run
};

double gib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30); }

TrainConfig workload_config(const ParsedConfig& parsed, const OfficialWorkload& w) {
  TrainConfig c = parsed.config;
  const auto given = [&](const char* key) {
    return std::find(parsed.set_keys.begin(), parsed.set_keys.end(), key) != parsed.set_keys.end();
  };
  if (!given("n_layer")) c.n_layer = w.n_layer;
  if (!given("n_embd")) c.n_embd = w.n_embd;
  if (!given("micro_bsz")) c.micro_bsz = w.micro_bsz;
  if (!given("grad_cp")) c.grad_cp = w.grad_cp;
  if (!given("ctx_len")) c.ctx_len = kOfficialCtxLen;
  if (!given("vocab_size")) c.vocab_size = kOfficialVocab;
  if (!given("precision")) c.precision = "bf16";
  if (!given("device")) c.device = cuda::device_count() > 0 ? "cuda:0" : "cpu";
  return c;
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), pattern, value);
  return text;
}

void print_suite_text(const std::vector<SuiteRow>& rows, const std::string& not_comparable,
                      const TrainBenchmarkOptions& options) {
  const TrainBenchmarkReport* any = nullptr;
  for (const SuiteRow& row : rows) {
    if (row.report) any = &*row.report;
  }
  std::printf("rwkv bench train --official: RWKV-LM v4neo's training step (bf16, ctx %lld, vocab %lld, H100 80GB "
              "HBM3, ../shared/GPU.md) against this build\n",
              static_cast<long long>(kOfficialCtxLen), static_cast<long long>(kOfficialVocab));
  if (any) {
    std::printf("device: %s, %s; %s; median of %lld steps after %lld warm-up\n", any->device.c_str(),
                any->device_name.c_str(), any->gemm_precision.c_str(), static_cast<long long>(options.steps),
                static_cast<long long>(options.warmup));
  }
  if (!not_comparable.empty()) std::printf("not comparable with the official figures: %s\n", not_comparable.c_str());
  std::printf("\n| workload | tokens/s | x official | model TFLOP/s | MFU (of %.0f) | peak GiB in use (official) "
              "| reserved GiB | fwd / bwd / opt ms | cudaMalloc / step | host waits / step | goal |\n",
              kH100MeasuredBf16Tflops);
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  const SuiteRow* previous = nullptr;
  for (const SuiteRow& row : rows) {
    const OfficialWorkload& w = row.workload;
    if (!row.report) {
      std::printf("| %s | failed: %s | | | | | | | | | %s |\n", w.name.c_str(), row.error.c_str(), w.goal.c_str());
      previous = &row;
      continue;
    }
    const TrainBenchmarkReport& r = *row.report;
    const bool compare = not_comparable.empty();
    const std::string ratio = compare && w.tokens_per_second
                                  ? format("%.2fx", r.tokens_per_second / *w.tokens_per_second)
                                  : "-";
    const std::string official_peak = compare && w.peak_gib ? format(" (%.1f)", *w.peak_gib) : "";
    const double tflops = model_tflops(r);
    std::string goal = w.goal.empty() ? "-" : w.goal;
    if (compare && !w.goal.empty()) {
      const std::optional<bool> met =
          goal_met(w, r, previous && previous->report ? &*previous->report : nullptr);
      goal += met ? (*met ? ": met" : ": NOT met") : ": n/a";
    }
    const bool gpu = r.device != "cpu";
    std::printf("| %s | %.0f | %s | %.1f | %s | %.2f%s | %s | %.1f / %.1f / %.1f | %s | %s | %s |\n", w.name.c_str(),
                r.tokens_per_second, ratio.c_str(), tflops,
                gpu ? format("%.1f%%", 100.0 * tflops / kH100MeasuredBf16Tflops).c_str() : "-",
                gib(r.peak_memory_bytes), official_peak.c_str(),
                gpu ? format("%.2f", gib(r.peak_reserved_bytes)).c_str() : "-", r.forward_ms, r.backward_ms,
                r.optimizer_ms, gpu ? format("%.1f", r.device_allocations_per_step).c_str() : "-",
                gpu ? format("%.1f", r.host_waits_per_step).c_str() : "-", goal.c_str());
    previous = &row;
  }
}

void print_suite_json(const std::vector<SuiteRow>& rows, const std::string& not_comparable) {
  namespace json = data::json;
  std::string out = "{\"suite\": \"official\", \"comparable\": " +
                    std::string(not_comparable.empty() ? "true" : "false") + ", \"rows\": [";
  const SuiteRow* previous = nullptr;
  for (size_t i = 0; i < rows.size(); ++i) {
    const SuiteRow& row = rows[i];
    const OfficialWorkload& w = row.workload;
    if (i > 0) out += ", ";
    out += "{\"workload\": " + json::quote(w.name) +
           ", \"official_tokens_per_second\": " + number_or_null(w.tokens_per_second) +
           ", \"official_peak_gib\": " + number_or_null(w.peak_gib) + ", \"goal\": " + json::quote(w.goal);
    if (row.report) {
      const std::optional<bool> met =
          not_comparable.empty()
              ? goal_met(w, *row.report, previous && previous->report ? &*previous->report : nullptr)
              : std::nullopt;
      out += ", \"model_tflops\": " + number_or_null(model_tflops(*row.report)) +
             ", \"goal_met\": " + (met ? (*met ? "true" : "false") : "null") + ", \"report\": " +
             json_of(*row.report);
    } else {
      out += ", \"error\": " + json::quote(row.error);
    }
    out += "}";
    previous = &row;
  }
  std::printf("%s]}\n", out.c_str());
}

int run_official_suite(const ParsedConfig& parsed, const TrainBenchmarkOptions& options, bool json) {
  std::vector<std::string> overridden;
  for (const std::string& key : kWorkloadKeys) {
    if (std::find(parsed.set_keys.begin(), parsed.set_keys.end(), key) != parsed.set_keys.end()) {
      overridden.push_back(key);
    }
  }
  std::vector<SuiteRow> rows;
  bool failed = false;
  for (const OfficialWorkload& workload : official_workloads()) {
    SuiteRow row{workload, std::nullopt, ""};
    std::fprintf(stderr, "rwkv bench train --official: %s ...\n", workload.name.c_str());
    try {
      row.report = run_train_benchmark(workload_config(parsed, workload), options);
    } catch (const Error& e) {
      row.error = e.what();
      failed = true;
      std::fprintf(stderr, "rwkv bench train --official: %s failed: %s\n", workload.name.c_str(), e.what());
    }
    rows.push_back(std::move(row));
  }
  std::string not_comparable;
  if (!overridden.empty()) {
    not_comparable = "given";
    for (const std::string& key : overridden) not_comparable += " " + key;
  }
  for (const SuiteRow& row : rows) {
    if (not_comparable.empty() && row.report && row.report->device_name.find(kOfficialDevice) == std::string::npos) {
      not_comparable = "measured on " + row.report->device_name + ", the official figures on an H100";
    }
  }
  if (json) {
    print_suite_json(rows, not_comparable);
  } else {
    print_suite_text(rows, not_comparable, options);
  }
  return failed ? 1 : 0;
}

int run_bench_train(const std::vector<std::string>& args_in) {
  // --json and --official are switches; the config parser's extra options all take a value.
  std::vector<std::string> args = args_in;
  const auto take_switch = [&args](const std::string& name) {
    const auto found = std::remove(args.begin(), args.end(), name);
    const bool given = found != args.end();
    args.erase(found, args.end());
    return given;
  };
  const bool json = take_switch("--json");
  const bool official = take_switch("--official");
  const ParsedConfig parsed = parse_train_config(
      args, {{"steps", "timed training steps (default 10)"},
             {"warmup", "untimed steps first (default 2)"},
             {"profile", "steps after the timed ones with each op family timed (default 0: none)"}});
  if (parsed.help) {
    std::cout << "usage: rwkv bench train --config F [--micro_bsz B] [--steps N] [--warmup W] [--profile P] "
                 "[--json] [--key value ...]\n"
                 "       rwkv bench train --official [--steps N] [--warmup W] [--json] [--key value ...]\n\n"
                 "Runs real training steps (the config's model shape, official init, Adam with the config's\n"
                 "parameter groups and schedule, L2Wrap loss) on seeded random tokens on the config's device; no\n"
                 "data is read. Prints tokens/s (median step), ms per step split into forward / backward /\n"
                 "optimizer (synchronised wall clock), MFU on GPUs with a known bf16 peak, the allocator's peak\n"
                 "memory and, on a GPU, cudaMalloc calls and host waits per step. --json prints one JSON object.\n"
                 "--profile N adds N steps with every op timed and prints the time per op family (GEMM, WKV,\n"
                 "elementwise, fused kernels, copies, optimizer, ...; CUDA events on a GPU) and what no op took.\n\n"
                 "--official runs the workloads RWKV-LM v4neo was measured on (one H100 80GB, bf16, ctx 1024,\n"
                 "vocab 50277: 169M at micro_bsz 16 and 32 and with grad_cp 1, 430M at 16, 1.5B at 8) one after\n"
                 "the other on the first GPU (else the CPU) and prints one table: tokens/s and the ratio to\n"
                 "RWKV-LM's, model TFLOP/s and MFU of the H100's measured 798, peak memory against RWKV-LM's, the\n"
                 "phase split, and whether each goal is met. Giving a key a workload fixes (n_layer, n_embd,\n"
                 "micro_bsz, grad_cp, ctx_len, vocab_size, precision) applies it to every row and drops the\n"
                 "comparison. A workload that fails (out of memory) is reported and the exit status is 1.\n\n"
              << parsed.help_text;
    return 0;
  }
  TrainBenchmarkOptions options;
  options.steps = integer_option(parsed, "steps", options.steps, 1);
  options.warmup = integer_option(parsed, "warmup", options.warmup, 0);
  options.profile_steps = integer_option(parsed, "profile", options.profile_steps, 0);
  if (official) return run_official_suite(parsed, options, json);
  const TrainBenchmarkReport report = run_train_benchmark(parsed.config, options);
  if (json) {
    std::printf("%s\n", json_of(report).c_str());
  } else {
    print_text(report);
  }
  return 0;
}

}  // namespace

RWKV_BENCH("train", "training steps on random tokens: tokens/s, forward/backward/optimizer ms, MFU, memory",
           run_bench_train);

}  // namespace rwkv::cli
