#include "train/mlp_demo.h"

#include <cmath>

#include "autograd/functions.h"
#include "autograd/nn/module.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace rwkv {

namespace {

class Mlp : public ag::nn::Module {
public:
  Mlp(int64_t inputs, int64_t hidden, int64_t classes, Generator& generator)
      : first_(register_module("first", std::make_shared<ag::nn::Linear>(inputs, hidden))),
        second_(register_module("second", std::make_shared<ag::nn::Linear>(hidden, classes))) {
    for (auto& [name, parameter] : named_parameters()) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(parameter.size(1)));  // PyTorch Linear default
      generator.uniform_(parameter.mutable_data(), static_cast<float>(-bound), static_cast<float>(bound));
    }
  }
  ag::Variable forward(const ag::Variable& x) const { return second_->forward(ag::relu(first_->forward(x))); }

private:
  std::shared_ptr<ag::nn::Linear> first_, second_;
};

}  // namespace

MlpDemoResult train_mlp_demo(const MlpDemoOptions& options) {
  Generator generator(options.seed);
  Tensor inputs = Tensor::empty({options.samples, options.inputs});
  generator.normal_(inputs, 0.0f, 1.0f);
  std::vector<int64_t> labels(static_cast<size_t>(options.samples));
  const float* x = inputs.data<float>();
  for (int64_t i = 0; i < options.samples; ++i) {
    labels[static_cast<size_t>(i)] = (x[i * options.inputs] > 0 ? 1 : 0) + (x[i * options.inputs + 1] > 0 ? 2 : 0);
  }
  const Tensor targets = Tensor::from_vector(labels, {options.samples});
  Mlp model(options.inputs, options.hidden, options.classes, generator);
  const ag::Variable batch(inputs, false);

  MlpDemoResult result;
  for (int64_t step = 0; step < options.steps; ++step) {
    model.zero_grad();
    ag::Variable loss = ag::cross_entropy(model.forward(batch), targets);
    const double value = loss.data().item();
    if (step == 0) result.initial_loss = value;
    loss.backward();
    for (ag::Variable& parameter : model.parameters()) {  // plain SGD, in place
      parameter.mutable_data().copy_(
          ops::binary(Binary::sub, parameter.data(), ops::affine(parameter.grad(), options.learning_rate, 0.0)));
    }
    if (options.on_step) options.on_step(step, value);
  }
  ag::NoGradGuard no_grad;
  const ag::Variable logits = model.forward(batch);
  result.final_loss = ag::cross_entropy(logits, targets).data().item();
  const auto scores = logits.data().to_vector<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < options.samples; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < options.classes; ++c) {
      if (scores[static_cast<size_t>(i * options.classes + c)] > scores[static_cast<size_t>(i * options.classes + best)]) {
        best = c;
      }
    }
    correct += best == labels[static_cast<size_t>(i)] ? 1 : 0;
  }
  result.accuracy = static_cast<double>(correct) / static_cast<double>(options.samples);
  return result;
}

}  // namespace rwkv
