// Magic-prime arithmetic: the spec's test vectors, permutation property, best prime and its checks.
#include "data/magic_prime.h"

#include <set>

#include "tests/data/data_test_util.h"

namespace rwkv::data {
namespace {

using testing::expect_error;

TEST(DataMagicPrime, SpecTestVectors) {
  const std::uint64_t ii[] = {1, 2, 3, 40320, 40321};
  const std::uint64_t pile_1024[] = {200447775, 306256948, 222788917, 190889801, 72849314};
  const std::uint64_t pile_4096[] = {50111936, 76564220, 55697200, 11925192, 67748563};
  EXPECT_EQ(magic_factor(324331313), 200447775u);
  EXPECT_EQ(magic_factor(81082817), 50111936u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(magic_chunk(ii[k], 324331313), pile_1024[k]) << "ii " << ii[k];
    EXPECT_EQ(magic_chunk(ii[k], 81082817), pile_4096[k]) << "ii " << ii[k];
  }
}

TEST(DataMagicPrime, FactorsOfTheBuiltInPrimes) {
  // Spec §5.3 table.
  EXPECT_EQ(magic_factor(162165671), 100223896u);
  EXPECT_EQ(magic_factor(40541399), 25055962u);
}

TEST(DataMagicPrime, OnePeriodVisitsEveryChunkOnce) {
  for (std::uint64_t p : {2u, 5u, 389u, 1013u, 40961u}) {
    ASSERT_TRUE(is_prime(p) && p % 3 == 2);
    std::vector<int> visits(p, 0);
    for (std::uint64_t ii = 1; ii <= p; ++ii) ++visits[magic_chunk(ii, p)];
    for (std::uint64_t chunk = 0; chunk < p; ++chunk) ASSERT_EQ(visits[chunk], 1) << "p " << p << " chunk " << chunk;
    // The order repeats with period p in ii, also across huge ii (reduced mod p first).
    EXPECT_EQ(magic_chunk(7 + 1000003 * p, p), magic_chunk(7, p));
  }
}

TEST(DataMagicPrime, PrimeOneModThreeMissesChunks) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t ii = 1; ii <= 103; ++ii) seen.insert(magic_chunk(ii, 103));
  EXPECT_EQ(seen.size(), 35u);  // spec §5.3
}

TEST(DataMagicPrime, MillerRabinMatchesASieveAndKnownLargePrimes) {
  const std::uint64_t limit = 200000;
  std::vector<bool> composite(limit, false);
  for (std::uint64_t i = 2; i * i < limit; ++i) {
    if (!composite[i]) {
      for (std::uint64_t j = i * i; j < limit; j += i) composite[j] = true;
    }
  }
  for (std::uint64_t n = 0; n < limit; ++n) ASSERT_EQ(is_prime(n), n >= 2 && !composite[n]) << n;
  EXPECT_TRUE(is_prime(324331313));
  EXPECT_TRUE(is_prime(1670239709));
  EXPECT_TRUE(is_prime(18446744073709551557ull));  // largest 64-bit prime
  EXPECT_FALSE(is_prime(18446744073709551555ull));
  EXPECT_FALSE(is_prime(3215031751ull));           // strong pseudoprime to bases 2, 3, 5, 7
  EXPECT_FALSE(is_prime(3825123056546413051ull));  // strong pseudoprime to bases 2..23
  EXPECT_FALSE(is_prime(4294967297ull));           // 641 * 6700417
}

TEST(DataMagicPrime, BestPrimeMatchesBruteForce) {
  for (std::uint64_t ctx_len : {1u, 3u, 16u, 512u}) {
    for (std::uint64_t tokens = 0; tokens < 40 * ctx_len + 7; tokens += (ctx_len > 16 ? 37 : 1)) {
      std::optional<std::uint64_t> expected;
      const std::uint64_t chunks = tokens / ctx_len;
      for (std::uint64_t p = 2; chunks >= 1 && p <= chunks - 1; ++p) {
        bool prime = p >= 2;
        for (std::uint64_t d = 2; d * d <= p; ++d) prime = prime && p % d != 0;
        if (prime && p % 3 == 2) expected = p;
      }
      if (chunks < 3) expected.reset();
      ASSERT_EQ(best_magic_prime(tokens, ctx_len), expected) << tokens << " tokens, ctx_len " << ctx_len;
      if (expected) {
        EXPECT_EQ(magic_prime_problem(*expected, tokens, ctx_len), "");
      }
    }
  }
}

TEST(DataMagicPrime, PublishedPrimes) {
  // RWKV-LM's built-in primes for the Pile (spec §5.3) and the examples in user-asks §2.
  const std::uint64_t pile = 332115325534ull;
  EXPECT_EQ(best_magic_prime(pile, 1024), 324331313u);
  EXPECT_EQ(best_magic_prime(pile, 2048), 162165671u);
  EXPECT_EQ(best_magic_prime(pile, 4096), 81082817u);
  EXPECT_EQ(best_magic_prime(pile, 8192), 40541399u);
  EXPECT_EQ(best_magic_prime(200499, 512), 389u);
  EXPECT_EQ(best_magic_prime(1498226207, 512), 2926181u);
  EXPECT_EQ(best_magic_prime(1498226207, 4096), 365759u);
  EXPECT_EQ(magic_exit_tokens(389, 512), 199168u);
  EXPECT_EQ(magic_epoch_count(324331313), 8043u);
  EXPECT_EQ(magic_epoch_count(81082817), 2010u);
}

TEST(DataMagicPrime, ShiftLowersTheBestPrime) {
  // 40 chunks of 10: without shift p <= 39 -> 29; with shift 95 the last window must end by 400:
  // p·10 + 95 + 1 <= 400 -> p <= 30 -> 29; shift 120 -> p <= 27 -> 23.
  EXPECT_EQ(best_magic_prime(400, 10), 29u);
  EXPECT_EQ(best_magic_prime(400, 10, 95), 29u);
  EXPECT_EQ(best_magic_prime(400, 10, 120), 23u);
  EXPECT_NE(magic_prime_problem(29, 400, 10, 120), "");
  EXPECT_EQ(best_magic_prime(20, 10), std::nullopt);
}

TEST(DataMagicPrime, InvalidPrimesSayWhyAndWhatToUse) {
  expect_error(
      [] { validate_magic_prime(391, 200499, 512); },
      {"magic_prime 391", "200499 tokens", "not prime (17 * 23)", "391 % 3 = 1", "<= floor(tokens / ctx_len) - 1 = 390",
       "Use --magic_prime 389", "my_exit_tokens 199168", "epoch_count 0"});
  expect_error([] { validate_magic_prime(373, 200499, 512); }, {"373 % 3 = 1", "Use --magic_prime 389"});
  expect_error([] { validate_magic_prime(397, 200499, 512); }, {"must be <= floor", "past the end"});
  expect_error([] { validate_magic_prime(383, 200499, 512, 5000); }, {"shift 5000", "past the end"});
  expect_error([] { validate_magic_prime(5, 100, 512); }, {"No magic prime fits", "random sampling"});
  validate_magic_prime(389, 200499, 512);
  validate_magic_prime(383, 200499, 512);  // smaller primes are allowed (they use less of the data)
}

}  // namespace
}  // namespace rwkv::data
