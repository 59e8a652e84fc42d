// End-to-end: a 2-layer MLP trained with this autograd on a synthetic task reaches a stated loss.
#include <gtest/gtest.h>

#include "train/mlp_demo.h"

namespace rwkv::ag {
namespace {

TEST(AutogradMlp, TwoLayerMlpLearnsTheSyntheticTask) {
  // The task: 4 classes decided by which quadrant (sign pattern) of a 2-D projection the input falls in, plus
  // noise inputs. Chance level is ln 4 = 1.386; the network must get below 0.15 in 300 steps of SGD.
  MlpDemoOptions options;
  options.steps = 300;
  const MlpDemoResult result = train_mlp_demo(options);
  EXPECT_GT(result.initial_loss, 1.2);
  EXPECT_LT(result.final_loss, 0.15) << "initial " << result.initial_loss;
  EXPECT_GT(result.accuracy, 0.95);
  // Deterministic: the same seed gives the same losses.
  EXPECT_EQ(train_mlp_demo(options).final_loss, result.final_loss);
}

}  // namespace
}  // namespace rwkv::ag
