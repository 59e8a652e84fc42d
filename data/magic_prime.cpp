#include "data/magic_prime.h"

#include <cctype>

#include "core/error.h"

namespace rwkv::data {
namespace {

__extension__ using u128 = unsigned __int128;

std::uint64_t mul_mod(std::uint64_t a, std::uint64_t b, std::uint64_t m) {
  return static_cast<std::uint64_t>(u128{a} * b % m);
}

std::uint64_t pow_mod(std::uint64_t base, std::uint64_t exponent, std::uint64_t m) {
  std::uint64_t result = 1 % m;
  base %= m;
  while (exponent > 0) {
    if (exponent & 1) result = mul_mod(result, base, m);
    base = mul_mod(base, base, m);
    exponent >>= 1;
  }
  return result;
}

// Smallest factor found by trial division below a small bound, for messages; 0 when none found.
std::uint64_t small_factor(std::uint64_t n) {
  for (std::uint64_t d = 2; d < 100000 && d * d <= n; ++d) {
    if (n % d == 0) return d;
  }
  return 0;
}

}  // namespace

bool is_prime(std::uint64_t n) {
  if (n < 2) return false;
  // These 12 bases decide primality for every n < 3.3·10^24 (so all of uint64).
  static constexpr std::uint64_t kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  for (std::uint64_t p : kBases) {
    if (n % p == 0) return n == p;
  }
  std::uint64_t d = n - 1;
  int twos = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++twos;
  }
  for (std::uint64_t a : kBases) {
    std::uint64_t x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int r = 1; r < twos && composite; ++r) {
      x = mul_mod(x, x, n);
      composite = x != n - 1;
    }
    if (composite) return false;
  }
  return true;
}

bool close_enough_to_chunks(std::uint64_t magic_prime, std::uint64_t chunks) {
  // dataset.py: assert args.magic_prime / dataset_slot > 0.99 (Python's float division)
  return chunks > 0 && static_cast<double>(magic_prime) / static_cast<double>(chunks) > 0.99;
}

std::uint64_t magic_factor(std::uint64_t magic_prime) {
  // (sqrt(5) − 1) / 2 as a double is exactly 0.6180339887498949; the product is rounded to double
  // and truncated, exactly like Python's int(p * factor).
  return static_cast<std::uint64_t>(static_cast<double>(magic_prime) * 0.6180339887498949);
}

std::uint64_t magic_chunk(std::uint64_t ii, std::uint64_t magic_prime) {
  const std::uint64_t p = magic_prime;
  const std::uint64_t x = ii % p;
  return mul_mod(magic_factor(p) % p, mul_mod(mul_mod(x, x, p), x, p), p);
}

std::optional<std::uint64_t> best_magic_prime(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t shift) {
  RWKV_CHECK(ctx_len > 0, "best_magic_prime: ctx_len must be positive");
  if (tokens / ctx_len < 3 || tokens <= shift) return std::nullopt;
  // p <= chunks − 1 (RWKV-LM's rule) and p·ctx_len + shift + 1 <= tokens (the last window fits).
  const std::uint64_t limit = std::min(tokens / ctx_len - 1, (tokens - shift - 1) / ctx_len);
  for (std::uint64_t p = limit; p >= 2; --p) {
    if (p % 3 == 2 && is_prime(p)) {
      if (!close_enough_to_chunks(p, tokens / ctx_len)) return std::nullopt;  // smaller ones are further away
      return p;
    }
  }
  return std::nullopt;
}

