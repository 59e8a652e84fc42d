// `rwkv bench data`: batch assembly speed (magic-prime offsets + copy of micro_bsz windows from the
// memory-mapped .bin, uint16 -> int32, vocab check) on one core.
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "core/error.h"
#include "data/batch_builder.h"
#include "data/binidx_writer.h"
#include "data/dataset.h"
#include "data/magic_prime.h"
#include "data/sampler.h"
#include "train/cli/command.h"

namespace rwkv::cli {
namespace {

namespace po = boost::program_options;

// Writes a synthetic uint16 binidx of `tokens` tokens in documents of 1..2048 tokens.
void write_synthetic_binidx(const std::string& prefix, std::uint64_t tokens, std::uint64_t vocab_size) {
  data::BinidxWriter writer = data::BinidxWriter::open(prefix, data::TokenDtype::uint16);
  std::uint64_t state = 0x243F6A8885A308D3ull;
  auto next = [&state] {  // xorshift64: fast and good enough for filler tokens
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<std::int32_t> document;
  for (std::uint64_t written = 0; written < tokens;) {
    const std::uint64_t length = std::min<std::uint64_t>(1 + next() % 2048, tokens - written);
    document.resize(length);
    for (auto& id : document) id = static_cast<std::int32_t>(next() % vocab_size);
    document.back() = 0;  // end of document, as GPT-NeoX preprocessing appends
    writer.add_document(document);
    written += length;
  }
  writer.finish();
}

// Removes the temporary dataset however the benchmark ends.
struct TemporaryPrefix {
  std::string prefix;
  ~TemporaryPrefix() {
    if (prefix.empty()) return;
    std::filesystem::remove(prefix + ".bin");
    std::filesystem::remove(prefix + ".idx");
  }
};

int run_bench_data(const std::vector<std::string>& args) {
  data::DatasetSpec spec;
  std::uint64_t tokens = 0;
  std::uint64_t micro_bsz = 0;
  std::uint64_t ctx_len = 0;
  std::uint64_t steps = 0;
  std::uint64_t repeats = 0;
  std::uint64_t vocab_size = 0;
  std::string directory;
  po::options_description options(
      "usage: rwkv bench data [options]\n\n"
      "Times BatchBuilder with magic-prime sampling on one thread: each repeat builds --steps batches at\n"
      "new steps (so new windows are touched), and the median tokens/s (micro_bsz * ctx_len per batch) is\n"
      "reported. Without --data a synthetic uint16 binidx is written to --dir and removed afterwards.\n\noptions");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("data", po::value(&spec.data_file), "an existing dataset instead of the synthetic one")
      ("data_type", po::value(&spec.data_type), "its data_type (default: from the file name)")
      ("tokens", po::value(&tokens)->default_value(200'000'000), "size of the synthetic dataset")
      ("dir", po::value(&directory)->default_value(std::filesystem::temp_directory_path().string()),
       "where the synthetic dataset is written")
      ("micro_bsz", po::value(&micro_bsz)->default_value(16), "samples per batch")
      ("ctx_len", po::value(&ctx_len)->default_value(1024), "context length")
      ("steps", po::value(&steps)->default_value(2000), "batches per repeat")
      ("repeats", po::value(&repeats)->default_value(5), "timed repeats")
      ("vocab_size", po::value(&vocab_size)->default_value(50277), "ids are checked against this");
  // clang-format on
  po::variables_map vm;
  if (!parse_options(args, options, vm)) return 0;
  RWKV_CHECK(repeats > 0 && steps > 0, "bench data: --steps and --repeats must be positive");

  TemporaryPrefix temporary;
  if (spec.data_file.empty()) {
    temporary.prefix = (std::filesystem::path(directory) / ("rwkv-bench-data-" + std::to_string(::getpid()))).string();
    const auto start = std::chrono::steady_clock::now();
    write_synthetic_binidx(temporary.prefix, tokens, vocab_size);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::cout << "wrote " << tokens << " synthetic uint16 tokens to " << temporary.prefix << ".bin in " << std::fixed
              << std::setprecision(1) << took.count() << " s\n";
    spec.data_file = temporary.prefix;
    spec.data_type = "binidx";
  }
  const data::TokenSource source = data::open_dataset(spec);
  const std::optional<std::uint64_t> prime = data::best_magic_prime(source.size(), ctx_len);
  RWKV_CHECK(prime.has_value(), "bench data: ", data::magic_prime_suggestion(source.size(), ctx_len));
  const data::MagicPrimeSampler sampler({*prime, ctx_len, 0, 0}, source.size());
  const data::BatchBuilder builder(source, sampler, vocab_size, micro_bsz);
  std::vector<std::int32_t> x(micro_bsz * ctx_len);
  std::vector<std::int32_t> y(micro_bsz * ctx_len);
  std::cout << "data: " << source.size() << " tokens (" << source.dtype_name() << "), " << sampler.describe()
            << ", micro_bsz " << micro_bsz << ", " << steps << " steps per repeat\n";

  std::vector<double> rates;
  std::int64_t checksum = 0;  // keeps the copies observable
  for (std::uint64_t repeat = 0; repeat < repeats; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t step = repeat * steps; step < (repeat + 1) * steps; ++step) {
      builder.fill(step, x, y);
      checksum += x[step % x.size()] + y.back();
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    const double rate = double(steps * micro_bsz * ctx_len) / took.count();
    rates.push_back(rate);
    std::cout << "repeat " << repeat << ": " << std::fixed << std::setprecision(1) << rate / 1e6 << " M tokens/s\n";
  }
  std::sort(rates.begin(), rates.end());
  std::cout << "median: " << std::fixed << std::setprecision(1) << rates[rates.size() / 2] / 1e6
            << " M tokens/s (checksum " << checksum << ")\n";
  return 0;
}

}  // namespace

RWKV_BENCH("data", "batch assembly from a memory-mapped binidx (magic-prime sampling)", run_bench_data);

}  // namespace rwkv::cli
