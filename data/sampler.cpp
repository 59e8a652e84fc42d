#include "data/sampler.h"

#include "core/error.h"
#include "data/magic_prime.h"

namespace rwkv::data {
namespace {

// splitmix64's finaliser: a bijective 64-bit mix with good avalanche.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A uniform draw in [0, range) keyed by (seed, counter): Lemire's unbiased bounded draw, a rejected draw moves
// to the next counter.
std::uint64_t keyed_uniform(std::uint64_t seed, std::uint64_t counter, std::uint64_t range) {
  __extension__ using u128 = unsigned __int128;
  const std::uint64_t key = mix64(mix64(seed) ^ counter);
  const std::uint64_t threshold = (0 - range) % range;
  for (std::uint64_t attempt = 0;; ++attempt) {
    const u128 product = u128{mix64(key + attempt)} * range;
    if (static_cast<std::uint64_t>(product) >= threshold) return static_cast<std::uint64_t>(product >> 64);
  }
}

}  // namespace

Sampler::Sampler(std::uint64_t ctx_len) : ctx_len_(ctx_len) {
  RWKV_CHECK(ctx_len > 0, "sampler: ctx_len must be positive");
}

void Sampler::check_layout(std::uint64_t, std::uint64_t) const {}

void Sampler::sample_offsets(std::uint64_t step, std::uint64_t rank, std::uint64_t world,
                             std::span<std::uint64_t> out) const {
  RWKV_CHECK(world >= 1 && rank < world, "sampler: rank ", rank, " is not in [0, world ", world, ")");
  RWKV_CHECK(!out.empty(), "sampler: micro_bsz must be positive");
  check_layout(world, out.size());
  const std::uint64_t samples_per_step = world * out.size();
  for (std::uint64_t j = 0; j < out.size(); ++j) out[j] = offset_of(step, j * world + rank, samples_per_step);
}

std::vector<std::uint64_t> Sampler::sample_offsets(std::uint64_t step, std::uint64_t rank, std::uint64_t world,
                                                   std::uint64_t micro_bsz) const {
  std::vector<std::uint64_t> offsets(micro_bsz);
  sample_offsets(step, rank, world, offsets);
  return offsets;
}

// ---- magic prime ----

MagicPrimeSampler::MagicPrimeSampler(const MagicPrimeConfig& config, std::uint64_t tokens)
    : Sampler(config.ctx_len),
      config_(config),
      random_range_(tokens > config.ctx_len + 1 ? tokens - config.ctx_len - 1 : 0) {
  validate_magic_prime(config.magic_prime, tokens, config.ctx_len, config.shift);
}

std::uint64_t MagicPrimeSampler::epoch_steps(std::uint64_t micro_bsz, std::uint64_t world) {
  const std::uint64_t per_step = micro_bsz * world;
  RWKV_CHECK(per_step > 0 && kSamplesPerMiniEpoch % per_step == 0, "magic-prime sampling needs micro_bsz * world (",
             micro_bsz, " * ", world, " = ", per_step, ") to divide the ", kSamplesPerMiniEpoch,
             " samples of a mini-epoch (40320 = 2^7 * 3^2 * 5 * 7); e.g. micro_bsz 8, 12, 16 or 32 with a world "
             "size of 1, 2, 4 or 8");
  return kSamplesPerMiniEpoch / per_step;
}

void MagicPrimeSampler::check_layout(std::uint64_t world, std::uint64_t micro_bsz) const {
  epoch_steps(micro_bsz, world);
}

std::uint64_t MagicPrimeSampler::sample_index(std::uint64_t step, std::uint64_t rank, std::uint64_t world,
                                              std::uint64_t micro_bsz, std::uint64_t j) const {
  const std::uint64_t steps = epoch_steps(micro_bsz, world);
  const std::uint64_t epoch = config_.epoch_begin + step / steps;
  const std::uint64_t idx = (step % steps) * micro_bsz + j;
  return 1 + epoch * kSamplesPerMiniEpoch + idx * world + rank;
}

std::uint64_t MagicPrimeSampler::offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const {
  // idx·world + rank = (step % E)·micro_bsz·world + j·world + rank = (step % E)·samples_per_step + m.
  const std::uint64_t steps = kSamplesPerMiniEpoch / samples_per_step;
  const std::uint64_t epoch = config_.epoch_begin + step / steps;
  const std::uint64_t ii = 1 + epoch * kSamplesPerMiniEpoch + (step % steps) * samples_per_step + m;
  // RWKV-LM's dataset.py: `if ii < my_random_steps: random window; else: ii -= my_random_steps; magic order`.
  if (ii < config_.random_samples) return keyed_uniform(config_.seed, ii, random_range_);
  return magic_chunk(ii - config_.random_samples, config_.magic_prime) * config_.ctx_len + config_.shift;
}

std::string MagicPrimeSampler::describe() const {
  return detail::concat("magic_prime ", config_.magic_prime, " (ctx_len ", config_.ctx_len, ", shift ", config_.shift,
                        ", epoch_begin ", config_.epoch_begin,
                        config_.random_samples ? detail::concat(", random below ii ", config_.random_samples) : "",
                        ")");
}

// ---- random ----

RandomSampler::RandomSampler(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t seed)
    : Sampler(ctx_len), range_(tokens > ctx_len + 1 ? tokens - ctx_len - 1 : 0), seed_(seed) {
  RWKV_CHECK(range_ > 0, "random sampling needs more than ctx_len + 1 = ", ctx_len + 1, " tokens; the data has ",
             tokens);
}

std::uint64_t RandomSampler::offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const {
  // Keyed by the global sample number, so how a step is split into ranks or accumulated micro-batches does not
  // change which windows it reads. Lemire's unbiased bounded draw; a rejected draw moves to the next counter.
  return keyed_uniform(seed_, step * samples_per_step + m, range_);
}

std::string RandomSampler::describe() const {
  return detail::concat("random (ctx_len ", ctx_len(), ", seed ", seed_, ", offsets in [0, ", range_, "))");
}

// ---- sequential ----

SequentialSampler::SequentialSampler(std::uint64_t tokens, std::uint64_t ctx_len)
    : Sampler(ctx_len), windows_(tokens / (ctx_len + 1)) {}

std::uint64_t SequentialSampler::full_steps(std::uint64_t world, std::uint64_t micro_bsz) const {
  RWKV_CHECK(world * micro_bsz > 0, "sequential sampler: world and micro_bsz must be positive");
  return windows_ / (world * micro_bsz);
}

std::uint64_t SequentialSampler::offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const {
  const std::uint64_t window = step * samples_per_step + m;
  RWKV_CHECK(window < windows_, "sequential sampler: step ", step, " needs window ", window, " but the data has only ",
             windows_, " complete windows of ctx_len + 1 = ", ctx_len() + 1, " tokens");
  return window * (ctx_len() + 1);
}

std::string SequentialSampler::describe() const {
  return detail::concat("sequential (ctx_len ", ctx_len(), ", ", windows_, " windows)");
}

std::unique_ptr<Sampler> make_training_sampler(const TrainingSampling& sampling, std::uint64_t tokens) {
  if (sampling.magic_prime != 0) {
    return std::make_unique<MagicPrimeSampler>(
        MagicPrimeConfig{sampling.magic_prime, sampling.ctx_len, sampling.shift, sampling.epoch_begin,
                         sampling.random_samples, sampling.seed},
        tokens);
  }
  return std::make_unique<RandomSampler>(tokens, sampling.ctx_len, sampling.seed);
}

}  // namespace rwkv::data