std::string magic_prime_problem(std::uint64_t magic_prime, std::uint64_t tokens, std::uint64_t ctx_len,
                                std::uint64_t shift) {
  RWKV_CHECK(ctx_len > 0, "magic_prime check: ctx_len must be positive");
  const std::uint64_t p = magic_prime;
  std::string problems;
  const auto add = [&](const std::string& problem) { problems += (problems.empty() ? "" : "; ") + problem; };
  if (!is_prime(p)) {
    const std::uint64_t factor = small_factor(p);
    add(factor != 0 ? detail::concat(p, " is not prime (", factor, " * ", p / factor, ")")
                    : detail::concat(p, " is not prime"));
  }
  if (p % 3 != 2) {
    add(detail::concat(p, " % 3 = ", p % 3, ", must be 2 (otherwise x^3 mod p misses chunks)"));
  }
  const std::uint64_t chunks = tokens / ctx_len;
  if (chunks == 0 || p > chunks - 1) {
    add(detail::concat("it must be <= floor(tokens / ctx_len) - 1 = ",
                       (chunks == 0 ? std::string("-1") : std::to_string(chunks - 1))));
  } else if (!close_enough_to_chunks(p, chunks)) {
    char ratio[32];
    std::snprintf(ratio, sizeof(ratio), "%.4f", static_cast<double>(p) / static_cast<double>(chunks));
    add(detail::concat("p / floor(tokens / ctx_len) = ", p, " / ", chunks, " = ", ratio,
                       " must be > 0.99 (RWKV-LM's dataset.py asserts it: a smaller prime leaves data unread)"));
  }
  // The last window starts at (p − 1)·ctx_len + shift and reads ctx_len + 1 tokens.
  __extension__ using u128 = unsigned __int128;
  const u128 needed = u128{p == 0 ? 0 : p - 1} * ctx_len + shift + ctx_len + 1;
  if (needed > tokens) {
    add(detail::concat("its last window ends at token ",
                       (needed > UINT64_MAX ? std::string("> 2^64") : std::to_string(std::uint64_t(needed))),
                       " = (p - 1)*ctx_len + shift + ctx_len + 1, past the end of the data"));
  }
  return problems;
}

std::string magic_prime_suggestion(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t shift) {
  const std::optional<std::uint64_t> best = best_magic_prime(tokens, ctx_len, shift);
  if (!best) {
    if (tokens / ctx_len < 3) {
      return detail::concat("no magic prime fits: the data has ", tokens / ctx_len, " chunks of ctx_len ", ctx_len,
                            " (at least 3 are needed); use a smaller ctx_len, or random sampling (no --magic_prime)");
    }
    return detail::concat("no magic prime fits: no prime p with p % 3 == 2 lies in (0.99, 1] x the ",
                          tokens / ctx_len, " chunks of ctx_len ", ctx_len,
                          " (RWKV-LM's dataset.py asserts 0.99 < p / chunks); use another ctx_len, or random "
                          "sampling (no --magic_prime)");
  }
  return detail::concat(
      "use --magic_prime ", *best, " (my_exit_tokens ", magic_exit_tokens(*best, ctx_len), ", epoch_count ",
      magic_epoch_count(*best),
      "), the largest prime p with p % 3 == 2 and p <= floor(tokens / ctx_len) - 1 = ", tokens / ctx_len - 1);
}

std::string magic_run_steps(std::uint64_t magic_prime, std::uint64_t real_bsz) {
  if (real_bsz == 0 || kSamplesPerMiniEpoch % real_bsz != 0) {
    return detail::concat("a global batch of ", real_bsz, " sequences cannot be used: it must divide 40320 ",
                          "(e.g. micro_bsz 8, 12, 16 or 32 on 1, 2, 4 or 8 GPUs)");
  }
  const std::uint64_t with_exit = (magic_prime + real_bsz - 1) / real_bsz;
  const std::uint64_t alone = magic_final_step(magic_prime, real_bsz);
  return detail::concat(with_exit, " steps at a global batch of ", real_bsz, " with --my_exit_tokens ",
                        "(ceil(p / ", real_bsz, ")); ",
                        alone > 0 ? detail::concat(alone, " with the prime alone (p // ", real_bsz,
                                                   " - 1, where RWKV-LM saves rwkv-final)")
                                  : std::string("the prime alone needs a smaller batch (p < 2 batches)"));
}

void validate_magic_prime(std::uint64_t magic_prime, std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t shift) {
  const std::string problem = magic_prime_problem(magic_prime, tokens, ctx_len, shift);
  if (problem.empty()) return;
  std::string suggestion = magic_prime_suggestion(tokens, ctx_len, shift);
  suggestion[0] = static_cast<char>(std::toupper(suggestion[0]));  // it starts a sentence here
  RWKV_FAIL("magic_prime ", magic_prime, " does not fit this data (", tokens, " tokens, ctx_len ", ctx_len,
            (shift ? detail::concat(", shift ", shift) : std::string()), "): ", problem, ". ", suggestion);
}

}  // namespace rwkv::data
