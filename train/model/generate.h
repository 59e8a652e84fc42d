// Text generation in RNN mode (spec §8): the prompt is run once in parallel mode to build the state, then one
// token at a time, sampled with RWKV-LM's top-p then temperature rule (§8.4).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "train/model/model.h"

namespace rwkv {

struct SamplingOptions {
  double temperature = 1.0;
  double top_p = 0.85;
};

// Spec §8.4: p = softmax(logits); keep the tokens whose probability is at least the one where the sorted
// cumulative sum first exceeds top_p (ties kept); p <- p^(1/temperature); draw from the renormalised rest. When
// no cumulative sum exceeds top_p (top_p >= 1), every token is kept, instead of RWKV-LM's collapse to greedy.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, Generator& rng);

// Turns text into ids and back: the BPE tokenizer, bytes (vocab 256), or a character vocabulary.
class TextCodec {
public:
  virtual ~TextCodec() = default;
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  virtual std::string describe() const = 0;
  virtual int64_t vocab_size() const = 0;
  // Ids never to sample (the document separator of the Pile tokenizer, as RWKV-LM's run.py does).
  virtual std::vector<int32_t> banned() const { return {}; }
};

// The codec for a model: `tokenizer_path` when given; else vocab.json next to the model (character level);
// else bytes when the model's vocabulary is 256. Throws when none fits.
std::unique_ptr<TextCodec> make_codec(const std::string& tokenizer_path, const std::string& model_path,
                                      int64_t vocab_size);

struct GenerationRequest {
  std::string prompt;  // empty: starts from "\n"
  int64_t tokens = 100;
  SamplingOptions sampling;
  uint64_t seed = 0;
};

// Generates and calls on_text with each new piece of decoded text as soon as it is complete UTF-8.
// Returns the generated ids. Deterministic for a seed. Same as read_prompt() then generate_from().
std::vector<int32_t> generate(const Rwkv4& model, const TextCodec& codec, const GenerationRequest& request,
                              Device device, const std::function<void(const std::string&)>& on_text);

// The model after reading some tokens: all that generation needs to continue (rnn_state_io.h saves it).
struct PromptState {
  ModelState layers;          // batch 1, on the model's device
  std::vector<float> logits;  // after the last token read, before any banned id is masked
  int64_t tokens = 0;         // tokens read so far
};

// Reads `ids` (at least one) in parallel mode from `start`, or from the zero state when it is null.
PromptState read_prompt(const Rwkv4& model, std::span<const int32_t> ids, Device device,
                        const PromptState* start = nullptr);

// Samples request.tokens tokens from `state` (request.prompt is not read: it is already in the state).
std::vector<int32_t> generate_from(const Rwkv4& model, const TextCodec& codec, PromptState state,
                                   const GenerationRequest& request, Device device,
                                   const std::function<void(const std::string&)>& on_text);

}  // namespace rwkv
