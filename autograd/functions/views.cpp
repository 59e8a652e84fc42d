#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable reshape(const Variable& x, const Shape& shape) {
  const Shape input_shape = x.shape();
  return make_output("reshape", x.data().reshape(shape), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {g[0].reshape(input_shape)}; });
}

Variable transpose(const Variable& x, int64_t dim0, int64_t dim1) {
  return make_output("transpose", x.data().transpose(dim0, dim1), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {g[0].transpose(dim0, dim1).contiguous()};
                     });
}

Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end) {
  const TensorMeta meta = TensorMeta::of(x.data());
  return make_output("slice", x.data().slice(dim, start, end), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor grad = Tensor::zeros(meta.shape, meta.dtype, meta.device);
                       grad.slice(dim, start, end).copy_(g[0]);
                       return {grad};
                     });
}

}  // namespace rwkv::ag
