// LAMBADA (train/eval/lambada.h): the jsonl reader and its errors, the split at the last space, the 187 prefix, the
// every-token-argmax rule on a model whose logits are known a priori, and the numbers against the independent
// PyTorch reference (tests/reference/lambada_reference.py) with byte tokens and with the GPT-NeoX tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <unistd.h>

#include "tests/train/model/model_test_util.h"
#include "train/io/hdf5.h"
#include "train/eval/lambada.h"
#include "train/io/model_io.h"

#ifndef RWKV_DEFAULT_TOKENIZER_JSON
#define RWKV_DEFAULT_TOKENIZER_JSON ""
#endif

namespace rwkv {
namespace {

namespace fs = std::filesystem;

std::string source_dir() {
  const char* from_environment = std::getenv("RWKV_SOURCE_DIR");
  return from_environment ? from_environment : RWKV_SOURCE_DIR;
}
std::string fixture(const std::string& name) { return source_dir() + "/tests/train/files/" + name; }

std::string tokenizer_json() {
  const char* from_environment = std::getenv("RWKV_TOKENIZER_JSON");
  return from_environment != nullptr && *from_environment != '\0' ? from_environment : RWKV_DEFAULT_TOKENIZER_JSON;
}

std::string python_with_torch() {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    const std::string probe = std::string(python) + " -c 'import torch, h5py' > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return python;
  }
  return "";
}

class Lambada : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rwkv_lambada_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  // The byte codec (vocabulary 256, no vocab.json next to the "model").
  std::unique_ptr<TextCodec> bytes() const { return make_codec("", (dir_ / "none.h5").string(), 256); }
  std::string error_of(const std::string& text) const {
    const std::string path = write("bad.jsonl", text);
    try {
      read_lambada_jsonl(path);
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      return message;
    }
    ADD_FAILURE() << "no error for " << text;
    return "";
  }

  fs::path dir_;
};

TEST_F(Lambada, SplitsAtTheLastSpace) {
  const LambadaText a = split_lambada_text("a b c", "x");
  EXPECT_EQ(a.context, "a b");
  EXPECT_EQ(a.target, " c");
  const LambadaText leading = split_lambada_text(" word", "x");
  EXPECT_EQ(leading.context, "");
  EXPECT_EQ(leading.target, " word");
  const LambadaText trailing = split_lambada_text("ends with ", "x");  // as Python's rsplit(" ", 1)
  EXPECT_EQ(trailing.context, "ends with");
  EXPECT_EQ(trailing.target, " ");
  const LambadaText tab = split_lambada_text("one two\tthree", "x");  // only ' ' splits
  EXPECT_EQ(tab.context, "one");
  EXPECT_EQ(tab.target, " two\tthree");
  EXPECT_THROW(split_lambada_text("nospace", "x"), Error);
}

TEST_F(Lambada, ReadsTheHandMadeFile) {
  const std::vector<LambadaText> texts = read_lambada_jsonl(fixture("lambada_handmade.jsonl"));
  ASSERT_EQ(texts.size(), 5u);  // the blank line 3 is skipped
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"ab", " cd"}, {"ab", " ce"}, {"a b", " cd"}, {"", " cd"}, {"ab", " dc"}};
  const std::vector<int64_t> lines = {1, 2, 4, 5, 6};
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(texts[i].context, expected[i].first) << i;
    EXPECT_EQ(texts[i].target, expected[i].second) << i;
    EXPECT_EQ(texts[i].line, lines[i]) << i;
  }
  // CRLF line ends and unicode escapes.
  const auto crlf =
      read_lambada_jsonl(write("crlf.jsonl", "{\"text\": \"x y\"}\r\n{\"text\": \"caf\\u00e9 au lait\"}\r\n"));
  ASSERT_EQ(crlf.size(), 2u);
  EXPECT_EQ(crlf[1].context, "caf\xc3\xa9 au");
  EXPECT_EQ(crlf[1].target, " lait");
}

