// Samplers: magic-prime offsets follow spec §5.3 exactly, every sampler is a pure function that does
// not depend on how a step is split over ranks, random offsets stay in range, sequential windows tile.
#include "data/sampler.h"

#include <set>

#include "data/magic_prime.h"
#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;

// Spec §5.3 written out independently: the offsets rank `rank` reads at `step`.
std::vector<std::uint64_t> reference_magic_offsets(std::uint64_t step, std::uint64_t rank, std::uint64_t world,
                                                   std::uint64_t micro_bsz, const MagicPrimeConfig& config) {
  const std::uint64_t epoch_steps = 40320 / (micro_bsz * world);
  const std::uint64_t epoch = config.epoch_begin + step / epoch_steps;
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t j = 0; j < micro_bsz; ++j) {
    const std::uint64_t idx = (step % epoch_steps) * micro_bsz + j;
    const std::uint64_t ii = 1 + epoch * 40320 + idx * world + rank;
    offsets.push_back(magic_chunk(ii, config.magic_prime) * config.ctx_len + config.shift);
  }
  return offsets;
}

TEST(DataSampler, MagicPrimeFollowsTheSpecFormula) {
  const std::uint64_t tokens = 332115325534ull;  // the Pile
  const MagicPrimeConfig config{324331313, 1024, 0, 0};
  const MagicPrimeSampler sampler(config, tokens);
  // Step 0 on one rank with micro_bsz 1 reads ii = 1, 2, 3, ...: the spec's test vectors.
  EXPECT_EQ(sampler.sample_offsets(0, 0, 1, 1)[0], 200447775ull * 1024);
  EXPECT_EQ(sampler.sample_offsets(1, 0, 1, 1)[0], 306256948ull * 1024);
  EXPECT_EQ(sampler.sample_offsets(40319, 0, 1, 1)[0], 190889801ull * 1024);  // ii = 40320
  EXPECT_EQ(sampler.sample_offsets(40320, 0, 1, 1)[0], 72849314ull * 1024);   // ii = 40321, next mini-epoch

  const MagicPrimeConfig shifted{81082817, 4096, 768, 3};
  const MagicPrimeSampler other(shifted, tokens);
  for (std::uint64_t world : {1u, 2u, 8u}) {
    for (std::uint64_t micro_bsz : {1u, 4u, 12u}) {
      const std::uint64_t epoch_steps = MagicPrimeSampler::epoch_steps(micro_bsz, world);
      EXPECT_EQ(epoch_steps * micro_bsz * world, 40320u);
      for (std::uint64_t step :
           {std::uint64_t{0}, std::uint64_t{1}, epoch_steps - 1, epoch_steps, 7 * epoch_steps + 5}) {
        for (std::uint64_t rank = 0; rank < world; ++rank) {
          ASSERT_EQ(other.sample_offsets(step, rank, world, micro_bsz),
                    reference_magic_offsets(step, rank, world, micro_bsz, shifted))
              << "step " << step << " rank " << rank << " world " << world << " micro_bsz " << micro_bsz;
        }
      }
    }
  }
  EXPECT_EQ(other.sample_index(0, 0, 1, 1, 0), 1 + 3 * 40320u);  // epoch_begin 3
  EXPECT_EQ(other.sample_index(2, 1, 2, 4, 3), 1 + 3 * 40320u + (2 * 4 + 3) * 2 + 1);
}

TEST(DataSampler, MagicPrimeScheduleCoversEveryChunkOnce) {
  // p = 40961 > 40320 samples: one mini-epoch reads 40320 distinct chunks, all in bounds.
  const std::uint64_t ctx_len = 8;
  const std::uint64_t tokens = (40961 + 1) * ctx_len + 1;
  const MagicPrimeSampler sampler({40961, ctx_len, 0, 0}, tokens);
  std::set<std::uint64_t> chunks;
  const std::uint64_t micro_bsz = 16;
  const std::uint64_t world = 4;
  for (std::uint64_t step = 0; step < MagicPrimeSampler::epoch_steps(micro_bsz, world); ++step) {
    for (std::uint64_t rank = 0; rank < world; ++rank) {
      for (std::uint64_t offset : sampler.sample_offsets(step, rank, world, micro_bsz)) {
        ASSERT_EQ(offset % ctx_len, 0u);
        ASSERT_LE(offset + ctx_len + 1, tokens);
        chunks.insert(offset / ctx_len);
      }
    }
  }
  EXPECT_EQ(chunks.size(), 40320u);
}

// The union over ranks of step s, ordered by m = j·world + rank, equals one rank with world·micro_bsz.
void expect_world_independent(const Sampler& sampler, std::uint64_t micro_bsz, std::uint64_t steps) {
  for (std::uint64_t world : {1u, 2u, 4u}) {
    for (std::uint64_t step = 0; step < steps; ++step) {
      const std::vector<std::uint64_t> global = sampler.sample_offsets(step, 0, 1, world * micro_bsz);
      std::vector<std::uint64_t> merged(world * micro_bsz);
      for (std::uint64_t rank = 0; rank < world; ++rank) {
        const std::vector<std::uint64_t> local = sampler.sample_offsets(step, rank, world, micro_bsz);
        for (std::uint64_t j = 0; j < micro_bsz; ++j) merged[j * world + rank] = local[j];
      }
      ASSERT_EQ(merged, global) << sampler.describe() << ": world " << world << " step " << step;
    }
  }
}

