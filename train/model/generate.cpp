#include "train/model/generate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "autograd/functions.h"
#include "data/char_vocab.h"
#include "data/tokenizer.h"
#include "data/utf8_codepoints.h"

namespace rwkv {

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, Generator& rng) {
  RWKV_CHECK(!logits.empty(), "sample_token: no logits");
  RWKV_CHECK(options.temperature > 0, "sampling: temperature must be positive, got ", options.temperature);
  RWKV_CHECK(options.top_p > 0, "sampling: top_p must be positive, got ", options.top_p);
  const size_t vocab = logits.size();
  double peak = -INFINITY;
  for (float value : logits) peak = std::max(peak, static_cast<double>(value));
  std::vector<double> probs(vocab);
  double total = 0;
  for (size_t i = 0; i < vocab; ++i) total += probs[i] = std::exp(static_cast<double>(logits[i]) - peak);
  for (double& p : probs) p /= total;
  // Top-p cut-off.
  std::vector<double> sorted = probs;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  double cumulative = 0, cutoff = 0;
  for (double p : sorted) {
    cumulative += p;
    if (cumulative > options.top_p) {
      cutoff = p;
      break;
    }
  }
  for (double& p : probs) {
    if (p < cutoff) p = 0;
    if (options.temperature != 1.0 && p > 0) p = std::pow(p, 1.0 / options.temperature);
  }
  const double kept = std::accumulate(probs.begin(), probs.end(), 0.0);
  Tensor draw = Tensor::empty({1});
  rng.uniform_(draw, 0.0f, 1.0f);
  double target = static_cast<double>(draw.data<float>()[0]) * kept;
  int32_t last_kept = 0;
  for (size_t i = 0; i < vocab; ++i) {
    if (probs[i] <= 0) continue;
    last_kept = static_cast<int32_t>(i);
    if (target < probs[i]) return static_cast<int32_t>(i);
    target -= probs[i];
  }
  return last_kept;  // rounding left a sliver of mass past the end
}

namespace {

class BpeCodec final : public TextCodec {
public:
  explicit BpeCodec(const std::string& path) : tokenizer_(data::Tokenizer::from_file(path)), path_(path) {}
  std::vector<int32_t> encode(const std::string& text) const override { return tokenizer_.encode(text); }
  std::string decode(std::span<const int32_t> ids) const override { return tokenizer_.decode(ids); }
  std::string describe() const override { return "BPE tokenizer " + path_; }
  int64_t vocab_size() const override { return tokenizer_.vocab_size(); }
  std::vector<int32_t> banned() const override { return {0}; }  // <|endoftext|>, as RWKV-LM's run.py

private:
  data::Tokenizer tokenizer_;
  std::string path_;
};

class ByteCodec final : public TextCodec {
public:
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string text;
    for (int32_t id : ids) text.push_back(static_cast<char>(id));
    return text;
  }
  std::string describe() const override { return "bytes"; }
  int64_t vocab_size() const override { return 256; }
};

class CharCodec final : public TextCodec {
public:
  explicit CharCodec(const std::string& path) : vocab_(data::CharVocab::load(path)), path_(path) {}
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int32_t> ids;
    char32_t code = 0;
    for (size_t i = 0, start = 0; i < text.size(); start = i) {
      RWKV_CHECK(data::next_code_point(text, i, code), "prompt: invalid UTF-8 at byte ", start);
      const auto id = vocab_.id_of(code);
      RWKV_CHECK(id.has_value(), "prompt: ", data::describe_code_point(code), " at byte ", start,
                 " is not in the model's vocabulary ", path_);
      ids.push_back(*id);
    }
    return ids;
  }
  std::string decode(std::span<const int32_t> ids) const override { return vocab_.decode(ids); }
  std::string describe() const override { return "characters of " + path_; }
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }

private:
  data::CharVocab vocab_;
  std::string path_;
};

// Length of the longest prefix of `text` that ends on a UTF-8 character boundary.
size_t complete_utf8_prefix(const std::string& text) {
  size_t end = text.size();
  for (size_t back = 1; back <= 4 && back <= text.size(); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t length = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    if (length > back) end = text.size() - back;
    break;
  }
  return end;
}

}  // namespace