TEST_F(Lambada, BadLinesNameTheFileAndLine) {
  EXPECT_NE(error_of("{\"text\": \"a b\"}\nnot json\n").find(":2: not JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"txt\": \"a b\"}\n").find(":1: the object has no \"text\" field"), std::string::npos);
  EXPECT_NE(error_of("\n{\"text\": 5}\n").find(":2: \"text\" is a number, expected a string"), std::string::npos);
  EXPECT_NE(error_of("[\"a b\"]\n").find(":1: expected a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"a b\"}\n{\"text\": \"a b\"}\n{\"text\": \"nospace\"}\n")
                .find(":3: the text has no space"),
            std::string::npos);
  EXPECT_NE(error_of("\n\n").find("holds no examples"), std::string::npos);
  EXPECT_THROW(read_lambada_jsonl((dir_ / "missing.jsonl").string()), Error);
}

TEST_F(Lambada, TokenizesWithThePrefixAndTheSpacedTarget) {
  const LambadaExample example = tokenize_lambada(split_lambada_text("a b cd", "x"), *bytes());
  EXPECT_EQ(example.context, (std::vector<int32_t>{187, 'a', ' ', 'b'}));
  EXPECT_EQ(example.target, (std::vector<int32_t>{' ', 'c', 'd'}));
  const LambadaExample empty_context = tokenize_lambada(split_lambada_text(" cd", "x"), *bytes());
  EXPECT_EQ(empty_context.context, (std::vector<int32_t>{187}));
}

// A byte-level "bigram" model whose logits are known: blocks that add nothing (zero output matrices),
// emb = identity, so ln_out(x) = a * (e_i - 1/C) + bias with bias = a / C gives exactly a * e_i, and
// head[next(i), i] = K makes the logits after token i equal to D = K * a at next(i) and 0 elsewhere.
struct BigramModel {
  static constexpr int64_t kVocab = 256;
  static constexpr double kMargin = 3.0;  // D

  explicit BigramModel(const std::map<int32_t, int32_t>& next) : model(config()) {
    const double eps = 1e-5, variance = (kVocab - 1.0) / (kVocab * kVocab);  // of a one-hot vector
    const double a = 1.0 / (std::sqrt(variance + eps) * std::sqrt(variance / (variance + eps) + eps));
    float* emb = model.named("emb.weight").mutable_data().data<float>();
    for (int64_t i = 0; i < kVocab; ++i) emb[i * kVocab + i] = 1.0f;
    model.named("ln_out.bias").mutable_data().fill_(a / kVocab);
    float* head = model.named("head.weight").mutable_data().data<float>();
    for (const auto& [from, to] : next) head[to * kVocab + from] = static_cast<float>(kMargin / a);
  }
  static ModelConfig config() {
    ModelConfig c;
    c.n_layer = 2;
    c.n_embd = kVocab;
    c.vocab_size = kVocab;
    c.ctx_len = 64;
    return c;
  }
  // log p of the predicted token, and of any other.
  static double hit() { return kMargin - std::log(std::exp(kMargin) + kVocab - 1); }
  static double miss() { return -std::log(std::exp(kMargin) + kVocab - 1); }

  Rwkv4 model;
};

TEST_F(Lambada, ScoresAModelWithKnownLogits) {
  // 187 -> ' ', a -> b, b -> ' ', ' ' -> c, c -> d, d -> c.
  const BigramModel bigram({{187, ' '}, {'a', 'b'}, {'b', ' '}, {' ', 'c'}, {'c', 'd'}, {'d', 'c'}});
  std::vector<LambadaExample> examples;
  for (const LambadaText& text : read_lambada_jsonl(fixture("lambada_handmade.jsonl"))) {
    examples.push_back(tokenize_lambada(text, *bytes()));
  }
  const double h = BigramModel::hit(), m = BigramModel::miss();
  // "ab cd": b->' ', ' '->c, c->d all predicted. "ab ce": e is not c's successor. "a b cd": split at the LAST
  // space (at the first, a->' ' would miss). " cd": the 187 prefix predicts ' '. "ab dc": one wrong token
  // (' '->d) among right ones is wrong.
  const std::vector<double> logprob = {3 * h, 2 * h + m, 3 * h, 3 * h, 2 * h + m};
  const std::vector<bool> correct = {true, false, true, true, false};
  for (const LambadaOptions options : {LambadaOptions{1, 1024}, LambadaOptions{8, 1024}, LambadaOptions{2, 2},
                                       LambadaOptions{3, 1}}) {
    SCOPED_TRACE("batch " + std::to_string(options.batch) + " chunk " + std::to_string(options.chunk));
    const LambadaResult result = evaluate_lambada(bigram.model, examples, options, Device::cpu());
    ASSERT_EQ(result.scores.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_NEAR(result.scores[i].logprob, logprob[i], 1e-5 * std::abs(logprob[i])) << i;
      EXPECT_EQ(result.scores[i].correct, correct[i]) << i;
    }
    const double mean = (13 * h + 2 * m) / 5;
    EXPECT_EQ(result.examples, 5);
    EXPECT_EQ(result.target_tokens, 15);
    EXPECT_NEAR(result.mean_logprob, mean, 1e-5 * std::abs(mean));
    EXPECT_NEAR(result.perplexity, std::exp(-mean), 1e-5 * std::exp(-mean));
    EXPECT_DOUBLE_EQ(result.accuracy, 0.6);
  }
}

