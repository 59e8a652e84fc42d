// Cross-entropy, the L2Wrap logit regulariser, and the head fused with both (linear_cross_entropy).
#include <algorithm>
#include <vector>

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

Variable linear_cross_entropy(const Variable& x, const Variable& weight, const Tensor& targets_in,
                              int64_t chunk_rows) {
  const int64_t features = weight.size(1), vocab = weight.size(0);
  RWKV_CHECK(weight.dim() == 2 && x.size(-1) == features, "linear_cross_entropy: input ", x.describe(),
             " does not end in the ", features, " features of the weight ", weight.describe());
  const int64_t rows = x.data().numel() / features;
  RWKV_CHECK(targets_in.numel() == rows && rows > 0, "linear_cross_entropy: ", rows, " positions but targets ",
             targets_in.describe());
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, (int64_t{1} << 25) / vocab);
  const Tensor flat_x = x.data().contiguous().view({rows, features});
  const Tensor targets = targets_in.contiguous().view({rows});
  const Tensor weight_value = weight.data();
  // Forward: the mean over all positions of each chunk's mean loss weighted by its size, in double.
  std::vector<Tensor> logsumexp;
  double loss_sum = 0;
  for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
    const int64_t end = std::min(rows, begin + chunk_rows);
    const Tensor logits = ops::matmul(flat_x.slice(0, begin, end), weight_value, false, true);
    ops::CrossEntropyOutput out = ops::cross_entropy(logits, targets.slice(0, begin, end));
    loss_sum += out.loss.to_vector<double>()[0] * static_cast<double>(end - begin);
    logsumexp.push_back(std::move(out.logsumexp));
  }
  const Tensor loss = Tensor::full({}, loss_sum / static_cast<double>(rows), flat_x.dtype(), flat_x.device());
  const TensorMeta x_meta = TensorMeta::of(x.data());
  return make_output(
      "linear_cross_entropy", loss, {x, weight},
      [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
        const double grad_loss = g[0].to_vector<double>()[0];
        const double l2wrap_factor = 1e-4 / static_cast<double>(rows);  // spec §1.7, not scaled by grad_loss
        Tensor grad_x = Tensor::zeros({rows, features}, flat_x.dtype(), flat_x.device());
        Tensor grad_weight = Tensor::zeros(weight_value.shape(), weight_value.dtype(), weight_value.device());
        size_t chunk = 0;
        for (int64_t begin = 0; begin < rows; begin += chunk_rows, ++chunk) {
          const int64_t end = std::min(rows, begin + chunk_rows);
          const Tensor x_chunk = flat_x.slice(0, begin, end);
          const Tensor logits = ops::matmul(x_chunk, weight_value, false, true);
          // The chunk's share of the mean: grad_loss · (chunk rows / rows), spread over the chunk's rows.
          Tensor grad_logits = ops::cross_entropy_backward(
              grad_loss * static_cast<double>(end - begin) / static_cast<double>(rows), logits,
              targets.slice(0, begin, end), logsumexp[chunk]);
          ops::l2wrap_backward_(grad_logits, logits, l2wrap_factor);
          Tensor grad_x_chunk = grad_x.slice(0, begin, end);
          ops::matmul_into(grad_logits, weight_value, false, false, grad_x_chunk, 0.0);
          ops::matmul_into(grad_logits, x_chunk, true, false, grad_weight, begin == 0 ? 0.0 : 1.0);
        }
        return {grad_x.view(x_meta.shape), grad_weight};
      });
}

}  // namespace rwkv::ag
