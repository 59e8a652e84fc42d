// A 2-layer MLP trained with the autograd on a synthetic 4-class task: the smallest end-to-end proof that
// tape, backward and kernels learn. Used by `rwkv demo-mlp` and by the tests.
#pragma once

#include <cstdint>
#include <functional>

namespace rwkv {

struct MlpDemoOptions {
  int64_t samples = 512;
  int64_t inputs = 8;   // 2 informative + 6 noise features
  int64_t hidden = 32;
  int64_t classes = 4;  // the sign pattern of the first two features
  int64_t steps = 300;
  double learning_rate = 0.5;
  uint64_t seed = 1;
  std::function<void(int64_t step, double loss)> on_step;  // optional progress callback
};

struct MlpDemoResult {
  double initial_loss = 0;
  double final_loss = 0;
  double accuracy = 0;  // on the training set, after the last step
};

MlpDemoResult train_mlp_demo(const MlpDemoOptions& options);

}  // namespace rwkv
