// Cross-entropy and the L2Wrap logit regulariser.
#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable cross_entropy(const Variable& logits, const Tensor& targets) {
  ops::CrossEntropyOutput out = ops::cross_entropy(logits.data(), targets);
  Tensor logits_value = logits.data(), logsumexp = out.logsumexp;
  return make_output("cross_entropy", std::move(out.loss), {logits},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const double grad_loss = g[0].to_vector<double>()[0];
                       return {ops::cross_entropy_backward(grad_loss, logits_value, targets, logsumexp)};
                     });
}

Variable l2wrap(const Variable& loss, const Variable& logits) {
  RWKV_CHECK(loss.data().numel() == 1, "l2wrap: loss must be a scalar, got ", loss.describe());
  const int64_t positions = logits.data().numel() / logits.size(-1);
  const double factor = 1e-4 / static_cast<double>(positions);
  Tensor logits_value = logits.data();
  const TensorMeta logits_meta = TensorMeta::of(logits.data());
  return make_output("l2wrap", loss.data(), {loss, logits},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor grad_logits = Tensor::zeros(logits_meta.shape, logits_meta.dtype, logits_meta.device);
                       ops::l2wrap_backward_(grad_logits, logits_value, factor);
                       return {g[0], grad_logits};
                     });
}

}  // namespace rwkv::ag
