// `rwkv eval --model X.h5 --data D`: mean cross-entropy and perplexity of a model on held-out data.
// `rwkv eval --model X.h5 --lambada F.jsonl --tokenizer T.json`: LAMBADA with the official RWKV protocol.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "data/dataset.h"
#include "train/cli/command.h"
#include "train/eval/evaluate.h"
#include "train/eval/lambada.h"
#include "train/io/model_io.h"

namespace rwkv::cli {

namespace {

int run_lambada(const Rwkv4& model, const std::string& model_path, const std::string& lambada_file,
                const std::string& tokenizer, const LambadaOptions& options, Device device, bool json) {
  RWKV_CHECK(model.config().vocab_size > kLambadaPrefixToken, "eval: LAMBADA starts every example with token ",
             kLambadaPrefixToken, " (\"\\n\" in the GPT-NeoX tokenizer), but the model's vocabulary has only ",
             model.config().vocab_size, " tokens");
  const std::unique_ptr<TextCodec> codec = make_codec(tokenizer, model_path, model.config().vocab_size);
  std::vector<LambadaExample> examples;
  for (const LambadaText& text : read_lambada_jsonl(lambada_file)) examples.push_back(tokenize_lambada(text, *codec));
  const bool show_progress = !json && ::isatty(2);
  const auto started = std::chrono::steady_clock::now();
  const LambadaResult result = evaluate_lambada(model, examples, options, device, [&](int64_t done, int64_t total) {
    if (show_progress) std::fprintf(stderr, "\r%lld/%lld examples", static_cast<long long>(done),
                                    static_cast<long long>(total));
  });
  if (show_progress) std::fputs("\n", stderr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (json) {
    std::printf("{\"ppl\": %.17g, \"acc\": %.17g, \"examples\": %lld, \"mean_logprob\": %.17g, "
                "\"target_tokens\": %lld, \"seconds\": %.6g}\n",
                result.perplexity, result.accuracy, static_cast<long long>(result.examples), result.mean_logprob,
                static_cast<long long>(result.target_tokens), seconds);
  } else {
    std::printf("model %s (%s), LAMBADA %s with %s\n", model_path.c_str(), model.config().describe().c_str(),
                lambada_file.c_str(), codec->describe().c_str());
    std::printf("ppl %.4f  acc %.4f  (%lld examples, %lld target tokens) on %s\n", result.perplexity,
                result.accuracy, static_cast<long long>(result.examples),
                static_cast<long long>(result.target_tokens), device.str().c_str());
    std::printf("%.1f s, %.2f examples/s\n", seconds, static_cast<double>(result.examples) / seconds);
  }
  return 0;
}

int run_eval(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string model_path, data_file, data_type, device_name = "auto", lambada_file, tokenizer;
  int64_t ctx_len = 0, batch = 8;
  LambadaOptions lambada_options;
  bool json = false;
  po::options_description description(
      "usage: rwkv eval --model X.h5 --data D [options]\n"
      "       rwkv eval --model X.h5 --lambada F.jsonl [--tokenizer T.json] [options]\n\n"
      "--data: mean cross-entropy over consecutive windows of ctx_len + 1 tokens (inputs: the first ctx_len,\n"
      "targets: the last ctx_len; an incomplete final window is dropped).\n"
      "--lambada: ChatRWKV's benchmark.py protocol: each line's \"text\" is split at its last space; the model\n"
      "reads token 187, the context, the target \" \" + last word in one forward; ppl = exp(-mean target\n"
      "log-probability), acc = share of examples whose every target token is the argmax");
  description.add_options()("help,h", "show this help")("model", po::value(&model_path)->required(),
                                                        "HDF5 weights (or a checkpoint)")(
      "data", po::value(&data_file), "binidx prefix/glob/list, .npy, or a text file")(
      "lambada", po::value(&lambada_file), "LAMBADA .jsonl ({\"text\": ...} per line), e.g. lambada_test.jsonl")(
      "tokenizer", po::value(&tokenizer), "--lambada: tokenizer.json (20B_tokenizer.json for the Pile models)")(
      "chunk", po::value(&lambada_options.chunk)->default_value(lambada_options.chunk),
      "--lambada: longer inputs run in pieces of this many tokens carrying the RNN state (same result)")(
      "data_type", po::value(&data_type), "binidx, numpy, utf-8 or bytes (default: from the file name)")(
      "ctx_len", po::value(&ctx_len), "window length (default: the model's ctx_len)")(
      "batch", po::value(&batch)->default_value(batch), "windows (or LAMBADA examples) per forward pass")(
      "device", po::value(&device_name)->default_value(device_name), "auto, cpu, cuda or cuda:N")(
      "json", po::bool_switch(&json),
      "print one JSON object {loss, ppl, tokens} ({ppl, acc, examples, ...} with --lambada)");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;

  RWKV_CHECK(data_file.empty() != lambada_file.empty(), "eval: give exactly one of --data and --lambada");
  const Device device = parse_device(device_name);
  std::unique_ptr<Rwkv4> model = load_model(model_path);
  if (!lambada_file.empty()) {
    model->to(device);
    lambada_options.batch = batch;
    return run_lambada(*model, model_path, lambada_file, tokenizer, lambada_options, device, json);
  }
  if (ctx_len <= 0) ctx_len = model->config().ctx_len;
  model->to(device);
  const std::string vocab_dir = std::filesystem::path(model_path).parent_path().string();
  const data::TokenSource source = data::open_dataset({data_file, data_type, vocab_dir});
  const EvalResult result = evaluate(*model, source, ctx_len, batch, device);
  if (json) {
    std::printf("{\"loss\": %.17g, \"ppl\": %.17g, \"tokens\": %lld}\n", result.loss, result.perplexity,
                static_cast<long long>(result.tokens));
  } else {
    std::printf("model %s (%s) on %s\n", model_path.c_str(), model->config().describe().c_str(), data_file.c_str());
    std::printf("loss %.6f  ppl %.4f  over %lld tokens (%lld windows of %lld) on %s\n", result.loss,
                result.perplexity, static_cast<long long>(result.tokens), static_cast<long long>(result.windows),
                static_cast<long long>(ctx_len), device.str().c_str());
  }
  return 0;
}

}  // namespace

RWKV_COMMAND("eval", "held-out loss and perplexity, or LAMBADA (--lambada), of a model", run_eval);

}  // namespace rwkv::cli
