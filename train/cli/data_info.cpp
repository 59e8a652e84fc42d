// `rwkv data-info`: what a token dataset holds and how to sample it (magic prime, my_exit_tokens).
#include <boost/program_options.hpp>
#include <iomanip>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "data/batch_builder.h"
#include "data/dataset.h"
#include "data/magic_prime.h"
#include "data/sampler.h"
#include "train/cli/command.h"

namespace rwkv::cli {
namespace {

namespace po = boost::program_options;

void print_field(const std::string& name, const std::string& value) {
  std::cout << std::left << std::setw(16) << (name + ":") << value << "\n";
}

template <typename T>
void print_field(const std::string& name, const T& value) {
  print_field(name, detail::concat(value));
}

int run_data_info(const std::vector<std::string>& args) {
  data::DatasetSpec spec;
  std::uint64_t ctx_len = 0;
  std::uint64_t magic_prime = 0;
  std::uint64_t shift = 0;
  std::uint64_t show = 0;
  std::uint64_t world = 1;
  std::uint64_t rank = 0;
  std::uint64_t micro_bsz = 1;
  std::uint64_t epoch_begin = 0;
  std::uint64_t seed = 0;
  std::uint64_t vocab_size = 0;
  po::options_description options(
      "usage: rwkv data-info --data D --ctx_len N [options]\n\n"
      "Prints the size of a token dataset, the magic prime to train on it with RWKV-LM's deterministic\n"
      "sampling and the matching my_exit_tokens and epoch_count; checks a given --magic_prime.\n\noptions");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("data", po::value(&spec.data_file)->required(),
       "data file: path, binidx prefix, glob, or comma-separated list")
      ("data_type", po::value(&spec.data_type), "binidx, numpy, utf-8 or bytes (default: from the file name)")
      ("vocab_dir", po::value(&spec.vocab_dir), "utf-8: directory of vocab.json (read if present, else written)")
      ("ctx_len", po::value(&ctx_len)->required(), "context length")
      ("magic_prime", po::value(&magic_prime), "check this magic prime (exit 1 and suggest one if unusable)")
      ("shift", po::value(&shift)->default_value(0), "token offset added to every window (my_pile_shift)")
      ("vocab_size", po::value(&vocab_size), "scan all tokens and check every id is < vocab_size")
      ("show", po::value(&show)->default_value(0), "print the first N sample offsets from step 0 on")
      ("world", po::value(&world)->default_value(1), "--show: number of ranks")
      ("rank", po::value(&rank)->default_value(0), "--show: this rank")
      ("micro_bsz", po::value(&micro_bsz)->default_value(1),
       "samples per rank per step (--show, and the run's step count with --world)")
      ("epoch_begin", po::value(&epoch_begin)->default_value(0), "--show: first mini-epoch")
      ("seed", po::value(&seed)->default_value(0), "--show: seed of random sampling (when no magic prime fits)");
  // clang-format on
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "rwkv data-info: " << e.what() << "\n\n" << options << "\n";
    return 2;
  }
  RWKV_CHECK(ctx_len > 0, "--ctx_len must be positive");

  const data::TokenSource source = data::open_dataset(spec);
  const std::uint64_t tokens = source.size();
  print_field("data", spec.data_file);
  print_field("data_type", source.kind());
  print_field("shards", source.shards().size());
  for (std::size_t i = 0; i < source.shards().size(); ++i) {
    const data::TokenShard& shard = source.shards()[i];
    std::cout << "  " << shard.path << ": " << shard.size << " tokens"
              << (shard.documents ? detail::concat(", ", *shard.documents, " documents") : std::string()) << "\n";
  }
  print_field("tokens", tokens);
  print_field("documents", source.documents() ? detail::concat(*source.documents()) : std::string("unknown"));
  print_field("dtype", source.dtype_name());
  if (source.vocab_size()) print_field("vocab_size", detail::concat(*source.vocab_size(), " (from the data)"));
  print_field("ctx_len", ctx_len);
  print_field("chunks", detail::concat(tokens / ctx_len, " (floor(tokens / ctx_len))"));

  const std::optional<std::uint64_t> best = data::best_magic_prime(tokens, ctx_len, shift);
  if (best) {
    print_field("magic_prime", detail::concat(*best, " (largest prime p with p % 3 == 2 and p <= chunks - 1)"));
    print_field("my_exit_tokens", detail::concat(data::magic_exit_tokens(*best, ctx_len), " (magic_prime * ctx_len)"));
    print_field("epoch_count", detail::concat(data::magic_epoch_count(*best), " (magic_prime / 40320)"));
    print_field("steps", data::magic_run_steps(*best, micro_bsz * world));
  } else {
    print_field("magic_prime", "none (" + data::magic_prime_suggestion(tokens, ctx_len, shift) + ")");
  }

  if (vm.count("vocab_size")) {
    const data::TokenScan scan = source.check_vocab(vocab_size);
    print_field("max token id", detail::concat(scan.max_id, " at ", source.describe_offset(scan.max_offset)));
    print_field("vocab check", detail::concat("ok (every id < ", vocab_size, ")"));
  }
  if (vm.count("magic_prime")) {
    data::validate_magic_prime(magic_prime, tokens, ctx_len, shift);
    print_field("given prime",
                detail::concat(magic_prime, " is valid (my_exit_tokens ", data::magic_exit_tokens(magic_prime, ctx_len),
                               ", epoch_count ", data::magic_epoch_count(magic_prime), ")"));
    print_field("given steps", data::magic_run_steps(magic_prime, micro_bsz * world));
  }
  if (show > 0) {
    data::TrainingSampling sampling;
    sampling.ctx_len = ctx_len;
    sampling.magic_prime = vm.count("magic_prime") ? magic_prime : best.value_or(0);
    sampling.shift = shift;
    sampling.epoch_begin = epoch_begin;
    sampling.seed = seed;
    const auto sampler = data::make_training_sampler(sampling, tokens);
    std::cout << "samples of rank " << rank << " of " << world << ", micro_bsz " << micro_bsz << ", "
              << sampler->describe() << ":\n";
    const auto* magic = dynamic_cast<const data::MagicPrimeSampler*>(sampler.get());
    std::uint64_t printed = 0;
    for (std::uint64_t step = 0; printed < show; ++step) {
      const std::vector<std::uint64_t> offsets = sampler->sample_offsets(step, rank, world, micro_bsz);
      for (std::uint64_t j = 0; j < micro_bsz && printed < show; ++j, ++printed) {
        std::cout << "  step " << step << " sample " << j << ": offset " << offsets[j];
        if (magic) {
          std::cout << " (ii " << magic->sample_index(step, rank, world, micro_bsz, j) << ", chunk "
                    << (offsets[j] - shift) / ctx_len << ")";
        }
        std::cout << "\n";
      }
    }
  }
  return 0;
}

}  // namespace

RWKV_COMMAND("data-info", "summarise a token dataset; choose and check the magic prime", run_data_info);

}  // namespace rwkv::cli
