// `rwkv init --config F --out X.h5`: writes a freshly initialised model (spec §3) to an HDF5 weights file.
#include <cstdio>
#include <iostream>

#include "train/cli/command.h"
#include "train/config/config.h"
#include "train/model/model_init.h"
#include "train/io/model_io.h"

namespace rwkv::cli {

namespace {

int run_init(const std::vector<std::string>& args) {
  const ParsedConfig parsed = parse_train_config(args, {{"out", "where to write the HDF5 weights (required)"}});
  if (parsed.help) {
    std::cout << "usage: rwkv init --config F --out X.h5 [--key value ...]\n\n"
                 "Writes an RWKV-4 model with the official v4neo initialisation (seeded by `seed`; the embedding\n"
                 "bound is lr_init). Only the model keys and seed/lr_init matter here.\n\n"
              << parsed.help_text;
    return 0;
  }
  const auto out = parsed.extra.find("out");
  RWKV_CHECK(out != parsed.extra.end() && !out->second.empty(), "--out is required (the HDF5 file to write)");
  const TrainConfig& config = parsed.config;
  RWKV_CHECK(config.vocab_size > 0, "config: vocab_size must be given to initialise a model");
  Rwkv4 model(config.model());
  initialize_rwkv4(model, config.lr_init, config.seed);
  save_model(model, out->second);
  std::printf("wrote %s: RWKV-4 %s, %lld parameters, seed %llu\n", out->second.c_str(),
              model.config().describe().c_str(), static_cast<long long>(model.config().parameter_count()),
              static_cast<unsigned long long>(config.seed));
  return 0;
}

}  // namespace

RWKV_COMMAND("init", "write a freshly initialised RWKV-4 model (HDF5)", run_init);

}  // namespace rwkv::cli
