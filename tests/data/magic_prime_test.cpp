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
      // RWKV-LM's dataset.py: 0.99 < p / chunks, or no prime at all (tiny data has none within 1%)
      if (expected && !(static_cast<double>(*expected) / static_cast<double>(chunks) > 0.99)) expected.reset();
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
  // 10000 chunks of 10 (primes p % 3 == 2 below: 9941, 9929, 9923, 9887): without shift p <= 9999 -> 9941;
  // the last window must end by token 100000: p·10 + shift + 1 <= 100000, so shift 600 -> p <= 9939 -> 9929,
  // shift 720 -> p <= 9927 -> 9923, shift 1000 -> p <= 9899 -> 9887, which is not above 0.99 · 10000: none.
  EXPECT_EQ(best_magic_prime(100000, 10), 9941u);
  EXPECT_EQ(best_magic_prime(100000, 10, 95), 9941u);
  EXPECT_EQ(best_magic_prime(100000, 10, 600), 9929u);
  EXPECT_EQ(best_magic_prime(100000, 10, 720), 9923u);
  EXPECT_EQ(best_magic_prime(100000, 10, 1000), std::nullopt);
  EXPECT_NE(magic_prime_problem(9941, 100000, 10, 600), "");
  EXPECT_EQ(best_magic_prime(20, 10), std::nullopt);
}

TEST(DataMagicPrime, APrimeMustCoverMoreThan99PercentOfTheChunks) {
  // dataset.py asserts 0.99 < p / floor(tokens / ctx_len): 40 chunks have no such prime (29 / 40 = 0.725).
  EXPECT_EQ(best_magic_prime(400, 10), std::nullopt);
  EXPECT_NE(magic_prime_suggestion(400, 10).find("(0.99, 1]"), std::string::npos) << magic_prime_suggestion(400, 10);
  EXPECT_NE(magic_prime_problem(29, 400, 10).find("29 / 40 = 0.7250 must be > 0.99"), std::string::npos)
      << magic_prime_problem(29, 400, 10);
  EXPECT_TRUE(close_enough_to_chunks(9941, 10000));
  EXPECT_FALSE(close_enough_to_chunks(9900, 10000));  // exactly 0.99 is refused too
  EXPECT_FALSE(close_enough_to_chunks(5, 0));
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
  // a smaller prime leaves more than 1% of the data unread: RWKV-LM refuses it, so does this trainer
  expect_error([] { validate_magic_prime(383, 200499, 512); }, {"383 / 391 = 0.9795 must be > 0.99", "Use --magic_prime 389"});
}

}  // namespace
}  // namespace rwkv::data
