// `rwkv generate --model X.h5 --prompt "..." --tokens N`: samples text from a model in RNN mode, streaming it.
// --state-out saves the state after the prompt; --state-in continues from such a file (a long prompt read once).
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>

#include "train/cli/command.h"
#include "train/model/generate.h"
#include "train/io/model_io.h"
#include "train/io/rnn_state_io.h"

namespace rwkv::cli {

namespace {

int run_generate(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string model_path, tokenizer, prompt, device_name = "auto", state_in, state_out;
  GenerationRequest request;
  po::options_description description(
      "usage: rwkv generate --model X.h5 [--tokenizer T.json] --prompt TEXT [--tokens N] [options]\n\n"
      "Samples from the model in RNN mode (top-p, then temperature, as RWKV-LM). Byte-level models and\n"
      "character-level ones (vocab.json next to the model) need no tokenizer.\n"
      "--state-out S.h5 saves the RNN state after the prompt (spec 8.2 layout, fp32, with the logits);\n"
      "--state-in S.h5 continues from it, reading --prompt (may be empty) after it: the same text as one run\n"
      "with both prompts, for the same seed");
  description.add_options()("help,h", "show this help")("model", po::value(&model_path)->required(),
                                                        "HDF5 weights or checkpoint")(
      "tokenizer", po::value(&tokenizer), "HuggingFace tokenizer.json (e.g. 20B_tokenizer.json)")(
      "prompt", po::value(&prompt), "text to continue (default: a newline)")(
      "tokens", po::value(&request.tokens)->default_value(request.tokens), "tokens to generate")(
      "temperature", po::value(&request.sampling.temperature)->default_value(request.sampling.temperature),
      "sampling temperature")("top_p", po::value(&request.sampling.top_p)->default_value(request.sampling.top_p),
                              "nucleus sampling mass (1: keep every token)")(
      "seed", po::value(&request.seed)->default_value(request.seed), "random seed (same seed, same text)")(
      "device", po::value(&device_name)->default_value(device_name), "auto, cpu, cuda or cuda:N")(
      "state-out", po::value(&state_out), "write the state after the prompt to this HDF5 file")(
      "state-in", po::value(&state_in), "start from this state file (from --state-out with the same model)");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;
  request.prompt = prompt;
  const Device device = parse_device(device_name);
  std::unique_ptr<Rwkv4> model = load_model(model_path);
  model->to(device);
  const std::unique_ptr<TextCodec> codec = make_codec(tokenizer, model_path, model->config().vocab_size);
  PromptState state;
  if (state_in.empty()) {
    state = read_prompt(*model, codec->encode(prompt.empty() ? "\n" : prompt), device);
  } else {
    state = load_rnn_state(state_in, model->config(), device);
    if (!prompt.empty()) state = read_prompt(*model, codec->encode(prompt), device, &state);
  }
  if (!state_out.empty()) save_rnn_state(state_out, state, model->config());
  std::fputs(prompt.c_str(), stdout);
  generate_from(*model, *codec, std::move(state), request, device, [](const std::string& piece) {
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
  });
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace

RWKV_COMMAND("generate", "sample text from a model (RNN mode, streamed)", run_generate);

}  // namespace rwkv::cli