TEST_F(Lambada, TiesGoToTheFirstIndex) {
  // A zero head: every logit is 0, so the argmax is token 0 (torch.argmax's first maximum).
  const BigramModel flat(std::map<int32_t, int32_t>{});
  const std::vector<LambadaExample> examples = {{{187}, {0}}, {{187}, {5}}, {{187, 'a'}, {0, 0}}};
  const LambadaResult result = evaluate_lambada(flat.model, examples, {}, Device::cpu());
  EXPECT_TRUE(result.scores[0].correct);
  EXPECT_FALSE(result.scores[1].correct);
  EXPECT_TRUE(result.scores[2].correct);
  EXPECT_NEAR(result.scores[0].logprob, -std::log(256.0), 1e-6);
  EXPECT_NEAR(result.scores[2].logprob, -2 * std::log(256.0), 1e-6);
}

TEST_F(Lambada, RejectsIdsOutsideTheVocabulary) {
  Rwkv4 model(testing::tiny_config());  // vocabulary 97: no room for the 187 prefix
  const std::vector<LambadaExample> examples = {{{187, 1}, {2}}};
  try {
    evaluate_lambada(model, examples, {}, Device::cpu());
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("token 187 outside the model's vocabulary of 97"), std::string::npos)
        << error.what();
  }
}

// Compares our scores of `examples` with the reference's, run with `input_arguments`.
void expect_matches_reference(const std::string& python, const Rwkv4& model, const std::string& weights,
                              const std::vector<LambadaExample>& examples, const std::string& input_arguments,
                              const fs::path& dir) {
  const std::string out = (dir / "reference.h5").string();
  const std::string command = python + " " + source_dir() + "/tests/reference/lambada_reference.py --weights " +
                              weights + " " + input_arguments + " --out " + out;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const hdf5::File reference = hdf5::File::open_read(out);
  const std::vector<double> logprob = reference.root().read_tensor("logprob", DType::f64).to_vector<double>();
  const std::vector<int64_t> correct = reference.root().read_tensor("correct", DType::i64).to_vector<int64_t>();
  ASSERT_EQ(logprob.size(), examples.size());
  for (const LambadaOptions options : {LambadaOptions{1, 1024}, LambadaOptions{4, 1024}, LambadaOptions{3, 5}}) {
    SCOPED_TRACE("batch " + std::to_string(options.batch) + " chunk " + std::to_string(options.chunk));
    const LambadaResult result = evaluate_lambada(model, examples, options, Device::cpu());
    for (size_t i = 0; i < examples.size(); ++i) {
      EXPECT_LE(std::abs(result.scores[i].logprob - logprob[i]), 1e-5 * std::abs(logprob[i])) << i;
      EXPECT_EQ(result.scores[i].correct, correct[i] != 0) << i;
    }
    const double ppl = reference.root().double_attribute("ppl"), acc = reference.root().double_attribute("acc");
    EXPECT_LE(std::abs(result.perplexity - ppl), 1e-5 * ppl);
    EXPECT_DOUBLE_EQ(result.accuracy, acc);
    std::printf("ppl %.9g vs reference %.9g, acc %.4f vs %.4f\n", result.perplexity, ppl, result.accuracy, acc);
  }
}

