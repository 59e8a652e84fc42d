#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  return matmul(a, b, trans_a, trans_b, a.data().dtype());
}

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b, DType out_dtype) {
  RWKV_CHECK(!(trans_a && a.dim() == 3 && b.dim() == 2), "matmul: a transposed 3-D operand with a shared 2-D ",
             "operand is not differentiable here (", a.describe(), "^T x ", b.describe(), "); reshape first");
  Tensor out = ops::matmul(a.data(), b.data(), trans_a, trans_b, out_dtype);
  const DType operand_dtype = a.data().dtype();
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  // Each input's gradient needs only the other input's value.
  Tensor a_value = need_b ? a.data() : Tensor();
  Tensor b_value = need_a ? b.data() : Tensor();
  const Shape b_shape = b.shape();
  return make_output("matmul", std::move(out), {a, b},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const Tensor gy = g[0].to(operand_dtype);  // an f32 result's gradient, in bf16
                       Tensor ga, gb;
                       // y = op(A) op(B): dA = gy op(B)^T (transposed back when A was), dB likewise.
                       if (need_a) {
                         ga = trans_a ? ops::matmul(b_value, gy, trans_b, true)
                                      : ops::matmul(gy, b_value, false, !trans_b);
                       }
                       if (need_b) {
                         if (b_shape.size() == 2 && a_value.dim() == 3) {
                           // A shared 2-D B: sum the per-group products = one product over flattened rows.
                           const int64_t rows = a_value.size(0) * a_value.size(1);
                           if (!trans_a) {
                             const Tensor a2 = a_value.reshape({rows, a_value.size(2)});
                             const Tensor g2 = gy.reshape({rows, gy.size(2)});
                             gb = trans_b ? ops::matmul(g2, a2, true, false) : ops::matmul(a2, g2, true, false);
                           } else {
                             gb = ops::sum(trans_b ? ops::matmul(gy, a_value, true, true)
                                                   : ops::matmul(a_value, gy, false, false),
                                           0);
                           }
                         } else {
                           gb = trans_b ? ops::matmul(gy, a_value, true, trans_a)
                                        : ops::matmul(a_value, gy, !trans_a, false);
                         }
                       }
                       return {ga, gb};
                     });
}

}  // namespace rwkv::ag
