// LAMBADA evaluation with the official RWKV protocol (ChatRWKV v2/benchmark.py): each JSON line's "text" is
// split at its last space into a context and a target " " + last word; the model reads the token 187 ("\n" in
// the GPT-NeoX tokenizer), the context tokens, then the target tokens in one parallel forward; an example's
// score is the sum of the log-softmax of each target token at the position before it, and it is correct when
// every target token is the argmax there. ppl = exp(-mean score), accuracy = fraction correct.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "train/model/generate.h"
#include "train/model/model.h"

namespace rwkv {

inline constexpr int32_t kLambadaPrefixToken = 187;  // benchmark.py's PAD_SEQ

struct LambadaText {
  std::string context;  // the text before its last space
  std::string target;   // " " + the text after its last space
  int64_t line = 0;     // 1-based line in the file
};

// Reads a .jsonl file of {"text": ...} objects (other keys ignored; blank lines skipped). Throws naming the
// file and line for a line that is not JSON, not an object, has no "text" string, or whose text has no space.
std::vector<LambadaText> read_lambada_jsonl(const std::string& path);
// Splits one text at its last space (throws when it has none); `where` prefixes the error message.
LambadaText split_lambada_text(const std::string& text, const std::string& where);

struct LambadaExample {
  std::vector<int32_t> context;  // kLambadaPrefixToken, then the context's tokens
  std::vector<int32_t> target;   // the target's tokens (at least one)
};
LambadaExample tokenize_lambada(const LambadaText& text, const TextCodec& codec);

struct LambadaScore {
  double logprob = 0;    // sum over the target tokens of log p(token | everything before it)
  bool correct = false;  // every target token was the argmax (the first index among equal maxima)
};

struct LambadaResult {
  std::vector<LambadaScore> scores;  // one per example, in input order
  int64_t examples = 0;
  int64_t target_tokens = 0;
  double mean_logprob = 0;
  double perplexity = 0;  // exp(-mean_logprob)
  double accuracy = 0;    // fraction of correct examples
};

struct LambadaOptions {
  // Examples per forward. Examples are grouped by length and padded at the end with token 0; as the model is
  // causal and the rows independent, padding changes nothing before it.
  int64_t batch = 8;
  // An input longer than this many tokens (padded length of its group) runs as consecutive pieces carrying
  // the RNN state: the same function (spec §8), only the memory of the [batch, T, vocab] logits is bounded.
  int64_t chunk = 1024;
};

// Scores every example without recording gradients, on `device` (where the model's parameters must be).
// Throws for no examples, an id outside the vocabulary, or an empty target.
LambadaResult evaluate_lambada(const Rwkv4& model, std::span<const LambadaExample> examples,
                               const LambadaOptions& options, Device device,
                               const std::function<void(int64_t done, int64_t total)>& progress = nullptr);

}  // namespace rwkv
