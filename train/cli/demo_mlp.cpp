// `rwkv demo-mlp`: trains a 2-layer MLP with the autograd on a synthetic task and prints the loss curve.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "train/cli/command.h"
#include "train/mlp_demo.h"

namespace rwkv::cli {

namespace {

int run_demo_mlp(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  MlpDemoOptions options;
  po::options_description description("rwkv demo-mlp: train a 2-layer MLP on a synthetic 4-class task");
  description.add_options()("help,h", "show this help")(
      "steps", po::value<int64_t>(&options.steps)->default_value(options.steps), "SGD steps")(
      "lr", po::value<double>(&options.learning_rate)->default_value(options.learning_rate), "learning rate")(
      "seed", po::value<uint64_t>(&options.seed)->default_value(options.seed), "random seed");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;
  options.on_step = [&](int64_t step, double loss) {
    if (step % 50 == 0 || step == options.steps - 1) std::printf("step %5lld  loss %.4f\n", static_cast<long long>(step), loss);
  };
  const auto start = std::chrono::steady_clock::now();
  const MlpDemoResult result = train_mlp_demo(options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("final loss %.4f (from %.4f), training accuracy %.1f%%, %.2f s\n", result.final_loss,
              result.initial_loss, 100.0 * result.accuracy, seconds);
  return 0;
}

}  // namespace

RWKV_COMMAND("demo-mlp", "train a 2-layer MLP with the autograd on a synthetic task", run_demo_mlp);

}  // namespace rwkv::cli
