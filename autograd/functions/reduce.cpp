#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable sum(const Variable& x, int64_t dim, bool keepdim) {
  const int64_t axis = wrap_dim(dim, x.dim(), "sum");
  const Shape shape = x.shape();
  return make_output("sum", ops::sum(x.data(), axis, keepdim), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const Tensor kept = keepdim ? g[0] : g[0].unsqueeze(axis);
                       return {ops::broadcast_to(kept, shape)};
                     });
}

Variable sum_all(const Variable& x) {
  const Shape shape = x.shape();
  return make_output("sum_all", ops::sum_all(x.data()), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {ops::broadcast_to(g[0], shape)};
                     });
}

Variable mean(const Variable& x, int64_t dim, bool keepdim) {
  const int64_t extent = x.size(dim);
  RWKV_CHECK(extent > 0, "mean: dimension ", dim, " of ", x.describe(), " is empty");
  return mul_scalar(sum(x, dim, keepdim), 1.0 / static_cast<double>(extent));
}

Variable mean_all(const Variable& x) {
  RWKV_CHECK(x.data().numel() > 0, "mean_all: ", x.describe(), " is empty");
  return mul_scalar(sum_all(x), 1.0 / static_cast<double>(x.data().numel()));
}

}  // namespace rwkv::ag
