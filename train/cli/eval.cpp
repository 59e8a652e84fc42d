// `rwkv eval --model X.h5 --data D`: mean cross-entropy and perplexity of a model on held-out data.
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "data/dataset.h"
#include "train/cli/command.h"
#include "train/evaluate.h"
#include "train/model_io.h"

namespace rwkv::cli {

namespace {

int run_eval(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string model_path, data_file, data_type, device_name = "auto";
  int64_t ctx_len = 0, batch = 8;
  bool json = false;
  po::options_description description(
      "usage: rwkv eval --model X.h5 --data D [options]\n\n"
      "Mean cross-entropy over consecutive windows of ctx_len + 1 tokens (inputs: the first ctx_len, targets:\n"
      "the last ctx_len; an incomplete final window is dropped)");
  description.add_options()("help,h", "show this help")("model", po::value(&model_path)->required(),
                                                        "HDF5 weights (or a checkpoint)")(
      "data", po::value(&data_file)->required(), "binidx prefix/glob/list, .npy, or a text file")(
      "data_type", po::value(&data_type), "binidx, numpy, utf-8 or bytes (default: from the file name)")(
      "ctx_len", po::value(&ctx_len), "window length (default: the model's ctx_len)")(
      "batch", po::value(&batch)->default_value(batch), "windows per forward pass")(
      "device", po::value(&device_name)->default_value(device_name), "auto, cpu, cuda or cuda:N")(
      "json", po::bool_switch(&json), "print one JSON object {loss, ppl, tokens}");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;

  const Device device = parse_device(device_name);
  std::unique_ptr<Rwkv4> model = load_model(model_path);
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

RWKV_COMMAND("eval", "mean cross-entropy and perplexity of a model on held-out data", run_eval);

}  // namespace rwkv::cli
