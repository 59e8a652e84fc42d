// RWKV-LM's "magic prime" sample order (spec §5.3) and the arithmetic around it.
//
// Sample ii (1-based, global over all ranks and mini-epochs) reads the ctx_len-aligned chunk
//   chunk(ii) = (factor · ii³) mod p,   factor = floor(p · 0.6180339887498949),
// i.e. the window of ctx_len + 1 tokens at offset chunk·ctx_len + shift. For a prime p ≡ 2 (mod 3),
// x ↦ x³ is a bijection of Z/p, so any p consecutive ii visit every chunk exactly once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rwkv::data {

// RWKV-LM's mini-epoch: 40320 (= 8!) samples, over all ranks.
inline constexpr std::uint64_t kSamplesPerMiniEpoch = 40320;

// Deterministic Miller–Rabin, exact for every 64-bit n.
bool is_prime(std::uint64_t n);

// floor(p · (sqrt(5) − 1) / 2) computed in double, as RWKV-LM does.
std::uint64_t magic_factor(std::uint64_t magic_prime);
// (factor · ii³) mod p with 64-bit modular arithmetic (ii is reduced mod p first).
std::uint64_t magic_chunk(std::uint64_t ii, std::uint64_t magic_prime);

// RWKV-LM's dataset.py check 0.99 < p / floor(tokens / ctx_len): a magic-prime run reads all but 1% of the data.
bool close_enough_to_chunks(std::uint64_t magic_prime, std::uint64_t chunks);

// The largest prime p ≡ 2 (mod 3) with p <= floor(tokens / ctx_len) − 1 and whose last window
// ((p − 1)·ctx_len + shift + ctx_len + 1 tokens) fits in the data, if it passes close_enough_to_chunks.
// std::nullopt when the data is too small (fewer than 3 full chunks) or no such prime lies within 1%.
std::optional<std::uint64_t> best_magic_prime(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t shift = 0);

// RWKV-LM's run length for a magic prime: my_exit_tokens = p · ctx_len; epoch_count = p / 40320.
inline std::uint64_t magic_exit_tokens(std::uint64_t magic_prime, std::uint64_t ctx_len) {
  return magic_prime * ctx_len;
}
inline std::uint64_t magic_epoch_count(std::uint64_t magic_prime) { return magic_prime / kSamplesPerMiniEpoch; }

// The end of a magic-prime run as RWKV-LM marks it (spec §5.3 "End of schedule"): rank 0 saves rwkv-final in
// on_train_batch_end when real_step == p // real_bsz − 1 + my_random_steps. There real_step is Lightning's
// trainer.global_step + epoch_begin·epoch_steps, and Lightning increments global_step when the optimizer steps,
// before on_train_batch_end runs: after the first batch it is 1. So real_step there counts *completed* steps,
// exactly like this trainer's global_step (+ epoch_begin·epoch_steps), and rwkv-final holds the weights after
// p // real_bsz − 1 + my_random_steps completed steps. Those steps read the samples ii = 1 .. (p // real_bsz − 1)·
// real_bsz (+ the random ones), all < p, so no chunk is read twice; the last real_bsz + p % real_bsz chunks of the
// permutation are never read. Returns that step count (absolute, from mini-epoch 0); 0 when p holds fewer than
// two global batches (RWKV-LM then never saves rwkv-final).
inline std::uint64_t magic_final_step(std::uint64_t magic_prime, std::uint64_t real_bsz,
                                      std::uint64_t random_steps = 0) {
  const std::uint64_t batches = real_bsz == 0 ? 0 : magic_prime / real_bsz;
  return batches < 2 ? 0 : batches - 1 + random_steps;
}

// How long a run on magic prime p is at a global batch of real_bsz sequences (micro_bsz × accumulation × GPUs),
// for data-info and tokenize: "135 steps with --my_exit_tokens p*ctx_len (ceil(p / 12)); 133 with the prime
// alone (p // 12 - 1, where RWKV-LM saves rwkv-final)", or why real_bsz cannot be used.
std::string magic_run_steps(std::uint64_t magic_prime, std::uint64_t real_bsz);

// Why magic_prime cannot be used for this data ("" when it can): not prime, p % 3 != 2,
// p > floor(tokens/ctx_len) − 1, p / floor(tokens/ctx_len) <= 0.99, or the last window would run past the end.
std::string magic_prime_problem(std::uint64_t magic_prime, std::uint64_t tokens, std::uint64_t ctx_len,
                                std::uint64_t shift = 0);

// Throws rwkv::Error when magic_prime_problem() is not empty. The message names every problem and the
// prime to use instead, with its my_exit_tokens and epoch_count. The trainer calls this.
void validate_magic_prime(std::uint64_t magic_prime, std::uint64_t tokens, std::uint64_t ctx_len,
                          std::uint64_t shift = 0);

// "use --magic_prime 389 (my_exit_tokens 199168, epoch_count 0)" or why there is none.
std::string magic_prime_suggestion(std::uint64_t tokens, std::uint64_t ctx_len, std::uint64_t shift = 0);

}  // namespace rwkv::data
