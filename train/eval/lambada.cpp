#include "train/eval/lambada.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "autograd/functions.h"
#include "data/json.h"

namespace rwkv {

namespace {

namespace json = data::json;

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// The inputs of one example: the context, then the target without its last token (nothing predicts after it).
int64_t input_length(const LambadaExample& example) {
  return static_cast<int64_t>(example.context.size() + example.target.size()) - 1;
}

// Adds the log-probabilities and argmax checks of the target tokens that fall in logits [rows, span, V]
// (CPU f32 contiguous), whose column 0 is input position `start`.
void score_span(const Tensor& logits, int64_t start, std::span<const LambadaExample* const> rows,
                std::span<LambadaScore* const> scores) {
  const int64_t span = logits.size(1), vocab = logits.size(2);
  const float* data = logits.data<float>();
  for (size_t r = 0; r < rows.size(); ++r) {
    const LambadaExample& example = *rows[r];
    for (size_t i = 0; i < example.target.size(); ++i) {
      const int64_t position = static_cast<int64_t>(example.context.size() + i) - 1;  // predicts target[i]
      if (position < start || position >= start + span) continue;
      const float* row = data + (static_cast<int64_t>(r) * span + (position - start)) * vocab;
      int64_t best = 0;
      for (int64_t v = 1; v < vocab; ++v) {
        if (row[v] > row[best]) best = v;
      }
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - row[best]);
      const int32_t token = example.target[i];
      scores[r]->logprob += static_cast<double>(row[token]) - row[best] - std::log(sum);
      if (best != token) scores[r]->correct = false;
    }
  }
}

ModelState zero_state_on(const ModelConfig& config, int64_t batch, Device device) {
  ModelState state = zero_state(config, batch);
  for (LayerState& layer : state) {
    layer.att_previous = ag::Variable(layer.att_previous.data().to(device));
    layer.ffn_previous = ag::Variable(layer.ffn_previous.data().to(device));
    layer.wkv = ag::Variable(layer.wkv.data().to(device));
  }
  return state;
}

}  // namespace

LambadaText split_lambada_text(const std::string& text, const std::string& where) {
  const size_t space = text.rfind(' ');
  RWKV_CHECK(space != std::string::npos, where, ": the text has no space to split off its last word");
  return LambadaText{text.substr(0, space), " " + text.substr(space + 1), 0};
}

std::vector<LambadaText> read_lambada_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RWKV_CHECK(in, "lambada: cannot open '", path, "'");
  std::vector<LambadaText> texts;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (is_blank(line)) continue;
    const std::string where = path + ":" + std::to_string(number);
    json::Value value;
    try {
      value = json::parse(line);
    } catch (const Error& error) {
      RWKV_FAIL(where, ": not JSON (", error.what(), ")");
    }
    RWKV_CHECK(value.is_object(), where, ": expected a JSON object with a \"text\" string, got ",
               json::Value::kind_name(value.kind()));
    const json::Value* text = value.find("text");
    RWKV_CHECK(text != nullptr, where, ": the object has no \"text\" field");
    RWKV_CHECK(text->is_string(), where, ": \"text\" is ", json::Value::kind_name(text->kind()),
               ", expected a string");
    LambadaText split = split_lambada_text(text->as_string(), where);
    split.line = number;
    texts.push_back(std::move(split));
  }
  RWKV_CHECK(!in.bad(), "lambada: error reading '", path, "'");
  RWKV_CHECK(!texts.empty(), "lambada: '", path, "' holds no examples");
  return texts;
}

LambadaExample tokenize_lambada(const LambadaText& text, const TextCodec& codec) {
  LambadaExample example;
  example.context.push_back(kLambadaPrefixToken);
  for (int32_t id : codec.encode(text.context)) example.context.push_back(id);
  example.target = codec.encode(text.target);
  RWKV_CHECK(!example.target.empty(), "lambada: line ", text.line, ": the target '", text.target,
             "' encodes to no tokens");
  return example;
}

LambadaResult evaluate_lambada(const Rwkv4& model, std::span<const LambadaExample> examples,
                               const LambadaOptions& options, Device device,
                               const std::function<void(int64_t done, int64_t total)>& progress) {
  RWKV_CHECK(options.batch > 0 && options.chunk > 0, "lambada: batch and chunk must be positive");
  RWKV_CHECK(!examples.empty(), "lambada: no examples");
  const int64_t vocab = model.config().vocab_size;
  const auto count = static_cast<int64_t>(examples.size());
  for (int64_t e = 0; e < count; ++e) {
    const LambadaExample& example = examples[static_cast<size_t>(e)];
    RWKV_CHECK(!example.context.empty() && !example.target.empty(), "lambada: example ", e + 1,
               " has an empty context or target");
    for (const auto* ids : {&example.context, &example.target}) {
      for (int32_t id : *ids) {
        RWKV_CHECK(id >= 0 && id < vocab, "lambada: example ", e + 1, " has token ", id,
                   " outside the model's vocabulary of ", vocab);
      }
    }
  }
  LambadaResult result;
  result.scores.assign(examples.size(), LambadaScore{0.0, true});
  // Similar lengths share a batch, so little is padded.
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return input_length(examples[a]) < input_length(examples[b]); });
  ag::NoGradGuard no_grad;
  int64_t done = 0;
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(options.batch)) {
    const size_t last = std::min(order.size(), first + static_cast<size_t>(options.batch));
    std::vector<const LambadaExample*> rows;
    std::vector<LambadaScore*> scores;
    int64_t length = 0;
    for (size_t k = first; k < last; ++k) {
      rows.push_back(&examples[order[k]]);
      scores.push_back(&result.scores[order[k]]);
      length = std::max(length, input_length(examples[order[k]]));
    }
    const auto batch = static_cast<int64_t>(rows.size());
    std::vector<int32_t> ids(static_cast<size_t>(batch * length), 0);
    for (int64_t r = 0; r < batch; ++r) {
      const LambadaExample& example = *rows[static_cast<size_t>(r)];
      auto out = ids.begin() + r * length;
      out = std::copy(example.context.begin(), example.context.end(), out);
      std::copy(example.target.begin(), example.target.end() - 1, out);
    }
    const Tensor input = Tensor::from_vector(ids, {batch, length}).to(device);
    if (length <= options.chunk) {
      score_span(model.forward(input).data().to(Device::cpu()).to(DType::f32).contiguous(), 0, rows, scores);
    } else {
      ModelState state = zero_state_on(model.config(), batch, device);
      for (int64_t start = 0; start < length; start += options.chunk) {
        const Tensor piece = input.slice(1, start, std::min(length, start + options.chunk)).contiguous();
        const Tensor logits = model.forward(piece, &state).data().to(Device::cpu()).to(DType::f32).contiguous();
        score_span(logits, start, rows, scores);
      }
    }
    done += batch;
    if (progress) progress(done, count);
  }
  int64_t correct = 0;
  double sum = 0;
  for (size_t e = 0; e < examples.size(); ++e) {  // in input order, so batching does not change the sum
    sum += result.scores[e].logprob;
    correct += result.scores[e].correct ? 1 : 0;
    result.target_tokens += static_cast<int64_t>(examples[e].target.size());
  }
  result.examples = count;
  result.mean_logprob = sum / static_cast<double>(count);
  result.perplexity = std::exp(-result.mean_logprob);
  result.accuracy = static_cast<double>(correct) / static_cast<double>(count);
  return result;
}

}  // namespace rwkv
