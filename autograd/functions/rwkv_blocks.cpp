// Differentiable layernorm, embedding and token shift.
#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable layernorm(const Variable& x, const Variable& weight, const Variable& bias, double eps) {
  ops::LayerNormOutput out = ops::layernorm(x.data(), weight.data(), bias.data(), eps);
  Tensor x_value = x.data(), weight_value = weight.data(), mean = out.mean, rstd = out.rstd;
  return make_output("layernorm", std::move(out.y), {x, weight, bias},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       ops::LayerNormGrads grads = ops::layernorm_backward(g[0], x_value, weight_value, mean, rstd);
                       return {grads.x, grads.weight, grads.bias};
                     });
}

Variable embedding(const Variable& table, const Tensor& ids) {
  const int64_t vocab = table.size(0);
  return make_output("embedding", ops::embedding(table.data(), ids), {table},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {ops::embedding_backward(g[0], ids, vocab)};
                     });
}

Variable token_shift(const Variable& x, const Variable& previous) {
  const bool has_previous = previous.defined();
  return make_output("token_shift", ops::token_shift(x.data(), has_previous ? previous.data() : Tensor()),
                     {x, previous}, [has_previous](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {ops::token_shift_backward(g[0]),
                               has_previous ? ops::token_shift_previous_backward(g[0]) : Tensor()};
                     });
}

}  // namespace rwkv::ag
