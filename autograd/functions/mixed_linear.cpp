// The bf16 linear layer over an fp32 master weight (autograd/mixed_precision.h).
#include "autograd/mixed_precision.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable linear_bf16(const Variable& x, const Variable& weight) {
  const int64_t in = weight.size(1), out = weight.size(0);
  RWKV_CHECK(weight.dim() == 2 && x.size(-1) == in, "linear_bf16: input ", x.describe(), " does not end in the ",
             in, " features of the weight ", weight.describe());
  RWKV_CHECK(x.data().dtype() == DType::bf16 && weight.data().dtype() == DType::f32, "linear_bf16: expects a bf16 ",
             "input and an f32 weight, got ", x.describe(), " and ", weight.describe());
  const int64_t rows = x.data().numel() / in;
  const Tensor flat_x = x.data().contiguous().view({rows, in});
  const Tensor weight_bf16 = weight.data().to(DType::bf16);
  Shape out_shape = x.shape();
  out_shape.back() = out;
  Tensor y = ops::matmul(flat_x, weight_bf16, false, true, DType::bf16).view(out_shape);
  const Shape x_shape = x.shape();
  return make_output("linear_bf16", std::move(y), {x, weight},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const Tensor grad_y = g[0].to(DType::bf16).contiguous().view({rows, out});
                       Tensor grad_x = ops::matmul(grad_y, weight_bf16, false, false, DType::bf16).view(x_shape);
                       Tensor grad_weight = ops::matmul(grad_y, flat_x, true, false, DType::f32);
                       return {std::move(grad_x), std::move(grad_weight)};
                     });
}

}  // namespace rwkv::ag