TEST(DataSampler, RanksTogetherReadTheSingleRankSequence) {
  const std::uint64_t tokens = 1000000;
  expect_world_independent(MagicPrimeSampler({best_magic_prime(tokens, 64).value(), 64, 0, 1}, tokens), 4,
                           2 * 40320 / 16 + 3);  // crosses mini-epoch boundaries
  expect_world_independent(RandomSampler(tokens, 64, 1234), 4, 50);
  expect_world_independent(SequentialSampler(tokens, 64), 4, 50);
}

TEST(DataSampler, MagicPrimeNeedsADivisorOf40320) {
  const MagicPrimeSampler sampler({389, 512, 0, 0}, 200499);
  expect_error([&] { sampler.sample_offsets(0, 0, 1, 11); }, {"micro_bsz * world (11 * 1 = 11)", "40320"});
  expect_error([&] { sampler.sample_offsets(0, 0, 3, 256); }, {"3 = 768"});
  expect_error([&] { sampler.sample_offsets(0, 2, 2, 8); }, {"rank 2 is not in [0, world 2)"});
  expect_error([] { MagicPrimeSampler({391, 512, 0, 0}, 200499); }, {"Use --magic_prime 389"});
}

TEST(DataSampler, RandomIsDeterministicAndInRange) {
  const std::uint64_t tokens = 1000;
  const std::uint64_t ctx_len = 100;
  const RandomSampler sampler(tokens, ctx_len, 42);
  const RandomSampler same(tokens, ctx_len, 42);
  const RandomSampler other_seed(tokens, ctx_len, 43);
  std::vector<int> hits(tokens, 0);
  std::uint64_t differ = 0;
  for (std::uint64_t step = 0; step < 2000; ++step) {
    const auto offsets = sampler.sample_offsets(step, 1, 2, 8);
    ASSERT_EQ(offsets, same.sample_offsets(step, 1, 2, 8));
    differ += offsets != other_seed.sample_offsets(step, 1, 2, 8);
    for (std::uint64_t offset : offsets) {
      ASSERT_LT(offset, tokens - ctx_len - 1);  // [0, tokens − ctx_len − 1) as in RWKV-LM
      ++hits[offset];
    }
  }
  EXPECT_GT(differ, 1990u);
  // 16000 draws over 899 offsets: every offset is hit, none wildly more often than the mean of ~17.8.
  for (std::uint64_t offset = 0; offset < tokens - ctx_len - 1; ++offset) {
    EXPECT_GT(hits[offset], 0) << offset;
    EXPECT_LT(hits[offset], 50) << offset;
  }
  EXPECT_NE(sampler.sample_offsets(0, 0, 1, 4), sampler.sample_offsets(1, 0, 1, 4));
  expect_error([] { RandomSampler(101, 100, 0); }, {"more than ctx_len + 1 = 101 tokens", "101"});
}

TEST(DataSampler, SequentialWindowsDoNotOverlap) {
  const SequentialSampler sampler(1000, 100);  // windows of 101 tokens at 0, 101, ..., 808
  EXPECT_EQ(sampler.window_count(), 9u);
  EXPECT_EQ(sampler.full_steps(1, 2), 4u);
  EXPECT_EQ(sampler.sample_offsets(0, 0, 1, 3), (std::vector<std::uint64_t>{0, 101, 202}));
  EXPECT_EQ(sampler.sample_offsets(1, 1, 2, 2), (std::vector<std::uint64_t>{505, 707}));
  EXPECT_EQ(sampler.sample_offsets(8, 0, 1, 1), (std::vector<std::uint64_t>{808}));
  expect_error([&] { sampler.sample_offsets(9, 0, 1, 1); }, {"window 9", "only 9 complete windows"});
  EXPECT_EQ(SequentialSampler(1010, 100).window_count(), 10u);
  EXPECT_EQ(SequentialSampler(1009, 100).window_count(), 9u);
  EXPECT_EQ(SequentialSampler(100, 100).window_count(), 0u);
}

TEST(DataSampler, TrainingSamplerChoice) {
  TrainingSampling sampling;
  sampling.ctx_len = 512;
  EXPECT_NE(dynamic_cast<RandomSampler*>(make_training_sampler(sampling, 200499).get()), nullptr);
  sampling.magic_prime = 389;
  const auto magic = make_training_sampler(sampling, 200499);
  EXPECT_NE(dynamic_cast<MagicPrimeSampler*>(magic.get()), nullptr);
  EXPECT_EQ(magic->describe(), "magic_prime 389 (ctx_len 512, shift 0, epoch_begin 0)");
}

}  // namespace
}  // namespace rwkv::data