TEST_F(Lambada, MatchesTheReferenceWithBytes) {
  const std::string python = python_with_torch();
  if (python.empty()) GTEST_SKIP() << "no python3 with torch and h5py";
  ModelConfig config = testing::tiny_config();
  config.vocab_size = 256;
  Rwkv4 model(config);
  testing::randomize_parameters(model, 31);
  const std::string weights = (dir_ / "w.h5").string();
  save_model(model, weights);
  const std::string jsonl = fixture("lambada_sentences.jsonl");
  std::vector<LambadaExample> examples;
  for (const LambadaText& text : read_lambada_jsonl(jsonl)) examples.push_back(tokenize_lambada(text, *bytes()));
  // The reference splits and byte-encodes the file itself.
  expect_matches_reference(python, model, weights, examples, "--jsonl " + jsonl, dir_);
}

TEST_F(Lambada, TheReferenceAgreesOnTheModelWithKnownLogits) {
  const std::string python = python_with_torch();
  if (python.empty()) GTEST_SKIP() << "no python3 with torch and h5py";
  const BigramModel bigram({{187, ' '}, {'a', 'b'}, {'b', ' '}, {' ', 'c'}, {'c', 'd'}, {'d', 'c'}});
  const std::string weights = (dir_ / "bigram.h5").string();
  save_model(bigram.model, weights);
  const std::string jsonl = fixture("lambada_handmade.jsonl");
  std::vector<LambadaExample> examples;
  for (const LambadaText& text : read_lambada_jsonl(jsonl)) examples.push_back(tokenize_lambada(text, *bytes()));
  expect_matches_reference(python, bigram.model, weights, examples, "--jsonl " + jsonl, dir_);
}

TEST_F(Lambada, MatchesTheReferenceWithTheNeoXTokenizer) {
  const std::string tokenizer = tokenizer_json();
  if (tokenizer.empty() || !fs::exists(tokenizer)) {
    GTEST_SKIP() << "GPT-NeoX 20B tokenizer.json not found at '" << tokenizer << "'; set RWKV_TOKENIZER_JSON";
  }
  const std::string python = python_with_torch();
  if (python.empty()) GTEST_SKIP() << "no python3 with torch and h5py";
  ModelConfig config = testing::tiny_config();
  config.n_embd = 32;
  config.vocab_size = 50277;
  Rwkv4 model(config);
  testing::randomize_parameters(model, 41);
  const std::string weights = (dir_ / "w.h5").string();
  save_model(model, weights);
  const std::unique_ptr<TextCodec> codec = make_codec(tokenizer, weights, config.vocab_size);
  std::vector<LambadaExample> examples;
  for (const LambadaText& text : read_lambada_jsonl(fixture("lambada_sentences.jsonl"))) {
    examples.push_back(tokenize_lambada(text, *codec));
  }
  EXPECT_EQ(examples[0].context[0], 187);
  EXPECT_EQ(codec->encode("\n"), std::vector<int32_t>{187});  // why benchmark.py's prefix is 187
  std::vector<int64_t> context, target, context_lengths, target_lengths;
  for (const LambadaExample& example : examples) {
    context.insert(context.end(), example.context.begin() + 1, example.context.end());
    target.insert(target.end(), example.target.begin(), example.target.end());
    context_lengths.push_back(static_cast<int64_t>(example.context.size()) - 1);
    target_lengths.push_back(static_cast<int64_t>(example.target.size()));
  }
  const std::string ids = (dir_ / "examples.h5").string();
  {
    hdf5::File file = hdf5::File::create(ids);
    file.root().write_tensor("context", Tensor::from_vector(context, {static_cast<int64_t>(context.size())}));
    file.root().write_tensor("target", Tensor::from_vector(target, {static_cast<int64_t>(target.size())}));
    file.root().write_tensor("context_lengths",
                             Tensor::from_vector(context_lengths, {static_cast<int64_t>(examples.size())}));
    file.root().write_tensor("target_lengths",
                             Tensor::from_vector(target_lengths, {static_cast<int64_t>(examples.size())}));
    file.close();
  }
  expect_matches_reference(python, model, weights, examples, "--examples " + ids, dir_);
}

}  // namespace
}  // namespace rwkv
