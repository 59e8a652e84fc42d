// Samplers: which windows of ctx_len + 1 tokens each rank reads at each step.
//
// A sampler is a pure function of (step, rank, world, micro_bsz) and its configuration, so restarts
// and any world size reproduce the same data. All three interleave ranks the same way: at step s the
// global batch has world·micro_bsz samples m = j·world + rank (j = 0..micro_bsz−1 on each rank), so the
// union of all ranks' samples equals what one rank with world·micro_bsz samples per step reads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rwkv::data {

class Sampler {
public:
  virtual ~Sampler() = default;

  std::uint64_t ctx_len() const { return ctx_len_; }

  // Start offsets of this rank's micro_bsz = out.size() windows (ctx_len + 1 tokens each) at `step`.
  void sample_offsets(std::uint64_t step, std::uint64_t rank, std::uint64_t world, std::span<std::uint64_t> out) const;
  std::vector<std::uint64_t> sample_offsets(std::uint64_t step, std::uint64_t rank, std::uint64_t world,
                                            std::uint64_t micro_bsz) const;

  // One line for logs, e.g. "magic_prime 389 (ctx_len 512, shift 0, epoch_begin 0)".
  virtual std::string describe() const = 0;

protected:
  explicit Sampler(std::uint64_t ctx_len);
  // Offset of global sample m (0 <= m < world·micro_bsz) of `step`.
  virtual std::uint64_t offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const = 0;
  // Checks that a step layout is usable (e.g. 40320 divisible by world·micro_bsz).
  virtual void check_layout(std::uint64_t world, std::uint64_t micro_bsz) const;

private:
  std::uint64_t ctx_len_;
};

// RWKV-LM's deterministic order (spec §5.3). With E = epoch_steps = 40320 / (micro_bsz·world):
//   epoch = epoch_begin + step / E,  idx = (step % E)·micro_bsz + j,
//   ii = 1 + epoch·40320 + idx·world + rank,  offset = magic_chunk(ii, p)·ctx_len + shift.
// `step` counts optimizer steps from the start of mini-epoch epoch_begin (pass epoch_begin 0 with
// absolute steps). 40320 must be divisible by micro_bsz·world, else sample_offsets throws.
struct MagicPrimeConfig {
  std::uint64_t magic_prime = 0;
  std::uint64_t ctx_len = 0;
  std::uint64_t shift = 0;  // RWKV-LM's my_pile_shift
  std::uint64_t epoch_begin = 0;
  // RWKV-LM's my_random_steps: samples with ii < random_samples read a uniform random window (keyed by seed
  // and ii, like RandomSampler), and the prime's order uses ii − random_samples for the others (spec §5.3).
  std::uint64_t random_samples = 0;
  std::uint64_t seed = 0;
};

class MagicPrimeSampler final : public Sampler {
public:
  // Validates the prime against the data size (validate_magic_prime: throws with the prime to use).
  MagicPrimeSampler(const MagicPrimeConfig& config, std::uint64_t tokens);

  // Optimizer steps per mini-epoch of 40320 samples; throws when micro_bsz·world does not divide 40320.
  static std::uint64_t epoch_steps(std::uint64_t micro_bsz, std::uint64_t world);
  // The 1-based global sample index ii of sample j on `rank` at `step`.
  std::uint64_t sample_index(std::uint64_t step, std::uint64_t rank, std::uint64_t world, std::uint64_t micro_bsz,
                             std::uint64_t j) const;
  const MagicPrimeConfig& config() const { return config_; }
  std::string describe() const override;

private:
  std::uint64_t offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const override;
  void check_layout(std::uint64_t world, std::uint64_t micro_bsz) const override;

  MagicPrimeConfig config_;
  std::uint64_t random_range_;  // offsets a random sample can start at: [0, tokens − ctx_len − 1)
};

// Uniform offsets in [0, tokens − ctx_len − 1) (RWKV-LM's random mode), drawn from a counter-based hash
// of (seed, global sample number step·samples_per_step + m), so the draw is a pure function and does not
// depend on how a step is split over ranks or accumulated micro-batches.
class RandomSampler final : public Sampler {
public:
  RandomSampler(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t seed);
  std::string describe() const override;

private:
  std::uint64_t offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const override;

  std::uint64_t range_;  // number of possible offsets
  std::uint64_t seed_;
};

// Evaluation: consecutive non-overlapping windows of ctx_len + 1 tokens (window k starts at k·(ctx_len + 1)),
// as `rwkv eval` defines it; an incomplete last window is dropped. Step s reads windows s·world·micro_bsz + m;
// asking past the last window throws.
class SequentialSampler final : public Sampler {
public:
  SequentialSampler(std::uint64_t tokens, std::uint64_t ctx_len);
  std::uint64_t window_count() const { return windows_; }
  // Steps whose windows all exist: window_count / (world·micro_bsz).
  std::uint64_t full_steps(std::uint64_t world, std::uint64_t micro_bsz) const;
  std::string describe() const override;

private:
  std::uint64_t offset_of(std::uint64_t step, std::uint64_t m, std::uint64_t samples_per_step) const override;

  std::uint64_t windows_;
};

// What the trainer asks for; magic_prime 0 means random sampling.
struct TrainingSampling {
  std::uint64_t ctx_len = 0;
  std::uint64_t magic_prime = 0;
  std::uint64_t shift = 0;
  std::uint64_t epoch_begin = 0;
  std::uint64_t seed = 0;
  std::uint64_t random_samples = 0;  // my_random_steps (magic prime only)
};

// The training sampler: magic-prime order whenever magic_prime is set (for any data type), random
// otherwise. The trainer calls this once after opening the data.
std::unique_ptr<Sampler> make_training_sampler(const TrainingSampling& sampling, std::uint64_t tokens);

}  // namespace rwkv::data