std::unique_ptr<TextCodec> make_codec(const std::string& tokenizer_path, const std::string& model_path,
                                      int64_t vocab_size) {
  std::unique_ptr<TextCodec> codec;
  const auto vocab_json = std::filesystem::path(model_path).parent_path() / "vocab.json";
  if (!tokenizer_path.empty()) {
    codec = std::make_unique<BpeCodec>(tokenizer_path);
  } else if (std::filesystem::exists(vocab_json)) {
    codec = std::make_unique<CharCodec>(vocab_json.string());
  } else if (vocab_size == 256) {
    codec = std::make_unique<ByteCodec>();
  } else {
    RWKV_FAIL("the model has a vocabulary of ", vocab_size, " tokens: pass --tokenizer T.json (e.g. the GPT-NeoX ",
              "20B tokenizer for the Pile models)");
  }
  RWKV_CHECK(codec->vocab_size() <= vocab_size, codec->describe(), " has ", codec->vocab_size(),
             " tokens but the model only ", vocab_size);
  return codec;
}

PromptState read_prompt(const Rwkv4& model, std::span<const int32_t> ids, Device device, const PromptState* start) {
  RWKV_CHECK(!ids.empty(), "generate: the prompt encodes to no tokens");
  ag::NoGradGuard no_grad;
  PromptState state;
  state.layers = start ? start->layers : zero_state(model.config(), 1);
  state.tokens = start ? start->tokens : 0;
  for (LayerState& layer : state.layers) {
    layer.att_previous = ag::Variable(layer.att_previous.data().to(device));
    layer.ffn_previous = ag::Variable(layer.ffn_previous.data().to(device));
    layer.wkv = ag::Variable(layer.wkv.data().to(device));
  }
  const std::vector<int32_t> copy(ids.begin(), ids.end());
  const Tensor input = Tensor::from_vector(copy, {1, static_cast<int64_t>(copy.size())}).to(device);
  const Tensor logits = model.forward(input, &state.layers).data();
  const int64_t last = logits.size(1) - 1;
  state.logits = logits.slice(1, last, last + 1).reshape({logits.size(2)}).to_vector<float>();
  state.tokens += static_cast<int64_t>(ids.size());
  return state;
}

std::vector<int32_t> generate_from(const Rwkv4& model, const TextCodec& codec, PromptState state,
                                   const GenerationRequest& request, Device device,
                                   const std::function<void(const std::string&)>& on_text) {
  RWKV_CHECK(static_cast<int64_t>(state.logits.size()) == model.config().vocab_size, "generate: the state has ",
             state.logits.size(), " logits but the model a vocabulary of ", model.config().vocab_size);
  Generator rng(request.seed);
  std::vector<int32_t> generated;
  std::string text;
  size_t printed = 0;
  for (int64_t i = 0; i < request.tokens; ++i) {
    std::vector<float> logits = state.logits;
    for (int32_t id : codec.banned()) logits[static_cast<size_t>(id)] = -INFINITY;
    const int32_t token = sample_token(logits, request.sampling, rng);
    generated.push_back(token);
    text = codec.decode(generated);
    const size_t ready = complete_utf8_prefix(text);
    if (ready > printed && on_text) {
      on_text(text.substr(printed, ready - printed));
      printed = ready;
    }
    if (i + 1 < request.tokens) state = read_prompt(model, std::span<const int32_t>(&token, 1), device, &state);
  }
  if (printed < text.size() && on_text) on_text(text.substr(printed));
  return generated;
}

std::vector<int32_t> generate(const Rwkv4& model, const TextCodec& codec, const GenerationRequest& request,
                              Device device, const std::function<void(const std::string&)>& on_text) {
  const std::vector<int32_t> prompt = codec.encode(request.prompt.empty() ? "\n" : request.prompt);
  return generate_from(model, codec, read_prompt(model, prompt, device), request, device, on_text);
}

}  // namespace rwkv
